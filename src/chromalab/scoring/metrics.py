"""Scoring for the evaluate stage: how close predicted colours are to the truth, and how vivid.

Every metric compares a prediction with the ground truth of the same greyscale photo (same L):

- PSNR, as in seed 004 (the DeepColor U-Net): 10 log10(255^2 / MSE) on uint8 RGB, the MSE taken
  over all pixels and channels. Identical images would give +inf; it is capped at `PSNR_CAP_DB`
  (100 dB) so means over a test set stay finite.
- SSIM (Wang et al. 2004, "Image quality assessment: from error visibility to structural
  similarity") via scikit-image on uint8 RGB, each channel scored separately and averaged. The
  window shrinks to fit small images (7 px, or the largest odd size that fits).
- AuC (Zhang, Isola, Efros 2016, "Colorful Image Colorization"): the CDF of per-pixel Euclidean
  error in ab space, swept over thresholds 0..150, and the area under it normalised to [0, 1].
  The raw AuC is dominated by desaturated pixels (most of the ab prior sits near grey), so Zhang
  also reports a class-rebalanced AuC in which each pixel is weighted by the inverse prior of its
  true colour bin; the weights come from `pixel_weights`, supplied by the caller.
- Colourfulness (Hasler & Süsstrunk 2003, "Measuring colourfulness in natural images") on 0..255
  RGB, with rg = R - G and yb = (R + G) / 2 - B:
  CF = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2).
- ΔCF: |mean CF of predictions - mean CF of truth|. Regression to the mean makes colourisers
  desaturate; a low ΔCF says the output is as vivid as real photos, whatever the pixel errors.
- "No warm cast" (`colour_cast`), on the Lab ab planes: neutral chroma, the mean predicted chroma
  sqrt(a^2 + b^2) over the truly neutral pixels (true chroma < `NEUTRAL_THRESHOLD`), pooled over
  every neutral pixel of the set: how much colour a model paints onto what is grey (white walls,
  grey skies, snow), 0 for the grey baseline; and the a* and b* biases, the mean of predicted minus
  true a* and b* over all pixels (pooled): a sepia or warm cast shows as b* bias > 0.

Only numpy and scikit-image are imported: the evaluate stage can score without loading torch.
"""

from collections.abc import Callable

import numpy as np
from skimage.metrics import structural_similarity

from chromalab.core.color import lab_planes_to_rgb_uint8

PSNR_CAP_DB = 100.0
PEAK = 255.0
SSIM_MAX_WINDOW = 7
# Hasler & Süsstrunk's weight on the mean-chroma term.
CF_MEAN_WEIGHT = 0.3

PixelWeights = Callable[[np.ndarray], np.ndarray]

# A pixel whose true Lab chroma is below this is "truly neutral" (evaluate.neutral_threshold and
# train.neutral_threshold default to it).
NEUTRAL_THRESHOLD = 5.0
# Per-image values of the colour-cast metrics: each a mean over the image's own pixels, and the
# pixel count it is a mean of, so a set's pooled value (and each bootstrap resample's,
# uncertainty.py) is sum(mean * count) / sum(count). neutral_chroma is NaN for an image without
# neutral pixels (neutral_pixels 0), which then weighs nothing.
CAST_PER_IMAGE = ("neutral_chroma", "neutral_pixels", "a_bias", "b_bias", "pixels")


def _check_rgb_pair(pred: np.ndarray, true: np.ndarray) -> None:
    if pred.shape != true.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(
            f"expected two HxWx3 RGB images of one shape, got {pred.shape} and {true.shape}"
        )
    # A float image in [0, 1] scored with peak 255 would look near perfect, so refuse it.
    if pred.dtype != np.uint8 or true.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB, got {pred.dtype} and {true.dtype}")


def psnr(pred: np.ndarray, true: np.ndarray) -> float:
    """PSNR in dB between uint8 RGB images (peak 255), capped at PSNR_CAP_DB when identical."""
    _check_rgb_pair(pred, true)
    mse = np.mean((pred.astype(np.float64) - true.astype(np.float64)) ** 2)
    if mse == 0:
        return PSNR_CAP_DB
    return float(min(10.0 * np.log10(PEAK**2 / mse), PSNR_CAP_DB))


