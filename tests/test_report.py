"""The report stage: metrics.json, comparison.md, index.html, curves and hero.png from evaluation
folders written by helpers.write_eval (real PNGs and CSVs in the evaluate and train stages' layout)."""

import csv
import importlib.util
import json
import logging
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from PIL import Image

from chromalab.core.config import ReportParams
from chromalab.core.errors import UserError
from chromalab.report.recommend import recommended_model
from chromalab.report.records import METRICS
from chromalab.report.report import build_report
from helpers import GALLERY, REPO, img_srcs, write_eval

OUTPUTS = ("metrics.json", "comparison.md", "index.html", "hero.png", "gallery.png", "curves")


@pytest.fixture
def reports(tmp_path):
    reports = tmp_path / "reports"
    write_eval(reports, {"unet": "unet", "tiny": "tiny", "grey": "grey"})
    return reports


def table_rows(markdown: str) -> dict[str, dict[str, str]]:
    """{model cell: {column title: cell}} from the Markdown table (names here contain no pipes)."""
    lines = markdown[markdown.index("\n|"):].splitlines()[1:]
    lines = lines[: next((i for i, line in enumerate(lines) if not line.startswith("|")), len(lines))]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return {row[0]: dict(zip(header, row)) for row in rows}


def test_metrics_json_maps_every_model_and_grey_to_numbers(reports):
    returned = build_report(["unet", "tiny", "grey"], reports)

    written = json.loads((reports / "metrics.json").read_text())
    assert written == returned
    assert list(written) == ["unet", "tiny", "grey", "recommended"]
    assert written.pop("recommended") == "unet"
    for name, values in written.items():
        assert set(METRICS) <= set(values) and "images_per_second" not in values
        assert all(type(v) in (int, float) for k, v in values.items() if not k.endswith("_ci")), name
    assert written["unet"]["ssim"] == 0.9123  # rounded to 4 decimals
    assert written["unet"]["psnr_ci"] == {"low": 23.9, "high": 25.1}  # `dvc metrics diff` shows psnr_ci.low
    assert written["tiny"]["fd"] == 9.25 and written["grey"]["semantic_agreement"] == 0.5
    assert "fd_mobilenetv2" not in written["tiny"] and written["grey"]["fd_lite0"] == 28.0


def test_comparison_marks_best_per_column(reports):
    build_report(["unet", "tiny", "grey"], reports)
    markdown = (reports / "comparison.md").read_text()
    rows = table_rows(markdown)

    assert list(rows) == ["unet", "tiny", "grey (baseline)"]
    bold = lambda cell: cell.split(" [")[0].startswith("**") and cell.split(" [")[0].endswith("**")  # noqa: E731
    assert bold(rows["unet"]["PSNR (dB)"]) and not bold(rows["tiny"]["PSNR (dB)"])
    assert bold(rows["unet"]["SSIM"]) and bold(rows["unet"]["AuC"])
    assert bold(rows["tiny"]["AuC (rebal.)"])
    # ΔCF: closest to zero wins, so grey's -33 (the lowest number) is not the best.
    assert bold(rows["tiny"]["ΔCF"])
    assert not bold(rows["unet"]["ΔCF"]) and not bold(rows["grey (baseline)"]["ΔCF"])
    # Intervals beside the values; agreement and FD, each model named with its judge.
    assert rows["unet"]["PSNR (dB)"] == "**24.50** [23.90, 25.10]"
    assert bold(rows["unet"]["agree. M"]) and bold(rows["tiny"]["agree. L"]) and bold(rows["tiny"]["FD L"])
    assert rows["tiny"]["agree. M"] == rows["tiny"]["FD M"] == "—"  # MobileNetV2 is tiny's own encoder
    assert "img/s" not in rows["unet"] and "train (s)" not in rows["unet"]  # speeds: make bench
    assert "own encoder (—: tiny)" in markdown
    # The paired test of the recommended model against each other, on the same 120 images: unet
    # leads tiny by 0.6 dB on every image (significant) though their intervals overlap.
    versus = table_rows(markdown.split("## Is unet's lead significant?")[1])
    assert versus["tiny"]["PSNR difference (dB)"] == "+0.60 [+0.60, +0.60]" and versus["tiny"]["significant"] == "yes"
    assert set(versus) == {"tiny", "grey (baseline)"}
    for name in rows:  # colourfulness itself is not ranked
        assert not bold(rows[name]["CF"]) and not bold(rows[name]["CF gt"])
    assert rows["unet"]["params"] == "1.23M" and rows["grey (baseline)"]["network"] == "—"
    assert "120 test images" in markdown and "closest to 0" in markdown
    assert "Recommended: unet (24.50 dB, ΔCF -4.90)" in markdown


