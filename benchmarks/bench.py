"""chromalab's benchmarks: `make bench` -> reports/benchmarks.json and the table in docs/benchmarks.md.

Measures, on this machine:
- colorize, the path `chromalab colorize` takes (colorize.FullResolution): seconds per megapixel on
  real photos resized to 1 megapixel, split into decode, pre-processing, network, post-processing
  and PNG encode, for the released model (the default of `chromalab colorize`, at its working
  size), the workspace's own lite_bins (data/models/lite_bins/best.pt, when trained) and every
  model of the league; beside them the anchor, the pre/post pipeline of Zhang et al.'s demo
  (richzhang/colorization: PIL resize to 256 x 256, scikit-image rgb2lab on the full photo, the
  network at 256, scikit-image lab2rgb at full resolution) run with the same network on the same
  photos, as a ratio to ours;
- a 12-megapixel photo colorized in a process of its own: its peak RSS, with the full-resolution
  work in strips (as colorize runs) and in one piece;
- a folder of photos through colorize_files with the next photo decoded while the current one is
  colorized, and one after the other;
- training: lite_bins' images/s with its encoder frozen (features cached) and fine-tuned (its last
  two blocks; every block), each by a short run of the training loop itself (train._setup and
  train._train_epoch, a few batches) on the same data; and for every model of the league the
  images/s of the real data path (memory-mapped arrays, the epoch's batches and augmentation)
  against the same steps on in-memory random tensors, and achieved FLOP/s
  (torch.utils.flop_counter) as a fraction of this machine's measured fp32 matmul peak;
- the pipeline: prepare's images/s and peak RSS at 1x and 4x the images, the palette stage's
  k-means time (k = 32 on 1 M pixels) and `dvc repro` on an unchanged pipeline.

Nothing here asserts a time; the figures are reported. Photos come from ../shared/datasets/photos
when that folder exists (CHROMALAB_BENCH_PHOTOS overrides it), else from scikit-image's photos.
`--quick` times the released model and the anchor on one small photo, a 2-photo folder and a
2-megapixel photo (a smoke test: tests/test_colorize_speed.py); `--released-only` prints the released
model's colorize figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from chromalab import config, paths
from chromalab.colorize import OUTPUT_PNG_LEVEL, FullResolution, colorize_files
from chromalab.config import DataParams, ModelParams, PaletteParams
from chromalab.data.lab_arrays import LabBatches
from chromalab.images import load_rgb

ROOT = Path(__file__).resolve().parents[1]
TABLE_PAGE = ROOT / "docs" / "benchmarks.md"
MARK_START, MARK_END = "<!-- bench:start -->", "<!-- bench:end -->"
SHARED_PHOTOS = ROOT.parent / "shared" / "datasets" / "photos"
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
PARTS = ("decode", "preprocess", "network", "postprocess", "encode")
BIG_SHAPE = (3000, 4000)  # 12 megapixels, a phone camera's photo
ANCHOR_SIZE = 256  # Zhang et al.'s demo resizes every photo to 256 x 256


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def matmul_peak(n: int = 2048) -> float:
    """fp32 FLOP/s of a large matrix product, the best this CPU does with torch's threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return 2 * n**3 / best_of(lambda: a @ b, 5)


