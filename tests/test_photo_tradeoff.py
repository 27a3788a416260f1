"""benchmarks/photo_tradeoff.py: the photo profile's docs from a finished run, on a small run made
for real (a bins model and the grey baseline, trained, evaluated and reported)."""

import importlib.util
import json
from pathlib import Path

import pytest

from chromalab.config import EvaluateParams
from chromalab.evaluate import evaluate
from chromalab.report import build_report

from helpers import train_tiny

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "photo_tradeoff.py"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def load_script():
    spec = importlib.util.spec_from_file_location("photo_tradeoff", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_docs_hold_the_table_the_bars_and_the_curve(tmp_path, prepared_dir, palette_dir, monkeypatch):
    monkeypatch.setenv("CHROMALAB_MLFLOW", "off")
    model = dict(network="unet", representation="bins", network_args={"base_channels": 8})
    train_tiny(tmp_path, prepared_dir, name="bins", epochs=1, palette_dir=palette_dir, model=model,
               temperatures=[0.2, 1.0])
    for name in ("bins", "grey"):
        evaluate(name, EvaluateParams(gallery=2), prepared_dir, palette_dir, tmp_path / "data" / "models",
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
    assert text.count("| **no** |") == (not met) + (bins["delta_colorfulness"] > 5)
    assert (docs / "photos_tradeoff.png").stat().st_size > 1000 and (docs / "photos_gallery.png").is_file()