def test_ties_are_all_marked(tmp_path):
    reports = tmp_path / "reports"
    write_eval(reports, {"a": "unet", "b": "unet", "grey": "grey"})
    build_report(["a", "b", "grey"], reports)
    rows = table_rows((reports / "comparison.md").read_text())
    assert rows["a"]["PSNR (dB)"] == rows["b"]["PSNR (dB)"] == "**24.50** [23.90, 25.10]"


def test_html_links_every_image_relatively_and_they_exist(tmp_path):
    reports = tmp_path / "reports"
    names = ["u net#2", "tiny", "grey"]  # a space and a '#' must survive as a relative URL
    write_eval(reports, {"u net#2": "unet", "tiny": "tiny", "grey": "grey"})
    build_report(names, reports)
    page = (reports / "index.html").read_text()

    srcs = img_srcs(page)
    # input + 2 models + truth per test image; the palette, the hero, the error CDF and one
    # training plot per model.
    assert len(srcs) == GALLERY * 4 + 1 + 1 + 1 + 2
    for src in srcs:
        url = urlparse(src)
        assert not url.scheme and not url.netloc and not src.startswith("/"), src
        assert (reports / unquote(url.path)).is_file(), src
    assert "eval/grey/gallery/00.png" in srcs and "eval/grey/truth/02.png" in srcs
    assert {"palette.png", "hero.png", "curves/error_cdf.svg", "curves/training_u%20net%232.svg"} <= set(srcs)
    assert "image-rendering: pixelated" in page
    # Self-contained: nothing is fetched (no external script, stylesheet or picture).
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<script src" not in page


def test_html_marks_best_and_shows_missing_gallery_cells(reports):
    (reports / "eval" / "tiny" / "gallery" / "01.png").unlink()
    (reports / "palette.png").unlink()
    build_report(["unet", "tiny", "grey"], reports)
    page = (reports / "index.html").read_text()

    assert page.count('class="missing"') == 2  # the gallery cell, and the palette section says so
    assert "palette.png" not in img_srcs(page)
    assert 'class="num best" data-sort="24.5012">24.50<' in page


def test_html_escapes_names(tmp_path):
    reports = tmp_path / "reports"
    name = 'a<b>&"c"'
    write_eval(reports, {name: "unet", "grey": "grey"})
    metrics = reports / "eval" / name / "metrics.json"
    data = json.loads(metrics.read_text())
    data["network"] = "<script>alert(1)</script>"
    metrics.write_text(json.dumps(data))

    build_report([name, "grey"], reports)
    page = (reports / "index.html").read_text()

    assert name not in page and "<b>" not in page
    assert "a&lt;b&gt;&amp;&quot;c&quot;" in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for src in img_srcs(page):  # still resolvable after escaping and URL-quoting
        assert (reports / unquote(src)).is_file(), src
    markdown = (reports / "comparison.md").read_text()
    assert "<script>" not in markdown and "\\<b\\>" in markdown


def test_missing_metrics_is_a_user_error_naming_the_file(reports):
    missing = reports / "eval" / "tiny" / "metrics.json"
    missing.unlink()
    with pytest.raises(UserError, match="eval/tiny/metrics.json"):
        build_report(["unet", "tiny", "grey"], reports)


def test_broken_metrics_is_a_user_error_naming_file_and_key(reports):
    path = reports / "eval" / "unet" / "metrics.json"
    data = json.loads(path.read_text())
    del data["auc"]
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"eval/unet/metrics.json: missing key 'auc'"):
        build_report(["unet", "tiny", "grey"], reports)

    data["auc"] = "high"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match="auc must be a number"):
        build_report(["unet", "tiny", "grey"], reports)


def test_outputs_are_not_written_when_an_input_is_missing(reports):
    # The last model is read last: everything before it succeeded, and still nothing is written.
    (reports / "eval" / "grey" / "metrics.json").unlink()
    with pytest.raises(UserError):
        build_report(["unet", "tiny", "grey"], reports)
    for output in OUTPUTS:
        assert not (reports / output).exists(), output
    assert not list(reports.glob(".*.tmp")), "a temporary file was left behind"


