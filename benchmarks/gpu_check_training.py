"""gpu_check's training: a few steps of lite_bins with AMP and channels_last on the device, the
same steps on the CPU in float32, and the rules that judge the losses."""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager, nullcontext

import numpy as np
import torch
from torch import nn

from chromalab.colorizing.colorizer import Colorizer, batch_loss
from chromalab.core.config import TrainParams
from chromalab.core.errors import UserError
from chromalab.training.distributed import World
from chromalab.training.feature_cache import FeatureCache, precompute

# The loss must fall: mean of the last 20 % of the steps < (1 - LOSS_MARGIN) x mean of the first 20 %.
# Measured here on the CPU, lite_bins' loss falls by far more (docs/scaling.md); a run that only
# drifts with the batches stays within a few per cent.
LOSS_FRACTION = 0.2
LOSS_MARGIN = 0.10

# --- training -----------------------------------------------------------------------------------


def amp_setup(device: torch.device, mode: str):
    """(autocast context or nullcontext, dtype name, GradScaler or None). `auto` on CUDA is the
    pipeline's own rule (train.autocast: bf16 where supported, else fp16 with a scaler)."""
    from chromalab.training.train import autocast

    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return nullcontext(), "float32", None
    if mode == "auto":
        ctx, scaler = autocast(device, True)
        return ctx, str(ctx.fast_dtype).replace("torch.", ""), scaler
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise UserError(f"--amp bf16: {torch.cuda.get_device_name(device)} does not support bf16")
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return torch.autocast(device.type, dtype=dtype), mode.replace("bf16", "bfloat16").replace("fp16", "float16"), scaler


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class SeededDropout(nn.Module):
    """Dropout whose masks come from a CPU generator, moved to the input's device: two runs on
    different devices drop the same channels (CUDA's and the CPU's RNGs draw different numbers)."""

    def __init__(self, p: float, channelwise: bool, generator: torch.Generator):
        super().__init__()
        self.p, self.channelwise, self.generator = p, channelwise, generator

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        shape = (*x.shape[:2], *[1] * (x.ndim - 2)) if self.channelwise else x.shape
        keep = (torch.rand(shape, generator=self.generator) >= self.p).to(device=x.device, dtype=x.dtype)
        return x * keep / (1 - self.p)


def seed_dropout(module: nn.Module, seed: int) -> nn.Module:
    """Replace every Dropout / Dropout2d of `module` with a SeededDropout drawing from one generator."""
    generator = torch.Generator().manual_seed(seed)
    for name, child in list(module.named_modules()):
        if isinstance(child, (nn.Dropout, nn.Dropout2d)):
            parent = module.get_submodule(name.rpartition(".")[0]) if "." in name else module
            setattr(parent, name.rpartition(".")[2],
                    SeededDropout(child.p, isinstance(child, nn.Dropout2d), generator))
    return module


def place(colorizer: Colorizer, device: torch.device, channels_last: bool) -> Colorizer:
    colorizer.to(device)
    if channels_last:
        colorizer.to(memory_format=torch.channels_last)
    return colorizer


