"""`make bench`'s colorize figures: the released model (and the workspace's lite_bins) through
colorize's steps on 1 MP photos, Zhang et al.'s demo pipeline around the same network, a 12 MP
photo's peak memory in a process of its own, and a folder with and without the overlap."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench_common import ANCHOR_SIZE, PARTS, ROOT, SHARED_PHOTOS, SKIMAGE_PHOTOS, child, peak_rss_mb, rss_mb
from chromalab.colorizing.colorize import OUTPUT_PNG_LEVEL, FullResolution, colorize_files
from chromalab.core import paths
from chromalab.core.images import load_rgb


# --- colorize ------------------------------------------------------------------------------------


def source_photos() -> list[Path] | list[str]:
    """The bench's real photos: the shared folder's files, else scikit-image's photo names."""
    folder = Path(os.environ.get("CHROMALAB_BENCH_PHOTOS", SHARED_PHOTOS))
    if folder.is_dir():
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if found:
            return found
    return list(SKIMAGE_PHOTOS)


def open_source(source) -> Image.Image:
    if isinstance(source, Path):
        return Image.open(source).convert("RGB")
    from skimage import data

    return Image.fromarray(getattr(data, source)())


def megapixel_photos(out: Path, count: int, megapixels: float = 1.0) -> list[Path]:
    """Colour photos resized to `megapixels` (aspect kept), saved as JPEG, the usual input."""
    out.mkdir(parents=True, exist_ok=True)
    chosen = []
    sources = source_photos()
    for i, source in enumerate(sources * (1 + count // max(1, len(sources)))):
        img = open_source(source)
        if np.asarray(img).std(axis=2).mean() < 2:  # an already-grey photo says nothing about colour
            continue
        if i >= len(sources):  # fewer photos than asked: their mirror images too
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        scale = (megapixels * 1e6 / (img.width * img.height)) ** 0.5
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
        name = source.stem if isinstance(source, Path) else source
        target = out / f"{name}{'_mirror' if i >= len(sources) else ''}.jpg"
        img.save(target, quality=92)
        chosen.append(target)
        if len(chosen) == count:
            break
    return chosen


def big_photo(out: Path, shape: tuple[int, int]) -> Path:
    """A real photo upscaled (bicubic) to `shape`, its centre cropped to that aspect first: JPEG."""
    source = next(s for s in source_photos() if np.asarray(open_source(s)).std(axis=2).mean() >= 2)
    img = open_source(source)
    height, width = shape
    crop_w = min(img.width, round(img.height * width / height))
    crop_h = min(img.height, round(crop_w * height / width))
    left, top = (img.width - crop_w) // 2, (img.height - crop_h) // 2
    img = img.crop((left, top, left + crop_w, top + crop_h)).resize((width, height), Image.Resampling.BICUBIC)
    target = out / f"big_{width}x{height}.jpg"
    img.save(target, quality=92)
    return target


def encode_png(rgb: np.ndarray) -> bytes:
    """As colorize writes its outputs (images.save_png at OUTPUT_PNG_LEVEL), into memory."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=OUTPUT_PNG_LEVEL)
    return buf.getvalue()


class Clock:
    """Marks of wall-clock and CPU time (every thread of this process) between the steps of a run."""

    def __init__(self):
        self.wall, self.cpu = [time.perf_counter()], [time.process_time()]

    def mark(self) -> None:
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def result(self, pixels: int) -> tuple[np.ndarray, np.ndarray, int]:
        return np.diff(self.wall), np.diff(self.cpu), pixels


def ours(runner: FullResolution):
    """One photo through colorize's steps: (wall seconds of each of PARTS, CPU seconds, pixels)."""

    def once(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
        clock = Clock()
        rgb = load_rgb(path)
        clock.mark()
        prepared = runner.preprocess(rgb)
        clock.mark()
        ab = runner.predict(prepared.L_small)
        clock.mark()
        out = runner.postprocess(prepared, ab)
        clock.mark()
        encode_png(out)
        clock.mark()
        return clock.result(rgb.shape[0] * rgb.shape[1])

    return once


def anchor(runner: FullResolution):
    """One photo through the pre- and post-processing of richzhang/colorization's demo
    (colorizers/util.py: preprocess_img, postprocess_tens) around the same network and gamut
    clamp as ours (runner.predict), decoded and encoded as ours."""
    from skimage import color as skcolor

    def once(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
        clock = Clock()
        rgb = load_rgb(path)
        clock.mark()
        resized = np.asarray(Image.fromarray(rgb).resize((ANCHOR_SIZE, ANCHOR_SIZE), resample=3))
        L_orig = torch.Tensor(skcolor.rgb2lab(rgb)[:, :, 0])[None, None]
        L_rs = torch.Tensor(skcolor.rgb2lab(resized)[:, :, 0])[None, None]
        clock.mark()
        ab = runner.predict(L_rs)
        clock.mark()
        up = torch.nn.functional.interpolate(ab, size=L_orig.shape[2:], mode="bilinear")
        lab = torch.cat((L_orig, up), dim=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lab2rgb's "negative Z values" for out-of-gamut colours
            out = skcolor.lab2rgb(lab.data.cpu().numpy()[0, ...].transpose((1, 2, 0)))
        out = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
        clock.mark()
        encode_png(out)
        clock.mark()
        return clock.result(rgb.shape[0] * rgb.shape[1])

    return once


def split_figures(once, photos: list[Path], repeat: int) -> dict:
    """Seconds per megapixel of each of PARTS over the photos (each photo's fastest of `repeat`
    runs), their total and the pre+post share of it; and the same in CPU seconds (all threads),
    which a busy machine inflates less than wall-clock time."""
    walls, cpus, megapixels = np.zeros(len(PARTS)), np.zeros(len(PARTS)), 0.0
    with torch.no_grad():
        once(photos[0])  # warm-up: allocator, kernels, tables
        for path in photos:
            runs = [once(path) for _ in range(repeat)]
            wall, _, pixels = min(runs, key=lambda r: r[0].sum())
            walls += wall
            cpus += min(runs, key=lambda r: r[1].sum())[1]
            megapixels += pixels / 1e6
    per_mp = dict(zip(PARTS, walls / megapixels))
    cpu_mp = dict(zip(PARTS, cpus / megapixels))
    total = sum(per_mp.values())
    return {
        "colorize_seconds_per_megapixel": total,
        **{f"colorize_{key}_seconds_per_megapixel": value for key, value in per_mp.items()},
        "colorize_prepost_fraction": (per_mp["preprocess"] + per_mp["postprocess"]) / total,
        "cpu": {**{f"{key}_seconds_per_megapixel": value for key, value in cpu_mp.items()},
                "seconds_per_megapixel": sum(cpu_mp.values()),
                "prepost_fraction": (cpu_mp["preprocess"] + cpu_mp["postprocess"]) / sum(cpu_mp.values())},
    }


def colorize_figures(colorizer, image_size: int, photos: list[Path], repeat: int) -> dict:
    runner = FullResolution(colorizer.eval(), image_size, torch.device("cpu"))
    return {**split_figures(ours(runner), photos, repeat), "colorize_working_size": image_size}


def released_runner() -> tuple[FullResolution, str]:
    """The model `chromalab colorize` uses when none is named, as it loads it."""
    from chromalab.serving import model_choice

    runner, info = model_choice.load(None, None, "cpu", root=ROOT)
    return runner, info["model"].removeprefix("released ")


def released_figures(photos: list[Path], repeat: int) -> dict:
    runner, model = released_runner()
    return {"model": model, **split_figures(ours(runner), photos, repeat), "colorize_working_size": runner.size}


def anchor_figures(photos: list[Path], repeat: int, ours_figures: dict) -> dict:
    """The demo pipeline of Zhang et al. around the released model's network, and its ratios to ours."""
    runner, model = released_runner()
    figures = {"model": model, **split_figures(anchor(runner), photos, repeat)}

    def prepost(f):
        return f["colorize_preprocess_seconds_per_megapixel"] + f["colorize_postprocess_seconds_per_megapixel"]

    figures["ratio_to_ours"] = figures["colorize_seconds_per_megapixel"] / ours_figures["colorize_seconds_per_megapixel"]
    figures["prepost_ratio_to_ours"] = prepost(figures) / prepost(ours_figures)
    return figures


def workspace_lite_bins(photos: list[Path], repeat: int) -> dict | None:
    """colorize figures of data/models/lite_bins/best.pt (the workspace's own training of
    chromalab's model) at its working size, when the pipeline has trained it."""
    from chromalab.serving import model_choice

    if not (ROOT / paths.MODELS / "lite_bins" / "best.pt").is_file():
        return None
    runner, info = model_choice.load("lite_bins", None, "cpu", root=ROOT)
    return {"source": info["source"], **split_figures(ours(runner), photos, repeat),
            "colorize_working_size": runner.size}


def child_big(path: str, strip_pixels: int) -> dict:
    """The released model on one big photo through colorize's steps, written to a PNG as colorize
    writes it: seconds per megapixel of each step and this process's peak RSS."""
    from chromalab.core.images import save_png

    runner, _ = released_runner()
    runner.strip_pixels = strip_pixels
    with torch.no_grad():
        runner(np.zeros((64, 64, 3), np.uint8))  # warm-up, so the baseline holds torch's own buffers
    baseline = rss_mb()
    t = [time.perf_counter()]
    rgb = load_rgb(path)
    t.append(time.perf_counter())
    with torch.no_grad():
        prepared = runner.preprocess(rgb)
        t.append(time.perf_counter())
        ab = runner.predict(prepared.L_small)
        t.append(time.perf_counter())
        out = runner.postprocess(prepared, ab)
        t.append(time.perf_counter())
    with tempfile.TemporaryDirectory() as tmp:
        save_png(Path(tmp) / "out.png", out, OUTPUT_PNG_LEVEL)
    t.append(time.perf_counter())
    megapixels = rgb.shape[0] * rgb.shape[1] / 1e6
    took = np.diff(t)
    return {"megapixels": megapixels, "shape": list(rgb.shape[:2]), "strip_pixels": strip_pixels,
            "seconds": float(took.sum()), "seconds_per_megapixel": float(took.sum() / megapixels),
            **{f"{k}_seconds": float(v) for k, v in zip(PARTS, took)},
            "baseline_rss_mb": baseline, "peak_rss_mb": peak_rss_mb()}


def big_photo_figures(work: Path, shape: tuple[int, int]) -> dict:
    """child_big in strips (as colorize runs) and with the whole photo as one strip."""
    path = big_photo(work, shape)
    tiled = child("big", path=str(path), strip_pixels=FullResolution.strip_pixels)
    whole = child("big", path=str(path), strip_pixels=shape[0] * shape[1])
    return {**tiled, "untiled_peak_rss_mb": whole["peak_rss_mb"], "untiled_seconds": whole["seconds"],
            "file_mb": path.stat().st_size / 1e6}


def folder_figures(photos: list[Path], work: Path, repeat: int) -> dict:
    """colorize_files on a folder of photos with the next photo decoded (and the last one encoded)
    in threads beside the colorizing, and one photo after the other: seconds, and whether both
    wrote the same files."""
    runner, _ = released_runner()
    times, outputs = {}, {}
    with torch.no_grad():
        runner(load_rgb(photos[0]))  # warm-up
    for mode, prefetch in (("sequential", 0), ("overlapped", 2)):
        out = work / f"folder_{mode}"
        best = float("inf")
        for _ in range(repeat):
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            outcome = colorize_files(runner, photos, out, overwrite=True, progress=False, prefetch=prefetch)
            best = min(best, time.perf_counter() - t0)
            if outcome.failed:
                raise RuntimeError(f"colorize_files failed: {outcome.failed}")
        times[mode] = best
        outputs[mode] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    megapixels = sum(np.prod(Image.open(p).size) for p in photos) / 1e6
    return {"photos": len(photos), "megapixels": megapixels,
            "sequential_seconds": times["sequential"], "overlapped_seconds": times["overlapped"],
            "sequential_seconds_per_megapixel": times["sequential"] / megapixels,
            "overlapped_seconds_per_megapixel": times["overlapped"] / megapixels,
            "speedup": times["sequential"] / times["overlapped"],
            "same_outputs": outputs["sequential"] == outputs["overlapped"]}



def speed_figures(results: dict, work: Path, photos: list[Path], repeat: int, big_shape: tuple[int, int],
                  split_photos: list[Path] | None = None) -> None:
    """Colorize figures of the released model, the workspace's lite_bins and the anchor (on
    split_photos, default all), the folder (all photos) and the big photo, into results."""
    split_photos = split_photos or photos
    results["split_photos"] = [p.name for p in split_photos]
    results["released"] = released_figures(split_photos, repeat)
    print(f"released model: {results['released']['colorize_seconds_per_megapixel']:.3f} s/MP colorize at "
          f"{results['released']['colorize_working_size']} px, pre+post "
          f"{results['released']['colorize_prepost_fraction']:.0%}", flush=True)
    results["workspace_lite_bins"] = workspace_lite_bins(split_photos, repeat)
    results["anchor"] = anchor_figures(split_photos, repeat, results["released"])
    print(f"anchor (Zhang et al.'s demo pipeline): {results['anchor']['colorize_seconds_per_megapixel']:.3f} s/MP, "
          f"{results['anchor']['ratio_to_ours']:.1f}x ours", flush=True)
    results["folder"] = folder_figures(photos, work, repeat)
    print(f"folder of {len(photos)}: {results['folder']['speedup']:.2f}x with the overlap", flush=True)
    results["big_photo"] = big_photo_figures(work, big_shape)
    print(f"{results['big_photo']['megapixels']:.0f} MP photo: peak RSS {results['big_photo']['peak_rss_mb']:.0f} MB "
          f"(untiled {results['big_photo']['untiled_peak_rss_mb']:.0f} MB)", flush=True)