def _load_stage():
    spec = importlib.util.spec_from_file_location("report_stage", REPO / "pipeline" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pipeline_stage_reports_the_league_and_grey(tmp_path, monkeypatch):
    write_eval(tmp_path / "reports", {"unet": "unet", "tiny": "tiny", "grey": "grey"})
    (tmp_path / "params.yaml").write_text(
        "league: [tiny, unet]\nmodels:\n  unet: {network: unet}\n  tiny: {network: unet}\n"
    )
    monkeypatch.chdir(tmp_path)
    stage = _load_stage()

    stage.main()
    assert list(json.loads(Path("reports/metrics.json").read_text())) == ["tiny", "unet", "grey", "recommended"]

    Path("reports/eval/unet/metrics.json").unlink()
    with pytest.raises(SystemExit) as exit_info:
        stage.main()
    assert exit_info.value.code == 2


def test_each_model_shows_the_knobs_it_was_trained_with(reports):
    build_report(["unet", "tiny", "grey"], reports)
    assert r"tiny\_cnn (embedder=\<small\_net\>, pretrained=False)" in (reports / "comparison.md").read_text()
    assert "embedder=&lt;small_net&gt;, pretrained=False" in (reports / "index.html").read_text()


# --- the recommendation ----------------------------------------------------------------------

FAITHFUL_OR_NOT = [
    {"name": "sepia", "psnr": 26.0, "delta_colorfulness": 20.0},
    {"name": "vivid", "psnr": 24.0, "delta_colorfulness": -3.0},  # signed ΔCF counts by its size
    {"name": "plain", "psnr": 23.0, "delta_colorfulness": 1.0},
    {"name": "grey", "psnr": 30.0, "delta_colorfulness": 33.0},
]


def test_recommended_model_is_the_best_psnr_among_faithful_colours():
    assert recommended_model(FAITHFUL_OR_NOT, 5) == "vivid"
    assert recommended_model(FAITHFUL_OR_NOT, 2) == "plain"
    assert recommended_model(FAITHFUL_OR_NOT, 25) == "sepia"


def test_recommended_model_falls_back_to_best_psnr_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="chromalab.report.report"):
        assert recommended_model(FAITHFUL_OR_NOT, 0.5) == "sepia"
    assert "no model has |ΔCF| <= 0.5" in caplog.text and "report.max_delta_colorfulness" in caplog.text


def test_recommended_model_is_never_the_grey_baseline():
    assert recommended_model([r for r in FAITHFUL_OR_NOT if r["name"] == "grey"], 50) is None


def test_report_recommends_by_the_threshold_in_params(reports):
    # unet has the better PSNR but |ΔCF| 4.9; tiny's 1.8 is the only one within 2.
    metrics = build_report(["unet", "tiny", "grey"], reports, params=ReportParams(max_delta_colorfulness=2))
    assert metrics["recommended"] == "tiny"
    page = (reports / "index.html").read_text()
    assert "Recommended: tiny (23.90 dB, ΔCF -1.80), the best test PSNR among the models whose |ΔCF| ≤ 2" in page
    assert '<tr class="recommended">\n<td data-sort="tiny">tiny <span class="badge">recommended</span>' in page


# --- galleries, curves, hero -----------------------------------------------------------------


def test_photos_gallery_appears_only_when_evaluate_wrote_photos(reports):
    build_report(["unet", "tiny", "grey"], reports)
    assert "Photos at full resolution" not in (reports / "index.html").read_text()

    for folder in ("grey/photos", "unet/photos", "grey/photos_truth"):  # tiny has none
        path = reports / "eval" / folder / "holiday.png"
        path.parent.mkdir(parents=True)
        Image.new("RGB", (120, 80), (90, 120, 200)).save(path)
    build_report(["unet", "tiny", "grey"], reports)
    page = (reports / "index.html").read_text()

    photos = page[page.index("Photos at full resolution"):page.index('id="curves"')]
    assert img_srcs(photos) == ["eval/grey/photos/holiday.png", "eval/unet/photos/holiday.png",
                                "eval/grey/photos_truth/holiday.png"]
    assert "<th>tiny</th>" not in photos
    # The hero prefers whole photos to test crops: one photo, one row.
    with Image.open(reports / "hero.png") as hero:
        assert hero.height < 2 * 192


