"""Scores read per dataset: when the photos come from several sources (data.path a list), each test
image belongs to one dataset (data/prepared/manifest.csv), and a mean over all of them can hide a
source the model fails on. Each dataset's statistics are the set statistics of uncertainty.py taken
on its own images, with their own bootstrap intervals."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from chromalab.scoring import uncertainty

# What a per-dataset row holds: accuracy, colour and the cast, each with its interval.
STATISTICS = ("psnr", "colorfulness", "delta_colorfulness", "neutral_chroma", "a_bias", "b_bias")


def split_datasets(prepared_dir, split: str = "test") -> list[str]:
    """The dataset of each image of `split`, in index order ('' for a single unnamed source)."""
    path = Path(prepared_dir) / "manifest.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = sorted((int(r["index"]), r.get("dataset") or "") for r in csv.DictReader(f) if r["split"] == split)
    return [dataset for _, dataset in rows]


def by_dataset(per_image: dict, datasets: list[str], seed: int, draws: int) -> dict:
    """{dataset: {images, STAT, STAT_ci}} for each named dataset; {} when there are fewer than two
    (a single source's breakdown would repeat the set's own scores)."""
    names = sorted(set(datasets) - {""})
    if len(names) < 2:
        return {}
    which = np.asarray(datasets)
    out = {}
    for name in names:
        mask = which == name
        subset = {k: np.asarray(v)[mask] for k, v in per_image.items() if len(v) == len(which)}
        ones = np.ones((1, int(mask.sum())))
        row = {"images": int(mask.sum())}
        for stat in STATISTICS:
            if all(column in subset for column in uncertainty.needs(stat)):
                value = float(uncertainty.statistic(stat, subset, ones)[0])
                row[stat] = None if np.isnan(value) else value
        if draws:
            found = uncertainty.intervals(subset, [s for s in STATISTICS if s in row], seed, draws)
            row.update({f"{k}_ci": {"low": low, "high": high} for k, (low, high) in found.items()})
        out[name] = row
    return out
