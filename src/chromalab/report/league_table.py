"""The league table: its columns, which value is best in each, and the Markdown of
reports/comparison.md (the page, report_page.py, and `chromalab models` format with the same
helpers)."""

from __future__ import annotations

import dataclasses

from chromalab.core.config import GREY


@dataclasses.dataclass(frozen=True)
class Column:
    """One metric column of the league table."""

    key: str
    title: str
    digits: int  # decimals shown; "best" is judged on the shown value, so bold never looks arbitrary
    best: str | None  # "max", "min", "closest_to_zero" or None (not ranked)
    interval: bool = False  # shown with its 95 % bootstrap interval (KEY_ci in metrics.json)
    ranks_baseline: bool = True  # False: the grey baseline is never the best (its value is trivial)


COLUMNS = (
    Column("psnr", "PSNR (dB)", 2, "max", True),
    Column("ssim", "SSIM", 4, "max", True),
    Column("auc", "AuC", 4, "max", True),
    Column("auc_rebalanced", "AuC (rebal.)", 4, "max", True),
    Column("colorfulness", "CF", 2, None),
    Column("colorfulness_gt", "CF gt", 2, None),
    # Judged by |ΔCF|: if ΔCF is signed (CF - CF gt), "lowest" would crown the grey baseline,
    # whose ΔCF is -CF gt; for a non-negative ΔCF the two rules agree.
    Column("delta_colorfulness", "ΔCF", 2, "closest_to_zero", True),
    # One column per ImageNet judge, so each compares like with like; "—" where the judge is the
    # model's own encoder (or evaluate.judge is off).
    Column("semantic_agreement_mobilenetv2", "agree. M", 2, "max", True),
    Column("semantic_agreement_lite0", "agree. L", 2, "max", True),
    Column("fd_mobilenetv2", "FD M", 1, "min"),
    Column("fd_lite0", "FD L", 1, "min"),
)
# "No warm cast" (metrics.colour_cast): on the test split always, on evaluate.photos when scored.
# The grey baseline's neutral chroma is 0 by construction, so it is not ranked there.
CAST_COLUMNS = (
    Column("neutral_chroma", "neutral C", 2, "min", True, ranks_baseline=False),
    Column("a_bias", "a* bias", 2, "closest_to_zero", True),
    Column("b_bias", "b* bias", 2, "closest_to_zero", True),
)
PHOTO_CAST_COLUMNS = tuple(dataclasses.replace(c, key=f"photos_{c.key}", title=f"photos {c.title}")
                           for c in CAST_COLUMNS)
CAST_NOTE = (
    "neutral C = mean predicted Lab chroma √(a² + b²) on the truly neutral pixels (true chroma below "
    "evaluate.neutral_threshold), pooled: a colour cast on whites and greys, lowest best (the grey "
    "baseline's 0 is not ranked). a* / b* bias = mean predicted − true a* / b* over all pixels, closest "
    "to 0 best: b* > 0 is a warm (yellow, sepia) cast, a* > 0 a red one; the grey baseline's is minus the "
    "truth's mean."
)


# Models with a per-pixel confidence: its AUROC against the pixels they got wrong (evaluate).
CONFIDENCE_COLUMNS = (Column("confidence_auroc", "conf. AUROC", 2, "max", True),)
# The neutral-scene check (neutral@MODEL): the colour painted on grey textures and photos; the grey
# baseline's 0 is not ranked.
NEUTRAL_SCENE_COLUMNS = (
    Column("neutral_scene_mean_chroma", "grey scenes C", 2, "min", ranks_baseline=False),
    Column("neutral_scene_p99_chroma", "grey scenes C p99", 1, "min", ranks_baseline=False),
)
CONFIDENCE_NOTE = (
    "conf. AUROC = how well the model's own per-pixel confidence finds the pixels it got wrong (ab error "
    "above 10): the probability that a wrong pixel is less sure than a right one, 0.5 = chance, pooled over "
    "the test pixels (bins and palette models; — for the others)."
)
NEUTRAL_SCENE_NOTE = (
    "grey scenes C / C p99 = mean and 99th-percentile Lab chroma the model paints on inputs that have no "
    "colour (seeded grey textures and the photos prepare dropped as grey: the neutral@MODEL stage), lowest best."
)