def ssim(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean SSIM over the RGB channels of uint8 images, with a window that fits small images."""
    _check_rgb_pair(pred, true)
    side = min(pred.shape[:2])
    # SSIM's sample covariance needs at least a 3x3 window.
    if side < 3:
        raise ValueError(f"SSIM needs images of at least 3x3 pixels, got {pred.shape[:2]}")
    largest_odd = side if side % 2 else side - 1
    win_size = min(SSIM_MAX_WINDOW, largest_odd)
    return float(
        structural_similarity(pred, true, channel_axis=-1, data_range=PEAK, win_size=win_size)
    )


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk colourfulness of an HxWx3 RGB image in 0..255 (uint8 or float)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {rgb.shape}")
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    spread = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    mean = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(spread + CF_MEAN_WEIGHT * mean)


def colour_cast(pred_ab, true_ab, neutral_threshold: float = NEUTRAL_THRESHOLD) -> dict[str, np.ndarray]:
    """Each image's colour-cast values (CAST_PER_IMAGE) from (B, 2, H, W) ab planes: its mean
    predicted chroma over its neutral pixels (true chroma < neutral_threshold; NaN without any),
    their count, its mean predicted - true a* and b*, and its pixel count."""
    pred_ab = np.asarray(pred_ab, dtype=np.float64)
    true_ab = np.asarray(true_ab, dtype=np.float64)
    if pred_ab.ndim != 4 or pred_ab.shape[1] != 2 or pred_ab.shape != true_ab.shape:
        raise ValueError(f"expected two (B, 2, H, W) ab arrays of one shape, got {pred_ab.shape} and {true_ab.shape}")
    neutral = np.hypot(true_ab[:, 0], true_ab[:, 1]) < neutral_threshold  # (B, H, W)
    pixels = int(np.prod(true_ab.shape[2:]))
    count = neutral.sum(axis=(1, 2))
    chroma_sum = np.where(neutral, np.hypot(pred_ab[:, 0], pred_ab[:, 1]), 0.0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        neutral_chroma = np.where(count > 0, chroma_sum / np.maximum(count, 1), np.nan)
    error = (pred_ab - true_ab).mean(axis=(2, 3))  # (B, 2)
    return {"neutral_chroma": neutral_chroma, "neutral_pixels": count.astype(np.float64),
            "a_bias": error[:, 0], "b_bias": error[:, 1], "pixels": np.full(len(pred_ab), float(pixels))}


def pooled_colour_cast(cast: dict) -> dict:
    """A set's neutral_chroma (None without any neutral pixel), neutral_fraction, a_bias and b_bias,
    pooled over pixels from per-image values (colour_cast)."""
    count = np.asarray(cast["neutral_pixels"], np.float64)
    pixels = np.asarray(cast["pixels"], np.float64)
    neutral_sum = np.nansum(np.where(count > 0, np.asarray(cast["neutral_chroma"], np.float64) * count, 0.0))
    return {
        "neutral_chroma": float(neutral_sum / count.sum()) if count.sum() > 0 else None,
        "neutral_fraction": float(count.sum() / pixels.sum()),
        "a_bias": float(np.asarray(cast["a_bias"], np.float64) @ pixels / pixels.sum()),
        "b_bias": float(np.asarray(cast["b_bias"], np.float64) @ pixels / pixels.sum()),
    }


class MetricAccumulator:
    """Scores a test set batch by batch; `result()` gives means and AuCs over everything seen.

    Per-pixel ab errors are kept only as histograms over integer bins, so memory does not grow with
    the test set. An error e counts at threshold t iff e <= t, i.e. from bin ceil(e) onwards; errors
    above `max_threshold` land in one overflow bin that counts at no threshold. Pixels whose true
    chroma is below `neutral_threshold` count as neutral (colour_cast).
    """

    def __init__(self, pixel_weights: PixelWeights | None = None, max_threshold: int = 150,
                 neutral_threshold: float = NEUTRAL_THRESHOLD):
        if int(max_threshold) != max_threshold or max_threshold < 0:
            raise ValueError(f"max_threshold must be a non-negative integer, got {max_threshold!r}")
        if not neutral_threshold > 0:
            raise ValueError(f"neutral_threshold must be above 0, got {neutral_threshold!r}")
        self.pixel_weights = pixel_weights
        self.neutral_threshold = float(neutral_threshold)
        self.max_threshold = int(max_threshold)
        self.thresholds = np.arange(self.max_threshold + 1)
        # One bin per threshold plus the overflow bin.
        n_bins = self.max_threshold + 2
        self._counts = np.zeros(n_bins, dtype=np.int64)
        self._weights = np.zeros(n_bins, dtype=np.float64)
        self._images = 0
        self._sums = {"psnr": 0.0, "ssim": 0.0, "colorfulness": 0.0, "colorfulness_gt": 0.0}
        # Per image, for bootstrap intervals (uncertainty.py): the scores and each image's share
        # of the error histograms.
        self._per_image = {name: [] for name in (*self._sums, "error_hist", "error_hist_rebalanced")}
        self._cast = {name: [] for name in CAST_PER_IMAGE}

    def update(self, L, pred_ab, true_ab) -> None:
        """Add a batch: L (B, 1, H, W) in [0, 100]; pred_ab, true_ab (B, 2, H, W) in Lab units."""
        L = np.asarray(L, dtype=np.float64)
        pred_ab = np.asarray(pred_ab, dtype=np.float64)
        true_ab = np.asarray(true_ab, dtype=np.float64)
        if L.ndim != 4 or L.shape[1] != 1:
            raise ValueError(f"L must be (B, 1, H, W), got {L.shape}")
        expected = (L.shape[0], 2, *L.shape[2:])
        if pred_ab.shape != expected or true_ab.shape != expected:
            raise ValueError(
                f"pred_ab and true_ab must be {expected}, got {pred_ab.shape} and {true_ab.shape}"
            )

        # Check first, so a bad batch leaves the accumulator untouched.
        error = np.sqrt(np.sum((pred_ab - true_ab) ** 2, axis=1)).ravel()
        if not np.all(np.isfinite(error)):
            raise ValueError("pred_ab or true_ab contains NaN or infinite values")
        bins = np.minimum(np.ceil(error), self.max_threshold + 1).astype(np.int64)
        weights = self._pixel_weights(true_ab)

        image_scores = [self._score_image(*planes) for planes in zip(L, pred_ab, true_ab)]
        cast = colour_cast(pred_ab, true_ab, self.neutral_threshold)

        n_bins = self.max_threshold + 2
        self._counts += np.bincount(bins, minlength=n_bins)
        if weights is not None:
            self._weights += np.bincount(bins, weights=weights, minlength=n_bins)
        per_image_bins = bins.reshape(len(image_scores), -1)
        per_image_weights = None if weights is None else weights.reshape(len(image_scores), -1)
        for i, scores in enumerate(image_scores):
            for name, value in scores.items():
                self._sums[name] += value
                self._per_image[name].append(value)
            counts = np.bincount(per_image_bins[i], minlength=n_bins).astype(np.float64)
            self._per_image["error_hist"].append(counts)
            self._per_image["error_hist_rebalanced"].append(
                counts if per_image_weights is None
                else np.bincount(per_image_bins[i], weights=per_image_weights[i], minlength=n_bins))
        for name, values in cast.items():
            self._cast[name].extend(values.tolist())
        self._images += len(image_scores)

    def _pixel_weights(self, true_ab: np.ndarray) -> np.ndarray | None:
        if self.pixel_weights is None:
            return None
        # (B, 2, H, W) -> (N, 2) in the same pixel order as the flattened error.
        pixels = true_ab.transpose(0, 2, 3, 1).reshape(-1, 2)
        weights = np.asarray(self.pixel_weights(pixels), dtype=np.float64)
        if weights.shape != (len(pixels),):
            raise ValueError(
                f"pixel_weights must return shape ({len(pixels)},), got {weights.shape}"
            )
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError("pixel_weights must return finite, non-negative weights")
        return weights

    @staticmethod
    def _score_image(L: np.ndarray, pred_ab: np.ndarray, true_ab: np.ndarray) -> dict:
        pred_rgb = lab_planes_to_rgb_uint8(L, pred_ab)
        true_rgb = lab_planes_to_rgb_uint8(L, true_ab)
        return {
            "psnr": psnr(pred_rgb, true_rgb),
            "ssim": ssim(pred_rgb, true_rgb),
            "colorfulness": colorfulness(pred_rgb),
            "colorfulness_gt": colorfulness(true_rgb),
        }

    def _cdf(self, hist: np.ndarray) -> np.ndarray:
        total = hist.sum()
        if total <= 0:
            raise ValueError("pixel_weights gave every pixel zero weight; no rebalanced CDF")
        # The overflow bin counts in the total but at no threshold.
        return np.cumsum(hist)[: self.max_threshold + 1] / total

    def _curves(self) -> tuple[np.ndarray, np.ndarray]:
        if self._images == 0:
            raise ValueError("no images were scored; call update() before result() or curve()")
        cdf = self._cdf(self._counts)
        # Without weights every pixel weighs the same, so the rebalanced curve is the raw one.
        cdf_rebalanced = cdf if self.pixel_weights is None else self._cdf(self._weights)
        return cdf, cdf_rebalanced

    def curve(self) -> dict:
        """The error CDFs at thresholds 0..max_threshold, for plotting."""
        cdf, cdf_rebalanced = self._curves()
        return {
            "threshold": self.thresholds.tolist(),
            "cdf": cdf.tolist(),
            "cdf_rebalanced": cdf_rebalanced.tolist(),
        }

    def per_image(self) -> dict[str, np.ndarray]:
        """Each image's psnr, ssim, colorfulness and colorfulness_gt, its error histograms
        (images, bins) and its colour-cast values (CAST_PER_IMAGE), in the order scored."""
        values = {**self._per_image, **self._cast}
        return {name: np.asarray(v, np.float64) for name, v in values.items()}

    def result(self) -> dict:
        """Test-set metrics: means over images, AuCs (the mean CDF over thresholds, 0..1), and the
        colour-cast metrics pooled over pixels (neutral_chroma None when no pixel is neutral)."""
        cdf, cdf_rebalanced = self._curves()
        means = {name: total / self._images for name, total in self._sums.items()}
        return {
            "psnr": float(means["psnr"]),
            "ssim": float(means["ssim"]),
            "auc": float(cdf.mean()),
            "auc_rebalanced": float(cdf_rebalanced.mean()),
            "colorfulness": float(means["colorfulness"]),
            "colorfulness_gt": float(means["colorfulness_gt"]),
            "delta_colorfulness": float(abs(means["colorfulness"] - means["colorfulness_gt"])),
            **pooled_colour_cast(self._cast),
            "images": self._images,
        }
