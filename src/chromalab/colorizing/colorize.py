"""Colorize a user's photos at full resolution.

The model predicts ab at its working size (the shorter side resized to `size`); where a colour is
outside the sRGB gamut at its lightness its chroma is reduced (`color.clamp_to_gamut`: hue and
lightness kept); ab is upsampled bilinearly to the photo's size and recombined with the photo's own
full-resolution L, so edges and detail stay as sharp as the input (richzhang/colorization's
recipe). Which model to use is model_choice.py's business. A model that predicts a distribution
(bins, palette) also gives a confidence map (`colorize --confidence`), upsampled from the working
size to the photo's as the ab is, written as an 8-bit greyscale PNG beside the colorized photo.

Only the network's part depends on the model; the full-resolution work around it (L from RGB,
ab upsampled and joined to L, Lab to uint8 RGB) is float32 numpy in strips of rows
(lab_rows.LabRows), and a folder's next photo is decoded while the current one is colorized
(colorize_files). docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from chromalab.core import color, lab_rows
from chromalab.core.errors import UserError
from chromalab.core.images import is_image_file, load_rgb, save_image, save_png

# zlib level of the colorized PNGs. Level 6 (PIL's default) took 0.375 s per megapixel here, more
# than everything else together; level 1 took 0.103 s for files 12 % larger (Set14 photos at 1 MP).
# (Level 0 writes 2.3 times the bytes; zlib's Z_RLE strategy at level 1 was 5 % faster for files
# 1.5 % larger: not worth a second knob. docs/benchmarks.md has the figures.)
OUTPUT_PNG_LEVEL = 1

# Pixels per step of the full-resolution work (whole rows: 64 rows of a 1 MP photo): its scratch
# buffers stay a few MB whatever the photo's size, in cache (strips of 32-128 rows of a 1 MP photo
# ran within 10 % of each other; the whole photo at once took 2.3 times as long).
STRIP_PIXELS = 1 << 16

log = logging.getLogger(__name__)

GLOB_CHARS = set("*?[")


def working_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """Shorter side = size, aspect ratio kept (never upsampled past the photo itself)."""
    scale = min(1.0, size / min(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def bilinear_taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output row of a bilinear resize from size_in to size_out rows (align_corners=False,
    torch.nn.functional.interpolate's sampling): the two input rows and the second one's weight."""
    src = np.maximum((np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5, 0.0)
    first = np.minimum(src.astype(np.intp), size_in - 1)
    return first, np.minimum(first + 1, size_in - 1), (src - first).astype(np.float32)


@dataclass
class Prepared:
    """A photo as `FullResolution.preprocess` leaves it: its luminance Y and f(Y) = (L + 16) / 116
    at full resolution (float32 (H, W) arrays; the network's output is joined to them), and the L
    the network sees, (1, 1, h, w) on the model's device."""

    Y: np.ndarray
    fy: np.ndarray
    L_small: torch.Tensor


@dataclass
class FullResolution:
    """A model run on a photo of any size: colours at the working size `size`, the photo's own L at
    full resolution. (The model itself is a Colorizer, or the GreyBaseline.)

    Only the network runs on `device`. The full-resolution work before and after it (L from RGB;
    ab upsampled, joined to L and turned into uint8 RGB) is float32 numpy on the CPU, in strips of
    rows of about `strip_pixels` pixels: its memory is the photo's own planes plus a few MB, and it
    matches the float64 scikit-image reference to one uint8 level, exactly on about 99 % of the
    pixels (tests/test_colorize_speed.py). `threads` > 1 shares the strips among threads; one is
    the default, since each strip's numpy calls take tens of microseconds and a second thread,
    waiting for the GIL between them, measured no faster on 2 cores.

    The planes of a photo and the strips' scratch buffers are kept for the next photo of the same
    size (postprocess hands a Prepared's planes back: use a Prepared once): fresh arrays of a few
    MB cost their page faults on every photo, 2 ms per megapixel here."""

    colorizer: torch.nn.Module
    size: int
    device: torch.device
    strip_pixels: int = STRIP_PIXELS
    threads: int = 1
    _spare: dict = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)

    def _take(self, key: tuple, make):
        """A kept object for `key` (a kind and a shape), else make()."""
        try:
            return self._spare[key].pop()
        except (KeyError, IndexError):  # none kept (or another strip thread took it first)
            return make()

    def _keep(self, key: tuple, item) -> None:
        """Keep `item` for the next _take of `key`; objects of other shapes than the latest go."""
        if key not in self._spare and len(self._spare) >= 3:
            self._spare.clear()
        kept = self._spare.setdefault(key, [])
        if len(kept) < max(1, self.threads):
            kept.append(item)

    def _by_strips(self, height: int, width: int, work) -> None:
        """work(rows, r0, r1) over the rows of a picture, a strip of about `strip_pixels` at a time:
        its rows are cut into one band per thread, each thread with its own lab_rows.LabRows."""
        step = max(1, self.strip_pixels // width)
        threads = max(1, min(self.threads, -(-height // step)))
        bands = np.linspace(0, height, threads + 1).round().astype(int)

        def band(start: int, stop: int) -> None:
            key = ("rows", min(step, stop - start), width)
            rows = self._take(key, lambda: lab_rows.LabRows(*key[1:]))
            for r0 in range(start, stop, step):
                work(rows, r0, min(stop, r0 + step))
            self._keep(key, rows)

        if threads == 1:
            band(0, height)
            return
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for future in [pool.submit(band, start, stop) for start, stop in zip(bands[:-1], bands[1:])]:
                future.result()

    @torch.no_grad()
    def preprocess(self, rgb: np.ndarray) -> Prepared:
        """uint8 RGB (H, W, 3) -> its Y and f(Y) at full resolution, and the L the network sees:
        shorter side resized to `size` by area averaging, on the model's device."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
        height, width = rgb.shape[:2]
        Y, fy = self._take(("planes", height, width), lambda: (np.empty((height, width), np.float32),
                                                               np.empty((height, width), np.float32)))

        def work(rows: lab_rows.LabRows, r0: int, r1: int) -> None:
            rows.lightness(rgb[r0:r1], Y[r0:r1], fy[r0:r1])

        self._by_strips(height, width, work)
        small = working_shape(height, width, self.size)
        f = torch.from_numpy(fy)[None, None]
        if small != (height, width):
            f = torch.nn.functional.interpolate(f, size=small, mode="area")  # L is linear in f
        return Prepared(Y, fy, (f * 116.0 - 16.0).to(self.device))

    @torch.no_grad()
    def predict(self, L_small: torch.Tensor) -> torch.Tensor:
        """ab at the working size, inside the sRGB gamut for that lightness."""
        return color.clamp_to_gamut(L_small, self.colorizer(L_small).float())

    @torch.no_grad()
    def predict_with_confidence(self, L_small: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """predict's ab and the model's confidence (1, 1, h, w) in [0, 1], both at the working size,
        the network run once (a UserError for a model without a confidence)."""
        if not getattr(self.colorizer, "has_confidence", False):
            raise UserError("this model gives no per-pixel confidence (only bins and palette models do)")
        ab, conf = self.colorizer.forward_with_confidence(L_small)
        return color.clamp_to_gamut(L_small, ab.float()), conf.float()

    @staticmethod
    def confidence_image(conf: torch.Tensor, height: int, width: int) -> np.ndarray:
        """A confidence (1, 1, h, w) in [0, 1] upsampled bilinearly to (height, width), as the ab
        is (align_corners=False) -> uint8 greyscale (H, W), 255 = sure."""
        conf = conf.float().cpu()
        if conf.shape[-2:] != (height, width):
            conf = torch.nn.functional.interpolate(conf, size=(height, width), mode="bilinear", align_corners=False)
        return (conf[0, 0].clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).numpy()

    def with_confidence(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As __call__, plus the confidence map at the photo's size (uint8 (H, W), 255 = sure)."""
        prepared = self.preprocess(rgb)
        ab, conf = self.predict_with_confidence(prepared.L_small)
        return self.postprocess(prepared, ab), self.confidence_image(conf, *rgb.shape[:2])

    def postprocess(self, prepared: Prepared, ab: torch.Tensor) -> np.ndarray:
        """ab (1, 2, h, w) upsampled bilinearly to the photo's size (as torch's interpolate,
        align_corners=False), joined with its own full-resolution L -> uint8 RGB (H, W, 3)."""
        height, width = prepared.fy.shape
        small = ab[0].float().cpu().numpy()
        h, w = small.shape[-2:]
        # Lab to XYZ needs a / 500 and -b / 200: scaled at the working size, not per pixel.
        small = small * np.array([1 / 500, -1 / 200], np.float32)[:, None, None]
        key = ("columns", h, width)
        wide, step = self._take(key, lambda: (np.empty((2, h, width), np.float32),
                                              np.empty((2, h, width), np.float32)))
        # Columns at the working size's rows first, then rows strip by strip, from each working
        # row and its step to the next one.
        if w != width:
            c0, c1, cw = bilinear_taps(w, width)
            np.take(small, c0, axis=2, out=wide, mode="clip")  # C-contiguous, unlike small[:, :, c0]
            np.take(small, c1, axis=2, out=step, mode="clip")  # mode clip: unbuffered
            step -= wide
            step *= cw
            wide += step
        else:
            wide[...] = small
        np.subtract(wide[:, 1:], wide[:, :-1], out=step[:, :-1])
        step[:, -1] = 0.0
        r0s, _, rw = bilinear_taps(h, height)
        out = np.empty((height, width, 3), np.uint8)

        def work(rows: lab_rows.LabRows, r0: int, r1: int) -> None:
            ab_f, below = rows.ab_buffers(r1 - r0)
            np.take(wide, r0s[r0:r1], axis=1, out=ab_f, mode="clip")
            if h != height:
                np.take(step, r0s[r0:r1], axis=1, out=below, mode="clip")
                below *= rw[r0:r1, None]
                ab_f += below
            rows.to_rgb_uint8(prepared.fy[r0:r1], prepared.Y[r0:r1], ab_f, out[r0:r1])

        self._by_strips(height, width, work)
        self._keep(("planes", height, width), (prepared.Y, prepared.fy))
        self._keep(key, (wide, step))
        return out

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB (H, W, 3), colour or grey -> colorized uint8 RGB of the same size."""
        prepared = self.preprocess(rgb)
        return self.postprocess(prepared, self.predict(prepared.L_small))


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
    maps: list[Path] = dataclasses.field(default_factory=list)  # confidence maps written (--confidence)


def output_path(path: Path, out_dir: Path, suffix: str = "", image_format: str = "png") -> Path:
    return out_dir / f"{path.stem}{suffix}.{image_format}"


def confidence_path(output: Path) -> Path:
    """Where an output's confidence map goes: beside it, NAME.confidence.png."""
    return output.with_name(f"{output.stem}.confidence.png")


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 8) -> np.ndarray:
    """Two uint8 RGB images of the same height next to each other, with a white gap."""
    spacer = np.full((left.shape[0], gap, 3), 255, np.uint8)
    return np.concatenate([left, spacer, right], axis=1)


class _InThisThread:
    """An executor that runs each call at once, in the calling thread (colorize_files, prefetch 0)."""

    def submit(self, fn, *args) -> Future:
        future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as err:  # noqa: BLE001 - re-raised by future.result(), as a pool would
            future.set_exception(err)
        return future

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


@contextlib.contextmanager
def _torch_threads(n: int):
    """torch's intra-op threads set to n for a while, then back."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def colorize_files(colorize: FullResolution, files: list[Path], out_dir: Path, suffix: str = "",
                   overwrite: bool = False, compare: bool = False, progress: bool = True,
                   prefetch: int = 2, confidence: bool = False, image_format: str = "png",
                   quality: int = 92) -> Outcome:
    """Colorize each file into out_dir/<stem><suffix>.png (with --compare, the input and the output
    side by side); existing outputs are kept unless `overwrite`. A file that fails is recorded and
    the others are still done. With `confidence`, the model's confidence map goes beside each
    output (confidence_path), at the photo's size; a photo is skipped when every file it would
    write exists, and only its missing files are written otherwise (all of them with `overwrite`).

    `prefetch` photos are decoded ahead, and the outputs encoded, in as many threads beside the
    colorizing (PIL and zlib release the GIL), so a folder costs about its compute time; at most
    `prefetch` outputs wait to be written; 0: each photo decoded, colorized and written in turn.
    The files written and the outcome are the same either way. `image_format` png (lossless, the
    default), jpg or webp (at `quality`); confidence maps are always PNG.

    The colorizing runs with one torch thread fewer than torch is set to (at least one), leaving a
    core to the decoding and encoding: torch's threads otherwise wait at every operation for one
    whose core another thread holds (the encoder's, or another program's: 8 photos took 10-22 s
    instead of 1.3 s on a 2-core machine busy with other work). Both modes do so, since the
    network's results depend on its thread count in the last bit."""
    from tqdm import tqdm

    outcome, claimed, jobs = Outcome(), {}, []
    for path in files:
        target = output_path(path, out_dir, suffix, image_format)
        wanted = [target, confidence_path(target)] if confidence else [target]
        taken = next((t for t in wanted if t in claimed), None)
        if taken is not None:
            outcome.failed.append((path, f"its output {taken} is already taken by {claimed[taken]}"))
            continue
        claimed.update((t, path) for t in wanted)
        todo = [t for t in wanted if overwrite or not t.exists()]
        if not todo:
            outcome.skipped.append(path)
        else:
            jobs.append((path, target, todo))

    def write(target: Path, image: np.ndarray) -> Path:
        if target.suffix == ".png":
            save_png(target, image, OUTPUT_PNG_LEVEL)
        else:
            save_image(target, image, target.suffix[1:], quality)
        return target

    def finish(path: Path, target: Path, future: Future, written: list) -> None:
        try:
            written.append(future.result())
        except OSError as err:  # e.g. no space or no permission in the output folder
            outcome.failed.append((path, f"cannot write {target}: {err.strerror or err}"))

    decoded: dict[int, Future] = {}
    pending: deque = deque()
    with _torch_threads(max(1, torch.get_num_threads() - 1)), \
            ThreadPoolExecutor(max_workers=prefetch) if prefetch > 0 else _InThisThread() as pool:

        def ahead(i: int) -> None:
            if i < len(jobs) and i not in decoded:
                decoded[i] = pool.submit(load_rgb, jobs[i][0])

        for i in range(prefetch):
            ahead(i)
        # disable=None: tqdm shows the bar only on a terminal, so logs and pipes stay clean.
        bar = tqdm(jobs, desc="colorize", unit="photo", disable=None if progress else True)
        for i, (path, target, todo) in enumerate(bar):
            ahead(i + prefetch)
            try:
                rgb = decoded.pop(i).result()  # popped: the photo goes once it is colorized
                result, conf = colorize.with_confidence(rgb) if confidence else (colorize(rgb), None)
                if target in todo:
                    image = side_by_side(rgb, result) if compare else result
                    pending.append((path, target, pool.submit(write, target, image), outcome.written))
                if conf is not None and confidence_path(target) in todo:
                    where = confidence_path(target)
                    pending.append((path, where, pool.submit(write, where, conf), outcome.maps))
            except UserError as err:
                outcome.failed.append((path, str(err)))
            while len(pending) > prefetch:
                finish(*pending.popleft())
        while pending:
            finish(*pending.popleft())
    return outcome
