"""The report stage: gather every model's evaluation into what a user opens, reads and trusts.

Reads reports/eval/NAME/ (metrics.json, auc_curve.csv, gallery/*.png; grey/truth/*.png; and, when
the evaluate stage colorized full-size photos, photos/*.png with grey/photos_truth/*.png; for a
model with a confidence, reliability.csv and gallery/*.confidence.png) for each model in league
order followed by the grey baseline, reports/neutral/NAME/metrics.json (the neutral-scene check,
the released model's too), reports/train/NAME/history.csv, each model's run.json and the prepared
data's summary, and writes under reports/:

- metrics.json: {name: {metric: number, metric_ci: {low, high}}} plus "recommended": the `dvc
  metrics` file;
- comparison.md: the league table, best value per column in bold, 95 % intervals, and whether the
  recommended model's lead over each other model is significant (paired bootstrap, compare.py);
- index.html: a self-contained page (report_page.py): the table, lineage, galleries, curves;
- curves/: the training, error-CDF and reliability plots (SVG) and their data in long form (CSV,
  one row per model and step) for `dvc plots show/diff`, which dvc.yaml declares;
- hero.png: a few test pictures as grey input | recommended model | ground truth (README's picture);
- gallery.png: the same test pictures as grey input | every model | ground truth, in one picture;
- speed_quality.svg, beside them but not a DVC output nor tracked by git: the full-resolution
  photos' scores against the seconds per megapixel in the evaluate stages' timings.json
  (speed_quality.py), which differ on every rerun.

The recommended model (`recommended_model`, the one rule) is registered in MLflow with the alias
`champion`. Every input is read and checked before anything is written, so a missing or broken
input leaves no half-updated report behind; each output is then written atomically.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from chromalab.core import atomic, paths
from chromalab.core.config import GREY, RELEASED
from chromalab.core.errors import UserError
from chromalab.report import speed_quality
from chromalab.report.champion import link_runs, register_recommended
from chromalab.report.gallery import PHOTOS, TEST_IMAGES, collect_gallery, display_width
from chromalab.report.league_table import render_markdown
from chromalab.report.recommend import RECOMMENDED, recommendation_note, recommended_model
from chromalab.report.records import EVAL_SUBDIR, attach_neutral, load_records, metrics_summary, read_neutral, read_per_image
from chromalab.report.report_page import Report, render_html

log = logging.getLogger(__name__)

PALETTE_WIDTH = 512


CURVES_DIR = "curves"  # reports/curves/: SVG plots for the page, long-form CSVs for `dvc plots`
TRAINING_CSV = "training.csv"
ERROR_CDF_CSV = "error_cdf.csv"
ERROR_CDF_SVG = "error_cdf.svg"
RELIABILITY_CSV = "reliability.csv"
RELIABILITY_SVG = "reliability.svg"


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


def training_plot_name(name: str) -> str:
    return f"training_{name}.svg"


def _hero_rows(names: list[str], recommended: str | None, reports_dir: Path, count: int) -> tuple[list, list]:
    """Up to `count` (grey, recommended, truth) picture paths: full-size photos when there are any."""
    if recommended is None:
        return [], []
    for kind in (PHOTOS, TEST_IMAGES):
        gallery = collect_gallery([recommended, GREY], reports_dir, kind, warn=False, confidence=False)
        if not gallery.rows or len(gallery.headers) != 3:
            continue
        rows = [[reports_dir / c for c in cells] for _, cells in gallery.rows if all(cells)][:count]
        if rows:
            return rows, ["grey input", f"{recommended} (recommended)", "ground truth"]
    return [], []


def _video(reports_dir: Path) -> dict | None:
    """The video stage's figures (video/metrics.json), when that stage ran."""
    import json

    path = reports_dir / "video" / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def build_report(names: list[str], reports_dir=paths.REPORTS, params=None, all_params: dict | None = None) -> dict:
    """Read every model's evaluation, decide the recommended model, register it, and write the report.

    The pipeline's root is reports_dir's parent (data/models and data/prepared are read there);
    `params` is the report section (ReportParams), `all_params` the whole params.yaml, whose
    choices the page's lineage lists. Returns the dict written to reports/metrics.json.
    """
    from chromalab.core.config import ReportParams
    from chromalab.report import lineage as lineage_mod

    params = params or ReportParams()
    names, reports_dir = list(names), Path(reports_dir)
    root = reports_dir.parent
    if RECOMMENDED in names:
        raise UserError(f"league: {RECOMMENDED!r} is reserved in reports/metrics.json; rename that model")
    records = load_records(names, reports_dir)
    neutral = read_neutral([*names, RELEASED], reports_dir)
    attach_neutral(records, neutral)
    reliability = collect_series([r["name"] for r in records if r.get("confidence_measure")],
                                 reports_dir / EVAL_SUBDIR, RELIABILITY_CSV, "reliability plot")
    histories = collect_series([n for n in names if n != GREY], reports_dir / "train", "history.csv",
                               "training curves")
    cdfs = collect_series(names, reports_dir / EVAL_SUBDIR, "auc_curve.csv", "error CDF")
    counts = sorted({r["images"] for r in records})
    if len(counts) > 1:
        log.warning("models were scored on different numbers of test images: %s", counts)

    recommended = recommended_model(records, params.max_delta_colorfulness)
    _paired_with(recommended, records, reports_dir)
    lineage = lineage_mod.collect(names, all_params or {}, root / paths.MODELS, root / paths.PREPARED, root)
    registry = register_recommended(recommended, records, lineage, params)
    link_runs(lineage)
    report = Report(
        records=records, recommended=recommended, registry=registry,
        recommendation=recommendation_note(records, recommended, params.max_delta_colorfulness),
        gallery=collect_gallery(names, reports_dir), photos=collect_gallery(names, reports_dir, PHOTOS),
        palette=_palette(reports_dir),
        training_plots={name: f"{CURVES_DIR}/{training_plot_name(name)}" for name in histories},
        error_cdf_plot=f"{CURVES_DIR}/{ERROR_CDF_SVG}" if cdfs else None,
        hero="hero.png", lineage=lineage if all_params is not None else None,
        speed_quality=speed_quality.FILE if speed_quality.scored_photos(records) else None,
        reliability_plot=f"{CURVES_DIR}/{RELIABILITY_SVG}" if reliability else None, neutral=neutral,
        video=_video(reports_dir),
    )
    _write(report, names, reports_dir, histories, cdfs, params.hero_images, reliability)
    log.info("report: %d models (%s), %d gallery images, recommended %s -> %s",
             len(records), ", ".join(names), len(report.gallery.rows), recommended, reports_dir)
    return metrics_summary(records, recommended)


