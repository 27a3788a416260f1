"""Which device to run on: `auto` is CUDA when present, else the CPU (training and colorizing)."""

from __future__ import annotations

import re

import torch

from chromalab.core.errors import UserError

DEVICE_NAMES = "auto, cpu, cuda or cuda:N"


def select_device(name: str, option: str = "train.device") -> torch.device:
    """`auto` is CUDA when present, else the CPU. Anything but auto, cpu, cuda and cuda:N, or CUDA
    asked for without one, is a user error naming `option` (the param or flag the value came from)."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(name)):
        raise UserError(f"{option} {name}: expected {DEVICE_NAMES}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"{option} {name}: this machine has no CUDA device (use auto or cpu)")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise UserError(f"{option} {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                            f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return torch.device(name)
