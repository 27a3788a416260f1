"""How sure a score is: 95 % bootstrap intervals over the test images, and a paired bootstrap that
says whether one model's lead over another, on the same images, is more than the luck of the draw.

A resample draws n of the n test images with replacement; it is stored as the count of each image
in it (a row of `weights`), so every statistic is a weighted mean and one matrix product scores
every resample at once. Seeded: the same images and seed give the same intervals. The paired
test scores both models on the same resamples, so what varies between images (easy and hard
photos) cancels and only the models' difference is left.
"""

from __future__ import annotations

import numpy as np

DRAWS = 1000
LEVEL = 0.95

# Per-image columns each statistic needs; a statistic is computed from weighted sums of them.
MEANS = ("psnr", "ssim", "colorfulness", "semantic_agreement")


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
    if name in ("auc", "auc_rebalanced"):  # the mean CDF of the pooled per-pixel error histograms
        hist = np.asarray(per_image["error_hist" if name == "auc" else "error_hist_rebalanced"], np.float64)
        pooled = weights @ hist  # (draws, bins); the last bin is the overflow, at no threshold
        return (np.cumsum(pooled, axis=1)[:, :-1] / pooled.sum(axis=1, keepdims=True)).mean(axis=1)
    raise KeyError(f"no bootstrap statistic {name!r}")


def interval(samples: np.ndarray, level: float = LEVEL) -> list[float]:
    """The percentile interval holding `level` of the resampled values."""
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return [float(low), float(high)]


def intervals(per_image: dict, names, seed: int, draws: int = DRAWS) -> dict:
    """{name: [low, high]} for each statistic whose per-image values are present."""
    n = len(next(iter(per_image.values())))
    weights = resample_weights(n, seed, draws)
    out = {}
    for name in names:
        try:
            out[name] = interval(statistic(name, per_image, weights))
        except KeyError:
            continue
    return out


def paired(a: dict, b: dict, name: str, seed: int, draws: int = DRAWS) -> dict:
    """Model a minus model b on statistic `name`, both scored on the same resamples of the same
    images: the difference, its interval, and whether the interval leaves out 0."""
    n = len(a[name if name in MEANS else "colorfulness"])
    if len(b[name if name in MEANS else "colorfulness"]) != n:
        raise ValueError(f"paired bootstrap: {n} images against {len(b[name if name in MEANS else 'colorfulness'])}")
    ones = np.ones((1, n))
    difference = float(statistic(name, a, ones)[0] - statistic(name, b, ones)[0])
    weights = resample_weights(n, seed, draws)
    low, high = interval(statistic(name, a, weights) - statistic(name, b, weights))
    return {"difference": difference, "ci": [low, high], "significant": bool(low > 0 or high < 0)}
