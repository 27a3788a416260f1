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

Only numpy and scikit-image are imported: the evaluate stage can score without loading torch.
"""

from collections.abc import Callable

import numpy as np
from skimage.metrics import structural_similarity

from chromalab.color import lab_planes_to_rgb_uint8

PSNR_CAP_DB = 100.0
PEAK = 255.0
SSIM_MAX_WINDOW = 7
# Hasler & Süsstrunk's weight on the mean-chroma term.
CF_MEAN_WEIGHT = 0.3

PixelWeights = Callable[[np.ndarray], np.ndarray]


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


class MetricAccumulator:
    """Scores a test set batch by batch; `result()` gives means and AuCs over everything seen.

    Per-pixel ab errors are kept only as histograms over integer bins, so memory does not grow with
    the test set. An error e counts at threshold t iff e <= t, i.e. from bin ceil(e) onwards; errors
    above `max_threshold` land in one overflow bin that counts at no threshold.
    """

    def __init__(self, pixel_weights: PixelWeights | None = None, max_threshold: int = 150):
        if int(max_threshold) != max_threshold or max_threshold < 0:
            raise ValueError(f"max_threshold must be a non-negative integer, got {max_threshold!r}")
        self.pixel_weights = pixel_weights
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
        """Each image's psnr, ssim, colorfulness and colorfulness_gt, and its error histograms
        (images, bins), in the order scored."""
        return {name: np.asarray(values, np.float64) for name, values in self._per_image.items()}

    def result(self) -> dict:
        """Test-set metrics: means over images, and AuCs (the mean CDF over thresholds, 0..1)."""
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
            "images": self._images,
        }
