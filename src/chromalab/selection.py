"""Choosing on the validation split: its loss and PSNR each epoch, the annealed mean's decoding
temperature, and which epoch's model is kept. The test split is never seen here."""

from __future__ import annotations

import logging

import numpy as np
import torch

from chromalab import color, metrics
from chromalab.colorizer import Colorizer, batch_loss
from chromalab.config import TrainParams
from chromalab.feature_cache import extra_inputs

log = logging.getLogger(__name__)


@torch.no_grad()
def validate(colorizer: Colorizer, loader, device, class_loss_weight: float, cache=None) -> dict:
    """Mean loss and mean PSNR (uint8 RGB, as the evaluate stage scores) on a held-out split."""
    colorizer.eval()
    losses, psnrs = [], []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        loss, out = batch_loss(colorizer, batch, class_loss_weight, extra_inputs(cache, batch))
        losses.append(loss.item() * len(batch["L"]))
        pred = colorizer.decode(out, batch["L"]).float().cpu().numpy()
        for l_plane, p, t in zip(batch["L"].cpu().numpy(), pred, batch["ab"].cpu().numpy()):
            psnrs.append(metrics.psnr(color.lab_planes_to_rgb_uint8(l_plane, p),
                                      color.lab_planes_to_rgb_uint8(l_plane, t)))
    if not psnrs:  # no val split (val_fraction 0): NaN, so every epoch counts as the best so far
        return {"val_loss": float("nan"), "val_psnr": float("nan")}
    return {"val_loss": sum(losses) / len(psnrs), "val_psnr": float(np.mean(psnrs))}


def annealed(colorizer: Colorizer) -> bool:
    """Whether the colorizer decodes by an annealed mean, so a temperature can be chosen."""
    rep = colorizer.representation
    return hasattr(rep, "temperature") and getattr(rep, "decode_mode", "annealed_mean") == "annealed_mean"


@torch.no_grad()
def tune_temperature(colorizer: Colorizer, loader, device, temperatures: list, max_delta_cf: float,
                     cache=None) -> tuple[float, list[dict]]:
    """Zhang et al.'s annealed mean trades colour for accuracy through T. Score each T on the val
    split; keep the best PSNR among those within max_delta_cf of the truth's colourfulness, else
    the T whose colourfulness is closest. Returns (T, the sweep)."""
    colorizer.eval()
    accumulators = {float(t): metrics.MetricAccumulator() for t in temperatures}
    for batch in loader:  # the network runs once per batch; only the decoding depends on T
        batch = {k: v.to(device) for k, v in batch.items()}
        out = colorizer.outputs(batch["L"], **extra_inputs(cache, batch))
        L, truth = batch["L"].cpu().numpy(), batch["ab"].cpu().numpy()
        for t, acc in accumulators.items():
            colorizer.representation.temperature = t
            acc.update(L, colorizer.decode(out, batch["L"]).float().cpu().numpy(), truth)
    sweep = []
    for t, acc in accumulators.items():
        r = acc.result()
        sweep.append({"temperature": t, "val_psnr": r["psnr"], "val_delta_colorfulness": r["delta_colorfulness"]})
    faithful = [s for s in sweep if s["val_delta_colorfulness"] <= max_delta_cf]
    chosen = max(faithful, key=lambda s: s["val_psnr"]) if faithful else min(sweep, key=lambda s: s["val_delta_colorfulness"])
    colorizer.representation.temperature = chosen["temperature"]
    return chosen["temperature"], sweep


def sweep_temperature(colorizer: Colorizer, config: dict, params: TrainParams, val_loader, device, cache) -> dict:
    """This epoch's decoding temperature, chosen on val (tune_temperature), written into `config`;
    returns the history columns it fills."""
    t, sweep = tune_temperature(colorizer, val_loader, device, params.temperatures, params.max_delta_colorfulness,
                                cache)
    chosen = next(s for s in sweep if s["temperature"] == t)
    config["representation_args"] = {**config["representation_args"], "temperature": t}
    config["temperature_sweep"] = sweep
    log.info("decoding temperature %.2f chosen on val (%s)", t, ", ".join(
        f"T={s['temperature']:g}: {s['val_psnr']:.2f} dB, ΔCF {s['val_delta_colorfulness']:.1f}" for s in sweep))
    return {"temperature": t, "val_psnr": chosen["val_psnr"], "val_delta_colorfulness": chosen["val_delta_colorfulness"]}


def better(new: dict, best: dict, sweeping: bool, max_delta_cf: float) -> bool:
    """Whether this epoch's model beats the best so far: lower val loss (NaN, no val split: the
    last one wins); with a temperature sweep, tune_temperature's own rule (faithful colourfulness
    first, then PSNR)."""
    if not sweeping:
        return not new["val_loss"] >= best["val_loss"]

    def key(c):
        faithful = c["val_delta_colorfulness"] <= max_delta_cf
        return faithful, c["val_psnr"] if faithful else -c["val_delta_colorfulness"]

    return key(new) > key(best)
