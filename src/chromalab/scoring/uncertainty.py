"""How sure a score is: 95 % bootstrap intervals over the test images, and a paired bootstrap that
says whether one model's lead over another, on the same images, is more than the luck of the draw.

A resample draws n of the n test images with replacement; it is stored as the count of each image
in it (a row of `weights`), so every statistic is a weighted mean and one matrix product scores
every resample at once. The colour-cast metrics are pooled over pixels, so they are ratio
statistics, recomputed on each resample as sum(count * per-image mean) / sum(count) over the
drawn images (a resample whose images hold no neutral pixel has no neutral chroma: it is left out
of that interval). Seeded: the same images and seed give the same intervals. The paired
test scores both models on the same resamples, so what varies between images (easy and hard
photos) cancels and only the models' difference is left. The confidence AUROC is pooled over
pixels too: each resample sums the drawn images' confidence histograms of wrong and right pixels
(confidence.histograms) and takes the AUROC of the sums.
"""

from __future__ import annotations

import numpy as np

from chromalab.colorizing.confidence import auroc_from_histograms

DRAWS = 1000
LEVEL = 0.95

# Per-image columns each statistic needs; a statistic is computed from weighted sums of them.
MEANS = ("psnr", "ssim", "colorfulness", "semantic_agreement")
# Pixel-pooled statistics (metrics.colour_cast): {name: (per-image mean, the pixel count it is a
# mean of)}; the set's value is sum(count * mean) / sum(count). neutral_fraction: the per-image
# count of neutral pixels over the count of all pixels (its "mean" column is None).
RATIOS = {
    "neutral_chroma": ("neutral_chroma", "neutral_pixels"),
    "a_bias": ("a_bias", "pixels"),
    "b_bias": ("b_bias", "pixels"),
    "neutral_fraction": (None, "pixels"),
}


def needs(name: str) -> tuple[str, ...]:
    """The per-image columns statistic `name` is computed from."""
    if name == "neutral_fraction":
        return ("neutral_pixels", "pixels")
    if name in RATIOS:
        return RATIOS[name]
    if name == "delta_colorfulness":
        return ("colorfulness", "colorfulness_gt")
    if name in ("auc", "auc_rebalanced"):
        return ("error_hist" if name == "auc" else "error_hist_rebalanced",)
    if name == "confidence_auroc":
        return ("confidence_wrong_hist", "confidence_right_hist")
    return (name,)


def _ratio(name: str, per_image: dict, weights: np.ndarray) -> np.ndarray:
    """weights @ sums / weights @ counts on each resample: NaN where nothing was counted."""
    mean_key, count_key = RATIOS[name]
    count = np.asarray(per_image[count_key], np.float64)
    if mean_key is None:
        total = np.asarray(per_image["neutral_pixels"], np.float64)
    else:  # an image with nothing counted has no mean (NaN, an empty cell in per_image.csv): it adds 0
        total = np.where(count > 0, np.nan_to_num(np.asarray(per_image[mean_key], np.float64)) * count, 0.0)
    counted = weights @ count
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counted > 0, (weights @ total) / np.where(counted > 0, counted, 1.0), np.nan)


def resample_weights(n: int, seed: int, draws: int = DRAWS) -> np.ndarray:
    """(draws, n) counts: how often each image is drawn in each resample (each row sums to n)."""
    if n < 1:
        raise ValueError("a bootstrap needs at least one image")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=draws).astype(np.float64)


def statistic(name: str, per_image: dict, weights: np.ndarray) -> np.ndarray:
    """The statistic `name` on each resample (rows of `weights`), from per-image values."""
    n = weights.shape[1]
    if name in MEANS or name.startswith("semantic_agreement_"):  # one judge's agreement
        return weights @ np.asarray(per_image[name], np.float64) / n
    if name == "delta_colorfulness":  # |mean CF - mean CF of the truth|: a gap between two means
        gap = np.asarray(per_image["colorfulness"], np.float64) - np.asarray(per_image["colorfulness_gt"], np.float64)
        return np.abs(weights @ gap / n)
    if name in RATIOS:  # pooled over pixels: a ratio of weighted sums
        return _ratio(name, per_image, weights)
    if name in ("auc", "auc_rebalanced"):  # the mean CDF of the pooled per-pixel error histograms
        hist = np.asarray(per_image["error_hist" if name == "auc" else "error_hist_rebalanced"], np.float64)
        pooled = weights @ hist  # (draws, bins); the last bin is the overflow, at no threshold
        return (np.cumsum(pooled, axis=1)[:, :-1] / pooled.sum(axis=1, keepdims=True)).mean(axis=1)
    if name == "confidence_auroc":  # the AUROC of the pooled histograms (NaN: no wrong or no right pixel)
        wrong, right = (np.asarray(per_image[k], np.float64) for k in needs(name))
        return auroc_from_histograms(weights @ wrong, weights @ right)
    raise KeyError(f"no bootstrap statistic {name!r}")


def interval(samples: np.ndarray, level: float = LEVEL) -> list[float]:
    """The percentile interval holding `level` of the resampled values; resamples where the
    statistic is undefined (NaN: a ratio with nothing counted) are left out, and with none left
    the interval is [NaN, NaN]."""
    samples = np.asarray(samples, np.float64)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return [float("nan"), float("nan")]
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return [float(low), float(high)]


def intervals(per_image: dict, names, seed: int, draws: int = DRAWS) -> dict:
    """{name: [low, high]} for each statistic whose per-image values are present (and defined:
    no neutral_chroma interval for a set without neutral pixels)."""
    n = len(next(iter(per_image.values())))
    weights = resample_weights(n, seed, draws)
    out = {}
    for name in names:
        try:
            found = interval(statistic(name, per_image, weights))
        except KeyError:
            continue
        if all(np.isfinite(found)):
            out[name] = found
    return out


def paired(a: dict, b: dict, name: str, seed: int, draws: int = DRAWS) -> dict:
    """Model a minus model b on statistic `name`, both scored on the same resamples of the same
    images: the difference, its interval, and whether the interval leaves out 0. For a ratio
    statistic undefined on the set (no neutral pixel) the difference is NaN, and not significant."""
    column = needs(name)[0]
    n = len(a[column])
    if len(b[column]) != n:
        raise ValueError(f"paired bootstrap: {n} images against {len(b[column])}")
    ones = np.ones((1, n))
    difference = float(statistic(name, a, ones)[0] - statistic(name, b, ones)[0])
    weights = resample_weights(n, seed, draws)
    low, high = interval(statistic(name, a, weights) - statistic(name, b, weights))
    return {"difference": difference, "ci": [low, high], "significant": bool(low > 0 or high < 0)}
