"""How sure a model is of each pixel's colour, from its own output, and what to do when it is not.

A representation that predicts a distribution over ab colours (`bins`: Zhang et al.'s gamut bins;
`palette`: the k-means colours) says per pixel how sure it is. Three measures of that, each in
[0, 1], 1 = sure, computed from the model's predicted distribution p = softmax(z) (temperature 1:
the decoding temperature only sharpens the distribution for the colour it paints, so re-choosing
T on val leaves the confidence alone) over the centres c_q (ab, Lab units), and the decoded ab â
(the annealed mean, or the argmax colour):

- `entropy` (the default): 1 - H(p) / log Q, with H(p) = -Σ p_q log p_q and Q the number of
  centres: 1 for all mass on one centre, 0 for a flat distribution;
- `radius`: Σ p_q over the centres within `radius` ab units of â (|c_q - â| <= radius): the
  probability that the true colour is near the colour painted;
- `spread`: r / (r + s), with s = Σ p_q |c_q - â| the expected distance of the distribution from
  the decoded colour and r = `radius`: 1 when all mass sits at â, 1/2 at s = r, towards 0 as s grows.

The shrink rule (part of the model's decoding when `shrink_gamma` > 0): ab_out = ab · g(c) with
g(c) = min(c / c0, 1) ** γ. At or above the threshold c0 (`shrink_threshold`) a pixel keeps its
colour; below it the chroma falls towards neutral, to 0 at c = 0 (hue kept: ab is only scaled).
γ = 0 turns the rule off (g = 1); γ = 1 is linear, larger γ fades faster. c0 = 1 gives the plain
ab · c**γ. Monotone in c, so a surer pixel never gets less colour than a less sure one.

`auroc` says how well a confidence ranks the pixels the model got wrong (ab error above 10) below
those it got right. Over a test set it is pooled from per-image histograms (`histograms`,
`auroc_from_histograms`): each image's wrong and right pixels counted in HIST_BINS equal
confidence bins on [0, 1], so a bootstrap resample of images pools its pixels by summing counts;
pixels in one bin (width 0.01) count as tied. `reliability` groups the same counts into a table
of confidence bins -> the share of right pixels. Choosing the shrink's parameters on val is shrink_choice.py's (kept apart:
every stage that loads a model imports this module, and none needs the scoring).
"""

from __future__ import annotations

import math

import numpy as np

MEASURES = ("entropy", "radius", "spread")
DEFAULT_MEASURE = "entropy"
DEFAULT_RADIUS = 10.0  # ab units: one bin of the default 10-unit gamut grid
WRONG_ABOVE = 10.0  # auroc: a pixel whose ab error exceeds this many units counts as wrong
HIST_BINS = 100  # histograms: equal confidence bins on [0, 1] (width 0.01), a confidence of 1 in the last
RELIABILITY_BINS = 10  # reliability: the table's bins, each RELIABILITY_BINS-th of [0, 1] (HIST_BINS a multiple)


def measure(log_probs, centers, decoded, name: str = DEFAULT_MEASURE, radius: float = DEFAULT_RADIUS):
    """Confidence (B, 1, h, w) in [0, 1] of a distribution over centres.

    log_probs: (B, Q, h, w) log-probabilities (log_softmax of the logits at temperature 1);
    centers: (Q, 2) ab of each class, Lab units; decoded: (B, 2, h, w) the ab the model paints."""
    if name not in MEASURES:
        raise ValueError(f"unknown confidence measure {name!r}; known: {', '.join(MEASURES)}")
    log_probs = log_probs.float()
    probs = log_probs.exp()
    q = log_probs.shape[1]
    if name == "entropy":
        entropy = -(probs * log_probs).sum(dim=1, keepdim=True)
        return (1.0 - entropy / math.log(q)).clamp(0.0, 1.0)
    centers = centers.to(probs)
    d2 = None  # squared distance of every centre to the decoded ab, one channel at a time
    for d in range(2):
        term = (decoded[:, d : d + 1].float() - centers[:, d].view(1, -1, 1, 1)) ** 2
        d2 = term if d2 is None else d2 + term
    if name == "radius":
        return (probs * (d2 <= radius**2).to(probs.dtype)).sum(dim=1, keepdim=True).clamp(0.0, 1.0)
    spread = (probs * d2.sqrt()).sum(dim=1, keepdim=True)
    return radius / (radius + spread)


