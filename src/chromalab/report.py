"""The report stage: gather every model's evaluation into the comparison a user reads.

Reads reports/eval/NAME/metrics.json (+ gallery/*.png, and grey/truth/*.png) for each model in
league order followed by the grey baseline, and writes three files under reports/:

- metrics.json: {name: {metric: number}}, the `dvc metrics` file (numbers only, 4 decimals);
- comparison.md: the league table, best value per column in bold;
- index.html: a self-contained page with the same table, the palette swatch and the gallery.

Every input is read and checked before anything is written, so a missing or broken input leaves
no half-updated report behind; each output is then written atomically.
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import math
from pathlib import Path
from urllib.parse import quote

from PIL import Image

from chromalab import paths
from chromalab.atomic import write_json, write_text
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
    best: str | None  # "max", "closest_to_zero" or None (not ranked)


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
    Column("images_per_second", "img/s", 1, "max"),
)
# The grey baseline runs no network, so its throughput would always "win" and say nothing.
NOT_RANKED_FOR_BASELINE = {"images_per_second"}
DESCRIPTIVE_COLUMNS = ("model", "network", "representation", "params")
BEST_NOTE = (
    "Bold = best in its column: highest PSNR, SSIM, AuC, AuC (rebal.) and img/s "
    "(the grey baseline is not ranked for img/s: it runs no network); "
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


def metrics_summary(records: list[dict]) -> dict:
    """{name: {metric: value rounded to 4 decimals}}: what `dvc metrics show/diff` display."""
    return {r["name"]: {key: round(r[key], 4) for key in METRICS} for r in records}


# --- the league table ------------------------------------------------------------------------


def best_per_column(records: list[dict]) -> dict[str, set[str]]:
    """{metric: names holding the best shown value} for each ranked column; ties share it."""
    best = {}
    for col in COLUMNS:
        if col.best is None:
            continue
        ranked = [
            r for r in records
            if not (r["name"] == GREY and col.key in NOT_RANKED_FOR_BASELINE)
        ]
        if not ranked:
            best[col.key] = set()
            continue
        score = {r["name"]: round(r[col.key], col.digits) for r in ranked}
        if col.best == "closest_to_zero":
            score = {name: -abs(v) for name, v in score.items()}
        top = max(score.values())
        best[col.key] = {name for name, v in score.items() if v == top}
    return best


def _label(name: str) -> str:
    return f"{name} (baseline)" if name == GREY else name


def _text(value) -> str:
    return "—" if value is None else str(value)


def _network(record: dict) -> str:
    """The network and, where evaluate recorded them, its knobs (e.g. koalarization's embedder)."""
    setup = record.get("setup")
    return f"{_text(record.get('network'))} ({setup})" if setup else _text(record.get("network"))


def _params(value) -> str:
    """Parameter counts as 1.23M / 45.6k, so the column stays narrow."""
    if isinstance(value, bool) or not isinstance(value, int):
        return _text(value)
    if value >= 1_000_000:
        return f"{value / 1e6:.2f}M"
    if value >= 1_000:
        return f"{value / 1e3:.1f}k"
    return str(value)


def _value(record: dict, col: Column) -> str:
    return f"{record[col.key]:.{col.digits}f}"


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


def render_markdown(records: list[dict]) -> str:
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
            _md(_label(r["name"])),
            _md(_network(r)),
            _md(_text(r.get("representation"))),
            _md(_params(r.get("parameters"))),
        ]
        for col in COLUMNS:
            shown = _value(r, col)
            cells.append(f"**{shown}**" if r["name"] in best.get(col.key, ()) else shown)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"{BEST_NOTE} {images_note(records)}", ""]
    return "\n".join(lines)


# --- the gallery -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Gallery:
    """Which picture goes in which cell: paths relative to reports/, None where one is missing."""

    headers: list[str]
    rows: list[tuple[str, list[str | None]]]  # (image file name, one path per header)
    width: int  # display width in px


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