def rss_mb() -> float:
    """This process's resident memory now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, **kwargs) -> dict:
    """Run `bench.py --child KIND` in a process of its own (its peak RSS and torch's global state are
    its own) and return the JSON it prints last."""
    result = subprocess.run([sys.executable, __file__, "--child", kind, json.dumps(kwargs)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"bench child {kind} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- data the benchmarks train and colorize on ------------------------------------------------


def run_prepare_child(raw: Path, out: Path, crops: int) -> dict:
    """prepare in its own process, so its peak RSS is its own."""
    code = (
        "import json, resource, sys, time\n"
        "from chromalab.config import PrepareParams\n"
        "from chromalab.prepare import prepare\n"
        "t0 = time.perf_counter()\n"
        f"s = prepare(PrepareParams(size=64, crops_per_image={crops}), {str(raw)!r}, {str(out)!r})\n"
        "took = time.perf_counter() - t0\n"
        "n = sum(s['images'].values())\n"
        "print(json.dumps({'images': n, 'seconds': took, 'images_per_second': n / took,\n"
        "                  'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def build_data(work: Path) -> dict:
    """download (builtin photos) -> prepare at 1x and 4x crops -> palette, in `work`."""
    from chromalab.download import download
    from chromalab.palette import build_palette

    download(DataParams(source="builtin"), work / "raw")
    one = run_prepare_child(work / "raw", work / "prepared_1x", 32)
    four = run_prepare_child(work / "raw", work / "prepared", 128)
    build_palette(PaletteParams(k=32), work / "prepared", work / "palette", work / "palette.png")
    return {"1x": one, "4x": four}


def palette_fit_seconds(prepared: Path) -> float:
    from chromalab.palette import fit_kmeans, sample_pixels

    pixels = sample_pixels(prepared, 1_000_000, seed=0)
    t0 = time.perf_counter()
    fit_kmeans(pixels, PaletteParams(k=32))
    return time.perf_counter() - t0


# --- training ------------------------------------------------------------------------------------


def _step(colorizer, optimizer, batch, alpha, extra):
    from chromalab.colorizer import batch_loss

    loss, _ = batch_loss(colorizer, batch, alpha, extra)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def train_figures(name: str, model: ModelParams, train: config.TrainParams, work: Path, steps: int,
                  peak: float) -> dict:
    """Images/s of the real data path vs in-memory tensors, and achieved FLOP/s, for one model."""
    from torch.utils.flop_counter import FlopCounterMode

    from chromalab.augment import augment, augmentation_table
    from chromalab.colorizer import build_colorizer
    from chromalab.feature_cache import extra_inputs as _extra, precompute
    from chromalab.train import epoch_batches as _epoch_batches
    from chromalab import distributed

    summary = json.loads((work / "prepared" / "summary.json").read_text())
    torch.manual_seed(0)
    colorizer, _, _ = build_colorizer(model, summary, work / "palette")
    colorizer.train()
    optimizer = torch.optim.Adam([p for p in colorizer.parameters() if p.requires_grad], lr=1e-4)
    data = LabBatches(work / "prepared", "train")
    cache = precompute(colorizer, data, train.batch_size, torch.device("cpu"))
    batches = _epoch_batches(len(data), train.batch_size, distributed.World(), train, 1)
    table = augmentation_table(len(data), train, 1)
    alpha = model.class_loss_weight

    def real_batches():
        loader = torch.utils.data.DataLoader(data, sampler=batches, batch_size=None, num_workers=train.num_workers)
        while True:
            for batch in loader:
                batch["L"], batch["ab"] = augment(batch["L"], batch["ab"], batch["rows"], table, train.translate)
                yield batch

    size, b = summary["size"], train.batch_size
    fake = {"L": torch.rand(b, 1, size, size) * 100, "ab": torch.randn(b, 2, size, size) * 30,
            "label": torch.zeros(b, dtype=torch.long), "rows": torch.arange(b)}

    def run(source, n):
        t0 = time.perf_counter()
        for _ in range(n):
            batch = next(source)
            _step(colorizer, optimizer, batch, alpha, _extra(cache, batch))
        return time.perf_counter() - t0

    def fakes():
        while True:
            yield fake

    real, synthetic = real_batches(), fakes()
    run(real, 2), run(synthetic, 2)  # warm-up: allocator, kernels
    # Real and in-memory timings alternate, so a slow spell of the machine hits both alike.
    pairs = [(run(real, steps), run(synthetic, steps)) for _ in range(5)]
    real_s = statistics.median(r for r, _ in pairs)
    fake_s = statistics.median(f for _, f in pairs)
    with FlopCounterMode(display=False) as counter:
        _step(colorizer, optimizer, fake, alpha, _extra(cache, fake))
    flops_per_step = counter.get_total_flops()
    return {
        "train_images_per_second": steps * b / real_s,
        "train_images_per_second_in_memory": steps * b / fake_s,
        "train_data_path_ratio": statistics.median(f / r for r, f in pairs),
        "train_gflop_per_image": flops_per_step / b / 1e9,
        "train_achieved_gflops": flops_per_step * steps / real_s / 1e9,
        "train_peak_fraction": flops_per_step * steps / real_s / peak,
    }


# --- lite_bins' training, frozen and fine-tuned ------------------------------------------------------


def lite_bins_variants(blocks: int) -> dict[str, dict]:
    """{variant: child_train's train_blocks and cache}: the encoder frozen, its features computed
    once (as training runs it) or every step; its last two blocks fine-tuned (the frozen ones
    cached); every block fine-tuned (only the stem's output cached)."""
    return {"frozen": {"train_blocks": 0, "cache": True},
            "frozen_uncached": {"train_blocks": 0, "cache": False},
            "last_2_blocks": {"train_blocks": min(2, blocks), "cache": True},
            "all_blocks": {"train_blocks": blocks, "cache": True}}


def child_train(prepared: str, palette: str, train_blocks: int, cache: bool, steps: int) -> dict:
    """lite_bins trained for a few batches by the training loop itself: train._setup (which also
    computes the frozen part's features once, the feature cache, unless `cache` is False) and
    train._train_epoch on the epoch's last `steps` batches, after two warm-up batches."""
    from chromalab import train as training

    if not cache:
        training.precompute = lambda *args, **kwargs: None  # this child process only
    params = config.load_params(ROOT / config.PARAMS_FILE)
    model = config.model_params(params, "lite_bins")
    model = dataclasses.replace(model, network_args={**model.network_args, "train_blocks": train_blocks})
    train = dataclasses.replace(config.train_params_for(params, "lite_bins"), device="cpu", checkpoint_every=0,
                                epochs=1)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        setup = training._setup("lite_bins", model, train, Path(prepared), Path(palette), Path(tmp),
                                Path(tmp) / "history.csv")
        setup_seconds = time.perf_counter() - t0
        last = setup.steps_per_epoch
        steps = min(steps, last - 2)
        training._train_epoch(setup, 1, last - 2, (0.0, 0), lambda *a: None)  # warm-up
        t0 = time.perf_counter()
        _, images = training._train_epoch(setup, 1, last - steps, (0.0, 0), lambda *a: None)
        took = time.perf_counter() - t0
    trained = sum(p.numel() for p in setup.colorizer.parameters() if p.requires_grad)
    features = setup.cache["train"]
    return {"train_blocks": train_blocks, "cache": cache, "images_per_second": images / took, "images": images,
            "batch_size": train.batch_size, "image_size": int(setup.config["image_size"]),
            "trained_parameters": trained, "setup_seconds": setup_seconds,
            "feature_cache_mb": features.nbytes / 1e6 if features is not None else 0.0,
            "train_images": len(setup.train_set)}


def lite_bins_training(work: Path, steps: int) -> dict:
    """child_train for each variant, on the bench's prepared data."""
    from chromalab.colorizer import build_colorizer

    params = config.load_params(ROOT / config.PARAMS_FILE)
    summary = json.loads((work / "prepared" / "summary.json").read_text())
    colorizer, _, _ = build_colorizer(config.model_params(params, "lite_bins"), summary, work / "palette")
    blocks = len(colorizer.network.encoder.blocks)
    return {name: child("train", prepared=str(work / "prepared"), palette=str(work / "palette"), steps=steps, **v)
            for name, v in lite_bins_variants(blocks).items()}


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
    from chromalab import model_choice

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
    from chromalab import model_choice

    if not (ROOT / paths.MODELS / "lite_bins" / "best.pt").is_file():
        return None
    runner, info = model_choice.load("lite_bins", None, "cpu", root=ROOT)
    return {"source": info["source"], **split_figures(ours(runner), photos, repeat),
            "colorize_working_size": runner.size}


def child_big(path: str, strip_pixels: int) -> dict:
    """The released model on one big photo through colorize's steps, written to a PNG as colorize
    writes it: seconds per megapixel of each step and this process's peak RSS."""
    from chromalab.images import save_png

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


# --- the pipeline ----------------------------------------------------------------------------------


def noop_repro_seconds() -> dict:
    """`dvc repro` on this repository when its pipeline is up to date (else why not measured)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    status = subprocess.run(["dvc", "status", "--json"], cwd=ROOT, capture_output=True, text=True, env=env)
    if status.returncode != 0 or json.loads(status.stdout or "{}"):
        return {"noop_repro_seconds": None, "noop_repro_note": "pipeline not up to date: run `make repro` first"}
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(["dvc", "repro"], cwd=ROOT, capture_output=True, check=True, env=env)
        times.append(time.perf_counter() - t0)
    return {"noop_repro_seconds": statistics.median(times)}


def recommended_model(names: list[str]) -> str:
    metrics = ROOT / paths.REPORTS / "metrics.json"
    if metrics.is_file():
        chosen = json.loads(metrics.read_text()).get("recommended")
        if chosen in names:
            return chosen
    return "unet" if "unet" in names else names[0]


def _split_row(label: str, f: dict) -> str:
    parts = " | ".join(f"{f[f'colorize_{k}_seconds_per_megapixel']:.4f}" for k in PARTS)
    return f"| {label} | {f['colorize_seconds_per_megapixel']:.3f} | {parts} | {f['colorize_prepost_fraction']:.0%} |"


def speed_lines(results: dict) -> list[str]:
    """The colorize split (ours, the workspace's lite_bins, the anchor), the big photo, the folder
    and lite_bins' training, as markdown."""
    r, a = results["released"], results["anchor"]
    rows = ["| colorize path | s/MP | decode | pre | network | post | PNG encode | pre+post share |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            _split_row(f"released model ({r['model']}, {r['colorize_working_size']} px)", r)]
    if results.get("workspace_lite_bins"):
        w = results["workspace_lite_bins"]
        rows.append(_split_row(f"workspace lite_bins (data/models, {w['colorize_working_size']} px)", w))
    rows.append(_split_row(f"anchor: Zhang et al.'s demo pipeline, same network ({ANCHOR_SIZE} px)", a))
    rows += ["", f"The anchor takes {a['ratio_to_ours']:.1f} times as long as ours in all, "
             f"{a['prepost_ratio_to_ours']:.0f} times as long for pre+post; "
             f"{len(results['split_photos'])} photos at 1 MP: {', '.join(results['split_photos'])}."]
    b, fo = results["big_photo"], results["folder"]
    rows += ["", f"A {b['megapixels']:.0f} MP photo ({b['shape'][1]} x {b['shape'][0]}, released model): "
             f"{b['seconds']:.2f} s ({b['seconds_per_megapixel']:.3f} s/MP: decode {b['decode_seconds']:.2f}, "
             f"pre {b['preprocess_seconds']:.2f}, network {b['network_seconds']:.2f}, post "
             f"{b['postprocess_seconds']:.2f}, encode {b['encode_seconds']:.2f}), peak RSS {b['peak_rss_mb']:.0f} MB "
             f"({b['baseline_rss_mb']:.0f} MB before the photo); the full-resolution work in one piece instead "
             f"of strips: peak {b['untiled_peak_rss_mb']:.0f} MB.",
             "", f"A folder of {fo['photos']} photos ({fo['megapixels']:.1f} MP): {fo['overlapped_seconds']:.2f} s with the "
             f"next photo decoded beside the colorizing, {fo['sequential_seconds']:.2f} s one after the other "
             f"({fo['speedup']:.2f}x; same files: {'yes' if fo['same_outputs'] else 'NO'})."]
    if results.get("lite_bins_training"):
        t = results["lite_bins_training"]
        frozen = t["frozen"]
        labels = {"frozen_uncached": "frozen, its features computed every step",
                  "last_2_blocks": "last 2 blocks fine-tuned", "all_blocks": "every block fine-tuned"}
        parts = [f"encoder frozen, features cached ({frozen['feature_cache_mb']:.0f} MB, computed in "
                 f"{frozen['setup_seconds']:.1f} s with the setup) {frozen['images_per_second']:.0f}"]
        parts += [f"{labels.get(name, name)} {v['images_per_second']:.0f} "
                  f"({frozen['images_per_second'] / v['images_per_second']:.1f}x slower)"
                  for name, v in t.items() if name != "frozen"]
        rows += ["", f"lite_bins training, images/s at {frozen['image_size']} px, batch {frozen['batch_size']} "
                 f"(train._train_epoch on {frozen['images']} images after 2 warm-up batches): " + "; ".join(parts) + "."]
    return rows


def write_table(results: dict) -> None:
    rows = ["| model | colorize s/MP | pre+post share | network s/MP | train img/s | data-path ratio | GFLOP/img | % of matmul peak |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, m in results["models"].items():
        mark = " (recommended)" if name == results["recommended"] else ""
        rows.append(f"| {name}{mark} | {m['colorize_seconds_per_megapixel']:.3f} | {m['colorize_prepost_fraction']:.0%} "
                    f"| {m['colorize_network_seconds_per_megapixel']:.3f} | {m['train_images_per_second']:.0f} "
                    f"| {m['train_data_path_ratio']:.2f} | {m['train_gflop_per_image']:.3f} | {m['train_peak_fraction']:.1%} |")
    r = results["released"]
    rows.insert(2, f"| released model ({r['model']}, {r['colorize_working_size']} px) | "
                   f"{r['colorize_seconds_per_megapixel']:.3f} | {r['colorize_prepost_fraction']:.0%} | "
                   f"{r['colorize_network_seconds_per_megapixel']:.3f} | — | — | — | — |")
    if results.get("workspace_lite_bins"):
        w = results["workspace_lite_bins"]
        rows.insert(3, f"| workspace lite_bins (data/models, {w['colorize_working_size']} px) | "
                       f"{w['colorize_seconds_per_megapixel']:.3f} | {w['colorize_prepost_fraction']:.0%} | "
                       f"{w['colorize_network_seconds_per_megapixel']:.3f} | — | — | — | — |")
    p = results["pipeline"]
    noop = f"{p['noop_repro_seconds']:.2f} s" if p.get("noop_repro_seconds") is not None else p.get("noop_repro_note")
    load = results["machine"]["load_average"]
    rows += ["", "League models: freshly built (2 training steps, the bench's 64 px data), colorizing the first "
             f"{results['league_photos']} photos at their 64 px training size.", ""]
    rows += speed_lines(results)
    rows += ["", f"Machine: torch threads {results['machine']['threads']}, fp32 matmul peak "
             f"{results['machine']['matmul_gflops']:.0f} GFLOP/s, load average {load[0]:.1f} at the start and "
             f"{results['machine']['load_average_end'][0]:.1f} at the end. prepare: {p['prepare_1x']['images_per_second']:.0f} "
             f"images/s, peak RSS {p['prepare_1x']['peak_rss_mb']:.0f} MB at {p['prepare_1x']['images']} images and "
             f"{p['prepare_4x']['peak_rss_mb']:.0f} MB at {p['prepare_4x']['images']}; palette k-means (k = 32, 1 M pixels) "
             f"{p['palette_fit_seconds']:.1f} s; no-op `dvc repro` {noop}. "
             f"Measured by `make bench` on {results['date']} in {results['seconds']:.0f} s."]
    text = TABLE_PAGE.read_text()
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        _, tail = rest.split(MARK_END, 1)
        TABLE_PAGE.write_text(f"{head}{MARK_START}\n" + "\n".join(rows) + f"\n{MARK_END}{tail}")


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="league models to measure (default: all)")
    parser.add_argument("--steps", type=int, default=6, help="training steps per timing")
    parser.add_argument("--repeat", type=int, default=2, help="colorize timings per photo (best kept)")
    parser.add_argument("--photos", type=int, default=8, help="1 MP photos colorized (the league models: the first 3)")
    parser.add_argument("--no-table", action="store_true", help="write the JSON only")
    parser.add_argument("--released-only", action="store_true", help="time the released model's colorize only")
    parser.add_argument("--quick", action="store_true",
                        help="released model, anchor, a 2-photo folder and a 2 MP photo on small photos; "
                             "no training, no pipeline, no table (a smoke test)")
    parser.add_argument("--out", type=Path, help="the JSON (default reports/benchmarks.json; --quick: none)")
    parser.add_argument("--threads", type=int, help="torch's threads (default: torch's own choice)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["CHROMALAB_BENCH_THREADS"] = str(args.threads)  # for the children
    elif os.environ.get("CHROMALAB_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["CHROMALAB_BENCH_THREADS"]))
    if args.child:
        kind, kwargs = args.child[0], json.loads(args.child[1])
        print(json.dumps({"big": child_big, "train": child_train}[kind](**kwargs)))
        return 0
    started = time.perf_counter()
    results = {"date": time.strftime("%Y-%m-%d"),
               "machine": {"threads": torch.get_num_threads(), "load_average": list(os.getloadavg())}}
    if args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            photos = megapixel_photos(work / "photos", 2, megapixels=0.25)
            results["photos"] = [p.name for p in photos]
            speed_figures(results, work, photos, 1, (1200, 1600), split_photos=photos[:1])
        results["machine"]["load_average_end"] = list(os.getloadavg())
        results["seconds"] = time.perf_counter() - started
        text = json.dumps(results, indent=2) + "\n"
        args.out.write_text(text) if args.out else print(text)
        return 0
    if args.released_only:
        with tempfile.TemporaryDirectory() as tmp:
            photos = megapixel_photos(Path(tmp), args.photos)
            print(json.dumps(released_figures(photos, args.repeat), indent=2))
        return 0
    params = config.load_params(ROOT / config.PARAMS_FILE)
    names = args.models or config.league(params)
    train = config.section(params, "train")
    peak = matmul_peak()
    results["machine"]["matmul_gflops"] = peak / 1e9
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepared = build_data(work)
        results["pipeline"] = {"prepare_1x": prepared["1x"], "prepare_4x": prepared["4x"],
                               "palette_fit_seconds": palette_fit_seconds(work / "prepared"),
                               **noop_repro_seconds()}
        photos = megapixel_photos(work / "photos", args.photos)
        results["photos"] = [p.name for p in photos]
        speed_figures(results, work, photos, args.repeat, BIG_SHAPE)
        results["lite_bins_training"] = lite_bins_training(work, args.steps)
        print("lite_bins training images/s: " + ", ".join(
            f"{k} {v['images_per_second']:.0f}" for k, v in results["lite_bins_training"].items()), flush=True)
        results["league_photos"] = min(3, len(photos))
        results["models"] = {}
        for name in names:
            model = config.model_params(params, name)
            figures = train_figures(name, model, train, work, args.steps, peak)
            from chromalab.colorizer import build_colorizer

            summary = json.loads((work / "prepared" / "summary.json").read_text())
            colorizer, _, _ = build_colorizer(model, summary, work / "palette")
            figures.update(colorize_figures(colorizer, summary["size"], photos[:3], args.repeat))
            results["models"][name] = figures
            print(f"{name}: {figures['colorize_seconds_per_megapixel']:.3f} s/MP colorize, "
                  f"{figures['train_images_per_second']:.0f} img/s train (ratio {figures['train_data_path_ratio']:.2f}, "
                  f"{figures['train_peak_fraction']:.1%} of peak)", flush=True)
    recommended = recommended_model(names)
    results["recommended"] = recommended
    chosen = results["models"][recommended]
    results.update({
        "colorize_seconds_per_megapixel": chosen["colorize_seconds_per_megapixel"],
        "colorize_prepost_fraction": chosen["colorize_prepost_fraction"],
        "released_colorize_seconds_per_megapixel": results["released"]["colorize_seconds_per_megapixel"],
        "released_prepost_fraction": results["released"]["colorize_prepost_fraction"],
        "anchor_ratio": results["anchor"]["ratio_to_ours"],
        "big_photo_peak_rss_mb": results["big_photo"]["peak_rss_mb"],
        "folder_overlap_speedup": results["folder"]["speedup"],
        "train_data_path_ratio": chosen["train_data_path_ratio"],
        "train_peak_fraction": chosen["train_peak_fraction"],
        "noop_repro_seconds": results["pipeline"]["noop_repro_seconds"],
        "palette_fit_seconds": results["pipeline"]["palette_fit_seconds"],
        "prepare_images_per_second": results["pipeline"]["prepare_1x"]["images_per_second"],
    })
    results["machine"]["load_average_end"] = list(os.getloadavg())
    results["seconds"] = time.perf_counter() - started
    out = args.out or ROOT / paths.REPORTS / "benchmarks.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_table:
        write_table(results)
    print(f"wrote {out} in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
