"""The report stage: gather every model's evaluation into what a user opens, reads and trusts.

Reads reports/eval/NAME/ (metrics.json, auc_curve.csv, gallery/*.png; grey/truth/*.png; and, when
the evaluate stage colorized full-size photos, photos/*.png with grey/photos_truth/*.png) for each
model in league order followed by the grey baseline, reports/train/NAME/history.csv, each model's
run.json and the prepared data's summary, and writes under reports/:

- metrics.json: {name: {metric: number}} plus "recommended": the `dvc metrics` file;
- comparison.md: the league table, best value per column in bold;
- index.html: a self-contained page (report_page.py): the table, lineage, galleries, curves;
- curves/: the training and error-CDF plots (SVG) and their data in long form (CSV, one row per
  model and step) for `dvc plots show/diff`, which dvc.yaml declares;
- hero.png: a few test pictures as grey input | recommended model | ground truth (README's picture);
- gallery.png: the same test pictures as grey input | every model | ground truth, in one picture.

The recommended model (`recommended_model`, the one rule) is registered in MLflow with the alias
`champion`. Every input is read and checked before anything is written, so a missing or broken
input leaves no half-updated report behind; each output is then written atomically.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import os
from pathlib import Path

from PIL import Image

from chromalab import atomic, paths
from chromalab.errors import UserError

log = logging.getLogger(__name__)

GREY = "grey"  # the baseline: ab = 0, i.e. the grey input itself
EVAL_SUBDIR = paths.EVAL.relative_to(paths.REPORTS)  # "eval", kept in step with paths.py
METRICS = (
    "psnr",
    "ssim",
    "auc",
    "auc_rebalanced",
    "colorfulness",
    "colorfulness_gt",
    "delta_colorfulness",
    "images_per_second",
)
GALLERY_WIDTH = 128  # px the gallery pictures are scaled up to (by a whole factor)
PALETTE_WIDTH = 512


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
OPTIONAL_COLUMNS = {"train_seconds"}
DESCRIPTIVE_COLUMNS = ("model", "network", "representation", "params")
BEST_NOTE = (
    "Bold = best in its column: highest PSNR, SSIM, AuC, AuC (rebal.) and img/s, shortest training "
    "(train (s): every epoch of the run, from its history.csv) "
    "(the grey baseline is not ranked for img/s and training: it runs no network); "
    "ΔCF closest to 0 (the smallest gap to the ground truth's colourfulness); "
    "CF and CF gt are not ranked."
)


# --- reading the evaluation outputs ----------------------------------------------------------


def _number(path: Path, data: dict, key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{path}: {key} must be a number, got {value!r}")
    if not math.isfinite(value):
        # json.dumps would write NaN/Infinity, which is not JSON and breaks `dvc metrics`.
        raise UserError(f"{path}: {key} must be a finite number, got {value!r}")
    return float(value)


def read_metrics(path: Path) -> dict:
    """One model's metrics.json, checked: a dict with every metric a finite number."""
    if not path.is_file():
        raise UserError(f"{path}: not found; run the evaluate stage first (dvc repro)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(data).__name__}")
    for key in (*METRICS, "images"):
        if key not in data:
            raise UserError(f"{path}: missing key {key!r}")
    for key in METRICS:
        data[key] = _number(path, data, key)
    for key in OPTIONAL_COLUMNS:
        data[key] = _number(path, data, key) if data.get(key) is not None else None
    if isinstance(data["images"], bool) or not isinstance(data["images"], int):
        raise UserError(f"{path}: images must be an integer, got {data['images']!r}")
    return data


def load_records(names: list[str], reports_dir: Path) -> list[dict]:
    """Each name's metrics.json plus its name, in the given order."""
    if not names:
        raise UserError("report: no models to compare")
    seen = set()
    for name in names:
        if name in seen:
            raise UserError(f"report: model {name!r} is listed twice")
        seen.add(name)
    eval_dir = reports_dir / EVAL_SUBDIR
    return [{**read_metrics(eval_dir / name / "metrics.json"), "name": name} for name in names]