def to_device(t: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """A batch tensor on the device (from pinned memory, asynchronously, on CUDA), NHWC if asked."""
    if device.type == "cuda" and not t.is_pinned():
        t = t.pin_memory()
    t = t.to(device, non_blocking=device.type == "cuda")
    return t.contiguous(memory_format=torch.channels_last) if channels_last and t.ndim == 4 else t


def batches(n: int, batch_size: int, params: TrainParams):
    """(rows, the epoch's augmentation table) for step after step, epoch after epoch: train.py's
    own seeded batches and flips."""
    from chromalab.training.augment import augmentation_table
    from chromalab.training.train import epoch_batches

    epoch = 1
    while True:
        table = augmentation_table(n, params, epoch)
        for rows in epoch_batches(n, batch_size, World(), params, epoch):
            yield rows, table
        epoch += 1


def train_steps(colorizer: Colorizer, data, cache: FeatureCache | None, steps: int, device: torch.device,
                params: TrainParams, batch_size: int, lr: float, amp_mode: str, channels_last: bool,
                alpha: float = 0.0, warmup: int = 0) -> dict:
    """`steps` optimizer steps as train.py's loop takes them (Adam over the network's parameter
    groups, the LR schedule, flips, cached features), with AMP and channels_last as asked. Returns
    the losses, and the seconds from step `warmup` on (between synchronisations)."""
    from chromalab.training.augment import augment
    from chromalab.training.train import lr_factor, parameter_groups

    ctx, dtype, scaler = amp_setup(device, amp_mode)
    optimizer = torch.optim.Adam(parameter_groups(colorizer, lr), lr=lr, weight_decay=params.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(params.schedule, s, steps, 0))
    colorizer.train()
    losses, started, images = [], None, 0
    source = batches(len(data), batch_size, params)
    for step in range(steps):
        if step == warmup:
            sync(device)
            started = time.perf_counter()
        rows, table = next(source)
        batch = data[rows]  # rows stay on the CPU: they index the CPU-side tables and cache
        batch = {k: (to_device(v, device, channels_last) if k != "rows" else v) for k, v in batch.items()}
        batch["L"], batch["ab"] = augment(batch["L"], batch["ab"], batch["rows"], table, params.translate)
        extra = {}
        if cache is not None:
            # The cached features are CPU tensors: they go to the device with the batch.
            feats = cache.take(batch["rows"], table["flip"][batch["rows"]])
            feats = tuple(to_device(f, device, channels_last) for f in (feats if isinstance(feats, tuple) else (feats,)))
            extra = {"precomputed": feats if len(feats) > 1 else feats[0]}
        with ctx:
            loss, _ = batch_loss(colorizer, batch, alpha, extra)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        scheduler.step()
        losses.append(loss.detach())
        if step >= warmup:
            images += len(rows)
    sync(device)
    seconds = time.perf_counter() - started if started is not None else 0.0
    return {"losses": [float(v) for v in torch.stack(losses).float().cpu()], "dtype": dtype,
            "seconds": seconds, "images": images, "img_per_s": images / seconds if seconds else None,
            "grad_scale": float(scaler.get_scale()) if scaler is not None else None}


def timed_precompute(colorizer: Colorizer, data, batch_size: int, device: torch.device) -> tuple[FeatureCache | None, float]:
    sync(device)
    t0 = time.perf_counter()
    cache = precompute(colorizer, data, batch_size, device)
    sync(device)
    return cache, time.perf_counter() - t0


@contextmanager
def tf32(enabled: bool):
    """TF32 convolutions and matmuls on or off for a block (restored after)."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def loss_falls(losses: list[float], fraction: float = LOSS_FRACTION, margin: float = LOSS_MARGIN) -> dict:
    """Whether the mean of the last `fraction` of the losses is below (1 - margin) x the first's."""
    n = max(1, int(round(fraction * len(losses))))
    first, last = statistics.fmean(losses[:n]), statistics.fmean(losses[-n:])
    finite = all(np.isfinite(losses))
    ratio = last / first if first else float("inf")
    return {"first_mean": round(first, 6), "last_mean": round(last, 6), "steps_averaged": n,
            "ratio": round(ratio, 6), "must_be_below": 1 - margin, "all_finite": finite,
            "passed": bool(finite and ratio < 1 - margin)}


def losses_match(losses: list[float], reference: list[float], rtol: float) -> dict:
    """The largest relative difference of `losses` from `reference`, step by step, against rtol."""
    rel = [abs(a - b) / abs(b) if b else abs(a - b) for a, b in zip(losses, reference)]
    finite = all(np.isfinite(losses)) and all(np.isfinite(reference))
    return {"losses": [round(v, 6) for v in losses], "relative_differences": [float(f"{r:.3g}") for r in rel],
            "max_relative_difference": float(f"{max(rel):.3g}"), "tolerance": rtol,
            "passed": bool(finite and len(losses) == len(reference) and max(rel) <= rtol)}
