"""benchmarks/photo_tradeoff.py: the photo profile's docs from a finished run, on a small run made
for real (a bins model and the grey baseline, trained, evaluated and reported)."""

import json

import pytest

from chromalab.core.config import EvaluateParams
from chromalab.report.report import build_report
from chromalab.scoring.evaluate import evaluate

from PIL import Image

from helpers import load_benchmark, real_photos, train_tiny

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def load_script():
    return load_benchmark("photo_tradeoff")


def test_the_docs_hold_the_table_the_bars_and_the_curve(tmp_path, prepared_dir, palette_dir, monkeypatch):
    monkeypatch.setenv("CHROMALAB_MLFLOW", "off")
    model = dict(network="unet", representation="bins", network_args={"base_channels": 8})
    train_tiny(tmp_path, prepared_dir, name="bins", epochs=1, palette_dir=palette_dir, model=model,
               temperatures=[0.2, 1.0])
    photos = tmp_path / "fullres"
    photos.mkdir()
    for name in ("chelsea", "coffee", "astronaut"):
        Image.fromarray(real_photos()[name]).save(photos / f"{name}.png")
    params = EvaluateParams(gallery=2, photos=str(photos), photo_size=64)
    for name in ("bins", "grey"):
        evaluate(name, params, prepared_dir, palette_dir, tmp_path / "data" / "models",
                 tmp_path / "reports" / "eval" / name)
    build_report(["bins", "grey"], tmp_path / "reports")
    script = load_script()
    monkeypatch.setattr("sys.argv", ["photo_tradeoff.py", str(tmp_path), "--out", str(tmp_path / "docs")])
    assert script.main() == 0
    docs = tmp_path / "docs"
    data = json.loads((docs / "photos_tradeoff.json").read_text())
    assert [s["temperature"] for s in data["test_sweeps"]["bins"]] == [0.2, 0.7, 1.0]  # val's list + the extras
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert data["models"]["bins"]["psnr"] == metrics["bins"]["psnr"]
    text = (docs / "photos_comparison.md").read_text()
    bins, grey = metrics["bins"], metrics["grey"]
    met = bins["psnr"] >= grey["psnr"] - 1.0
    assert f"| test photos at 256 px: PSNR ≥ grey − 1 dB | {bins['psnr']:.2f} dB vs grey {grey['psnr']:.2f} dB" in text
    full = json.loads((tmp_path / "reports" / "eval" / "bins" / "metrics.json").read_text())
    grey_full = json.loads((tmp_path / "reports" / "eval" / "grey" / "metrics.json").read_text())
    assert text.count("| **no** |") == (not met) + (bins["delta_colorfulness"] > 5) + (
        full["photos_delta_colorfulness"] > 10) + (full["photos_psnr"] < grey_full["photos_psnr"] - 1)
    assert (docs / "photos_tradeoff.png").stat().st_size > 1000 and (docs / "photos_gallery.png").is_file()
    # The full-resolution photos: a row per model and grey with intervals and both judges, and
    # quality against the speed the evaluate stage measured (its timings.json).
    evaluated = json.loads((tmp_path / "reports" / "eval" / "bins" / "metrics.json").read_text())
    row = next(line for line in text.split("## Full-resolution photos")[1].splitlines() if line.startswith("| bins |"))
    ci = evaluated["photos_psnr_ci"]
    assert f"{evaluated['photos_psnr']:.2f} [{ci['low']:.2f}, {ci['high']:.2f}]" in row
    assert f"{evaluated['photos_fd_lite0']:.1f}" in row and row.split(" | ")[-1] != "— |"
    assert "| grey |" in text and "## Full-resolution photos (3 colour photos" in text
    # The report drew quality against speed from the evaluate stages' timings (a side file git
    # ignores), its page shows it, and the docs carry a copy.
    picture = tmp_path / "reports" / "speed_quality.svg"
    assert picture.read_bytes() == (docs / "photos_speed_quality.svg").read_bytes()
    assert b"quality against speed" in picture.read_bytes() and b"bins" in picture.read_bytes()
    assert 'src="speed_quality.svg"' in (tmp_path / "reports" / "index.html").read_text()
    # README's table: the test photos with intervals, both judges and FD, the photos and s/MP.
    short = text.split("## In short")[1].split("## Test photos")[0]
    row = next(line for line in short.splitlines() if line.startswith("| bins |"))
    ci = bins["psnr_ci"]
    assert row.startswith(f"| bins | {bins['psnr']:.2f} [{ci['low']:.2f}, {ci['high']:.2f}] |")
    assert f"{bins['semantic_agreement_mobilenetv2']:.2f} / {bins['semantic_agreement_lite0']:.2f}" in row
    assert f"{bins['fd_mobilenetv2']:.1f} / {bins['fd_lite0']:.1f}" in row
    assert f"{evaluated['photos_delta_colorfulness']:.1f}" in row and not row.endswith("| — |")
    assert "| grey |" in short and f"the {grey_full['images']} held-out" in short
