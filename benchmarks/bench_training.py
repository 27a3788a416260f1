"""`make bench`'s data and training figures: prepare and palette on the builtin photos, each league
model's training images/s (real data path vs in-memory tensors, FLOP/s), and lite_bins' training
frozen and fine-tuned, each variant in a process of its own."""

from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench_common import ROOT, child
from chromalab.core import config
from chromalab.core.config import DataParams, ModelParams, PaletteParams
from chromalab.data.lab_arrays import LabBatches


# --- data the benchmarks train and colorize on ------------------------------------------------


def run_prepare_child(raw: Path, out: Path, crops: int) -> dict:
    """prepare in its own process, so its peak RSS is its own."""
    code = (
        "import json, resource, sys, time\n"
        "from chromalab.core.config import PrepareParams\n"
        "from chromalab.data.prepare import prepare\n"
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
    from chromalab.data.download import download
    from chromalab.data.palette import build_palette

    download(DataParams(source="builtin"), work / "raw")
    one = run_prepare_child(work / "raw", work / "prepared_1x", 32)
    four = run_prepare_child(work / "raw", work / "prepared", 128)
    build_palette(PaletteParams(k=32), work / "prepared", work / "palette", work / "palette.png")
    return {"1x": one, "4x": four}


def palette_fit_seconds(prepared: Path) -> float:
    from chromalab.data.palette import fit_kmeans, sample_pixels

    pixels = sample_pixels(prepared, 1_000_000, seed=0)
    t0 = time.perf_counter()
    fit_kmeans(pixels, PaletteParams(k=32))
    return time.perf_counter() - t0


# --- training ------------------------------------------------------------------------------------


def _step(colorizer, optimizer, batch, alpha, extra):
    from chromalab.colorizing.colorizer import batch_loss

    loss, _ = batch_loss(colorizer, batch, alpha, extra)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def train_figures(name: str, model: ModelParams, train: config.TrainParams, work: Path, steps: int,
                  peak: float) -> dict:
    """Images/s of the real data path vs in-memory tensors, and achieved FLOP/s, for one model."""
    from torch.utils.flop_counter import FlopCounterMode

    from chromalab.colorizing.colorizer import build_colorizer
    from chromalab.training import distributed
    from chromalab.training.augment import augment, augmentation_table
    from chromalab.training.feature_cache import extra_inputs as _extra, precompute
    from chromalab.training.train import epoch_batches as _epoch_batches

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
    from chromalab.training import train as training

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
    from chromalab.colorizing.colorizer import build_colorizer

    params = config.load_params(ROOT / config.PARAMS_FILE)
    summary = json.loads((work / "prepared" / "summary.json").read_text())
    colorizer, _, _ = build_colorizer(config.model_params(params, "lite_bins"), summary, work / "palette")
    blocks = len(colorizer.network.encoder.blocks)
    return {name: child("train", prepared=str(work / "prepared"), palette=str(work / "palette"), steps=steps, **v)
            for name, v in lite_bins_variants(blocks).items()}