def _has(records: list[dict], columns: tuple[Column, ...]) -> bool:
    return any(r.get(c.key) is not None for r in records for c in columns)


def table_columns(records: list[dict]) -> tuple[Column, ...]:
    """The league table's metric columns: COLUMNS, the colour cast, the photos' colour cast when
    some model was scored on evaluate.photos, the confidence AUROC when some model has one, and
    the neutral-scene check when it ran."""
    return (*COLUMNS, *CAST_COLUMNS, *(PHOTO_CAST_COLUMNS if _has(records, PHOTO_CAST_COLUMNS) else ()),
            *(CONFIDENCE_COLUMNS if _has(records, CONFIDENCE_COLUMNS) else ()),
            *(NEUTRAL_SCENE_COLUMNS if _has(records, NEUTRAL_SCENE_COLUMNS) else ()))


def confidence_notes(records: list[dict]) -> list[str]:
    """What the confidence and neutral-scene columns mean, for those shown."""
    return [note for note, columns in ((CONFIDENCE_NOTE, CONFIDENCE_COLUMNS), (NEUTRAL_SCENE_NOTE, NEUTRAL_SCENE_COLUMNS))
            if _has(records, columns)]


def shrink_lines(records: list[dict]) -> list[str]:
    """One sentence per model whose decoding shrinks unsure pixels' chroma: its PSNR against a
    uniform desaturation of the same model to the same mean colourfulness, paired (evaluate)."""
    lines = []
    for r in records:
        versus = r.get("shrink_vs_uniform_psnr")
        if not versus:
            continue
        ci = versus["ci"]
        interval = f" [{ci[0]:+.2f}, {ci[1]:+.2f}]{' *' if versus['significant'] else ''}" if ci else ""
        lines.append(f"{row_label(r['name'])}: its pull towards neutral (low-confidence shrink, mean pull) minus "
                     f"a uniform desaturation to the same mean colourfulness (CF {r['colorfulness']:.2f}; "
                     f"factor {r['uniform_factor']:.3f}): PSNR "
                     f"{versus['difference']:+.2f} dB{interval} ({r['psnr']:.2f} against {r['uniform_psnr']:.2f} dB; "
                     "paired bootstrap over the test images, 95 % interval, * = significant).")
    return lines


