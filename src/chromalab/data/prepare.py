"""prepare stage: raw photos -> fixed-size Lab arrays on disk, split by source photo.

Outputs (data/prepared/):
- `{train,val,test}_L.npy` (N, 1, S, S) and `{split}_ab.npy` (N, 2, S, S): CIE Lab planes, written
  and read as memory-mapped .npy files so a dataset larger than RAM works; S is `size`, or for
  val and test `eval_size` when set: then each of their photos is whole, resized to S x S (the
  literature's protocol for scoring at 256 px);
- `{split}_label.npy` (N,) int16: the index of each image's class in summary.json's `labels`, or
  -1 for an image without a label (Iizuka et al.'s classification head learns from these);
- `manifest.csv`: one row per prepared image (split, index, source_id, label, raw path, crop box,
  dataset);
- `summary.json`: counts per split, photos dropped as already grey, size, dtype, class labels, and
  with several datasets (data.path a list) each one's photos and images per split.

Crops of one photo never straddle splits: the split is drawn over source photos, not crops.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from chromalab.core import atomic, color
from chromalab.core.config import PrepareParams
from chromalab.core.errors import UserError
from chromalab.core.images import load_rgb
from chromalab.data.manifest import read_manifest

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
CHUNK = 256  # images converted to Lab at a time: vectorised, yet bounded memory


def split_sources(rows: list[dict], params: PrepareParams, dataset: str = "") -> dict[str, str]:
    """Assign each source photo to a split with a seeded shuffle.

    A split the source publishes (CIFAR-10's test set, say) is kept; what is not published is
    drawn here: test from the unassigned photos, val from every photo not in test, so a source
    that publishes only train/test still gets a validation split carved from its train photos.
    Each dataset of a multi-source folder is drawn on its own (its own seed stream), so val and
    test hold photos of every dataset in its own proportions.
    """
    published = {r["source_id"]: r["split"] for r in rows if r.get("split")}
    sources = sorted({r["source_id"] for r in rows})
    rng = np.random.default_rng([params.seed, zlib.crc32(dataset.encode())] if dataset else params.seed)

    def shuffled(items):
        items = sorted(items)
        return [items[i] for i in rng.permutation(len(items))]

    def count(fraction, n):
        return 0 if fraction == 0 else max(1, int(round(fraction * n)))

    assignment = dict(published)
    free = shuffled(s for s in sources if s not in published)
    if "test" not in published.values():
        n_test = count(params.test_fraction, len(sources))
        assignment.update({s: "test" for s in free[:n_test]})
        free = free[n_test:]
    if "val" not in published.values():
        pool = shuffled([s for s, split in published.items() if split == "train"] + free)
        assignment.update({s: "val" for s in pool[: count(params.val_fraction, len(pool))]})
    assignment.update({s: "train" for s in free if s not in assignment})
    if "train" not in assignment.values():
        raise UserError(
            f"prepare: {len(sources)} colour photo(s){f' of {dataset}' if dataset else ''} cannot fill train/val/test splits "
            f"(val_fraction {params.val_fraction}, test_fraction {params.test_fraction}); add photos"
        )
    return assignment


def crop_boxes(width: int, height: int, params: PrepareParams, rng) -> list[tuple[int, int, int]]:
    """Square crops (x, y, side): one centred crop, or `crops_per_image` random ones."""
    short = min(width, height)
    if params.crops_per_image == 0:
        return [((width - short) // 2, (height - short) // 2, short)]
    low = max(1, int(params.min_crop_fraction * short))
    boxes = []
    for _ in range(params.crops_per_image):
        side = int(rng.integers(low, short + 1))
        x = int(rng.integers(0, width - side + 1))
        y = int(rng.integers(0, height - side + 1))
        boxes.append((x, y, side))
    return boxes


WHOLE = (0, 0, 0)  # the crop box that stands for the whole photo, resized (eval_size)


def split_size(split: str, params: PrepareParams) -> int:
    return params.eval_size if params.eval_size and split != "train" else params.size


def _crop(rgb: np.ndarray, box, size: int) -> np.ndarray:
    if box == WHOLE:
        return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.LANCZOS))
    x, y, side = box
    img = Image.fromarray(rgb[y : y + side, x : x + side])
    if side != size:
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(img)


def _plan(raw_dir: Path, rows: list[dict], params: PrepareParams):
    """First pass: decode each photo, drop the grey ones, choose splits and crop boxes."""
    colour_rows, grey = [], []
    for row in rows:
        rgb = load_rgb(raw_dir / row["path"])
        if color.mean_chroma(rgb) < params.grey_chroma:
            grey.append(row["path"])
        else:
            colour_rows.append((row, rgb.shape[1], rgb.shape[0]))
    if grey:
        log.info("dropped %d of %d photos that carry no colour (mean chroma < %.1f)",
                 len(grey), len(rows), params.grey_chroma)
    if not colour_rows:
        raise UserError(f"{raw_dir}: none of the {len(rows)} photos carries colour")
    datasets = sorted({row.get("dataset", "") for row, _, _ in colour_rows})
    unknown = sorted(set(params.sources or {}) - set(datasets))
    if unknown:
        raise UserError(f"prepare.sources: {', '.join(map(repr, unknown))} is not a dataset of data/raw "
                        f"(datasets: {', '.join(d for d in datasets if d) or 'one unnamed source'})")
    per_dataset = {d: params.for_source(d) for d in datasets}
    splits = {}
    for d in datasets:
        splits.update(split_sources([r for r, _, _ in colour_rows if r.get("dataset", "") == d], per_dataset[d], d))
    plan = {s: [] for s in SPLITS}
    for index, (row, width, height) in enumerate(colour_rows):
        # One generator per photo: its crops don't depend on which other photos are present.
        rng = np.random.default_rng([params.seed, index])
        split = splits[row["source_id"]]
        whole = params.eval_size and split != "train"
        for box in [WHOLE] if whole else crop_boxes(width, height, per_dataset[row.get("dataset", "")], rng):
            plan[split].append((row, box))
    return plan, grey


def _write_split(raw_dir: Path, out_dir: Path, split: str, items, params: PrepareParams, labels: list[str]):
    """Second pass: crop, convert to Lab in chunks, write into memory-mapped arrays."""
    n, s = len(items), split_size(split, params)
    index = {label: i for i, label in enumerate(labels)}
    np.save(out_dir / f"{split}_label.npy",
            np.array([index.get(row.get("label", ""), -1) for row, _ in items], dtype=np.int16))
    L = np.lib.format.open_memmap(out_dir / f"{split}_L.npy", "w+", params.dtype, (n, 1, s, s))
    ab = np.lib.format.open_memmap(out_dir / f"{split}_ab.npy", "w+", params.dtype, (n, 2, s, s))
    cached_path, cached_rgb = None, None
    for start in range(0, n, CHUNK):
        batch = []
        for row, box in items[start : start + CHUNK]:
            if row["path"] != cached_path:  # crops of one photo are consecutive: decode it once
                cached_path, cached_rgb = row["path"], load_rgb(raw_dir / row["path"])
            batch.append(_crop(cached_rgb, box, s))
        lab = color.rgb_to_lab(np.stack(batch)).transpose(0, 3, 1, 2)
        L[start : start + len(batch)] = lab[:, :1]
        ab[start : start + len(batch)] = lab[:, 1:]
    L.flush()
    ab.flush()
    del L, ab


def _manifest_csv(plan) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["split", "index", "source_id", "label", "raw_path", "x", "y", "side",  # side 0: whole photo
                     "dataset"])
    for split in SPLITS:
        for index, (row, (x, y, side)) in enumerate(plan[split]):
            writer.writerow([split, index, row["source_id"], row.get("label", ""), row["path"], x, y, side,
                             row.get("dataset", "")])
    return out.getvalue()


def prepare(params: PrepareParams, raw_dir, out_dir) -> dict:
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    rows = read_manifest(raw_dir / "manifest.csv")
    plan, grey = _plan(raw_dir, rows, params)
    manifest = _manifest_csv(plan)
    labels = sorted({row.get("label", "") for items in plan.values() for row, _ in items} - {""})
    summary = {
        "size": params.size,
        "eval_size": params.eval_size or params.size,
        "dtype": params.dtype,
        "images": {split: len(plan[split]) for split in SPLITS},
        "source_photos": {split: len({r["source_id"] for r, _ in plan[split]}) for split in SPLITS},
        "dropped_grey": len(grey),
        "dropped_grey_paths": grey,
        "labels": labels,
        "manifest_sha256": hashlib.sha256(manifest.encode()).hexdigest(),
    }
    datasets = sorted({row.get("dataset", "") for items in plan.values() for row, _ in items} - {""})
    if datasets:  # several sources: what each gave to each split (photos, and images made of them)
        summary["datasets"] = {d: {split: {"photos": len({r["source_id"] for r, _ in plan[split] if r["dataset"] == d}),
                                           "images": sum(r["dataset"] == d for r, _ in plan[split])}
                                   for split in SPLITS} for d in datasets}
    with atomic.atomic_path(out_dir, is_dir=True) as tmp:
        for split in SPLITS:
            _write_split(raw_dir, tmp, split, plan[split], params, labels)
        (tmp / "manifest.csv").write_text(manifest, encoding="utf-8")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    log.info("prepared %s images at %d px (%s photos) into %s",
             summary["images"], params.size, summary["source_photos"], out_dir)
    return summary
