"""Choosing on the validation split: its loss, PSNR and neutral chroma each epoch, the annealed
mean's decoding temperature, and which epoch's model is kept. The test split is never seen here.

One rule (`choose`) picks the temperature and, for a model with a temperature sweep, the epoch:
the best val PSNR among the candidates whose val ΔCF is within train.max_delta_colorfulness and
whose val neutral chroma is within train.max_neutral_chroma (no limit when null); when none is
within both, the candidate that misses them least (`violation`: each excess divided by its limit,
summed), then the best val PSNR."""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from chromalab.colorizing.colorizer import Colorizer, batch_loss
from chromalab.core import color
from chromalab.core.config import TrainParams
from chromalab.scoring import metrics
from chromalab.training.feature_cache import extra_inputs

log = logging.getLogger(__name__)


@torch.no_grad()
def validate(colorizer: Colorizer, loader, device, class_loss_weight: float, cache=None,
             neutral_threshold: float = metrics.NEUTRAL_THRESHOLD) -> dict:
    """Mean loss, mean PSNR (uint8 RGB, as the evaluate stage scores) and neutral chroma (the mean
    predicted chroma of the truly neutral pixels, pooled: metrics.colour_cast) on a held-out split."""
    colorizer.eval()
    losses, psnrs, casts = [], [], []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        loss, out = batch_loss(colorizer, batch, class_loss_weight, extra_inputs(cache, batch))
        losses.append(loss.item() * len(batch["L"]))
        pred, truth = colorizer.decode(out, batch["L"]).float().cpu().numpy(), batch["ab"].cpu().numpy()
        casts.append(metrics.colour_cast(pred, truth, neutral_threshold))
        for l_plane, p, t in zip(batch["L"].cpu().numpy(), pred, truth):
            psnrs.append(metrics.psnr(color.lab_planes_to_rgb_uint8(l_plane, p),
                                      color.lab_planes_to_rgb_uint8(l_plane, t)))
    if not psnrs:  # no val split (val_fraction 0): NaN, so every epoch counts as the best so far
        return {"val_loss": float("nan"), "val_psnr": float("nan"), "val_neutral_chroma": float("nan")}
    cast = metrics.pooled_colour_cast({k: np.concatenate([c[k] for c in casts]) for k in casts[0]})
    return {"val_loss": sum(losses) / len(psnrs), "val_psnr": float(np.mean(psnrs)),
            "val_neutral_chroma": _nan_if_none(cast["neutral_chroma"])}


def _nan_if_none(value) -> float:
    """NaN for an undefined score (no neutral pixel on val): history.csv and MLflow take numbers."""
    return float("nan") if value is None else float(value)


# --- the one rule that chooses on val: the temperature, and the epoch of a sweeping model ---------


def violation(candidate: dict, max_delta_cf: float | None, max_neutral_chroma: float | None) -> float:
    """How far a candidate misses the limits: the sum over the limits set of its excess divided by
    the limit (by 1 for a limit of 0), e.g. ΔCF 6 against 5 is 0.2; 0 within every limit. A value
    that is missing or NaN (no val neutral pixel) misses nothing."""
    total = 0.0
    for key, limit in (("val_delta_colorfulness", max_delta_cf), ("val_neutral_chroma", max_neutral_chroma)):
        value = candidate.get(key)
        if limit is None or value is None or math.isnan(value):
            continue
        total += max(0.0, value - limit) / (limit if limit > 0 else 1.0)
    return total


def choose(candidates: list[dict], max_delta_cf: float | None, max_neutral_chroma: float | None = None) -> dict:
    """The rule, for temperatures and epochs alike: the best val PSNR among the candidates with
    val ΔCF <= max_delta_cf and val neutral chroma <= max_neutral_chroma (None: no limit); when no
    candidate is within both, the one with the smallest violation (each excess normalised by its
    limit, summed), then the best val PSNR. The first wins a tie."""
    return max(candidates, key=lambda c: _rank(c, max_delta_cf, max_neutral_chroma))


def _rank(candidate: dict, max_delta_cf, max_neutral_chroma) -> tuple:
    return -violation(candidate, max_delta_cf, max_neutral_chroma), candidate["val_psnr"]


def annealed(colorizer: Colorizer) -> bool:
    """Whether the colorizer decodes by an annealed mean, so a temperature can be chosen."""
    rep = colorizer.representation
    return hasattr(rep, "temperature") and getattr(rep, "decode_mode", "annealed_mean") == "annealed_mean"


class DecodingScores:
    """PSNR, colourfulness (truth's and prediction's) and the colour cast of one decoding on the val
    split, as the evaluate stage defines them (metrics.py), without what choosing does not use
    (SSIM, AuC histograms): a sweep scores every candidate decoding on every val image."""

    def __init__(self, neutral_threshold: float):
        self.neutral_threshold = neutral_threshold
        self.psnr, self.cf, self.cf_gt, self.casts = [], [], [], []

    def update(self, L: np.ndarray, pred: np.ndarray, truth: np.ndarray, truth_rgb: list, truth_cf: list) -> None:
        for l_plane, p, t_rgb in zip(L, pred, truth_rgb):
            p_rgb = color.lab_planes_to_rgb_uint8(l_plane, p)
            self.psnr.append(metrics.psnr(p_rgb, t_rgb))
            self.cf.append(metrics.colorfulness(p_rgb))
        self.cf_gt += truth_cf
        self.casts.append(metrics.colour_cast(pred, truth, self.neutral_threshold))

    def result(self) -> dict:
        cast = metrics.pooled_colour_cast({k: np.concatenate([c[k] for c in self.casts]) for k in self.casts[0]})
        return {"val_psnr": float(np.mean(self.psnr)),
                "val_delta_colorfulness": float(abs(np.mean(self.cf) - np.mean(self.cf_gt))),
                "val_neutral_chroma": _nan_if_none(cast["neutral_chroma"]),
                "val_colorfulness": float(np.mean(self.cf)), "val_colorfulness_gt": float(np.mean(self.cf_gt)),
                "images": len(self.psnr)}


