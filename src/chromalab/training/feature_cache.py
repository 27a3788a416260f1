"""Features of a frozen pre-trained network, computed once per image of a split and reused every
epoch (Deep Koalarization precomputed its Inception embeddings the same way; encoder_unet's frozen
encoder blocks are cached alike)."""

from __future__ import annotations

import logging

import torch

from chromalab.colorizing.colorizer import Colorizer
from chromalab.core import color
from chromalab.data.lab_arrays import LabBatches, batch_loader

log = logging.getLogger(__name__)


class FeatureCache:
    """Per-image features of a frozen pre-trained network, computed once per split (Deep
    Koalarization precomputed its Inception embeddings the same way): each a tensor or a tuple of
    tensors (multi-scale maps), stored row by row. Spatial features (`precompute_mirrored`) are
    also computed for each mirrored image, which the flip augmentation then takes. `take` gives
    rows back in the form the network's precompute returned (a tuple of one stays a tuple)."""

    def __init__(self, plain: tuple, mirrored: tuple | None, as_tuple: bool = True):
        self.plain, self.mirrored, self.as_tuple = plain, mirrored, as_tuple

    def take(self, rows: torch.Tensor, flip: torch.Tensor | None = None):
        rows = rows.cpu()
        parts = [t[rows] for t in self.plain]
        if self.mirrored is not None and flip is not None and bool(flip.any()):
            parts = [torch.where(flip.view(-1, *[1] * (p.ndim - 1)), m[rows], p)
                     for p, m in zip(parts, self.mirrored)]
        return tuple(parts) if self.as_tuple else parts[0]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.plain + (self.mirrored or ()))


@torch.no_grad()
def precompute(colorizer: Colorizer, dataset: LabBatches, batch_size: int, device,
               mirrors: bool = True) -> FeatureCache | None:
    """The FeatureCache of a split for a network with frozen pre-trained features, else None.
    `mirrors`: also for the mirrored images, when the network's features are spatial (only the
    flip augmentation of the train split takes them)."""
    network = colorizer.network
    if not getattr(network, "precomputable", False) or len(dataset) == 0:
        return None
    colorizer.eval()
    mirrored = mirrors and getattr(network, "precompute_mirrored", False)
    stores: dict[str, list[torch.Tensor]] = {}
    as_tuple = True

    def put(key: str, start: int, feats) -> None:
        nonlocal as_tuple
        as_tuple = isinstance(feats, tuple)
        feats = feats if as_tuple else (feats,)
        if key not in stores:  # allocated once: the list-then-concatenate way would need twice the memory
            stores[key] = [torch.empty((len(dataset), *f.shape[1:]), dtype=f.dtype) for f in feats]
        for store, f in zip(stores[key], feats):
            store[start:start + len(f)] = f.cpu()

    # NHWC: the depthwise convolutions of EfficientNet/MobileNet encoders run about 1.7 times
    # faster in it on the CPU (measured on Lite0 at 128 px); the layout is restored afterwards.
    network.to(memory_format=torch.channels_last)
    start = 0
    try:
        for batch in batch_loader(dataset, batch_size, shuffle=False):
            x = color.normalize_l(batch["L"].to(device)).contiguous(memory_format=torch.channels_last)
            put("plain", start, network.precompute(x))
            if mirrored:
                put("mirrored", start, network.precompute(x.flip(-1).contiguous(memory_format=torch.channels_last)))
            start += len(x)
    finally:
        network.to(memory_format=torch.contiguous_format)
    cache = FeatureCache(tuple(stores["plain"]), tuple(stores["mirrored"]) if mirrored else None, as_tuple)
    log.info("features of the frozen network computed once for the %d %s images%s (%.0f MB)",
             len(dataset), dataset.split, " and their mirror images" if mirrored else "", cache.nbytes / 1e6)
    return cache


def extra_inputs(cache: FeatureCache | None, batch, flip=None) -> dict:
    """The network's extra inputs for a batch: its rows' cached features, moved to the batch's
    device (the cache lives in CPU memory; the model may be on a GPU)."""
    if cache is None:
        return {}
    feats = cache.take(batch["rows"], flip)
    device = batch["L"].device
    if isinstance(feats, tuple):
        return {"precomputed": tuple(f.to(device, non_blocking=True) for f in feats)}
    return {"precomputed": feats.to(device, non_blocking=True)}