def shrink_factor(conf, gamma: float, threshold: float = 1.0):
    """g(c) = min(c / threshold, 1) ** gamma, the factor ab is scaled by (1 everywhere at gamma 0)."""
    import torch

    if gamma <= 0:
        return torch.ones_like(conf)
    return (conf / threshold).clamp(0.0, 1.0) ** gamma


def auroc(confidence, error, wrong_above: float = WRONG_ABOVE) -> float:
    """Area under the ROC curve of low confidence as a detector of wrong pixels (ab error >
    `wrong_above`): the probability that a wrong pixel is less confident than a right one, ties
    counting one half (the Mann-Whitney U statistic from mid-ranks). 0.5: no better than chance;
    NaN when every pixel is wrong or every pixel is right. Pure numpy; any shapes of equal size."""
    conf = np.asarray(confidence, np.float64).ravel()
    wrong = np.asarray(error, np.float64).ravel() > wrong_above
    if conf.shape != wrong.shape:
        raise ValueError(f"confidence and error differ in size: {conf.size} and {wrong.size}")
    n_wrong = int(wrong.sum())
    n_right = wrong.size - n_wrong
    if n_wrong == 0 or n_right == 0:
        return float("nan")
    # Rank by doubt (-confidence), tied values sharing the mean of their ranks (1-based).
    _, inverse, counts = np.unique(-conf, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    mid_rank = last - (counts - 1) / 2.0
    rank_sum = mid_rank[inverse.ravel()][wrong].sum()
    u = rank_sum - n_wrong * (n_wrong + 1) / 2.0
    return float(u / (n_wrong * n_right))


def histograms(confidence, error, wrong_above: float = WRONG_ABOVE, bins: int = HIST_BINS) -> dict[str, np.ndarray]:
    """One image's pixels counted by confidence bin (`bins` equal bins on [0, 1], bin = min(floor(c
    · bins), bins - 1)): `wrong` and `right` (ab error above / at most wrong_above), and
    `confidence_sum` (the sum of the confidences in each bin, for a bin's mean). Summed over images
    they pool the images' pixels: what auroc_from_histograms and reliability read."""
    conf = np.asarray(confidence, np.float64).ravel()
    wrong = np.asarray(error, np.float64).ravel() > wrong_above
    if conf.shape != wrong.shape:
        raise ValueError(f"confidence and error differ in size: {conf.size} and {wrong.size}")
    index = np.minimum((np.clip(conf, 0.0, 1.0) * bins).astype(np.int64), bins - 1)
    return {"wrong": np.bincount(index[wrong], minlength=bins).astype(np.float64),
            "right": np.bincount(index[~wrong], minlength=bins).astype(np.float64),
            "confidence_sum": np.bincount(index, weights=conf, minlength=bins)}


def auroc_from_histograms(wrong, right) -> np.ndarray:
    """auroc from binned counts (arrays (..., bins), e.g. one row per bootstrap resample): the
    probability that a wrong pixel sits in a lower confidence bin than a right one, pixels in the
    same bin counting one half. NaN where there is no wrong or no right pixel."""
    wrong, right = np.asarray(wrong, np.float64), np.asarray(right, np.float64)
    above = np.cumsum(right[..., ::-1], axis=-1)[..., ::-1] - right  # right pixels in higher bins
    u = (wrong * (above + 0.5 * right)).sum(axis=-1)
    pairs = wrong.sum(axis=-1) * right.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, u / np.where(pairs > 0, pairs, 1.0), np.nan)


def reliability(wrong, right, confidence_sum, groups: int = RELIABILITY_BINS) -> list[dict]:
    """The reliability table from pooled histograms (HIST_BINS long): per confidence bin [low,
    high) of `groups` equal bins, the pixels in it, their mean confidence and the share of them the
    model got right (ab error <= WRONG_ABOVE); None for both in an empty bin."""
    wrong, right, total = (np.asarray(x, np.float64).reshape(groups, -1).sum(axis=1)
                           for x in (wrong, right, confidence_sum))
    rows = []
    for i in range(groups):
        pixels = wrong[i] + right[i]
        rows.append({"low": i / groups, "high": (i + 1) / groups, "pixels": int(pixels),
                     "mean_confidence": float(total[i] / pixels) if pixels else None,
                     "share_right": float(right[i] / pixels) if pixels else None})
    return rows