def decodings(temperatures: list, prior_corrections: list | None, representation) -> list[tuple[float, float]]:
    """The (T, c) pairs a sweep scores: every temperature with every prior correction (the
    representation's own c when no list is given)."""
    corrections = prior_corrections if prior_corrections else [getattr(representation, "prior_correction", 0.0)]
    return [(float(t), float(c)) for c in corrections for t in temperatures]


@torch.no_grad()
def tune_temperature(colorizer: Colorizer, loader, device, temperatures: list, max_delta_cf: float,
                     cache=None, max_neutral_chroma: float | None = None,
                     neutral_threshold: float = metrics.NEUTRAL_THRESHOLD,
                     prior_corrections: list | None = None) -> tuple[float, list[dict]]:
    """Zhang et al.'s annealed mean trades colour for accuracy through T, and the prior correction
    c (representations.BinClassification) trades rebalancing's colour for neutral greys. Score
    each (T, c) on the val split and pick one by `choose`: the best PSNR among those within
    max_delta_cf of the truth's colourfulness and with a neutral chroma of at most
    max_neutral_chroma, else the one that misses those limits least. Sets both on the
    representation; returns (T, the sweep), each entry with its temperature and prior_correction."""
    colorizer.eval()
    rep = colorizer.representation
    scores = {pair: DecodingScores(neutral_threshold) for pair in decodings(temperatures, prior_corrections, rep)}
    for batch in loader:  # the network runs once per batch; only the decoding depends on (T, c)
        batch = {k: v.to(device) for k, v in batch.items()}
        out = colorizer.outputs(batch["L"], **extra_inputs(cache, batch))
        L, truth = batch["L"].cpu().numpy(), batch["ab"].cpu().numpy()
        truth_rgb = [color.lab_planes_to_rgb_uint8(l_plane, t) for l_plane, t in zip(L, truth)]
        truth_cf = [metrics.colorfulness(rgb) for rgb in truth_rgb]
        for (t, c), acc in scores.items():
            rep.temperature = t
            if prior_corrections:
                rep.prior_correction = c
            acc.update(L, colorizer.decode(out, batch["L"]).float().cpu().numpy(), truth, truth_rgb, truth_cf)
    sweep = [{"temperature": t, **({"prior_correction": c} if prior_corrections else {}), **acc.result()}
             for (t, c), acc in scores.items()]
    chosen = choose(sweep, max_delta_cf, max_neutral_chroma)
    rep.temperature = chosen["temperature"]
    if prior_corrections:
        rep.prior_correction = chosen["prior_correction"]
    return chosen["temperature"], sweep


def sweep_temperature(colorizer: Colorizer, config: dict, params: TrainParams, val_loader, device, cache) -> dict:
    """This epoch's decoding temperature (and prior correction, with train.prior_corrections),
    chosen on val (tune_temperature), written into `config`; returns the history columns it fills."""
    corrections = params.prior_corrections if _corrects(colorizer) else None
    t, sweep = tune_temperature(colorizer, val_loader, device, params.temperatures, params.max_delta_colorfulness,
                                cache, params.max_neutral_chroma, params.neutral_threshold, corrections)
    chosen = choose(sweep, params.max_delta_colorfulness, params.max_neutral_chroma)
    picked = {"temperature": t, **({"prior_correction": chosen["prior_correction"]} if corrections else {})}
    config["representation_args"] = {**config["representation_args"], **picked}
    config["temperature_sweep"] = sweep
    log.info("decoding %s chosen on val (%s)", _describe(chosen), ", ".join(
        f"{_describe(s)}: {s['val_psnr']:.2f} dB, ΔCF {s['val_delta_colorfulness']:.1f}, "
        f"neutral chroma {s['val_neutral_chroma']:.1f}" for s in sweep))
    row = {key: chosen[key] for key in ("temperature", "val_psnr", "val_delta_colorfulness", "val_neutral_chroma")}
    return {**row, "prior_correction": chosen["prior_correction"]} if corrections else row


def _corrects(colorizer: Colorizer) -> bool:
    """Whether the representation decodes with a prior correction (bins) that a sweep can choose."""
    return hasattr(colorizer.representation, "prior_correction")


def _describe(candidate: dict) -> str:
    c = candidate.get("prior_correction")
    return f"T={candidate['temperature']:g}" + ("" if c is None else f" c={c:g}")


def better(new: dict, best: dict, sweeping: bool, max_delta_cf: float,
           max_neutral_chroma: float | None = None) -> bool:
    """Whether this epoch's model beats the best so far. With a temperature sweep, `choose`'s rule
    (within the ΔCF and neutral chroma limits first, then val PSNR). Without one, the lower val
    loss (NaN, no val split: the last one wins), among the epochs within max_neutral_chroma when it
    is set (else the smaller excess first)."""
    if sweeping:
        return _rank(new, max_delta_cf, max_neutral_chroma) > _rank(best, max_delta_cf, max_neutral_chroma)
    excess_new, excess_best = violation(new, None, max_neutral_chroma), violation(best, None, max_neutral_chroma)
    if excess_new != excess_best:
        return excess_new < excess_best
    return not new["val_loss"] >= best["val_loss"]
