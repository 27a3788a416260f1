"""Training augmentation that moves pixels and never changes their colours: mirroring and shifts,
drawn per epoch from the seed alone (a resumed run and every DDP process draw the same)."""

from __future__ import annotations

import torch
from torch import nn

from chromalab.core.config import TrainParams


def augmentation_table(n: int, params: TrainParams, epoch: int) -> dict:
    """Per-image augmentation of one epoch, drawn from (seed, epoch) alone: a resumed run and
    every DDP process draw the same as one uninterrupted process. Mirroring and shifting move
    pixels, never change their colours."""
    g = torch.Generator().manual_seed(params.seed * 100_003 + epoch)
    flip = torch.rand(n, generator=g) < 0.5 if params.hflip else torch.zeros(n, dtype=torch.bool)
    shift = torch.randint(-params.translate, params.translate + 1, (n, 2), generator=g)
    return {"flip": flip, "shift": shift}


def augment(L: torch.Tensor, ab: torch.Tensor, rows: torch.Tensor, table: dict, translate: int):
    """Mirror and shift each image of a batch as the epoch's table says (L and ab together)."""
    flip = table["flip"][rows.cpu()].to(L.device)[:, None, None, None]
    L, ab = torch.where(flip, L.flip(-1), L), torch.where(flip, ab.flip(-1), ab)
    if translate:
        # Reflect-pad, then cut each image's window at its own offset (CIFAR's classic shift).
        size = L.shape[-2:]
        both = nn.functional.pad(torch.cat([L, ab], 1), [translate] * 4, mode="reflect")
        shifts = table["shift"][rows.cpu()] + translate
        both = torch.stack([img[:, dy:dy + size[0], dx:dx + size[1]] for img, (dy, dx) in zip(both, shifts.tolist())])
        L, ab = both[:, :1], both[:, 1:]
    return L, ab
