"""Colorize a user's photos at full resolution.

The model predicts ab at its working size (the shorter side resized to `size`, by default the
size it was trained at); ab is upsampled to the photo's size and recombined with the photo's own
full-resolution L, so edges and detail stay as sharp as the input (richzhang/colorization's
recipe).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from chromalab import checkpoint, color, paths
from chromalab.errors import UserError
from chromalab.images import is_image_file, load_rgb, save_png

log = logging.getLogger(__name__)


def default_model_name(root: Path) -> str:
    """The best trained model by test PSNR in reports/metrics.json (the grey baseline excluded)."""
    path = root / paths.REPORTS / "metrics.json"
    if not path.is_file():
        raise UserError(f"{path}: missing, so there is no default model; run `dvc repro` or pass --model")
    scores = {k: v for k, v in json.loads(path.read_text()).items() if k != "grey" and "psnr" in v}
    if not scores:
        raise UserError(f"{path}: lists no trained model; pass --model")
    return max(scores, key=lambda k: scores[k]["psnr"])


def resolve_checkpoint(model: str | None, root: Path) -> Path:
    """--model: a checkpoint path, a league name (data/models/NAME/best.pt), or the best by PSNR."""
    if model is None:
        model = default_model_name(root)
        log.info("using %s, the best model by test PSNR in reports/metrics.json", model)
    as_path = Path(model)
    if as_path.suffix == ".pt" or as_path.is_file():
        return as_path
    ckpt = root / paths.MODELS / model / "best.pt"
    if not ckpt.is_file():
        raise UserError(f"--model {model}: no checkpoint at {ckpt}; train it with `dvc repro train@{model}`")
    return ckpt


def working_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """Shorter side = size, aspect ratio kept (never upsampled past the photo itself)."""
    scale = min(1.0, size / min(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass
class Colorize:
    colorizer: torch.nn.Module
    size: int
    device: torch.device

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB (H, W, 3), colour or grey -> colorized uint8 RGB of the same size."""
        L_full = color.rgb_to_lab(rgb)[..., 0]
        h, w = L_full.shape
        L = torch.from_numpy(L_full)[None, None].to(self.device)
        small = working_shape(h, w, self.size)
        L_small = torch.nn.functional.interpolate(L, size=small, mode="area") if small != (h, w) else L
        ab = self.colorizer(L_small)
        if small != (h, w):
            ab = torch.nn.functional.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)
        lab = torch.cat([L, ab.float()], dim=1)[0].cpu().numpy()
        return color.lab_planes_to_rgb_uint8(lab[:1], lab[1:])


def load(model: str | None, size: int | None, device: str, root: Path | None = None) -> tuple[Colorize, dict]:
    from chromalab.train import select_device

    root = root or paths.repo_root()
    ckpt = resolve_checkpoint(model, root)
    dev = select_device(device)
    colorizer, config = checkpoint.load(ckpt, device=dev)
    return Colorize(colorizer, size or int(config["image_size"]), dev), config


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files as given; folders walked recursively for image files, in sorted order."""
    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p))
            if not found:
                log.warning("%s: no image files in this folder", path)
            files.extend(found)
        else:
            files.append(path)
    return files


def colorize_files(colorize: Colorize, files: list[Path], out_dir: Path, progress: bool = True) -> list[tuple[Path, str]]:
    """Colorize each file into out_dir/<stem>.png; returns the (file, reason) pairs that failed."""
    from tqdm import tqdm

    failures, written = [], {}
    for path in tqdm(files, desc="colorize", unit="photo", disable=None if progress else True):
        target = out_dir / f"{path.stem}.png"
        if target in written:
            failures.append((path, f"its output {target} is already taken by {written[target]}"))
            continue
        try:
            save_png(target, colorize(load_rgb(path)))
            written[target] = path
        except UserError as err:
            failures.append((path, str(err)))
    return failures
