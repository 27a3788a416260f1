"""Scoring library of the evaluate stage: PSNR, SSIM, AuC, colourfulness, and their accumulation."""

import subprocess
import sys

import numpy as np
import pytest
import skimage.data
from skimage.color import rgb2gray
from skimage.metrics import structural_similarity
from skimage.transform import resize

from chromalab.core.color import rgb_to_lab
from chromalab.scoring.metrics import (
    PSNR_CAP_DB,
    MetricAccumulator,
    colorfulness,
    colour_cast,
    psnr,
    ssim,
)

THRESHOLDS = 151


def photo(name: str, size: int | None = 32) -> np.ndarray:
    """A bundled scikit-image photo as uint8 RGB, shrunk to size x size to keep tests fast."""
    rgb = getattr(skimage.data, name)()
    if size is None:
        return rgb
    small = resize(rgb, (size, size), anti_aliasing=True)
    return np.rint(small * 255).astype(np.uint8)


def lab_batch(*images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB images -> channel-first L (B, 1, H, W) and ab (B, 2, H, W), the stage's layout."""
    lab = np.stack([rgb_to_lab(rgb) for rgb in images]).transpose(0, 3, 1, 2)
    return lab[:, :1], lab[:, 1:]


def flat_batch(L: float, ab_planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One image of constant lightness with the given ab planes (2, H, W)."""
    ab = ab_planes[None].astype(np.float64)
    return np.full((1, 1, *ab.shape[2:]), L), ab


def scored(L, pred_ab, true_ab, **kwargs) -> MetricAccumulator:
    acc = MetricAccumulator(**kwargs)
    acc.update(L, pred_ab, true_ab)
    return acc


# --- PSNR ---------------------------------------------------------------------------------------


def test_psnr_of_identical_images_is_capped():
    rgb = photo("astronaut")
    assert psnr(rgb, rgb.copy()) == PSNR_CAP_DB == 100.0


def test_psnr_matches_hand_computed_value():
    true = np.minimum(photo("astronaut"), 250)  # no clipping at 255 once 5 is added
    pred = true + np.uint8(5)
    # Every value off by 5: MSE = 25, PSNR = 20 log10(255 / 5).
    assert psnr(pred, true) == pytest.approx(20 * np.log10(255 / 5))


def test_psnr_averages_error_over_channels():
    true = np.full((8, 8, 3), 100, dtype=np.uint8)
    pred = true.copy()
    pred[..., 0] += 10
    # Only one channel in three is off by 10: MSE = 100 / 3.
    assert psnr(pred, true) == pytest.approx(10 * np.log10(255**2 / (100 / 3)))


def test_psnr_rejects_float_images():
    rgb = photo("astronaut").astype(np.float64) / 255
    with pytest.raises(ValueError, match="uint8"):
        psnr(rgb, rgb)


# --- SSIM ---------------------------------------------------------------------------------------


def test_ssim_of_identical_images_is_one():
    rgb = photo("chelsea")
    assert ssim(rgb, rgb.copy()) == pytest.approx(1.0)


def test_ssim_works_on_16px_images():
    true = photo("astronaut", size=16)
    noise = np.random.default_rng(0).integers(-40, 41, true.shape)
    pred = np.clip(true.astype(int) + noise, 0, 255).astype(np.uint8)
    score = ssim(pred, true)
    assert 0.0 < score < 1.0
    expected = structural_similarity(pred, true, channel_axis=-1, data_range=255, win_size=7)
    assert score == pytest.approx(expected)


def test_ssim_shrinks_window_to_largest_odd_side():
    true = photo("chelsea", size=None)[:6, :10]
    pred = photo("astronaut", size=None)[:6, :10]
    expected = structural_similarity(pred, true, channel_axis=-1, data_range=255, win_size=5)
    assert ssim(pred, true) == pytest.approx(expected)


def test_ssim_rejects_images_too_small_for_a_window():
    rgb = photo("astronaut", size=2)
    with pytest.raises(ValueError, match="3x3"):
        ssim(rgb, rgb)


# --- colourfulness ------------------------------------------------------------------------------


def test_colorfulness_of_grey_image_is_zero():
    grey = np.rint(rgb2gray(photo("astronaut")) * 255).astype(np.uint8)
    assert colorfulness(np.stack([grey] * 3, axis=-1)) == 0.0


def test_colorfulness_of_flat_red_is_hand_computed_value():
    red = np.zeros((4, 4, 3), dtype=np.uint8)
    red[..., 0] = 255
    # No spread; rg = 255, yb = 127.5, so CF = 0.3 sqrt(255^2 + 127.5^2).
    assert colorfulness(red) == pytest.approx(0.3 * np.hypot(255, 127.5))


def test_colorfulness_matches_formula_on_real_photo():
    rgb = photo("chelsea", size=None)
    r, g, b = rgb.reshape(-1, 3).astype(np.float64).T
    rg, yb = r - g, (r + g) / 2 - b
    expected = np.sqrt(np.var(rg) + np.var(yb)) + 0.3 * np.sqrt(np.mean(rg) ** 2 + np.mean(yb) ** 2)
    assert colorfulness(rgb) == pytest.approx(expected)
    assert colorfulness(rgb) > 10  # a real photo is clearly not grey


# --- AuC ----------------------------------------------------------------------------------------


def test_auc_is_one_for_perfect_prediction():
    L, ab = lab_batch(photo("astronaut"), photo("chelsea"))
    acc = scored(L, ab, ab)
    result = acc.result()
    assert result["auc"] == 1.0
    assert result["auc_rebalanced"] == 1.0
    assert acc.curve()["cdf"] == [1.0] * THRESHOLDS


def test_auc_of_constant_error_matches_threshold_fraction():
    L, true_ab = lab_batch(photo("astronaut"))
    true_ab = np.rint(true_ab)  # integer ab keeps the offset exact in floating point
    pred_ab = true_ab + np.array([18.0, 24.0]).reshape(1, 2, 1, 1)  # |(18, 24)| = 30
    acc = scored(L, pred_ab, true_ab)
    curve = acc.curve()
    assert curve["threshold"] == list(range(THRESHOLDS))
    assert curve["cdf"] == [0.0] * 30 + [1.0] * 121
    assert acc.result()["auc"] == pytest.approx(121 / 151)


def test_non_integer_error_counts_from_the_next_threshold():
    L, true_ab = flat_batch(50, np.zeros((2, 8, 8)))
    pred_ab = true_ab + np.array([30.5, 0.0]).reshape(1, 2, 1, 1)
    cdf = scored(L, pred_ab, true_ab).curve()["cdf"]
    assert cdf[30] == 0.0
    assert cdf[31] == 1.0


def test_errors_beyond_max_threshold_count_at_no_threshold():
    L, true_ab = flat_batch(50, np.full((2, 8, 8), 60.0) * np.array([-1, 1]).reshape(2, 1, 1))
    pred_ab = -true_ab  # (-60, 60) against (60, -60): about 170 ab units off, beyond 150
    assert scored(L, pred_ab, true_ab).result()["auc"] == 0.0


def test_rebalanced_auc_weights_rare_colours():
    # A 10x10 image: 90 pixels of a common near-grey colour, predicted exactly, and one row of a
    # rare saturated colour, predicted 50 ab units off.
    true_planes = np.empty((2, 10, 10))
    true_planes[:] = np.array([5.0, 5.0]).reshape(2, 1, 1)
    true_planes[:, 0, :] = np.array([60.0, -40.0]).reshape(2, 1)
    pred_planes = true_planes.copy()
    pred_planes[:, 0, :] = np.array([60.0, 10.0]).reshape(2, 1)
    L, true_ab = flat_batch(60, true_planes)
    _, pred_ab = flat_batch(60, pred_planes)

    def inverse_prior(ab):  # both colours end up with the same total weight
        return np.where(ab[:, 0] > 30, 1 / 0.1, 1 / 0.9)

    result = scored(L, pred_ab, true_ab, pixel_weights=inverse_prior).result()
    # Raw CDF: 0.9 below 50, 1 from 50. Rebalanced: 0.5 below 50, 1 from 50.
    assert result["auc"] == pytest.approx((0.9 * 50 + 101) / 151)
    assert result["auc_rebalanced"] == pytest.approx((0.5 * 50 + 101) / 151)


def test_rebalanced_auc_equals_raw_without_weights():
    L, true_ab = lab_batch(photo("chelsea"))
    result = scored(L, true_ab * 0.5, true_ab).result()
    assert 0.0 < result["auc"] < 1.0
    assert result["auc_rebalanced"] == result["auc"]


# --- the accumulator as the evaluate stage uses it ----------------------------------------------


def test_grey_baseline_scores_lower_than_truth():
    L, true_ab = lab_batch(photo("astronaut"))
    truth = scored(L, true_ab, true_ab).result()
    grey = scored(L, np.zeros_like(true_ab), true_ab).result()

    assert truth["psnr"] == PSNR_CAP_DB
    assert truth["delta_colorfulness"] == 0.0
    assert grey["psnr"] < 40
    assert grey["ssim"] < truth["ssim"]
    assert grey["auc"] < truth["auc"]
    assert grey["colorfulness"] < 1.0  # a=b=0 decodes to neutral grey
    assert grey["colorfulness_gt"] == pytest.approx(truth["colorfulness_gt"])
    assert grey["delta_colorfulness"] > 10


def test_accumulator_batches_equal_single_pass():
    images = [photo(name) for name in ("astronaut", "chelsea", "coffee", "rocket")]
    L, true_ab = lab_batch(*images)
    pred_ab = 0.6 * true_ab + np.random.default_rng(1).normal(0, 8, true_ab.shape)

    def weights(ab):
        return 1 + np.hypot(ab[:, 0], ab[:, 1]) / 10  # saturated colours count more

    whole = scored(L, pred_ab, true_ab, pixel_weights=weights)
    split = MetricAccumulator(pixel_weights=weights)
    for part in (slice(0, 1), slice(1, 3), slice(3, 4)):
        split.update(L[part], pred_ab[part], true_ab[part])

    expected = whole.result()
    assert expected["images"] == 4
    assert 0.0 < expected["auc"] < 1.0
    assert expected["auc_rebalanced"] != pytest.approx(expected["auc"])
    assert split.result() == pytest.approx(expected)
    for name, values in whole.curve().items():
        assert split.curve()[name] == pytest.approx(values)


def test_result_reports_every_metric_as_plain_numbers():
    L, ab = lab_batch(photo("coffee"))
    result = scored(L, ab * 0.8, ab).result()
    assert set(result) == {
        "psnr", "ssim", "auc", "auc_rebalanced",
        "colorfulness", "colorfulness_gt", "delta_colorfulness", "images",
        "neutral_chroma", "neutral_fraction", "a_bias", "b_bias",
    }  # fmt: skip
    assert type(result.pop("images")) is int
    assert all(type(value) is float for value in result.values())


def test_result_without_images_raises():
    with pytest.raises(ValueError, match="no images"):
        MetricAccumulator().result()


def test_update_rejects_mismatched_shapes_and_keeps_state():
    L, ab = lab_batch(photo("astronaut"))
    acc = scored(L, ab, ab)
    with pytest.raises(ValueError, match="pred_ab and true_ab"):
        acc.update(L, ab[:, :, :16], ab)
    assert acc.result()["images"] == 1


# --- "no warm cast": neutral chroma and the a*/b* biases --------------------------------------


def _cast_pair():
    """Two 2x2 images, hand-checkable. Image 0: true ab (0,0) (3,4) (10,0) (0,-20), so chroma 0, 5,
    10, 20: only the first pixel is neutral below 5 (5 itself is not); predicted (6,8) there,
    chroma 10. Image 1: every pixel neutral (true ab (1,1)), predicted (1,4) (4,1) (1,1) (1,1):
    chromas 5*sqrt(0.68) = sqrt(17) twice and sqrt(2) twice."""
    true = np.array([[[0, 3], [10, 0]], [[0, 4], [0, -20]]], dtype=np.float64)  # (2, 2, 2): a, b
    pred0 = true.copy()
    pred0[:, 0, 0] = (6, 8)
    pred0[:, 1, 1] = (2, -20)  # a off by +2, b exact
    true1 = np.ones((2, 2, 2))
    pred1 = np.array([[[1, 4], [1, 1]], [[4, 1], [1, 1]]], dtype=np.float64)
    return np.stack([pred0, pred1]), np.stack([true, true1])


def test_colour_cast_matches_hand_computed_values():
    pred, true = _cast_pair()
    cast = colour_cast(pred, true, neutral_threshold=5.0)
    assert cast["neutral_pixels"].tolist() == [1, 4] and cast["pixels"].tolist() == [4, 4]
    assert cast["neutral_chroma"] == pytest.approx([10.0, (2 * np.sqrt(17) + 2 * np.sqrt(2)) / 4])
    # Image 0: a errors 6 + 2 = 8 over 4 pixels, b errors 8; image 1: a errors 0 + 3, b errors 3 + 0.
    assert cast["a_bias"] == pytest.approx([2.0, 0.75]) and cast["b_bias"] == pytest.approx([2.0, 0.75])
    # A wider threshold counts image 0's chroma-5 pixel (predicted exactly: chroma 5) too.
    wider = colour_cast(pred, true, neutral_threshold=5.5)
    assert wider["neutral_pixels"].tolist() == [2, 4] and wider["neutral_chroma"][0] == pytest.approx(7.5)

    # The accumulator scores SSIM too, which needs 3x3 pixels: each image tiled 2x2 (4x4 pixels),
    # which changes no mean.
    pred, true = np.tile(pred, (1, 1, 2, 2)), np.tile(true, (1, 1, 2, 2))
    L = np.full((2, 1, 4, 4), 50.0)
    pooled = MetricAccumulator(neutral_threshold=5.0)
    pooled.update(L[:1], pred[:1], true[:1])  # batch by batch, as the evaluate stage scores
    pooled.update(L[1:], pred[1:], true[1:])
    result = pooled.result()
    # Pooled over the 5 neutral pixels, not a mean of the two images' means (10 and 2.76).
    assert result["neutral_chroma"] == pytest.approx((10 + 2 * np.sqrt(17) + 2 * np.sqrt(2)) / 5)
    assert result["neutral_fraction"] == pytest.approx(5 / 8)
    assert result["a_bias"] == pytest.approx(11 / 8) and result["b_bias"] == pytest.approx(11 / 8)


def test_an_image_without_neutral_pixels_adds_nothing_and_a_set_without_any_has_no_neutral_chroma():
    true = np.full((1, 2, 4, 4), 30.0)  # chroma 42: nothing neutral
    L = np.full((1, 1, 4, 4), 50.0)
    acc = scored(L, true + 2.0, true)
    assert np.isnan(acc.per_image()["neutral_chroma"][0]) and acc.per_image()["neutral_pixels"][0] == 0
    assert acc.result()["neutral_chroma"] is None and acc.result()["neutral_fraction"] == 0.0
    assert acc.result()["a_bias"] == pytest.approx(2.0)
    grey_true = np.zeros((1, 2, 4, 4))
    acc.update(L, grey_true + np.array([3.0, 4.0]).reshape(1, 2, 1, 1), grey_true)  # chroma 5 on every pixel
    assert acc.result()["neutral_chroma"] == pytest.approx(5.0)  # the first image weighs nothing


def test_grey_baseline_has_no_neutral_chroma_and_minus_the_truths_mean_as_bias():
    L, true_ab = lab_batch(photo("coffee"), photo("chelsea"))
    grey = scored(L, np.zeros_like(true_ab), true_ab).result()
    assert grey["neutral_chroma"] == 0.0
    assert grey["a_bias"] == pytest.approx(-true_ab[:, 0].mean())
    assert grey["b_bias"] == pytest.approx(-true_ab[:, 1].mean())
    assert grey["b_bias"] < 0  # real photos lean warm (b* > 0): grey is "cooler" than the truth
    assert 0.0 < grey["neutral_fraction"] < 1.0
    truth = scored(L, true_ab, true_ab).result()
    assert truth["a_bias"] == truth["b_bias"] == 0.0 and truth["neutral_chroma"] < 5.0


def test_metrics_module_does_not_import_torch():
    code = "import sys, chromalab.scoring.metrics; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
