"""benchmarks/colour_tradeoff.py: the val-split analysis of a finished run (flip, ensemble, blends,
the energy bound), on two small models trained for real."""

import math

import pytest

from helpers import load_benchmark, train_tiny



def load_script():
    return load_benchmark("colour_tradeoff")


@pytest.fixture
def workspace(tmp_path, prepared_dir, palette_dir, mlflow_uri):
    """A run's layout (the fixtures write data/prepared and data/palette in tmp_path) with two
    trained models: ab regression and bins."""
    train_tiny(tmp_path, prepared_dir, name="regress", epochs=2)
    train_tiny(tmp_path, prepared_dir, name="classify", epochs=2, palette_dir=palette_dir,
               model=dict(network="unet", representation="bins",
                          network_args={"base_channels": 8, "out_kernel": 1},
                          representation_args={"regression_weight": 20}))
    return tmp_path


def test_energy_bound_is_reached_by_the_conditional_mean_and_nowhere_lower():
    bound = load_script().energy_bound
    r2 = 0.2
    assert bound(0.0, r2) == 1.0  # predicting grey
    assert bound(r2, r2) == pytest.approx(1 - r2)  # the conditional mean: c = R2
    assert min(bound(c / 100, r2) for c in range(101)) == pytest.approx(1 - r2)
    # As colourful as the truth (c = 1), a prediction beats grey only if R2 > 1/4.
    assert bound(1.0, 0.25) == pytest.approx(1.0) and bound(1.0, 0.3) < 1.0


def test_analysis_of_a_run_scores_each_model_flipped_blended_and_within_its_bound(workspace):
    result = load_script().analyse(workspace, "val")
    rows = result["rows"]
    assert {"grey", "regress", "regress + flip", "classify", "classify + flip"} <= set(rows)
    assert rows["grey"]["mse_ratio"] == pytest.approx(1.0) and rows["grey"]["energy_ratio"] == 0.0
    assert result["most_accurate"] in ("regress", "classify") and result["most_colourful"] in ("regress", "classify")
    if result["most_colourful"] != result["most_accurate"]:
        assert sum(name.startswith("0.5 ") for name in rows) == 1  # the blends
    for name, row in rows.items():
        assert math.isfinite(row["psnr"]) and 0 < row["auc"] <= 1
        c, r = row["energy_ratio"], row["overlap"]
        assert row["mse_ratio"] == pytest.approx(1 + c - 2 * r, abs=1e-6), name  # |p - y|^2 expanded
        # The bound can be met, never beaten, by what was measured.
        assert row["mse_ratio"] >= row["mse_ratio_bound"] - 1e-9, name
    # The row whose rescaling explains the most colour energy gave the estimate: on its bound, up
    # to the sign of its overlap with the truth.
    best = max(rows.values(), key=lambda row: row["explained"])
    assert result["r2_estimate"] == best["explained"] > 0
    c, r = best["energy_ratio"], best["overlap"]
    assert best["mse_ratio_bound"] == pytest.approx(1 + c - 2 * abs(r), abs=1e-9)
