"""reports/index.html: the page a person opens to compare colorizations, read in a minute.

Self-contained: pictures are relative links to files in reports/, the styles and the few lines of
sorting script are inline, nothing is fetched from the network. Sections, in the order a reader
asks: which model to use (and a glimpse of it), the league table, what produced the run, the
pictures, the curves, the palette.
"""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path
from urllib.parse import quote

from chromalab.core import paths
from chromalab.core.config import GREY
from chromalab.report.gallery import Gallery
from chromalab.report.league_table import (
    BEST_NOTE, DESCRIPTIVE_COLUMNS, NEUTRAL_SCENE_NOTE, best_per_column, cast_note,
    confidence_notes, format_count, format_interval, format_value, images_note, judges_note, neutral_scene_rows,
    or_dash, row_label, shrink_lines, table_columns, versus_keys,
)

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
    speed_quality: str | None = None  # the side picture's path, when the photos were scored
    reliability_plot: str | None = None  # curves/reliability.svg, when some model has a confidence
    neutral: dict = dataclasses.field(default_factory=dict)  # {name: neutral-scene metrics}, `released` too
    video: dict | None = None  # the video stage's reports/video/metrics.json, when it ran


TITLE = "chromalab — model comparison"

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 110rem; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #ddd; text-align: left; }
.league td.num, .versus td.num { text-align: right; font-variant-numeric: tabular-nums; }
.league th { cursor: pointer; background: #f4f4f4; user-select: none; }
.league th[data-dir="asc"]::after { content: " ▲"; }
.league th[data-dir="desc"]::after { content: " ▼"; }
.league td.best { font-weight: bold; background: #e3f4e1; }
.league tr.baseline { color: #666; }
.league tr.recommended td:first-child { font-weight: bold; }
.badge { background: #2a7a2a; color: white; border-radius: .3rem; padding: 0 .3rem; font-size: .75rem; }
.gallery th, .gallery td { text-align: center; vertical-align: middle; }
.pixelated img, img.palette { image-rendering: pixelated; }
.gallery img, img.palette, img.hero { height: auto; display: block; }
img.palette, img.hero { max-width: 100%; }
img.hero { width: 27rem; }
.facts th { background: #f8f8f8; white-space: nowrap; vertical-align: top; }
.curves { display: flex; flex-wrap: wrap; gap: 1rem; }
.curves img, img.speed { max-width: 100%; }
.missing { color: #b00; font-style: italic; }
.note { color: #555; max-width: 60rem; }
code { background: #f4f4f4; padding: 0 .2rem; }
"""

# Click a header to sort by that column (click again to reverse); empty cells stay last.
SORT_JS = """
document.querySelectorAll("table.league th").forEach((th, i) => {
  th.addEventListener("click", () => {
    const body = th.closest("table").tBodies[0];
    const asc = th.dataset.dir !== "asc";
    th.parentElement.querySelectorAll("th").forEach(h => delete h.dataset.dir);
    th.dataset.dir = asc ? "asc" : "desc";
    const key = r => r.cells[i].dataset.sort ?? r.cells[i].textContent.trim();
    [...body.rows].sort((a, b) => {
      const x = key(a), y = key(b);
      if (x === "" || y === "") return (x === "") - (y === "");
      const nx = Number(x), ny = Number(y);
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


def _league(records: list[dict], recommended: str | None) -> list[str]:
    best = best_per_column(records)
    columns = table_columns(records)
    header = [*DESCRIPTIVE_COLUMNS, *(c.title for c in columns)]
    out = ['<table class="league">', "<thead><tr>"]
    out += [f'<th title="click to sort">{_e(h)}</th>' for h in header]
    out += ["</tr></thead>", "<tbody>"]
    for r in records:
        name = r["name"]
        cls = "baseline" if name == GREY else "recommended" if name == recommended else ""
        out.append(f'<tr class="{cls}">' if cls else "<tr>")
        params = r.get("parameters")
        sort = params if isinstance(params, int) and not isinstance(params, bool) else ""
        badge = ' <span class="badge">recommended</span>' if name == recommended else ""
        out += [
            f'<td data-sort="{_e(name)}">{_e(row_label(name))}{badge}</td>',
            f"<td>{_e(or_dash(r.get('network')))}<br><small>{_e(r.get('setup') or '')}</small></td>",
            f"<td>{_e(or_dash(r.get('representation')))}</td>",
            f'<td class="num" data-sort="{_e(sort)}">{_e(format_count(params))}</td>',
        ]
        for col in columns:
            cls = "num best" if name in best.get(col.key, ()) else "num"
            value = r.get(col.key)
            interval = format_interval(r, col)
            shown = format_value(r, col) + (f"<br><small>{interval}</small>" if interval else "")
            out.append(f'<td class="{cls}" data-sort="{"" if value is None else repr(value)}">{shown}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return out


def _versus(records: list[dict], recommended: str | None) -> list[str]:
    """The paired bootstrap of the recommended model against each other model (report.py)."""
    rows = [r for r in records if r.get("versus")]
    if recommended is None or not rows:
        return []
    keys = versus_keys(rows)
    neutral = "neutral_chroma" in keys
    out = [f'<p class="note">Is {_e(recommended)}\'s lead more than chance? Paired bootstrap on the same '
           f"test images: {_e(recommended)} minus each model, 95 % interval; significant when it leaves out 0 "
           "(for |ΔCF|, negative = closer to the truth's colourfulness"
           + ("; for neutral C, negative = less colour on neutral pixels" if neutral else "") + ").</p>",
           '<table class="versus"><thead><tr><th>model</th><th>PSNR difference (dB)</th><th>significant</th>'
           "<th>|ΔCF| difference</th><th>significant</th>"
           + ("<th>neutral C difference</th><th>significant</th>" if neutral else "") + "</tr></thead><tbody>"]
    for r in rows:
        cells = [f"<td>{_e(row_label(r['name']))}</td>"]
        for key in keys:
            v = r["versus"].get(key)
            cells += [f'<td class="num">{v["difference"]:+.2f} <small>[{v["ci"][0]:+.2f}, {v["ci"][1]:+.2f}]</small></td>',
                      f"<td>{'yes' if v['significant'] else 'no'}</td>"] if v else ["<td>—</td>", "<td>—</td>"]
        out.append("<tr>" + "".join(cells) + "</tr>")
    return out + ["</tbody></table>"]


def _gallery(gallery: Gallery, empty: str) -> list[str]:
    if not gallery.rows:
        return [f'<p class="note">{_e(empty)}</p>']
    cls = "gallery pixelated" if gallery.pixelated else "gallery"
    out = [f'<table class="{cls}">', "<thead><tr><th>image</th>"]
    out += [f"<th>{_e(h)}</th>" for h in gallery.headers]
    out += ["</tr></thead>", "<tbody>"]
    for file_name, cells in gallery.rows:
        out.append(f"<tr><th>{_e(Path(file_name).stem)}</th>")
        for header, cell in zip(gallery.headers, cells):
            if cell is None:
                out.append('<td class="missing">missing</td>')
                continue
            img = f'<img src="{_src(cell)}" width="{gallery.width}" alt="{_e(header)}: {_e(file_name)}">'
            # Full-size photos open at full size; small crops are already shown whole.
            out.append(f'<td><a href="{_src(cell)}">{img}</a></td>' if not gallery.pixelated else f"<td>{img}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return out


def _lineage(report: Report) -> list[str]:
    lin = report.lineage
    if lin is None:
        return ['<p class="note">No lineage recorded (the report was built without params).</p>']
    changed = ", ".join(f"{k} = {v!r} (default {d!r})" for k, v, d in lin.changed_params) or "none"
    facts = [
        ("git commit", f"<code>{_e(lin.git_commit)}</code> {_e(lin.git_subject)}"),
        ("DVC experiment", _e(lin.dvc_exp_name) if lin.dvc_exp_name else "none (a plain <code>dvc repro</code>)"),
        ("data", f"sha256 of the prepared manifest <code>{_e(lin.data_sha256 or 'unknown')}</code>"
                 + (f", {lin.image_size} px images" if lin.image_size else "")),
        ("params that differ from the defaults", _e(changed)),
        ("league", _e(", ".join(lin.league))),
        ("MLflow registry", _e(report.registry)),
    ]
    out = ['<table class="facts">']
    out += [f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in facts]
    out.append("</table>")

    uri = lin.tracking_uri
    if uri and uri.startswith("sqlite:///"):  # the store's file relative to the repository, where the UI runs
        uri = "sqlite:///" + paths.shown(uri[len("sqlite:///"):])
    if uri:
        out.append(f'<p class="note">MLflow runs: start the UI with <code>mlflow ui --backend-store-uri '
                   f"{_e(uri)}</code> (from the repository, with its .venv), then follow a run's link.</p>")
    out += ['<table class="facts runs">', "<thead><tr><th>model</th><th>MLflow run</th><th>logged model</th></tr></thead>"]
    for run in lin.runs:
        if run.name == GREY:
            continue
        if run.run_id and run.run_id in lin.experiment_ids:
            page = f"http://127.0.0.1:5000/#/experiments/{lin.experiment_ids[run.run_id]}/runs/{run.run_id}"
            cell = f'<a href="{_e(page)}"><code>{_e(run.run_id)}</code></a>'
        elif run.run_id:
            cell = f"<code>{_e(run.run_id)}</code>"
        else:
            cell = f'<span class="missing">{_e(run.note or "no run")}</span>'
        model = f"<code>{_e(run.model_uri)}</code>" if run.model_uri else "—"
        out.append(f"<tr><td>{_e(run.name)}</td><td>{cell}</td><td>{model}</td></tr>")
    out.append("</table>")
    return out


def _curves(report: Report) -> list[str]:
    out = ["<h3>Error CDF (AuC)</h3>"]
    if report.error_cdf_plot:
        out += [
            '<p class="note">The share of pixels whose ab error is within each threshold (Zhang et al.); '
            "the area under it is the AuC column. Higher is better; the grey baseline is dashed.</p>",
            f'<img src="{_src(report.error_cdf_plot)}" alt="error CDF of every model">',
        ]
    else:
        out.append('<p class="missing">No auc_curve.csv found.</p>')
    out += ["<h3>Training</h3>",
            '<p class="note">Loss per epoch on the train and val splits, and val PSNR; the checkpoint '
            "with the lowest val loss is the one evaluated.</p>", '<div class="curves">']
    out += [f'<img src="{_src(path)}" alt="training curves of {_e(name)}">'
            for name, path in report.training_plots.items()]
    out.append("</div>")
    if not report.training_plots:
        out.append('<p class="missing">No history.csv found.</p>')
    return out


def _confidence(report: Report) -> list[str]:
    """When unsure, stay neutral: each confident model's AUROC, its shrink against uniform
    desaturation, the reliability plot, and the neutral-scene check of every model checked."""
    confident = [r for r in report.records if r.get("confidence_measure")]
    out = []
    if confident:
        out += ['<p class="note">Each model\'s per-pixel confidence (its own measure) as a detector of the test '
                "pixels it got wrong (ab error above 10): AUROC pooled over the pixels, 95 % interval over the test "
                "images (0.5 = chance).</p>", '<table class="versus"><thead><tr><th>model</th>'
                "<th>measure</th><th>AUROC</th></tr></thead><tbody>"]
        for r in confident:
            ci = r.get("confidence_auroc_ci")
            value = "—" if r.get("confidence_auroc") is None else f"{r['confidence_auroc']:.3f}"
            interval = f" <small>[{ci['low']:.3f}, {ci['high']:.3f}]</small>" if ci else ""
            out.append(f"<tr><td>{_e(row_label(r['name']))}</td><td>{_e(r['confidence_measure'])}</td>"
                       f'<td class="num">{value}{interval}</td></tr>')
        out.append("</tbody></table>")
        out += [f'<p class="note">{_e(line)}</p>' for line in shrink_lines(report.records)]
    if report.reliability_plot:
        out += [f'<img src="{_src(report.reliability_plot)}" alt="reliability of each model\'s confidence">',
                '<p class="note">Left: in each confidence bin, the share of the test pixels the model got right '
                "(ab error at most 10) against their mean confidence; the dotted diagonal is where the confidence "
                "would be that probability (what the radius measure at r = 10 means to be; entropy and spread "
                "only rank). Right: how the pixels spread over the bins.</p>"]
    if report.neutral:
        headers, rows = neutral_scene_rows(report.neutral)
        out += [f'<p class="note">{_e(NEUTRAL_SCENE_NOTE)} <code>released</code> is the model '
                "<code>chromalab colorize</code> uses by default.</p>",
                '<table class="versus"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in headers)
                + "</tr></thead><tbody>"]
        out += ["<tr>" + f"<td>{_e(row[0])}</td>" + "".join(f'<td class="num">{_e(c)}</td>' for c in row[1:]) + "</tr>"
                for row in rows]
        out.append("</tbody></table>")
    return out


def _films(video: dict) -> list[str]:
    """The video stage's figures: the released model on the made clip, per frame and stabilised."""
    rows = [("warped temporal error (ab)", "warp_error", 3), ("flicker (mean ab change)", "flicker", 3),
            ("PSNR (dB)", "psnr", 2), ("ΔCF", "delta_colorfulness", 1)]
    out = ['<p class="note">The released model on the made clip (a pan over a real photo, a cut at frame '
           f'{video["cut_at"]}, a pan over another; {video["frames"]} frames), each frame on its own and with the '
           f'stabiliser (<code>chromalab colorize film.mp4</code>\'s default). The stabiliser cuts the temporal '
           f'error by {100 * video["warp_error_cut"]:.0f} % at a PSNR cost of {video["psnr_cost"]:+.2f} dB; cuts '
           f'found at {", ".join(map(str, video["cuts_found"])) or "none"}; colour carried across the cut: '
           f'{video["carried_across_cut"]:g}. The original\'s own temporal error: '
           f'{video["original_warp_error"]:.3f}.</p>',
           '<table class="versus"><thead><tr><th></th><th>per frame</th><th>stabilised</th></tr></thead><tbody>']
    out += [f'<tr><td>{_e(label)}</td><td class="num">{video["per_frame"][key]:.{d}f}</td>'
            f'<td class="num">{video["stabilised"][key]:.{d}f}</td></tr>' for label, key, d in rows]
    out += ["</tbody></table>", f'<img class="speed" src="{_src("video/strip.jpg")}" alt="grey, per frame, '
            'stabilised and original frames of the made clip">',
            '<p class="note">Rows: grey input, per frame, stabilised, original; columns: the first frame, '
            "mid-shot, the last before the cut, the first after it, the last.</p>"]
    return out


def render_html(report: Report) -> str:
    records = report.records
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(TITLE)}</title>",
        f"<style>{CSS}</style>",
        "</head><body>",
        f"<h1>{_e(TITLE)}</h1>",
        '<nav><a href="#league">league</a><a href="#lineage">lineage</a><a href="#gallery">gallery</a>'
        + ('<a href="#confidence">confidence</a>' if _confidence(report) else "")
        + ('<a href="#films">films</a>' if report.video else "")
        + '<a href="#curves">curves</a><a href="#palette">palette</a></nav>',
        f'<p><strong>{_e(report.recommendation)}</strong> Colorize with it: '
        "<code>chromalab colorize --model recommended PHOTOS…</code>.</p>",
        f'<img class="hero" src="{_src(report.hero)}" alt="grey input, the recommended model and the truth">',
        '<h2 id="league">League</h2>',
        *_league(records, report.recommended),
        f'<p class="note">{_e(BEST_NOTE)} {_e(images_note(records))} Click a column header to sort.</p>',
        *([f'<p class="note">{_e(judges_note(records))}</p>'] if judges_note(records) else []),
        *([f'<p class="note">{_e(cast_note(records))}</p>'] if cast_note(records) else []),
        *[f'<p class="note">{_e(note)}</p>' for note in confidence_notes(records)],
        *_versus(records, report.recommended),
        '<h2 id="lineage">Lineage: what produced these numbers</h2>',
        *_lineage(report),
        '<h2 id="gallery">Gallery</h2>',
        '<p class="note">Each row is one test image: the grey input, each model\'s colouring '
        "(league order), and the ground truth; beside a model with a per-pixel confidence, its "
        "confidence map (bright = sure).</p>",
        *_gallery(report.gallery, "No gallery pictures (evaluate.gallery is 0?)."),
    ]
    confidence = _confidence(report)
    if confidence:
        out += ['<h2 id="confidence">When unsure, stay neutral</h2>', *confidence]
    if report.photos.rows:
        out += [
            "<h2>Photos at full resolution</h2>",
            '<p class="note">Whole photos colorized at their own size; click one to open it.</p>',
            *_gallery(report.photos, ""),
        ]
    if report.speed_quality:
        out += [
            "<h2>Quality against speed</h2>",
            f'<img class="speed" src="{_src(report.speed_quality)}" alt="PSNR and ΔCF on the full-resolution '
            'photos against seconds per megapixel" onerror="this.hidden = true">',
            '<p class="note">Drawn by each report run from the seconds per megapixel this workspace\'s '
            "evaluate stages took on the full-resolution photos (their timings.json). Speeds differ on "
            "every run, so the picture is kept out of git and DVC: it is missing where the evaluate "
            "stages did not run (a fresh clone of the reports). Controlled speed figures: "
            "<code>make bench</code>.</p>",
        ]
    if report.video:
        out += ['<h2 id="films">Films</h2>', *_films(report.video)]
    out += ['<h2 id="curves">Curves</h2>', *_curves(report), '<h2 id="palette">Palette</h2>']
    if report.palette:
        path, width = report.palette
        out.append(f'<img class="palette" src="{_src(path)}" width="{width}" '
                   'alt="k-means palette of the training images">')
    else:
        out.append('<p class="missing">No palette.png found.</p>')
    out += [f"<script>{SORT_JS}</script>", "</body></html>", ""]
    return "\n".join(out)
