"""Choosing the low-confidence shrink's parameters on the validation split (confidence.py has the
rule): score a grid of (measure, γ, c0) on the val outputs, PSNR and colourfulness as the
evaluate stage scores them, and keep one by the decoding temperature's rule (selection.py): the
best PSNR among those whose colourfulness is within a tolerance of the truth's. Also each
measure's AUROC against the pixels the model got wrong. The network runs once per batch, before:
only the decoding changes between grid points.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from chromalab import color, metrics
from chromalab.confidence import DEFAULT_MEASURE, MEASURES, WRONG_ABOVE, auroc


def _knobs(rep) -> dict:
    return {k: getattr(rep, k) for k in ("shrink_gamma", "shrink_threshold", "confidence_measure")}


def _set(rep, knobs: dict) -> None:
    for k, v in knobs.items():
        setattr(rep, k, v)


def _as_tensor(x):
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))


def score_shrink(colorizer, batches, gammas, thresholds=(1.0,), measures=(DEFAULT_MEASURE,)) -> list[dict]:
    """Score the shrink rule on val outputs for every (measure, gamma, threshold) of the grid.

    `colorizer`: a Colorizer whose representation has a confidence (bins, palette); `batches`: an
    iterable of (L, ab, outputs): L (B, 1, H, W) and the true ab (B, 2, H, W) in Lab units, and
    the network's outputs for L (colorizer.outputs(L); at the output resolution, which decode
    upsamples from), e.g. collected over the val loader. The network is not run here: only the
    decoding changes between grid points. gamma 0 (no shrink) is always scored, once, as the
    reference. The representation's own knobs are restored afterwards.

    Returns one row per grid point: measure, gamma, threshold, psnr (mean over images, uint8 RGB
    as the evaluate stage scores), colorfulness and colorfulness_gt (means), delta_colorfulness
    (|difference of the means|), mean_chroma (of the decoded ab, over all pixels), images."""
    rep = colorizer.representation
    if not getattr(rep, "has_confidence", False):
        raise ValueError(f"the {rep.name} representation has no confidence to shrink by")
    measures = tuple(measures)
    grid = [(measures[0], 0.0, 1.0)]  # the reference: no shrink
    grid += [(m, float(g), float(t)) for m, g, t in itertools.product(measures, gammas, thresholds) if g > 0]
    sums = {point: {"psnr": 0.0, "colorfulness": 0.0, "colorfulness_gt": 0.0, "chroma": 0.0, "pixels": 0, "images": 0}
            for point in grid}
    saved = _knobs(rep)
    try:
        with torch.no_grad():
            for L, ab, out in batches:
                L, ab, out = _as_tensor(L).float(), _as_tensor(ab).float(), _as_tensor(out)
                L_np, ab_np = L.cpu().numpy(), ab.cpu().numpy()
                truths = [color.lab_planes_to_rgb_uint8(l, t) for l, t in zip(L_np, ab_np)]
                cf_truth = [metrics.colorfulness(t) for t in truths]
                for point in grid:
                    _set(rep, {"confidence_measure": point[0], "shrink_gamma": point[1], "shrink_threshold": point[2]})
                    pred = colorizer.decode(out, L).float().cpu().numpy()
                    s = sums[point]
                    for l, p, truth, cf_t in zip(L_np, pred, truths, cf_truth):
                        rgb = color.lab_planes_to_rgb_uint8(l, p)
                        s["psnr"] += metrics.psnr(rgb, truth)
                        s["colorfulness"] += metrics.colorfulness(rgb)
                        s["colorfulness_gt"] += cf_t
                        s["images"] += 1
                    s["chroma"] += float(np.hypot(pred[:, 0], pred[:, 1]).sum())
                    s["pixels"] += pred[:, 0].size
    finally:
        _set(rep, saved)
    rows = []
    for (m, g, t), s in sums.items():
        n = max(s["images"], 1)
        cf, cf_gt = s["colorfulness"] / n, s["colorfulness_gt"] / n
        rows.append({"measure": m, "gamma": g, "threshold": t, "psnr": s["psnr"] / n, "colorfulness": cf,
                     "colorfulness_gt": cf_gt, "delta_colorfulness": abs(cf - cf_gt),
                     "mean_chroma": s["chroma"] / max(s["pixels"], 1), "images": s["images"]})
    return rows


def choose_shrink(rows: list[dict], max_delta_colorfulness: float) -> dict:
    """The row of score_shrink to keep, by the decoding temperature's rule (selection.py): the best
    PSNR among the rows whose colourfulness is within max_delta_colorfulness of the truth's, else
    the row whose colourfulness is closest to the truth's."""
    if not rows:
        raise ValueError("no shrink parameters were scored")
    faithful = [r for r in rows if r["delta_colorfulness"] <= max_delta_colorfulness]
    if faithful:
        return max(faithful, key=lambda r: r["psnr"])
    return min(rows, key=lambda r: r["delta_colorfulness"])


def confidence_auroc(colorizer, batches, measures=MEASURES, wrong_above: float = WRONG_ABOVE) -> dict:
    """{measure: auroc} of each confidence measure on val outputs (batches as score_shrink's),
    against the ab error of the decoding without the shrink, at L's resolution."""
    rep = colorizer.representation
    saved = _knobs(rep)
    confs = {m: [] for m in measures}
    errors = []
    try:
        _set(rep, {"shrink_gamma": 0.0})
        with torch.no_grad():
            for L, ab, out in batches:
                L, ab, out = _as_tensor(L).float(), _as_tensor(ab).float(), _as_tensor(out)
                errors.append((colorizer.decode(out, L).float() - ab).norm(dim=1).cpu().numpy().ravel())
                for m in measures:
                    confs[m].append(colorizer.confidence(out, L, measure=m).cpu().numpy().ravel())
    finally:
        _set(rep, saved)
    error = np.concatenate(errors)
    return {m: auroc(np.concatenate(c), error, wrong_above) for m, c in confs.items()}


def shrink_args(row: dict) -> dict:
    """The representation_args a chosen row sets (merge them into a checkpoint config's
    representation_args, as the decoding temperature is, so the model carries them)."""
    return {"confidence_measure": row["measure"], "shrink_gamma": row["gamma"], "shrink_threshold": row["threshold"]}
