"""The prepared Lab arrays of one split, memory-mapped, served to PyTorch a batch at a time.

Reading a whole sorted batch of rows from the memory map at once, rather than one image per
__getitem__, keeps the data path cheap next to the network (no per-image Python work).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from chromalab.core.errors import UserError


def load_split(prepared_dir, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(L, ab) memory maps of one split, shapes (N, 1, S, S) and (N, 2, S, S), in Lab units."""
    prepared_dir = Path(prepared_dir)
    try:
        L = np.load(prepared_dir / f"{split}_L.npy", mmap_mode="r")
        ab = np.load(prepared_dir / f"{split}_ab.npy", mmap_mode="r")
    except FileNotFoundError as err:
        raise UserError(f"{err.filename}: missing; run the prepare stage first (dvc repro prepare)") from None
    if len(L) != len(ab):
        raise UserError(f"{prepared_dir}: {split}_L.npy and {split}_ab.npy disagree on the number of images")
    return L, ab


def load_summary(prepared_dir) -> dict:
    path = Path(prepared_dir) / "summary.json"
    if not path.is_file():
        raise UserError(f"{path}: missing; run the prepare stage first (dvc repro prepare)")
    return json.loads(path.read_text())


def load_labels(prepared_dir, split: str, count: int) -> np.ndarray:
    """Class index per image (-1: no label)."""
    path = Path(prepared_dir) / f"{split}_label.npy"
    return np.load(path).astype(np.int64) if path.is_file() else np.full(count, -1, np.int64)


class LabBatches(torch.utils.data.Dataset):
    """Indexed by a list of row numbers (from a BatchSampler); returns a batch as a dict:
    float32 `L` (B, 1, S, S) and `ab` (B, 2, S, S) in Lab units, int64 `label` (B,), and `rows`."""

    def __init__(self, prepared_dir, split: str):
        self.prepared_dir, self.split = Path(prepared_dir), split
        self.L, self.ab = load_split(prepared_dir, split)
        self.labels = load_labels(prepared_dir, split, len(self.L))

    def __len__(self):
        return len(self.L)

    def __getitem__(self, rows):
        rows = np.sort(np.asarray(rows))  # sorted reads walk the memory map forwards
        return {
            "L": torch.from_numpy(np.ascontiguousarray(self.L[rows], dtype=np.float32)),
            "ab": torch.from_numpy(np.ascontiguousarray(self.ab[rows], dtype=np.float32)),
            "label": torch.from_numpy(self.labels[rows]),
            "rows": torch.from_numpy(rows),
        }


def batch_loader(dataset: LabBatches, batch_size: int, shuffle: bool, seed: int = 0,
                 num_workers: int = 0, pin_memory: bool = False):
    """A DataLoader that hands whole batches of row numbers to LabBatches (seeded shuffling)."""
    generator = torch.Generator().manual_seed(seed)
    rows = (torch.utils.data.RandomSampler(dataset, generator=generator) if shuffle
            else torch.utils.data.SequentialSampler(dataset))
    sampler = torch.utils.data.BatchSampler(rows, batch_size=batch_size, drop_last=False)
    return torch.utils.data.DataLoader(
        dataset, sampler=sampler, batch_size=None, num_workers=num_workers,
        pin_memory=pin_memory, persistent_workers=num_workers > 0,
    )
