"""Bootstrap intervals and the paired test, on cases whose answer is known."""

import numpy as np
import pytest

from chromalab import uncertainty


def test_the_interval_of_a_mean_has_the_width_theory_gives_and_covers_95_percent():
    """For n normal values with sd s, the mean's 95 % interval is about ±1.96 s / sqrt(n), and it
    holds the true mean in about 95 % of repeated experiments."""
    rng = np.random.default_rng(1)
    n, sd, covered, widths = 60, 2.0, 0, []
    for trial in range(200):
        values = rng.normal(20.0, sd, n)
        low, high = uncertainty.intervals({"psnr": values}, ["psnr"], seed=trial, draws=1000)["psnr"]
        covered += low <= 20.0 <= high
        widths.append(high - low)
    assert 0.90 <= covered / 200 <= 0.99
    assert np.mean(widths) == pytest.approx(2 * 1.96 * sd / np.sqrt(n), rel=0.1)


def test_the_same_seed_gives_the_same_interval_and_another_seed_a_close_one():
    values = {"psnr": np.random.default_rng(0).normal(20, 2, 40)}
    a = uncertainty.intervals(values, ["psnr"], seed=3)
    assert a == uncertainty.intervals(values, ["psnr"], seed=3)
    assert a != uncertainty.intervals(values, ["psnr"], seed=4)
    assert np.allclose(a["psnr"], uncertainty.intervals(values, ["psnr"], seed=4)["psnr"], atol=0.2)


def test_delta_colorfulness_and_auc_are_resampled_as_set_statistics():
    rng = np.random.default_rng(0)
    cf_gt = rng.normal(40, 5, 50)
    per_image = {"colorfulness": cf_gt - 10, "colorfulness_gt": cf_gt,
                 "error_hist": rng.integers(0, 20, (50, 152)).astype(float)}
    found = uncertainty.intervals(per_image, ["delta_colorfulness", "auc", "ssim"], seed=0)
    assert found["delta_colorfulness"] == pytest.approx([10.0, 10.0])  # every image 10 below its truth
    assert 0 < found["auc"][0] < found["auc"][1] < 1
    assert "ssim" not in found  # no per-image values, no interval


def test_a_constant_lead_on_every_image_is_significant_and_no_difference_is_not():
    rng = np.random.default_rng(0)
    base = rng.normal(22, 3, 32)  # images differ a lot: the unpaired intervals overlap
    better = {"psnr": base + 0.3}
    lead = uncertainty.paired(better, {"psnr": base}, "psnr", seed=0)
    assert lead["difference"] == pytest.approx(0.3) and lead["ci"] == pytest.approx([0.3, 0.3])
    assert lead["significant"]
    same = uncertainty.paired({"psnr": base}, {"psnr": base.copy()}, "psnr", seed=0)
    assert same["difference"] == 0 and not same["significant"]
    ci_a = uncertainty.intervals(better, ["psnr"], seed=0)["psnr"]
    ci_b = uncertainty.intervals({"psnr": base}, ["psnr"], seed=0)["psnr"]
    assert ci_a[0] < ci_b[1]  # unpaired, the 0.3 dB lead is lost in the spread of the images


def test_noise_alone_is_rarely_significant():
    rng = np.random.default_rng(2)
    significant = 0
    for trial in range(100):
        base = rng.normal(22, 3, 32)
        a, b = {"psnr": base + rng.normal(0, 0.5, 32)}, {"psnr": base + rng.normal(0, 0.5, 32)}
        significant += uncertainty.paired(a, b, "psnr", seed=trial, draws=500)["significant"]
    assert significant <= 12  # about 5 % expected


def test_a_paired_test_of_different_image_counts_is_refused():
    with pytest.raises(ValueError, match="32 images against 31"):
        uncertainty.paired({"psnr": np.zeros(32)}, {"psnr": np.zeros(31)}, "psnr", seed=0)
