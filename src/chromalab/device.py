"""Which device to run on: `auto` is CUDA when present, else the CPU (training and colorizing)."""

from __future__ import annotations

import torch

from chromalab.errors import UserError


def select_device(name: str) -> torch.device:
    """`auto` is CUDA when present, else the CPU; asking for CUDA without one is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"train.device: {name} asked for, but this machine has no CUDA device")
    return torch.device(name)