def metrics_summary(records: list[dict], recommended: str | None) -> dict:
    """{name: {metric: value rounded to 4 decimals}, "recommended": name}: what `dvc metrics
    show/diff` display, and what `chromalab colorize` uses when no --model is given."""
    summary = {r["name"]: {key: round(r[key], 4) for key in METRICS} for r in records}
    return {**summary, RECOMMENDED: recommended}


# --- the recommendation ----------------------------------------------------------------------

RECOMMENDED = "recommended"  # its key in reports/metrics.json (build_report refuses it as a model name)


def recommended_model(records: list[dict], max_delta_colorfulness: float = 5.0) -> str | None:
    """The model to colorize with: the best test PSNR among the models whose colourfulness is
    within `max_delta_colorfulness` of the ground truth's (|ΔCF|), since PSNR alone rewards timid,
    washed-out colours. When no model is that faithful, the best PSNR overall, with a warning.
    The grey baseline is never recommended; None when there is no model at all.

    `records` are dicts with name, psnr and delta_colorfulness (a report record or an entry of
    reports/metrics.json); ties go to the first in league order.
    """
    models = [r for r in records if r["name"] != GREY]
    if not models:
        return None
    faithful = [r for r in models if abs(r["delta_colorfulness"]) <= max_delta_colorfulness]
    if not faithful:
        best = max(models, key=lambda r: r["psnr"])
        log.warning("no model has |ΔCF| <= %g (report.max_delta_colorfulness); recommending %s, "
                    "the best PSNR overall", max_delta_colorfulness, best["name"])
        return best["name"]
    return max(faithful, key=lambda r: r["psnr"])["name"]


def recommendation_note(records: list[dict], recommended: str | None, max_delta_colorfulness: float) -> str:
    """The rule in words, for the page and the CLI."""
    if recommended is None:
        return "No model to recommend: the league is empty."
    record = next(r for r in records if r["name"] == recommended)
    faithful = abs(record["delta_colorfulness"]) <= max_delta_colorfulness
    why = (f"the best test PSNR among the models whose |ΔCF| ≤ {max_delta_colorfulness:g}"
           if faithful else f"the best test PSNR overall: no model has |ΔCF| ≤ {max_delta_colorfulness:g}")
    return (f"Recommended: {recommended} ({record['psnr']:.2f} dB, ΔCF {record['delta_colorfulness']:.2f}), "
            f"{why} (report.max_delta_colorfulness).")


# --- the league table ------------------------------------------------------------------------


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


# --- the galleries --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Gallery:
    """Which picture goes in which cell: paths relative to reports/, None where one is missing."""

    headers: list[str]
    rows: list[tuple[str, list[str | None]]]  # (image file name, one path per header)
    width: int  # display width in px
    pixelated: bool = True  # small crops scaled up by a whole factor; full-size photos are not


@dataclasses.dataclass(frozen=True)
class GalleryKind:
    """Where one gallery's pictures live: eval/NAME/<folder>, and the truth in eval/grey/<truth>."""

    folder: str
    truth: str
    keep_empty_columns: bool  # the test gallery shows a missing model as missing; photos are optional


TEST_IMAGES = GalleryKind("gallery", "truth", keep_empty_columns=True)
# Full-resolution photos (evaluate.photos): eval/NAME/photos/, the originals in eval/grey/photos_truth/.
PHOTOS = GalleryKind("photos", "photos_truth", keep_empty_columns=False)
PHOTO_WIDTH = 320


def _image_order(file_name: str):
    stem = Path(file_name).stem
    # Numeric order, so 100.png follows 99.png.
    return (0, int(stem), file_name) if stem.isdigit() else (1, 0, file_name)


