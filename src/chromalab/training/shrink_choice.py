"""Choosing the low-confidence shrink's parameters on the validation split (confidence.py has the
rule), and the mean pull β beside them (representations.py): score a grid of (measure, γ, c0, β) on
the val outputs, PSNR, colourfulness and neutral chroma as the evaluate stage scores them, and keep
one by the decoding temperature's rule (selection.py): the best PSNR among those whose
colourfulness is within a tolerance of the truth's (and whose neutral chroma is within its limit).
Also each measure's AUROC against the pixels the model got wrong. The network runs once per batch,
before: only the decoding changes between grid points.

`choose_on_val` is what training runs at its end when train.shrink_gammas or train.mean_pulls is
set: it scores the grid on the best checkpoint and writes the choice into it.
"""

from __future__ import annotations

import itertools
import math
import logging
from pathlib import Path

import numpy as np
import torch

from chromalab.colorizing import checkpoint
from chromalab.colorizing.confidence import DEFAULT_MEASURE, MEASURES, WRONG_ABOVE, auroc
from chromalab.colorizing.representations import pulls_off
from chromalab.core import color
from chromalab.core.config import TrainParams
from chromalab.scoring import metrics
from chromalab.training.feature_cache import extra_inputs
from chromalab.training.selection import DecodingScores, choose

log = logging.getLogger(__name__)


def _knobs(rep) -> dict:
    return {k: getattr(rep, k) for k in ("shrink_gamma", "shrink_threshold", "confidence_measure", "mean_pull")}


def _set(rep, knobs: dict) -> None:
    for k, v in knobs.items():
        setattr(rep, k, v)


def _as_tensor(x):
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))


def score_shrink(colorizer, batches, gammas, thresholds=(1.0,), measures=(DEFAULT_MEASURE,),
                 neutral_threshold: float = metrics.NEUTRAL_THRESHOLD, pulls=(0.0,)) -> list[dict]:
    """Score the shrink rule on val outputs for every (measure, gamma, threshold) of the grid, each
    with every mean pull β of `pulls` after it (β = 0, none, always scored, first).

    `colorizer`: a Colorizer whose representation has a confidence (bins, palette); `batches`: an
    iterable of (L, ab, outputs): L (B, 1, H, W) and the true ab (B, 2, H, W) in Lab units, and
    the network's outputs for L (colorizer.outputs(L); at the output resolution, which decode
    upsamples from), e.g. collected over the val loader. The network is not run here: only the
    decoding changes between grid points. gamma 0 (no shrink) is always scored, once, as the
    reference. The representation's own knobs are restored afterwards.

    Returns one row per grid point: measure, gamma, threshold, pull (β), psnr (mean over images, uint8 RGB
    as the evaluate stage scores), colorfulness and colorfulness_gt (means), delta_colorfulness
    (|difference of the means|), mean_chroma (of the decoded ab, over all pixels), neutral_chroma
    (the mean decoded chroma of the pixels whose true chroma is below neutral_threshold, pooled:
    metrics.colour_cast; None without any), images."""
    rep = colorizer.representation
    if not getattr(rep, "has_confidence", False):
        raise ValueError(f"the {rep.name} representation has no confidence to shrink by")
    measures = tuple(measures)
    pulls = [0.0] + [float(b) for b in pulls if b > 0]
    shrinks = [(measures[0], 0.0, 1.0)]  # the reference: no shrink
    shrinks += [(m, float(g), float(t)) for m, g, t in itertools.product(measures, gammas, thresholds) if g > 0]
    grid = [(m, g, t, b) for b in pulls for m, g, t in shrinks]  # β = 0 first: it wins a tie
    # PSNR, colourfulness and neutral chroma scored as the temperature sweep scores them; the mean
    # chroma of the decoded ab is this grid's own.
    scores = {point: DecodingScores(neutral_threshold) for point in grid}
    chroma = {point: [0.0, 0] for point in grid}
    saved = _knobs(rep)
    try:
        with torch.no_grad():
            for L, ab, out in batches:
                L, ab, out = _as_tensor(L).float(), _as_tensor(ab).float(), _as_tensor(out)
                L_np, ab_np = L.cpu().numpy(), ab.cpu().numpy()
                truths = [color.lab_planes_to_rgb_uint8(l, t) for l, t in zip(L_np, ab_np)]
                cf_truth = [metrics.colorfulness(t) for t in truths]
                for point in grid:
                    _set(rep, {"confidence_measure": point[0], "shrink_gamma": point[1], "shrink_threshold": point[2],
                               "mean_pull": point[3]})
                    pred = colorizer.decode(out, L).float().cpu().numpy()
                    scores[point].update(L_np, pred, ab_np, truths, cf_truth)
                    chroma[point][0] += float(np.hypot(pred[:, 0], pred[:, 1]).sum())
                    chroma[point][1] += pred[:, 0].size
    finally:
        _set(rep, saved)
    rows = []
    for (m, g, t, b), acc in scores.items():
        if not acc.psnr:  # no val images
            rows.append({"measure": m, "gamma": g, "threshold": t, "pull": b, "psnr": 0.0, "colorfulness": 0.0,
                         "colorfulness_gt": 0.0, "delta_colorfulness": 0.0, "mean_chroma": 0.0,
                         "neutral_chroma": None, "images": 0})
            continue
        r = acc.result()
        neutral = None if math.isnan(r["val_neutral_chroma"]) else r["val_neutral_chroma"]
        rows.append({"measure": m, "gamma": g, "threshold": t, "pull": b, "psnr": r["val_psnr"],
                     "colorfulness": r["val_colorfulness"], "colorfulness_gt": r["val_colorfulness_gt"],
                     "delta_colorfulness": r["val_delta_colorfulness"],
                     "mean_chroma": chroma[(m, g, t, b)][0] / max(chroma[(m, g, t, b)][1], 1),
                     "neutral_chroma": neutral,
                     "images": r["images"]})
    return rows


