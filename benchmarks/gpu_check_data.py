"""gpu_check's data: real photos as train arrays (data/prepared's when they exist, else crops of
the builtin photos written as prepare writes them)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from chromalab.core import color, config, paths
from chromalab.core.config import PrepareParams
from chromalab.core.errors import UserError
from chromalab.core.images import load_rgb
from chromalab.data.lab_arrays import LabBatches, load_summary
from chromalab.data.palette import fit_gamut

ROOT = Path(__file__).resolve().parents[1]


# --- data ---------------------------------------------------------------------------------------


def builtin_photo_paths() -> dict[str, Path]:
    """The real colour photos the `builtin` source ships (skimage, sklearn, matplotlib), by name."""
    from chromalab.data.sources import builtin

    return {c.source_id: c.path for c in builtin().candidates}


def write_prepared(out: Path, size: int, crops: int, seed: int, grey_chroma: float) -> dict:
    """A prepared folder's train split as the prepare stage writes it (float16 Lab memory maps and
    summary.json) from `crops` random crops of each builtin photo (prepare's own crop_boxes: sides
    from 35 % of the shorter side up, resized to `size`)."""
    from chromalab.data.prepare import _crop, crop_boxes

    params = PrepareParams(size=size, crops_per_image=crops, seed=seed)
    rng = np.random.default_rng(seed)
    labs = []
    for name, path in sorted(builtin_photo_paths().items()):
        rgb = load_rgb(path)
        if color.mean_chroma(rgb) >= grey_chroma:  # prepare's rule: a grey photo teaches no colour
            labs += [color.rgb_to_lab(_crop(rgb, box, size)) for box in crop_boxes(rgb.shape[1], rgb.shape[0], params, rng)]
    if not labs:
        raise UserError("--data photos: no colour photo among the builtin ones")
    lab = np.stack(labs).transpose(0, 3, 1, 2)  # (N, 3, S, S)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "train_L.npy", lab[:, :1].astype(np.float16))
    np.save(out / "train_ab.npy", lab[:, 1:].astype(np.float16))
    summary = {"size": size, "eval_size": size, "dtype": "float16", "labels": [], "images": {"train": len(lab)},
               "manifest_sha256": f"gpu-check-builtin-{size}-{crops}-{seed}"}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


@dataclasses.dataclass
class Data:
    prepared: Path
    palette: Path
    summary: dict
    source: str  # what the check trained on, in words


def load_data(args, params: dict, seed: int, scratch: Path) -> Data:
    """data/prepared (with data/palette's gamut, else one fitted to it) or the builtin photos."""
    prepared, palette = ROOT / paths.PREPARED, ROOT / paths.PALETTE
    have_prepared = (prepared / "train_L.npy").is_file() and (prepared / "summary.json").is_file()
    if args.data == "prepared" and not have_prepared:
        raise UserError(f"--data prepared: {prepared}/train_L.npy missing; run the prepare stage or use --data photos")
    palette_params = config.section(params, "palette")
    if args.data != "photos" and have_prepared:
        summary = load_summary(prepared)
        source = f"{prepared.relative_to(ROOT)} (the prepare stage's train split)"
    else:
        grey = config.section(params, "prepare").grey_chroma
        prepared = scratch / "prepared"
        summary = write_prepared(prepared, args.size, args.crops, seed, grey)
        source = f"{args.crops} random crops at {args.size} px of each builtin photo (skimage, sklearn, matplotlib)"
    if not (palette / "gamut.json").is_file() or prepared != ROOT / paths.PREPARED:
        palette = scratch / "palette"
        palette.mkdir(exist_ok=True)
        gamut = fit_gamut(prepared, palette_params)  # the palette stage's own gamut and weights
        (palette / "gamut.json").write_text(json.dumps(gamut.to_json()) + "\n")
    return Data(prepared, palette, summary, source)


class Rows(torch.utils.data.Dataset):
    """Some rows of a LabBatches, renumbered 0..n-1 (the batches and the feature cache index these)."""

    def __init__(self, base: LabBatches, rows):
        self.base, self.rows, self.split = base, np.sort(np.asarray(rows)), base.split

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, local):
        local = np.sort(np.asarray(local))
        batch = self.base[self.rows[local]]
        batch["rows"] = torch.from_numpy(local)
        return batch