def _display_width(path: Path, target: int) -> int:
    """Scale small pictures up by a whole factor: pixelated scaling stays even."""
    try:
        with Image.open(path) as img:
            width = img.width
    except OSError:
        return target
    return width * max(1, target // width)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def collect_gallery(names: list[str], reports_dir: Path, kind: GalleryKind = TEST_IMAGES, warn: bool = True) -> Gallery:
    eval_rel = Path(EVAL_SUBDIR)
    folders = [("input (grey)", eval_rel / GREY / kind.folder)]
    folders += [(name, eval_rel / name / kind.folder) for name in names if name != GREY]
    folders.append(("ground truth", eval_rel / GREY / kind.truth))
    if not kind.keep_empty_columns:
        folders = [(h, f) for h, f in folders if (reports_dir / f).is_dir()]
        if not any(h not in ("input (grey)", "ground truth") for h, _ in folders):
            return Gallery([], [], PHOTO_WIDTH, pixelated=False)

    present = {
        folder: {p.name for p in (reports_dir / folder).glob("*")
                 if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}
        for _, folder in folders
    }
    files = sorted(set().union(*present.values()), key=_image_order)
    rows = []
    for file_name in files:
        cells = [
            (folder / file_name).as_posix() if file_name in present[folder] else None
            for _, folder in folders
        ]
        rows.append((file_name, cells))
        for (_, folder), cell in zip(folders, cells):
            if cell is None and warn:
                log.warning("gallery: %s has no %s", reports_dir / folder, file_name)
    if kind is PHOTOS:
        return Gallery([header for header, _ in folders], rows, PHOTO_WIDTH, pixelated=False)
    first = next((c for _, cells in rows for c in cells if c), None)
    width = _display_width(reports_dir / first, GALLERY_WIDTH) if first else GALLERY_WIDTH
    return Gallery([header for header, _ in folders], rows, width)


# --- curves ----------------------------------------------------------------------------------

CURVES_DIR = "curves"  # reports/curves/: SVG plots for the page, long-form CSVs for `dvc plots`
TRAINING_CSV = "training.csv"
ERROR_CDF_CSV = "error_cdf.csv"
ERROR_CDF_SVG = "error_cdf.svg"


def _read_rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{path}: not a readable CSV ({err})") from None


def collect_series(names: list[str], folder: Path, file_name: str, what: str) -> dict[str, list[dict]]:
    """{name: rows of folder/NAME/file_name} for the names that have one; a missing file is
    logged and left out (its model still has a row in the table)."""
    found = {}
    for name in names:
        path = folder / name / file_name
        if not path.is_file():
            log.warning("%s: missing, so %s has no %s in the report", path, name, what)
            continue
        rows = _read_rows(path)
        if rows:
            found[name] = rows
    return found


def long_csv(series: dict[str, list[dict]]) -> str:
    """Every model's rows in one table with a leading `model` column: what dvc.yaml's plots read,
    so one plot shows every model of the league whatever its names."""
    columns = ["model"]
    for rows in series.values():
        columns += [key for key in rows[0] if key not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n", restval="")
    writer.writeheader()
    for name, rows in series.items():
        writer.writerows({**row, "model": name} for row in rows)
    return out.getvalue()


def whole_training_seconds(history: list[dict] | None, fallback: float | None) -> float | None:
    """The whole training run's time, every epoch's `seconds` summed: what the model cost. (The
    checkpoint's own train_seconds stops at its best epoch.) `fallback` without a history."""
    try:
        return sum(float(row["seconds"]) for row in history) if history else fallback
    except (KeyError, TypeError, ValueError):
        return fallback


def training_plot_name(name: str) -> str:
    return f"training_{name}.svg"


# --- the MLflow registry ---------------------------------------------------------------------


def register_recommended(recommended: str | None, records: list[dict], lineage, params) -> str:
    """Point `models:/<registered_model>@champion` at the recommended model; returns what happened,
    in words for the page. Never fails the report: a run without MLflow is still a run."""
    from chromalab import tracking

    if recommended is None:
        return "Nothing registered: there is no model to recommend."
    if not tracking.enabled():
        log.warning("not registering %s in MLflow: tracking is off (CHROMALAB_MLFLOW)", recommended)
        return f"Not registered in MLflow: tracking is off (CHROMALAB_MLFLOW={os.environ.get('CHROMALAB_MLFLOW')})."
    run = next(r for r in lineage.runs if r.name == recommended)
    if not run.model_uri:
        reason = run.note or "its run.json names no logged model"
        log.warning("not registering %s in MLflow: %s", recommended, reason)
        return f"Not registered in MLflow: {recommended}: {reason}."
    record = next(r for r in records if r["name"] == recommended)
    tags = {
        "chromalab.model": recommended,
        "network": record.get("network"),
        "representation": record.get("representation"),
        "image_size": lineage.image_size,
        "data_sha256": lineage.data_sha256,
        "git_commit": lineage.git_commit,
        "mlflow_run_id": run.run_id,
        "test_psnr": round(record["psnr"], 4),
        "test_delta_colorfulness": round(record["delta_colorfulness"], 4),
    }
    uri = f"models:/{params.registered_model}@{tracking.CHAMPION}"
    try:
        tracking.check_reachable()  # a dead server would make MLflow's client retry for minutes
        version = tracking.register_champion(run.model_uri, params.registered_model,
                                             {k: v for k, v in tags.items() if v is not None})
    except Exception as err:  # an unreachable store must not cost the user the report
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        log.warning("not registering %s in MLflow at %s: %s", recommended, tracking.tracking_uri(), reason)
        return f"Not registered in MLflow: {reason}."
    log.info("registered %s (%s) as %s, version %d", recommended, run.model_uri, uri, version)
    return f"{uri} is {recommended} (version {version} of {params.registered_model})."


def _link_runs(lineage) -> None:
    """Fill in each run's experiment id, which the MLflow UI's run page needs (MLflow is imported
    only when some model has a run)."""
    from chromalab import tracking

    run_ids = [r.run_id for r in lineage.runs if r.run_id]
    if run_ids and tracking.enabled():
        try:
            tracking.check_reachable()
            lineage.experiment_ids = tracking.experiment_ids(run_ids)
        except Exception as err:
            log.warning("MLflow run pages not linked: %s", str(err).splitlines()[0] if str(err) else err)


# --- the stage -------------------------------------------------------------------------------


@dataclasses.dataclass
class Report:
    """Everything the page shows, read and decided before anything is written."""

    records: list[dict]
    recommended: str | None
    recommendation: str
    registry: str
    gallery: Gallery
    photos: Gallery
    palette: tuple[str, int] | None  # (path relative to reports/, display width)
    training_plots: dict[str, str]  # model -> plot path relative to reports/
    error_cdf_plot: str | None
    hero: str
    lineage: object | None  # lineage.Lineage, None when build_report is given no params


def _hero_rows(names: list[str], recommended: str | None, reports_dir: Path, count: int) -> tuple[list, list]:
    """Up to `count` (grey, recommended, truth) picture paths: full-size photos when there are any."""
    if recommended is None:
        return [], []
    for kind in (PHOTOS, TEST_IMAGES):
        gallery = collect_gallery([recommended, GREY], reports_dir, kind, warn=False)
        if not gallery.rows or len(gallery.headers) != 3:
            continue
        rows = [[reports_dir / c for c in cells] for _, cells in gallery.rows if all(cells)][:count]
        if rows:
            return rows, ["grey input", f"{recommended} (recommended)", "ground truth"]
    return [], []


def build_report(names: list[str], reports_dir=paths.REPORTS, params=None, all_params: dict | None = None) -> dict:
    """Read every model's evaluation, decide the recommended model, register it, and write the report.

    The pipeline's root is reports_dir's parent (data/models and data/prepared are read there);
    `params` is the report section (ReportParams), `all_params` the whole params.yaml, whose
    choices the page's lineage lists. Returns the dict written to reports/metrics.json.
    """
    from chromalab import figures, lineage as lineage_mod
    from chromalab.config import ReportParams
    from chromalab.report_page import render_html

    params = params or ReportParams()
    names = list(names)
    reports_dir = Path(reports_dir)
    root = reports_dir.parent
    if RECOMMENDED in names:
        raise UserError(f"league: {RECOMMENDED!r} is reserved in reports/metrics.json; rename that model")
    records = load_records(names, reports_dir)
    gallery = collect_gallery(names, reports_dir)
    photos = collect_gallery(names, reports_dir, PHOTOS)
    histories = collect_series([n for n in names if n != GREY], reports_dir / "train", "history.csv",
                               "training curves")
    cdfs = collect_series(names, reports_dir / EVAL_SUBDIR, "auc_curve.csv", "error CDF")
    for record in records:
        record["train_seconds"] = whole_training_seconds(histories.get(record["name"]), record["train_seconds"])
    palette = reports_dir / "palette.png"
    counts = sorted({r["images"] for r in records})
    if len(counts) > 1:
        log.warning("models were scored on different numbers of test images: %s", counts)

    recommended = recommended_model(records, params.max_delta_colorfulness)
    lineage = lineage_mod.collect(names, all_params or {}, root / paths.MODELS, root / paths.PREPARED, root)
    registry = register_recommended(recommended, records, lineage, params)
    _link_runs(lineage)

    # Render everything before writing anything: a failure leaves the old report untouched.
    curves = {TRAINING_CSV: long_csv(histories).encode(), ERROR_CDF_CSV: long_csv(cdfs).encode()}
    for name, rows in histories.items():
        curves[training_plot_name(name)] = figures.training_figure(name, figures.columns(rows))
    if cdfs:
        curves[ERROR_CDF_SVG] = figures.error_cdf_figure(
            {name: figures.columns(rows) for name, rows in cdfs.items()}, GREY)
    hero_rows, hero_headers = _hero_rows(names, recommended, reports_dir, params.hero_images)
    hero = (figures.hero_image(hero_rows, hero_headers) if hero_rows
            else figures.placeholder_png("no gallery pictures to show (evaluate.gallery is 0?)"))
    league_rows = [[reports_dir / c for c in cells] for _, cells in gallery.rows if all(cells)][:params.hero_images]
    league_png = (figures.hero_image(league_rows, gallery.headers) if league_rows
                  else figures.placeholder_png("no gallery pictures to show (evaluate.gallery is 0?)"))
    note = recommendation_note(records, recommended, params.max_delta_colorfulness)
    report = Report(
        records=records, recommended=recommended, recommendation=note, registry=registry,
        gallery=gallery, photos=photos,
        palette=(palette.name, _display_width(palette, PALETTE_WIDTH)) if palette.is_file() else None,
        training_plots={name: f"{CURVES_DIR}/{training_plot_name(name)}" for name in histories},
        error_cdf_plot=f"{CURVES_DIR}/{ERROR_CDF_SVG}" if cdfs else None,
        hero="hero.png",
        lineage=lineage if all_params is not None else None,
    )
    metrics = metrics_summary(records, recommended)
    markdown = render_markdown(records, note)
    page = render_html(report)

    with atomic.atomic_path(reports_dir / CURVES_DIR, is_dir=True) as tmp:
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the plots from a web server serving reports/
        for file_name, data in curves.items():
            (tmp / file_name).write_bytes(data)
    atomic.write_bytes(reports_dir / "hero.png", hero)
    atomic.write_bytes(reports_dir / "gallery.png", league_png)
    atomic.write_json(reports_dir / "metrics.json", metrics)
    atomic.write_text(reports_dir / "comparison.md", markdown)
    atomic.write_text(reports_dir / "index.html", page)
    log.info("report: %d models (%s), %d gallery images, recommended %s -> %s",
             len(records), ", ".join(names), len(gallery.rows), recommended, reports_dir)
    return metrics
