"""Bootstrap intervals and the paired test, on cases whose answer is known."""

import numpy as np
import pytest

from chromalab.scoring import uncertainty


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


def _cast(rng, n, neutral_chroma=None):
    """Per-image colour-cast values as metrics.colour_cast gives them: means and their counts."""
    neutral = rng.integers(0, 400, n).astype(float)
    return {"neutral_chroma": np.where(neutral > 0, neutral_chroma if neutral_chroma is not None
                                       else rng.gamma(2.0, 2.0, n), np.nan),
            "neutral_pixels": neutral, "pixels": np.full(n, 1024.0),
            "a_bias": rng.normal(0.5, 2, n), "b_bias": rng.normal(3, 2, n)}


def test_pixel_pooled_statistics_are_ratios_whose_interval_holds_the_pooled_value():
    rng = np.random.default_rng(0)
    per_image = _cast(rng, 40)
    per_image["neutral_pixels"][:3] = 0  # three images without neutral pixels: NaN means, no weight
    per_image["neutral_chroma"][:3] = np.nan
    names = ["neutral_chroma", "neutral_fraction", "a_bias", "b_bias"]
    found = uncertainty.intervals(per_image, names, seed=0)
    count = per_image["neutral_pixels"]
    pooled = {"neutral_chroma": np.nansum(per_image["neutral_chroma"] * count) / count.sum(),
              "neutral_fraction": count.sum() / per_image["pixels"].sum(),
              "a_bias": per_image["a_bias"].mean(), "b_bias": per_image["b_bias"].mean()}
    for name in names:
        low, high = found[name]
        assert low < pooled[name] < high, name
        everything = uncertainty.statistic(name, per_image, np.ones((1, 40)))[0]
        assert everything == pytest.approx(pooled[name]), name
    # The pooled value, not the mean of the per-image means.
    assert pooled["neutral_chroma"] != pytest.approx(np.nanmean(per_image["neutral_chroma"]))


def test_a_ratio_interval_collapses_when_every_image_is_the_same():
    per_image = {"neutral_chroma": np.full(20, 3.5), "neutral_pixels": np.full(20, 100.0),
                 "pixels": np.full(20, 400.0), "a_bias": np.full(20, -1.0), "b_bias": np.full(20, 2.0)}
    found = uncertainty.intervals(per_image, ["neutral_chroma", "neutral_fraction", "a_bias", "b_bias"], seed=0)
    assert found == {"neutral_chroma": pytest.approx([3.5, 3.5]), "neutral_fraction": pytest.approx([0.25, 0.25]),
                     "a_bias": pytest.approx([-1.0, -1.0]), "b_bias": pytest.approx([2.0, 2.0])}


def test_no_neutral_pixel_anywhere_gives_no_interval_and_no_paired_difference():
    per_image = {"neutral_chroma": np.full(10, np.nan), "neutral_pixels": np.zeros(10), "pixels": np.full(10, 64.0)}
    assert uncertainty.intervals(per_image, ["neutral_chroma", "neutral_fraction"], seed=0) == {
        "neutral_fraction": [0.0, 0.0]}
    result = uncertainty.paired(per_image, per_image, "neutral_chroma", seed=0)
    assert np.isnan(result["difference"]) and not result["significant"]


def test_paired_neutral_chroma_finds_a_cast_on_the_same_pixels():
    rng = np.random.default_rng(3)
    warm = _cast(rng, 30)
    neutral = {**warm, "neutral_chroma": warm["neutral_chroma"] - 0.5}  # 0.5 less on every neutral pixel
    lead = uncertainty.paired(neutral, warm, "neutral_chroma", seed=0)
    assert lead["difference"] == pytest.approx(-0.5) and lead["ci"] == pytest.approx([-0.5, -0.5])
    assert lead["significant"]