def test_curves_hold_every_model_in_long_form_for_dvc_plots(reports):
    build_report(["unet", "tiny", "grey"], reports)
    with open(reports / "curves" / "error_cdf.csv") as f:
        cdf = list(csv.DictReader(f))
    assert list(cdf[0]) == ["model", "threshold", "cdf", "cdf_rebalanced"]
    assert [r["model"] for r in cdf] == ["unet"] * 151 + ["tiny"] * 151 + ["grey"] * 151
    with open(reports / "curves" / "training.csv") as f:
        training = list(csv.DictReader(f))
    assert [(r["model"], r["epoch"]) for r in training] == [(m, e) for m in ("unet", "tiny") for e in "123"]
    assert float(training[2]["val_psnr"]) == 21.5
    assert sorted(p.name for p in (reports / "curves").glob("*.svg")) == [
        "error_cdf.svg", "training_tiny.svg", "training_unet.svg"]


def test_a_model_without_history_keeps_its_row_but_has_no_training_plot(reports, caplog):
    (reports / "train" / "tiny" / "history.csv").unlink()
    with caplog.at_level(logging.WARNING, logger="chromalab.report.report"):
        build_report(["unet", "tiny", "grey"], reports)
    assert "train/tiny/history.csv: missing" in caplog.text
    assert not (reports / "curves" / "training_tiny.svg").exists()
    assert "tiny" in table_rows((reports / "comparison.md").read_text())


def test_rebuilding_an_unchanged_report_writes_identical_files(reports):
    build_report(["unet", "tiny", "grey"], reports)
    first = {p: p.read_bytes() for p in reports.rglob("*") if p.is_file() and "eval" not in p.parts}
    build_report(["unet", "tiny", "grey"], reports)
    second = {p: p.read_bytes() for p in reports.rglob("*") if p.is_file() and "eval" not in p.parts}
    assert first.keys() == second.keys()
    assert [p.name for p in first if first[p] != second[p]] == []


def test_gallery_png_shows_grey_input_every_model_and_truth(reports):
    build_report(["unet", "tiny", "grey"], reports, params=ReportParams(hero_images=2))
    with Image.open(reports / "gallery.png") as img:
        picture = np.asarray(img.convert("RGB"))
    # Four columns (grey, unet, tiny, truth) of 16 px pictures scaled 12x, two rows, the label band.
    assert picture.shape == (24 + 2 * (192 + 6) + 6, 6 + 4 * (192 + 6), 3)
    for column, source in enumerate(("grey/gallery", "unet/gallery", "tiny/gallery", "grey/truth")):
        with Image.open(reports / "eval" / source / "00.png") as img:
            expected = np.asarray(img.convert("RGB"))[3, 7]
        y, x = 24 + 3 * 12 + 6, 6 + column * (192 + 6) + 7 * 12 + 6
        assert (picture[y, x] == expected).all(), source


def test_hero_shows_grey_input_recommended_model_and_truth(reports):
    build_report(["unet", "tiny", "grey"], reports, params=ReportParams(hero_images=2))
    with Image.open(reports / "hero.png") as img:
        hero = np.asarray(img.convert("RGB"))
    # Three columns of 16 px pictures scaled up 12x to 192 px, two rows, a 24 px label band.
    assert hero.shape == (24 + 2 * (192 + 6) + 6, 6 + 3 * (192 + 6), 3)
    for column, source in enumerate(("grey/gallery", "unet/gallery", "grey/truth")):
        with Image.open(reports / "eval" / source / "01.png") as img:
            expected = np.asarray(img.convert("RGB"))[5, 9]
        # Second row, pixel (5, 9) of the picture: 12x scaling maps it to (5*12 + 6, 9*12 + 6).
        y, x = 24 + 192 + 6 + 5 * 12 + 6, 6 + column * (192 + 6) + 9 * 12 + 6
        assert (hero[y, x] == expected).all(), source


# --- "no warm cast": neutral chroma and the a*/b* biases ---------------------------------------

CAST = {  # test split and photos: unet casts colour on greys, tiny less; grey: 0 and minus the truth
    "unet": dict(neutral_chroma=4.2, neutral_fraction=0.31, a_bias=0.8, b_bias=3.1),
    "tiny": dict(neutral_chroma=2.05, neutral_fraction=0.31, a_bias=-0.4, b_bias=1.2),
    "grey": dict(neutral_chroma=0.0, neutral_fraction=0.31, a_bias=-1.5, b_bias=-6.0),
}


