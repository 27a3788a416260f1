"""benchmarks/confidence_measures.py: each confidence measure's AUROC under each share of the
rebalancing divided out, on a small bins model trained for real."""

import json

import numpy as np
import pytest
import torch

from chromalab.colorizing import checkpoint, confidence
from chromalab.data.lab_arrays import load_split
from helpers import load_benchmark, train_tiny


def test_the_table_holds_every_measure_and_correction_and_agrees_with_the_unbinned_auroc(
        tmp_path, prepared_dir, palette_dir, mlflow_uri):
    model = train_tiny(tmp_path, prepared_dir, name="bins", epochs=1, palette_dir=palette_dir,
                       model=dict(network="unet", representation="bins", network_args={"base_channels": 8}))
    out = tmp_path / "table.json"
    script = load_benchmark("confidence_measures")
    assert script.main([str(model / "best.pt"), str(prepared_dir), "--split", "val", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    points = {(r["measure"], r["confidence_correction"]) for r in rows}
    assert {(m, c) for m in confidence.MEASURES for c in script.CORRECTIONS} <= points and len(rows) == 10
    # One row against the exact AUROC of the same pixels, their confidences rounded down to the
    # evaluate stage's bins of 0.01 (a barely trained model's are all near one value: unbinned they
    # rank, binned they tie, so the comparison must bin as the table does).
    colorizer, _ = checkpoint.load(model / "best.pt", "cpu")
    colorizer.representation.confidence_correction = 0.5
    colorizer.representation.shrink_gamma = 0.0  # the table scores the colour before any shrink
    L, ab = (torch.from_numpy(np.asarray(x, np.float32)) for x in load_split(prepared_dir, "val"))
    with torch.no_grad():
        pred, conf = colorizer.forward_with_confidence(L)
    binned = np.minimum(np.floor(conf.numpy() * confidence.HIST_BINS), confidence.HIST_BINS - 1)
    exact = confidence.auroc(binned, (pred - ab).norm(dim=1).numpy())
    row = next(r for r in rows if (r["measure"], r["confidence_correction"]) == ("entropy", 0.5))
    assert row["auroc"] == pytest.approx(exact, abs=1e-6)


def test_a_model_without_bins_is_refused(tmp_path, prepared_dir, mlflow_uri, capsys):
    model = train_tiny(tmp_path, prepared_dir, name="ab", epochs=1)
    assert load_benchmark("confidence_measures").main([str(model / "best.pt"), str(prepared_dir)]) == 2
    assert "a ab model" in capsys.readouterr().err
