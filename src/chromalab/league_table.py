"""The league table: its columns, which value is best in each, and the Markdown of
reports/comparison.md (the page, report_page.py, and `chromalab models` format with the same
helpers)."""

from __future__ import annotations

import dataclasses

from chromalab.config import GREY


@dataclasses.dataclass(frozen=True)
class Column:
    """One metric column of the league table."""

    key: str
    title: str
    digits: int  # decimals shown; "best" is judged on the shown value, so bold never looks arbitrary
    best: str | None  # "max", "min", "closest_to_zero" or None (not ranked)


COLUMNS = (
    Column("psnr", "PSNR (dB)", 2, "max"),
    Column("ssim", "SSIM", 4, "max"),
    Column("auc", "AuC", 4, "max"),
    Column("auc_rebalanced", "AuC (rebal.)", 4, "max"),
    Column("colorfulness", "CF", 2, None),
    Column("colorfulness_gt", "CF gt", 2, None),
    # Judged by |ΔCF|: if ΔCF is signed (CF - CF gt), "lowest" would crown the grey baseline,
    # whose ΔCF is -CF gt; for a non-negative ΔCF the two rules agree.
    Column("delta_colorfulness", "ΔCF", 2, "closest_to_zero"),
    Column("train_seconds", "train (s)", 0, "min"),  # optional: None for grey and older evaluations
    Column("images_per_second", "img/s", 1, "max"),
)
# The grey baseline runs no network, so its throughput would always "win" and say nothing.
NOT_RANKED_FOR_BASELINE = {"images_per_second", "train_seconds"}
DESCRIPTIVE_COLUMNS = ("model", "network", "representation", "params")
BEST_NOTE = (
    "Bold = best in its column: highest PSNR, SSIM, AuC, AuC (rebal.) and img/s, shortest training "
    "(train (s): every epoch of the run, from its history.csv) "
    "(the grey baseline is not ranked for img/s and training: it runs no network); "
    "ΔCF closest to 0 (the smallest gap to the ground truth's colourfulness); "
    "CF and CF gt are not ranked."
)


def best_per_column(records: list[dict]) -> dict[str, set[str]]:
    """{metric: names holding the best shown value} for each ranked column; ties share it."""
    best = {}
    for col in COLUMNS:
        if col.best is None:
            continue
        ranked = [
            r for r in records
            if not (r["name"] == GREY and col.key in NOT_RANKED_FOR_BASELINE) and r.get(col.key) is not None
        ]
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


def render_markdown(records: list[dict], note: str = "") -> str:
    best = best_per_column(records)
    header = [*DESCRIPTIVE_COLUMNS, *(c.title for c in COLUMNS)]
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
        for col in COLUMNS:
            shown = format_value(r, col)
            cells.append(f"**{shown}**" if r["name"] in best.get(col.key, ()) else shown)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"{BEST_NOTE} {images_note(records)}", ""]
    if note:
        lines += [note, ""]
    return "\n".join(lines)
