"""The report stage: metrics.json, comparison.md and index.html from fake evaluation folders."""

import html.parser
import importlib.util
import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from PIL import Image

from chromalab.errors import UserError
from chromalab.report import METRICS, build_report

REPO = Path(__file__).resolve().parents[1]
GALLERY = 3
OUTPUTS = ("metrics.json", "comparison.md", "index.html")

# unet: better PSNR/SSIM/AuC; tiny: better ΔCF and speed. grey's ΔCF is signed and most negative.
METRICS_BY_NAME = {
    "unet": dict(psnr=24.5012, ssim=0.91234, auc=0.8812, auc_rebalanced=0.6123, colorfulness=28.1,
                 colorfulness_gt=33.0, delta_colorfulness=-4.9, images_per_second=850.0),
    "tiny": dict(psnr=23.9, ssim=0.9011, auc=0.8701, auc_rebalanced=0.6302, colorfulness=31.2,
                 colorfulness_gt=33.0, delta_colorfulness=-1.8, images_per_second=2400.0),
    "grey": dict(psnr=22.1, ssim=0.8899, auc=0.8456, auc_rebalanced=0.5001, colorfulness=0.0,
                 colorfulness_gt=33.0, delta_colorfulness=-33.0, images_per_second=90000.0),
}
DESCRIPTION = {
    "unet": dict(network="unet", representation="ab", parameters=1_234_567, train_seconds=61.5),
    "tiny": dict(network="tiny_cnn", representation="classes", parameters=45_600, train_seconds=12.0,
                 setup="embedder=<small_net>, pretrained=False"),
    "grey": dict(network=None, representation=None, parameters=0, train_seconds=None),
}


def _png(path: Path, seed: int, grey: bool = False) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    if grey:
        pixels[...] = pixels.mean(axis=2, keepdims=True).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_eval(reports: Path, names: dict[str, str], palette: bool = True) -> None:
    """An evaluate stage's outputs; `names` maps each folder name to its fixture's metrics."""
    for seed, (name, kind) in enumerate(names.items()):
        folder = reports / "eval" / name
        folder.mkdir(parents=True)
        data = {**METRICS_BY_NAME[kind], "images": 120, **DESCRIPTION[kind]}
        (folder / "metrics.json").write_text(json.dumps(data), encoding="utf-8")
        for i in range(GALLERY):
            _png(folder / "gallery" / f"{i:02d}.png", seed * 100 + i, grey=name == "grey")
    for i in range(GALLERY):
        _png(reports / "eval" / "grey" / "truth" / f"{i:02d}.png", 1000 + i)
    if palette:
        _png(reports / "palette.png", 7)


@pytest.fixture
def reports(tmp_path):
    reports = tmp_path / "reports"
    write_eval(reports, {"unet": "unet", "tiny": "tiny", "grey": "grey"})
    return reports


class _Images(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


def img_srcs(page: str) -> list[str]:
    parser = _Images()
    parser.feed(page)
    return parser.srcs


def table_rows(markdown: str) -> dict[str, dict[str, str]]:
    """{model cell: {column title: cell}} from the Markdown table (names here contain no pipes)."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return {row[0]: dict(zip(header, row)) for row in rows}


def test_metrics_json_maps_every_model_and_grey_to_numbers(reports):
    returned = build_report(["unet", "tiny", "grey"], reports)

    written = json.loads((reports / "metrics.json").read_text())
    assert written == returned
    assert list(written) == ["unet", "tiny", "grey"]
    for name, values in written.items():
        assert set(values) == set(METRICS)
        assert all(type(v) in (int, float) for v in values.values()), name
    assert written["unet"]["ssim"] == 0.9123  # rounded to 4 decimals
    assert written["grey"]["images_per_second"] == 90000.0


def test_comparison_marks_best_per_column(reports):
    build_report(["unet", "tiny", "grey"], reports)
    markdown = (reports / "comparison.md").read_text()
    rows = table_rows(markdown)

    assert list(rows) == ["unet", "tiny", "grey (baseline)"]
    bold = lambda cell: cell.startswith("**") and cell.endswith("**")  # noqa: E731
    assert bold(rows["unet"]["PSNR (dB)"]) and not bold(rows["tiny"]["PSNR (dB)"])
    assert bold(rows["unet"]["SSIM"]) and bold(rows["unet"]["AuC"])
    assert bold(rows["tiny"]["AuC (rebal.)"])
    # ΔCF: closest to zero wins, so grey's -33 (the lowest number) is not the best.
    assert bold(rows["tiny"]["ΔCF"])
    assert not bold(rows["unet"]["ΔCF"]) and not bold(rows["grey (baseline)"]["ΔCF"])
    # The baseline runs no network: the fastest model, not grey, is marked.
    assert bold(rows["tiny"]["img/s"]) and not bold(rows["grey (baseline)"]["img/s"])
    for name in rows:  # colourfulness itself is not ranked
        assert not bold(rows[name]["CF"]) and not bold(rows[name]["CF gt"])
    assert rows["unet"]["params"] == "1.23M" and rows["grey (baseline)"]["network"] == "—"
    assert "120 test images" in markdown and "closest to 0" in markdown


def test_ties_are_all_marked(tmp_path):
    reports = tmp_path / "reports"
    write_eval(reports, {"a": "unet", "b": "unet", "grey": "grey"})
    build_report(["a", "b", "grey"], reports)
    rows = table_rows((reports / "comparison.md").read_text())
    assert rows["a"]["PSNR (dB)"] == rows["b"]["PSNR (dB)"] == "**24.50**"


def test_html_links_every_gallery_image_relatively_and_they_exist(tmp_path):
    reports = tmp_path / "reports"
    names = ["u net#2", "tiny", "grey"]  # a space and a '#' must survive as a relative URL
    write_eval(reports, {"u net#2": "unet", "tiny": "tiny", "grey": "grey"})
    build_report(names, reports)
    page = (reports / "index.html").read_text()

    srcs = img_srcs(page)
    # input + 2 models + truth per test image, plus the palette swatch.
    assert len(srcs) == GALLERY * 4 + 1
    for src in srcs:
        url = urlparse(src)
        assert not url.scheme and not url.netloc and not src.startswith("/"), src
        assert (reports / unquote(url.path)).is_file(), src
    assert "eval/grey/gallery/00.png" in srcs and "eval/grey/truth/02.png" in srcs
    assert "palette.png" in srcs
    assert "image-rendering: pixelated" in page
    assert "http://" not in page and "https://" not in page


def test_html_marks_best_and_shows_missing_gallery_cells(reports):
    (reports / "eval" / "tiny" / "gallery" / "01.png").unlink()
    (reports / "palette.png").unlink()
    build_report(["unet", "tiny", "grey"], reports)
    page = (reports / "index.html").read_text()

    assert page.count('class="missing"') == 1
    assert "palette.png" not in page
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
    assert list(json.loads(Path("reports/metrics.json").read_text())) == ["tiny", "unet", "grey"]

    Path("reports/eval/unet/metrics.json").unlink()
    with pytest.raises(SystemExit) as exit_info:
        stage.main()
    assert exit_info.value.code == 2


def test_each_model_shows_the_knobs_it_was_trained_with(reports):
    build_report(["unet", "tiny", "grey"], reports)
    assert r"tiny\_cnn (embedder=\<small\_net\>, pretrained=False)" in (reports / "comparison.md").read_text()
    assert "embedder=&lt;small_net&gt;, pretrained=False" in (reports / "index.html").read_text()
