"""benchmarks/cast_probe.py: the measurement that found the warm cast's cause, on a small bins
model trained for real."""

import json

import numpy as np
import pytest

from helpers import load_benchmark, train_tiny



def load_script():
    return load_benchmark("cast_probe")


def test_the_probe_scores_every_decoding_and_the_palettes_prior(tmp_path, prepared_dir, palette_dir, mlflow_uri):
    model = train_tiny(tmp_path, prepared_dir, name="bins", epochs=1, palette_dir=palette_dir,
                       model=dict(network="unet", representation="bins", network_args={"base_channels": 8}))
    out = tmp_path / "probe.json"
    probe = load_script()
    assert probe.main([str(model), "--prepared", str(prepared_dir), "--palette", str(palette_dir),
                       "--temperatures", "0.38", "1", "--corrections", "0", "1", "--out", str(out)]) == 0
    found = json.loads(out.read_text())
    gamut = json.loads((palette_dir / "gamut.json").read_text())
    centers, prior, weights = (np.asarray(gamut[k]) for k in ("centers", "prior", "weights"))
    stats = found["palette"]
    assert stats["data_mean_ab"] == pytest.approx((prior @ centers).tolist())
    assert stats["rebalanced_prior_mean_ab"] == pytest.approx(((weights * prior) @ centers / (weights @ prior)).tolist())
    rows = found["decodings"]
    assert {(r["temperature"], r["prior_correction"]) for r in rows} == {(0.38, 0), (1, 0), (0.38, 1), (1, 1)}
    grey = {r["grey_psnr"] for r in rows}
    assert len(grey) == 1  # the grey input's PSNR does not depend on the decoding
    plain = next(r for r in rows if (r["temperature"], r["prior_correction"]) == (1, 0))
    corrected = next(r for r in rows if (r["temperature"], r["prior_correction"]) == (1, 1))
    assert corrected["neutral_chroma"] < plain["neutral_chroma"]  # dividing the rebalancing out
    assert plain != corrected and all(r["images"] == rows[0]["images"] for r in rows)