def _paired_with(recommended: str | None, records: list[dict], reports_dir: Path) -> None:
    """record["versus"]: the recommended model minus this one, by a paired bootstrap on the same
    test images (compare.versus); left out where either has no per_image.csv."""
    from chromalab.report.compare import versus

    if recommended is None:
        return
    folder = reports_dir / EVAL_SUBDIR
    per_image = {r["name"]: read_per_image(folder / r["name"] / "per_image.csv") for r in records
                 if (folder / r["name"] / "per_image.csv").is_file()}
    if recommended not in per_image:
        return
    for record in records:
        if record["name"] != recommended and record["name"] in per_image:
            try:
                record["versus"] = versus(per_image[recommended], per_image[record["name"]])
            except UserError as err:
                log.warning("report: no paired test of %s against %s: %s", recommended, record["name"], err)


def _palette(reports_dir: Path) -> tuple[str, int] | None:
    palette = reports_dir / "palette.png"
    return (palette.name, display_width(palette, PALETTE_WIDTH)) if palette.is_file() else None


def _write(report: Report, names: list[str], reports_dir: Path, histories: dict, cdfs: dict, hero_images: int,
           reliability: dict) -> None:
    """Render every output, then write them: a failure while rendering leaves the old report
    untouched, and each file is replaced atomically."""
    from chromalab.report import figures

    curves = {TRAINING_CSV: long_csv(histories).encode(), ERROR_CDF_CSV: long_csv(cdfs).encode()}
    for name, rows in histories.items():
        curves[training_plot_name(name)] = figures.training_figure(name, figures.columns(rows))
    if cdfs:
        curves[ERROR_CDF_SVG] = figures.error_cdf_figure(
            {name: figures.columns(rows) for name, rows in cdfs.items()}, GREY)
    if reliability:
        measures = {r["name"]: r["confidence_measure"] for r in report.records if r.get("confidence_measure")}
        curves[RELIABILITY_CSV] = long_csv(reliability).encode()
        curves[RELIABILITY_SVG] = figures.reliability_figure(
            {name: figures.columns(rows) for name, rows in reliability.items()}, measures)
    nothing = "no gallery pictures to show (evaluate.gallery is 0?)"
    hero_rows, hero_headers = _hero_rows(names, report.recommended, reports_dir, hero_images)
    hero = figures.hero_image(hero_rows, hero_headers) if hero_rows else figures.placeholder_png(nothing)
    league_rows = [[reports_dir / c for c in cells] for _, cells in report.gallery.rows if all(cells)][:hero_images]
    league_png = figures.hero_image(league_rows, report.gallery.headers) if league_rows else figures.placeholder_png(nothing)
    metrics = metrics_summary(report.records, report.recommended)
    markdown = render_markdown(report.records, report.recommendation, report.recommended, report.neutral)
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
    speed_quality.write(report.records, reports_dir, reports_dir / EVAL_SUBDIR)