def neutral_scene_rows(neutral: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    """The neutral-scene check as a table: (headers, rows), one row per model checked (the
    released model's too), mean and 99th-percentile chroma overall and the mean per kind of input."""
    kinds = []
    for found in neutral.values():
        kinds += [k for k in found.get("kinds", {}) if k not in kinds]
    headers = ["model", "images", "mean C", "p99 C", *(f"{k} mean C" for k in kinds)]
    rows = []
    for name, found in neutral.items():
        per_kind = found.get("kinds", {})
        rows.append([row_label(name), str(found.get("images", "—")), f"{found['mean_chroma']:.2f}",
                     f"{found['p99_chroma']:.2f}",
                     *(f"{per_kind[k]['mean_chroma']:.2f}" if k in per_kind else "—" for k in kinds)])
    return headers, rows


def cast_note(records: list[dict]) -> str:
    """What the colour-cast columns mean, when some model has them."""
    return CAST_NOTE if _has(records, CAST_COLUMNS) else ""


DESCRIPTIVE_COLUMNS = ("model", "network", "representation", "params")
BEST_NOTE = (
    "Bold = best in its column: highest PSNR, SSIM, AuC, AuC (rebal.) and agreement, lowest FD, "
    "ΔCF closest to 0 (the smallest gap to the ground truth's colourfulness); CF and CF gt are not "
    "ranked. [low, high]: 95 % bootstrap interval over the test images (evaluate.bootstrap_draws "
    "resamples): two models whose intervals overlap may still differ, which the paired test below says."
)


def best_per_column(records: list[dict]) -> dict[str, set[str]]:
    """{metric: names holding the best shown value} for each ranked column; ties share it."""
    best = {}
    for col in table_columns(records):
        if col.best is None:
            continue
        ranked = [r for r in records if r.get(col.key) is not None and (col.ranks_baseline or r["name"] != GREY)]
        if not ranked:
            best[col.key] = set()
            continue
        score = {r["name"]: round(r[col.key], col.digits) for r in ranked}
        if col.best == "closest_to_zero":
            score = {name: -abs(v) for name, v in score.items()}
        elif col.best == "min":
            score = {name: -v for name, v in score.items()}
        top = max(score.values())
        best[col.key] = {name for name, v in score.items() if v == top}
    return best


def row_label(name: str) -> str:
    return f"{name} (baseline)" if name == GREY else name


def or_dash(value) -> str:
    return "—" if value is None else str(value)


def _network(record: dict) -> str:
    """The network and, where evaluate recorded them, its knobs (e.g. koalarization's embedder)."""
    setup = record.get("setup")
    return f"{or_dash(record.get('network'))} ({setup})" if setup else or_dash(record.get("network"))


def format_count(value) -> str:
    """Parameter counts as 1.23M / 45.6k, so the column stays narrow."""
    if isinstance(value, bool) or not isinstance(value, int):
        return or_dash(value)
    if value >= 1_000_000:
        return f"{value / 1e6:.2f}M"
    if value >= 1_000:
        return f"{value / 1e3:.1f}k"
    return str(value)


def format_value(record: dict, col: Column) -> str:
    value = record.get(col.key)
    return "—" if value is None else f"{value:.{col.digits}f}"


def format_interval(record: dict, col: Column) -> str:
    """"[low, high]" for a column shown with its interval, "" when there is none."""
    ci = record.get(f"{col.key}_ci") if col.interval else None
    return f"[{ci['low']:.{col.digits}f}, {ci['high']:.{col.digits}f}]" if ci else ""


def judges_note(records: list[dict]) -> str:
    """What the judge columns mean, and what the truth scores against the labels."""
    if not any(r.get("judge") for r in records):
        return ""
    own_encoder = [row_label(r["name"]) for r in records if r.get("judge") and
                   (r.get("semantic_agreement_mobilenetv2") is None or r.get("semantic_agreement_lite0") is None)]
    note = ("agree. = top-1 agreement of an ImageNet classifier between the colorized and the original image "
            "(Zhang et al. 2016, semantic interpretability; 1 for the truth); FD = Fréchet distance between "
            "its pooled features of the colorized and of the original images (FID's formula on another "
            "network: comparable within a column, not with published FIDs). M = MobileNetV2, L = "
            "EfficientNet-Lite0, both ImageNet-trained from the pinned wheels; a model is not judged by its "
            "own encoder (—" + (f": {', '.join(own_encoder)}" if own_encoder else "") + ").")
    labelled = [r for r in records if r.get("label_top1") is not None]
    if labelled:
        note += (f" Top-1 accuracy against the ImageNet labels of the file names ({labelled[0].get('judge_title')} "
                 "where it judges): " + ", ".join(f"{row_label(r['name'])} {r['label_top1']:.2f}" for r in labelled)
                 + f"; the truth {labelled[0]['label_top1_truth']:.2f} ({labelled[0].get('labelled_images')} "
                 "labelled images).")
    return note


def render_versus(recommended: str | None, records: list[dict]) -> list[str]:
    """The paired test: is the recommended model's lead over each other model more than chance?"""
    rows = [r for r in records if r.get("versus")]
    if recommended is None or not rows:
        return []
    keys = versus_keys(rows)
    cast = " neutral C: a negative difference means less colour on neutral pixels." if "neutral_chroma" in keys else ""
    lines = [f"## Is {recommended}'s lead significant?", "",
             f"Paired bootstrap on the same test images: {recommended} minus each model, 95 % interval; "
             "significant when the interval leaves out 0. ΔCF: a negative difference means "
             f"{recommended}'s colourfulness is closer to the truth's.{cast}", "",
             "| model | PSNR difference (dB) | significant | abs(ΔCF) difference | significant |"
             + (" neutral C difference | significant |" if "neutral_chroma" in keys else ""),
             "|:---|---:|:---:|---:|:---:|" + ("---:|:---:|" if "neutral_chroma" in keys else "")]
    for r in rows:
        cells = [_md(row_label(r["name"]))]
        for key in keys:
            v = r["versus"].get(key)
            cells += [f"{v['difference']:+.2f} [{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}]", "yes" if v["significant"] else "no"] \
                if v else ["—", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def versus_keys(rows: list[dict]) -> tuple[str, ...]:
    """The paired tests the report shows: PSNR and ΔCF, and neutral chroma where per_image.csv has it."""
    return ("psnr", "delta_colorfulness", *(("neutral_chroma",) if any("neutral_chroma" in r["versus"] for r in rows)
                                            else ()))


def images_note(records: list[dict]) -> str:
    counts = sorted({r["images"] for r in records})
    if len(counts) == 1:
        return f"{counts[0]} test images."
    # Different test sets make the comparison shaky: say so rather than hide it.
    return f"{counts[0]}–{counts[-1]} test images (the models were not all scored on the same set)."


def _md(text: str) -> str:
    """Escape a string for a Markdown table cell (pipes would split the row, <> become HTML)."""
    text = " ".join(str(text).split())
    for char in "\\`*_[]<>|":
        text = text.replace(char, "\\" + char)
    return text


def render_neutral_markdown(records: list[dict], neutral: dict[str, dict] | None) -> list[str]:
    """The confidence section of comparison.md: the shrink against uniform desaturation, and the
    neutral-scene check of every model checked, the released model's included."""
    lines = shrink_lines(records)
    out = ["## When unsure, stay neutral", "", *(f"- {_md(line)}" for line in lines), *([""] if lines else [])]
    if neutral:
        headers, rows = neutral_scene_rows(neutral)
        out += [NEUTRAL_SCENE_NOTE + " `released` is the model `chromalab colorize` uses by default.", "",
                "| " + " | ".join(_md(h) for h in headers) + " |", "|:---|" + "---:|" * (len(headers) - 1)]
        out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows] + [""]
    return out if lines or neutral else []


def render_markdown(records: list[dict], note: str = "", recommended: str | None = None,
                    neutral: dict[str, dict] | None = None) -> str:
    best = best_per_column(records)
    columns = table_columns(records)
    header = [*DESCRIPTIVE_COLUMNS, *(c.title for c in columns)]
    lines = [
        "# Model comparison",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---"] * 3 + ["---:"] * (len(header) - 3)) + "|",
    ]
    for r in records:
        cells = [
            _md(row_label(r["name"])),  # plain names: the note under the table names the recommended one
            _md(_network(r)),
            _md(or_dash(r.get("representation"))),
            _md(format_count(r.get("parameters"))),
        ]
        for col in columns:
            shown = format_value(r, col)
            shown = f"**{shown}**" if r["name"] in best.get(col.key, ()) else shown
            cells.append(f"{shown} {format_interval(r, col)}".strip())
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"{BEST_NOTE} {images_note(records)}", ""]
    if judges_note(records):
        lines += [judges_note(records), ""]
    if cast_note(records):
        lines += [cast_note(records), ""]
    for extra in confidence_notes(records):
        lines += [extra, ""]
    if note:
        lines += [note, ""]
    return "\n".join(lines + render_versus(recommended, records) + render_neutral_markdown(records, neutral))