def choose_shrink(rows: list[dict], max_delta_colorfulness: float, max_neutral_chroma: float | None = None) -> dict:
    """The row of score_shrink to keep, by the rule the decoding temperature and the epoch are
    chosen by (selection.choose): the best PSNR among the rows whose colourfulness is within
    max_delta_colorfulness of the truth's and whose neutral chroma is at most max_neutral_chroma
    (None: no limit); when none is within both, the row that misses them least (each excess over
    its limit divided by it, summed: with the ΔCF limit alone, the row closest to the truth's
    colourfulness), then the best PSNR. The first wins a tie."""
    if not rows:
        raise ValueError("no shrink parameters were scored")
    candidates = [{"val_psnr": r["psnr"], "val_delta_colorfulness": r["delta_colorfulness"],
                   "val_neutral_chroma": r.get("neutral_chroma"), "row": r} for r in rows]
    return choose(candidates, max_delta_colorfulness, max_neutral_chroma)["row"]


def confidence_auroc(colorizer, batches, measures=MEASURES, wrong_above: float = WRONG_ABOVE) -> dict:
    """{measure: auroc} of each confidence measure on val outputs (batches as score_shrink's),
    against the ab error of the decoding without the shrink, at L's resolution."""
    confs = {m: [] for m in measures}
    errors = []
    with pulls_off(colorizer.representation), torch.no_grad():
        for L, ab, out in batches:
            L, ab, out = _as_tensor(L).float(), _as_tensor(ab).float(), _as_tensor(out)
            errors.append((colorizer.decode(out, L).float() - ab).norm(dim=1).cpu().numpy().ravel())
            for m in measures:
                confs[m].append(colorizer.confidence(out, L, measure=m).cpu().numpy().ravel())
    error = np.concatenate(errors)
    return {m: auroc(np.concatenate(c), error, wrong_above) for m, c in confs.items()}


