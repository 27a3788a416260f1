"""Colorize a user's photos at full resolution.

The model predicts ab at its working size (the shorter side resized to `size`); where a colour is
outside the sRGB gamut at its lightness its chroma is reduced (`color.clamp_to_gamut`: hue and
lightness kept); ab is upsampled bilinearly to the photo's size and recombined with the photo's own
full-resolution L, so edges and detail stay as sharp as the input (richzhang/colorization's
recipe). Which model to use is model_choice.py's business.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from chromalab import color
from chromalab.errors import UserError
from chromalab.images import is_image_file, load_rgb, save_png

# zlib level of the colorized PNGs. Level 6 (PIL's default) took 0.375 s per megapixel here, more
# than everything else together; level 1 took 0.103 s for files 12 % larger (Set14 photos at 1 MP).
OUTPUT_PNG_LEVEL = 1

log = logging.getLogger(__name__)

GLOB_CHARS = set("*?[")


def working_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """Shorter side = size, aspect ratio kept (never upsampled past the photo itself)."""
    scale = min(1.0, size / min(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass
class FullResolution:
    """A model run on a photo of any size: colours at the working size `size`, the photo's own L at
    full resolution. (The model itself is a Colorizer, or the GreyBaseline.)"""

    colorizer: torch.nn.Module
    size: int
    device: torch.device

    @torch.no_grad()
    def preprocess(self, rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 RGB (H, W, 3) -> the photo's L (1, 1, H, W) and the L the network sees, shorter
        side resized to `size` by area averaging (on the model's device)."""
        L = color.lightness_from_rgb_uint8(rgb)[None, None].to(self.device)
        small = working_shape(*L.shape[-2:], self.size)
        return L, (torch.nn.functional.interpolate(L, size=small, mode="area") if small != L.shape[-2:] else L)

    @torch.no_grad()
    def predict(self, L_small: torch.Tensor) -> torch.Tensor:
        """ab at the working size, inside the sRGB gamut for that lightness."""
        return color.clamp_to_gamut(L_small, self.colorizer(L_small).float())

    @torch.no_grad()
    def postprocess(self, L: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
        """ab upsampled to the photo's size, joined with its own full-resolution L -> uint8 RGB."""
        if ab.shape[-2:] != L.shape[-2:]:
            ab = torch.nn.functional.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)
        return color.lab_to_rgb_uint8_torch(torch.cat([L, ab], dim=1)[0])

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB (H, W, 3), colour or grey -> colorized uint8 RGB of the same size."""
        L, L_small = self.preprocess(rgb)
        return self.postprocess(L, self.predict(L_small))


def find_inputs(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files as given, folders walked recursively for image files, glob patterns expanded (for
    shells that do not, and for quoted patterns such as 'scans/**/*.tif'); all in sorted order.
    Returns the files and the (input, reason) pairs that matched nothing."""
    files, unmatched = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p))
            if not found:
                unmatched.append((item, "no image files in this folder"))
            files.extend(found)
        elif not path.exists() and GLOB_CHARS & set(item):
            found = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file() and is_image_file(p))
            if not found:
                unmatched.append((item, "no image file matches this pattern"))
            files.extend(found)
        else:
            files.append(path)
    return files, unmatched


def expand_inputs(inputs: list[str]) -> list[Path]:
    """find_inputs' files; what matched nothing is only logged (for callers that need files, not a verdict)."""
    files, unmatched = find_inputs(inputs)
    for item, reason in unmatched:
        log.warning("%s: %s", item, reason)
    return files


@dataclasses.dataclass
class Outcome:
    """What colorize_files did with each input."""

    written: list[Path] = dataclasses.field(default_factory=list)
    skipped: list[Path] = dataclasses.field(default_factory=list)  # output exists and --overwrite not given
    failed: list[tuple[Path, str]] = dataclasses.field(default_factory=list)


def output_path(path: Path, out_dir: Path, suffix: str = "") -> Path:
    return out_dir / f"{path.stem}{suffix}.png"


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 8) -> np.ndarray:
    """Two uint8 RGB images of the same height next to each other, with a white gap."""
    spacer = np.full((left.shape[0], gap, 3), 255, np.uint8)
    return np.concatenate([left, spacer, right], axis=1)


def colorize_files(colorize: FullResolution, files: list[Path], out_dir: Path, suffix: str = "",
                   overwrite: bool = False, compare: bool = False, progress: bool = True) -> Outcome:
    """Colorize each file into out_dir/<stem><suffix>.png (with --compare, the input and the output
    side by side); existing outputs are kept unless `overwrite`. A file that fails is recorded and
    the others are still done."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    outcome, claimed, jobs = Outcome(), {}, []
    for path in files:
        target = output_path(path, out_dir, suffix)
        if target in claimed:
            outcome.failed.append((path, f"its output {target} is already taken by {claimed[target]}"))
        elif target.exists() and not overwrite:
            claimed[target] = path
            outcome.skipped.append(path)
        else:
            claimed[target] = path
            jobs.append((path, target))

    def write(target: Path, image: np.ndarray) -> Path:
        save_png(target, image, OUTPUT_PNG_LEVEL)
        return target

    # Decoding the next photos and encoding the last ones run in threads beside the network (PIL
    # and zlib release the GIL), so a folder costs about its compute time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        decoded = [pool.submit(load_rgb, path) for path, _ in jobs[:2]]
        written = []
        # disable=None: tqdm shows the bar only on a terminal, so logs and pipes stay clean.
        for i, (path, target) in enumerate(tqdm(jobs, desc="colorize", unit="photo", disable=None if progress else True)):
            if i + 2 < len(jobs):
                decoded.append(pool.submit(load_rgb, jobs[i + 2][0]))
            try:
                rgb = decoded[i].result()
                decoded[i] = None  # let the photo go once it is colorized
                result = colorize(rgb)
                written.append((path, target, pool.submit(write, target, side_by_side(rgb, result) if compare else result)))
            except UserError as err:
                outcome.failed.append((path, str(err)))
        for path, target, future in written:
            try:
                outcome.written.append(future.result())
            except OSError as err:  # e.g. no space or no permission in the output folder
                outcome.failed.append((path, f"cannot write {target}: {err.strerror or err}"))
    return outcome