def collect_gallery(names: list[str], reports_dir: Path) -> Gallery:
    eval_rel = Path(EVAL_SUBDIR)
    folders = [("input (grey)", eval_rel / GREY / "gallery")]
    folders += [(name, eval_rel / name / "gallery") for name in names if name != GREY]
    folders.append(("ground truth", eval_rel / GREY / "truth"))

    present = {
        folder: {p.name for p in (reports_dir / folder).glob("*.png") if p.is_file()}
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
            if cell is None:
                log.warning("gallery: %s has no %s", reports_dir / folder, file_name)
    first = next((c for _, cells in rows for c in cells if c), None)
    width = _display_width(reports_dir / first, GALLERY_WIDTH) if first else GALLERY_WIDTH
    return Gallery([header for header, _ in folders], rows, width)


# --- the HTML page ---------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #ddd; }
.league td.num { text-align: right; font-variant-numeric: tabular-nums; }
.league th { cursor: pointer; background: #f4f4f4; }
.league td.best { font-weight: bold; background: #e3f4e1; }
.league tr.baseline { color: #666; }
.gallery th, .gallery td { text-align: center; vertical-align: middle; }
.gallery img, img.palette { image-rendering: pixelated; height: auto; display: block; }
img.palette { max-width: 100%; }
.missing { color: #b00; font-style: italic; }
.note { color: #555; max-width: 60rem; }
"""

# Click a header to sort by that column (click again to reverse); no external script.
SORT_JS = """
document.querySelectorAll("table.league th").forEach((th, i) => {
  th.addEventListener("click", () => {
    const body = th.closest("table").tBodies[0];
    const asc = th.dataset.dir !== "asc";
    th.parentElement.querySelectorAll("th").forEach(h => delete h.dataset.dir);
    th.dataset.dir = asc ? "asc" : "desc";
    const key = r => r.cells[i].dataset.sort ?? r.cells[i].textContent;
    [...body.rows].sort((a, b) => {
      const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      const c = isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny;
      return asc ? c : -c;
    }).forEach(r => body.appendChild(r));
  });
});
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _src(relative: str) -> str:
    """A relative path as an <img src> value: URL-quoted (spaces, #, %), then HTML-escaped."""
    return _e(quote(relative))


def _league_html(records: list[dict]) -> list[str]:
    best = best_per_column(records)
    header = [*DESCRIPTIVE_COLUMNS, *(c.title for c in COLUMNS)]
    out = ['<table class="league">', "<thead><tr>"]
    out += [f"<th>{_e(h)}</th>" for h in header]
    out += ["</tr></thead>", "<tbody>"]
    for r in records:
        out.append('<tr class="baseline">' if r["name"] == GREY else "<tr>")
        params = r.get("parameters")
        sort = params if isinstance(params, int) and not isinstance(params, bool) else ""
        out += [
            f"<td>{_e(_label(r['name']))}</td>",
            f"<td>{_e(_text(r.get('network')))}<br><small>{_e(r.get('setup') or '')}</small></td>",
            f"<td>{_e(_text(r.get('representation')))}</td>",
            f'<td class="num" data-sort="{_e(sort)}">{_e(_params(params))}</td>',
        ]
        for col in COLUMNS:
            cls = "num best" if r["name"] in best.get(col.key, ()) else "num"
            out.append(f'<td class="{cls}" data-sort="{r[col.key]!r}">{_value(r, col)}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return out


def _gallery_html(gallery: Gallery) -> list[str]:
    if not gallery.rows:
        return ['<p class="note">No gallery pictures (evaluate.gallery is 0?).</p>']
    out = ['<table class="gallery">', "<thead><tr><th>image</th>"]
    out += [f"<th>{_e(h)}</th>" for h in gallery.headers]
    out += ["</tr></thead>", "<tbody>"]
    for file_name, cells in gallery.rows:
        out.append(f"<tr><th>{_e(Path(file_name).stem)}</th>")
        for header, cell in zip(gallery.headers, cells):
            if cell is None:
                out.append('<td class="missing">missing</td>')
            else:
                out.append(
                    f'<td><img src="{_src(cell)}" width="{gallery.width}" '
                    f'alt="{_e(header)}: {_e(file_name)}" loading="lazy"></td>'
                )
        out.append("</tr>")
    out.append("</tbody></table>")
    return out


def render_html(records: list[dict], gallery: Gallery, palette: str | None = None,
                palette_width: int = PALETTE_WIDTH) -> str:
    """The whole page; `palette` is the swatch's path relative to reports/, if there is one."""
    title = "chromalab — model comparison"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{CSS}</style>",
        "</head><body>",
        f"<h1>{_e(title)}</h1>",
        "<h2>League</h2>",
        *_league_html(records),
        f'<p class="note">{_e(BEST_NOTE)} {_e(images_note(records))} '
        "Click a column header to sort.</p>",
    ]
    if palette:
        out += [
            "<h2>Palette</h2>",
            f'<img class="palette" src="{_src(palette)}" width="{palette_width}" '
            'alt="k-means palette of the training images">',
        ]
    out += [
        "<h2>Gallery</h2>",
        '<p class="note">Each row is one test image: the grey input, each model\'s colouring '
        "(league order), and the ground truth.</p>",
        *_gallery_html(gallery),
        f"<script>{SORT_JS}</script>",
        "</body></html>",
        "",
    ]
    return "\n".join(out)


# --- the stage -------------------------------------------------------------------------------


def build_report(names: list[str], reports_dir=paths.REPORTS) -> dict:
    """Read every model's evaluation, write metrics.json, comparison.md and index.html.

    Returns the metrics dict written to reports/metrics.json.
    """
    reports_dir = Path(reports_dir)
    records = load_records(list(names), reports_dir)
    gallery = collect_gallery(list(names), reports_dir)
    palette = reports_dir / "palette.png"
    has_palette = palette.is_file()

    counts = sorted({r["images"] for r in records})
    if len(counts) > 1:
        log.warning("models were scored on different numbers of test images: %s", counts)

    # Render everything before writing anything: a failure leaves the old report untouched.
    metrics = metrics_summary(records)
    markdown = render_markdown(records)
    page = render_html(
        records,
        gallery,
        palette.name if has_palette else None,
        _display_width(palette, PALETTE_WIDTH) if has_palette else PALETTE_WIDTH,
    )

    write_json(reports_dir / "metrics.json", metrics)
    write_text(reports_dir / "comparison.md", markdown)
    write_text(reports_dir / "index.html", page)
    log.info(
        "report: %d models (%s), %d gallery images -> %s",
        len(records), ", ".join(names), len(gallery.rows), reports_dir,
    )
    return metrics