def _add_cast(reports: Path) -> None:
    """The colour-cast keys, as the evaluate stage writes them, in each fixture evaluation; and
    per-image values (one image without neutral pixels: an empty cell) in per_image.csv."""
    for name, cast in CAST.items():
        folder = reports / "eval" / name
        data = json.loads((folder / "metrics.json").read_text())
        for prefix in ("", "photos_"):
            for key, value in cast.items():
                data[prefix + key] = value
                data[f"{prefix}{key}_ci"] = {"low": value - 0.5, "high": value + 0.5}
        (folder / "metrics.json").write_text(json.dumps(data))
        with open(folder / "per_image.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        for i, row in enumerate(rows):
            row.update(neutral_chroma="" if i == 0 else cast["neutral_chroma"], neutral_pixels=0 if i == 0 else 100,
                       a_bias=cast["a_bias"], b_bias=cast["b_bias"], pixels=256)
        with open(folder / "per_image.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def test_the_colour_cast_is_in_metrics_json_and_the_league_table_with_intervals(reports):
    _add_cast(reports)
    written = build_report(["unet", "tiny", "grey"], reports)
    assert written["tiny"]["neutral_chroma"] == 2.05 and written["tiny"]["b_bias_ci"] == {"low": 0.7, "high": 1.7}
    assert written["grey"]["neutral_chroma"] == 0.0 and written["grey"]["b_bias"] == -6.0
    for key in ("neutral_chroma", "neutral_fraction", "a_bias", "b_bias"):
        assert {key, f"{key}_ci", f"photos_{key}", f"photos_{key}_ci"} <= set(written["unet"]), key

    markdown = (reports / "comparison.md").read_text()
    rows = table_rows(markdown)
    assert rows["tiny"]["neutral C"] == "**2.05** [1.55, 2.55]"  # the lowest among models: grey's 0 is not ranked
    assert rows["grey (baseline)"]["neutral C"] == "0.00 [-0.50, 0.50]"
    assert rows["tiny"]["b* bias"].startswith("**1.20**") and rows["unet"]["b* bias"] == "3.10 [2.60, 3.60]"
    assert rows["tiny"]["a* bias"].startswith("**-0.40**")
    assert rows["unet"]["photos neutral C"] == "4.20 [3.70, 4.70]"
    assert "b* > 0 is a warm" in markdown
    # The paired test reads the per-image values (an image without neutral pixels weighs nothing):
    # unet minus tiny is +2.15 on every image.
    versus = table_rows(markdown.split("## Is unet's lead significant?")[1])
    assert versus["tiny"]["neutral C difference"] == "+2.15 [+2.15, +2.15]"
    page = (reports / "index.html").read_text()
    assert "<th title=\"click to sort\">b* bias</th>" in page and "neutral C difference" in page


def test_without_photos_the_league_table_has_no_photo_columns(reports):
    build_report(["unet", "tiny", "grey"], reports)  # evaluations from before the colour cast: dashes
    rows = table_rows((reports / "comparison.md").read_text())
    assert rows["unet"]["neutral C"] == "—" and "photos neutral C" not in rows["unet"]


# --- when unsure, stay neutral: confidence, the shrink against uniform desaturation, grey scenes ----


def _add_confidence(reports):
    """tiny as a bins model whose decoding shrinks (what evaluate writes for one), and every
    neutral-scene check, the released model's included."""
    folder = reports / "eval" / "tiny"
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.update(confidence_measure="entropy", confidence_auroc=0.7612, confidence_auroc_ci={"low": 0.73, "high": 0.79},
                   uniform_factor=0.8123, uniform_psnr=23.7, uniform_colorfulness=31.2,
                   shrink_vs_uniform_psnr={"difference": 0.2, "ci": [0.12, 0.29], "significant": True})
    (folder / "metrics.json").write_text(json.dumps(metrics))
    rows = [(i / 10, (i + 1) / 10, 100 * i, "" if i == 0 else round(i / 10 + 0.05, 3), "" if i == 0 else i / 10)
            for i in range(10)]
    with open(folder / "reliability.csv", "w", newline="") as f:
        csv.writer(f).writerows([("low", "high", "pixels", "mean_confidence", "share_right"), *rows])
    for png in sorted((folder / "gallery").glob("*.png")):
        Image.fromarray(np.full((16, 16), 200, np.uint8)).save(png.with_name(f"{png.stem}.confidence.png"))
    for name, mean, p99 in (("unet", 4.5, 21.0), ("tiny", 2.25, 12.5), ("grey", 0.0, 0.0), ("released", 1.75, 9.5)):
        (reports / "neutral" / name).mkdir(parents=True)
        (reports / "neutral" / name / "metrics.json").write_text(json.dumps({
            "model": name, "images": 9, "pixels": 9 * 64, "mean_chroma": mean, "p99_chroma": p99,
            "kinds": {"fractal": {"mean_chroma": mean, "p99_chroma": p99, "images": 8},
                      "dropped_grey": {"mean_chroma": mean + 1, "p99_chroma": p99, "images": 1}}}))


def test_confidence_shrink_and_grey_scenes_reach_metrics_json_the_tables_and_the_page(reports):
    _add_confidence(reports)
    written = build_report(["unet", "tiny", "grey"], reports)
    assert written == json.loads((reports / "metrics.json").read_text())
    tiny, unet, grey = written["tiny"], written["unet"], written["grey"]
    assert tiny["confidence_auroc"] == 0.7612 and tiny["confidence_auroc_ci"] == {"low": 0.73, "high": 0.79}
    assert tiny["shrink_vs_uniform_psnr"] == {"difference": 0.2, "ci": [0.12, 0.29], "significant": True}
    assert tiny["uniform_factor"] == 0.8123 and tiny["uniform_psnr"] == 23.7
    assert "confidence_auroc" not in unet and "confidence_auroc" not in grey and "uniform_factor" not in unet
    assert (tiny["neutral_scene_mean_chroma"], tiny["neutral_scene_p99_chroma"]) == (2.25, 12.5)
    assert (unet["neutral_scene_mean_chroma"], grey["neutral_scene_p99_chroma"]) == (4.5, 0.0)
    assert "released" not in written  # not a league model: its check is its own metrics file, and on the page

    markdown = (reports / "comparison.md").read_text()
    rows = table_rows(markdown)
    assert rows["tiny"]["conf. AUROC"] == "**0.76** [0.73, 0.79]" and rows["unet"]["conf. AUROC"] == "—"
    assert rows["tiny"]["grey scenes C"] == "**2.25**" and rows["grey (baseline)"]["grey scenes C"] == "0.00"
    assert rows["unet"]["grey scenes C p99"] == "21.0"
    section = markdown.split("## When unsure, stay neutral")[1]
    assert "PSNR +0.20 dB \\[+0.12, +0.29\\] \\*" in section and "factor 0.812" in section
    neutral = table_rows(section)
    assert neutral["released"]["mean C"] == "1.75" and neutral["released"]["p99 C"] == "9.50"
    assert neutral["tiny"]["dropped\\_grey mean C"] == "3.25"

    page = (reports / "index.html").read_text()
    srcs = img_srcs(page)
    assert "curves/reliability.svg" in srcs and "eval/tiny/gallery/00.confidence.png" in srcs
    assert all((reports / unquote(urlparse(s).path)).is_file() for s in srcs)
    assert "<th>tiny confidence</th>" in page and "<th>unet confidence</th>" not in page
    assert '<h2 id="confidence">' in page and "<td>released</td>" in page and "0.761" in page
    svg = (reports / "curves" / "reliability.svg").read_text()
    assert "tiny (entropy)" in svg and "unet" not in svg
    long = (reports / "curves" / "reliability.csv").read_text().splitlines()
    assert long[0] == "model,low,high,pixels,mean_confidence,share_right" and len(long) == 11
    # The hero stays grey | recommended | truth, and the confidence maps are no gallery rows of their own.
    from chromalab.report.report import _hero_rows

    _, headers = _hero_rows(["unet", "tiny", "grey"], "tiny", reports, 3)
    assert headers == ["grey input", "tiny (recommended)", "ground truth"]
    from chromalab.report.gallery import collect_gallery

    gallery = collect_gallery(["unet", "tiny", "grey"], reports)
    assert gallery.headers == ["input (grey)", "unet", "tiny", "tiny confidence", "ground truth"]
    assert [name for name, _ in gallery.rows] == ["00.png", "01.png", "02.png"]
    assert gallery.rows[1][1][3] == "eval/tiny/gallery/01.confidence.png"


def test_a_broken_neutral_file_is_a_user_error_naming_it(reports):
    (reports / "neutral" / "unet").mkdir(parents=True)
    (reports / "neutral" / "unet" / "metrics.json").write_text(json.dumps({"mean_chroma": 1.0}))
    with pytest.raises(UserError, match=r"neutral/unet/metrics.json: missing key 'p99_chroma'"):
        build_report(["unet", "tiny", "grey"], reports)