def shrink_args(row: dict) -> dict:
    """The representation_args a chosen row sets (merge them into a checkpoint config's
    representation_args, as the decoding temperature is, so the model carries them)."""
    return {"confidence_measure": row["measure"], "shrink_gamma": row["gamma"], "shrink_threshold": row["threshold"],
            "mean_pull": row.get("pull", 0.0)}


@torch.no_grad()
def choose_on_val(best_path, params: TrainParams, val_loader, device, cache=None) -> dict | None:
    """At the end of training, with train.shrink_gammas or train.mean_pulls set: the shrink and the mean
    pull of the best checkpoint (best_path) chosen on val, written into it. Returns its new config,
    or None where there is nothing to choose (a model without a confidence, or no val split): the
    checkpoint is left as it was.

    The grid: γ in shrink_gammas × c0 in shrink_thresholds, with the model's own confidence
    measure, and γ = 0 (no shrink) always among them, each followed by every mean pull β of
    mean_pulls and β = 0 (score_shrink). The rule, stated before any test image is seen, is the one
    the temperature and the epoch are chosen by (choose_shrink, selection.choose): the best val
    PSNR among the grid points whose val ΔCF is at most train.max_delta_colorfulness and whose val
    neutral chroma is at most train.max_neutral_chroma (no limit when null); when none is within
    both, the one that misses them least (each excess over its limit, divided by it, summed), then
    the best val PSNR; the first wins a tie, so γ = 0 and β = 0 unless a pull does better. The
    chosen γ, c0, β and measure go into the config's representation_args, the grid into
    config["shrink_sweep"], the measure's val AUROC into config["val_confidence_auroc"]."""
    best_path = Path(best_path)
    colorizer, config = checkpoint.load(best_path, device)
    if not colorizer.has_confidence:
        log.info("train.shrink_gammas: %s (%s) has no per-pixel confidence; no shrink to choose",
                 config.get("model"), config["representation"])
        return None
    measure = colorizer.representation.confidence_measure

    def batches():  # the network runs once per batch and pass; only the decoding changes on the grid
        for batch in val_loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            yield batch["L"], batch["ab"], colorizer.outputs(batch["L"], **extra_inputs(cache, batch))

    rows = score_shrink(colorizer, batches(), params.shrink_gammas or (), params.shrink_thresholds, (measure,),
                        params.neutral_threshold, params.mean_pulls or ())
    if not rows[0]["images"]:
        log.warning("train.shrink_gammas: no val images, so no shrink is chosen")
        return None
    chosen = choose_shrink(rows, params.max_delta_colorfulness, params.max_neutral_chroma)
    val_auroc = confidence_auroc(colorizer, batches(), (measure,))[measure]
    config["representation_args"] = {**config["representation_args"], **shrink_args(chosen)}
    config["shrink_sweep"] = rows
    config["val_confidence_auroc"] = None if np.isnan(val_auroc) else float(val_auroc)
    for key, value in shrink_args(chosen).items():
        setattr(colorizer.representation, key, value)
    checkpoint.save(best_path, colorizer, config)
    grid = "; ".join(f"γ={r['gamma']:g} c0={r['threshold']:g} β={r['pull']:g}: {r['psnr']:.2f} dB, "
                     f"ΔCF {r['delta_colorfulness']:.1f}, neutral chroma {_number(r['neutral_chroma'])}" for r in rows)
    log.info("%s: low-confidence shrink chosen on val: γ=%g, c0=%g (%s confidence, val AUROC %.3f), mean pull %g: "
             "%.2f dB, ΔCF %.1f, neutral chroma %s (grid: %s)", config.get("model"), chosen["gamma"],
             chosen["threshold"], measure, val_auroc, chosen["pull"], chosen["psnr"], chosen["delta_colorfulness"],
             _number(chosen["neutral_chroma"]), grid)
    return config


def _number(value) -> str:
    return "—" if value is None else f"{value:.1f}"
