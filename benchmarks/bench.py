"""chromalab's benchmarks: `make bench` -> reports/benchmarks.json and the table in docs/benchmarks.md.

Measures, on this machine, the released model's colorize speed (what `chromalab colorize` uses by
default, at its working size) and, for every model of the league in params.yaml:
- colorize: seconds per megapixel, split into decode, pre-processing, network, post-processing
  and encode, on real photos resized to 1 megapixel;
- training: images/s of the real data path (memory-mapped arrays, the epoch's batches and
  augmentation) against the same steps on in-memory random tensors, and achieved FLOP/s
  (torch.utils.flop_counter) as a fraction of this machine's measured fp32 matmul peak;
and for the pipeline: prepare's images/s and peak RSS at 1x and 4x the images, the palette stage's
k-means time (k = 32 on 1 M pixels) and `dvc repro` on an unchanged pipeline.

Nothing here asserts a time; the figures are reported. Real photos come from ../shared/datasets
when that folder exists (CHROMALAB_BENCH_PHOTOS overrides it), else from the builtin photos.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from chromalab import config, paths
from chromalab.colorize import OUTPUT_PNG_LEVEL, FullResolution
from chromalab.config import DataParams, ModelParams, PaletteParams
from chromalab.data.lab_arrays import LabBatches
from chromalab.images import load_rgb

ROOT = Path(__file__).resolve().parents[1]
TABLE_PAGE = ROOT / "docs" / "benchmarks.md"
MARK_START, MARK_END = "<!-- bench:start -->", "<!-- bench:end -->"
SHARED_PHOTOS = ROOT.parent / "shared" / "datasets" / "photos"


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


# --- colorize ------------------------------------------------------------------------------------


def megapixel_photos(work: Path, count: int = 3) -> list[Path]:
    """Real photos resized to 1 megapixel (aspect kept), saved as JPEG, the usual input."""
    folder = Path(os.environ.get("CHROMALAB_BENCH_PHOTOS", SHARED_PHOTOS))
    if folder.is_dir():
        sources = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    else:
        sources = sorted((work / "raw" / "images").iterdir())
    out = work / "photos_1mp"
    out.mkdir(exist_ok=True)
    chosen = []
    for path in sources:
        img = Image.open(path).convert("RGB")
        if np.asarray(img).std(axis=2).mean() < 2:  # an already-grey photo says nothing about colour
            continue
        scale = (1e6 / (img.width * img.height)) ** 0.5
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
        target = out / f"{path.stem}.jpg"
        img.save(target, quality=92)
        chosen.append(target)
        if len(chosen) == count:
            break
    return chosen


def released_figures(photos: list[Path], repeat: int) -> dict:
    """colorize_figures of the model `chromalab colorize` uses when none is named."""
    from chromalab import checkpoint
    from chromalab.release import read_release

    path, info = read_release()
    colorizer, _ = checkpoint.load(path)
    return {"model": info["model"], **colorize_figures(colorizer, info["working_size"], photos, repeat)}


def colorize_figures(colorizer, image_size: int, photos: list[Path], repeat: int) -> dict:
    runner = FullResolution(colorizer.eval(), image_size, torch.device("cpu"))
    parts = {"decode": [], "preprocess": [], "network": [], "postprocess": [], "encode": []}
    megapixels = 0.0
    for path in photos:
        best = None
        for _ in range(repeat):
            t = [time.perf_counter()]
            rgb = load_rgb(path)
            t.append(time.perf_counter())
            L, L_small = runner.preprocess(rgb)
            t.append(time.perf_counter())
            ab = runner.predict(L_small)
            t.append(time.perf_counter())
            out = runner.postprocess(L, ab)
            t.append(time.perf_counter())
            buf = io.BytesIO()
            Image.fromarray(out).save(buf, format="PNG", compress_level=OUTPUT_PNG_LEVEL)  # as colorize writes
            t.append(time.perf_counter())
            took = np.diff(t)
            best = took if best is None or took.sum() < best.sum() else best
        for key, value in zip(parts, best):
            parts[key].append(value)
        megapixels += rgb.shape[0] * rgb.shape[1] / 1e6
    per_mp = {key: sum(values) / megapixels for key, values in parts.items()}
    total = sum(per_mp.values())
    return {
        "colorize_seconds_per_megapixel": total,
        **{f"colorize_{key}_seconds_per_megapixel": value for key, value in per_mp.items()},
        "colorize_prepost_fraction": (per_mp["preprocess"] + per_mp["postprocess"]) / total,
        "colorize_working_size": image_size,
    }


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
    p = results["pipeline"]
    noop = f"{p['noop_repro_seconds']:.2f} s" if p.get("noop_repro_seconds") is not None else p.get("noop_repro_note")
    rows += ["", f"Machine: {results['machine']['threads']} threads, fp32 matmul peak "
             f"{results['machine']['matmul_gflops']:.0f} GFLOP/s. prepare: {p['prepare_1x']['images_per_second']:.0f} "
             f"images/s, peak RSS {p['prepare_1x']['peak_rss_mb']:.0f} MB at {p['prepare_1x']['images']} images and "
             f"{p['prepare_4x']['peak_rss_mb']:.0f} MB at {p['prepare_4x']['images']}; palette k-means (k = 32, 1 M pixels) "
             f"{p['palette_fit_seconds']:.1f} s; no-op `dvc repro` {noop}. "
             f"Measured by `make bench` on {results['date']} in {results['seconds']:.0f} s."]
    text = TABLE_PAGE.read_text()
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        _, tail = rest.split(MARK_END, 1)
        TABLE_PAGE.write_text(f"{head}{MARK_START}\n" + "\n".join(rows) + f"\n{MARK_END}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="league models to measure (default: all)")
    parser.add_argument("--steps", type=int, default=6, help="training steps per timing")
    parser.add_argument("--repeat", type=int, default=2, help="colorize timings per photo (best kept)")
    parser.add_argument("--no-table", action="store_true", help="write the JSON only")
    parser.add_argument("--released-only", action="store_true", help="time the released model's colorize only")
    args = parser.parse_args()
    started = time.perf_counter()
    params = config.load_params(ROOT / config.PARAMS_FILE)
    names = args.models or config.league(params)
    train = config.section(params, "train")
    peak = matmul_peak()
    results = {"date": time.strftime("%Y-%m-%d"), "machine": {"threads": torch.get_num_threads(),
                                                              "matmul_gflops": peak / 1e9}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepared = build_data(work)
        if not args.released_only:
            results["pipeline"] = {"prepare_1x": prepared["1x"], "prepare_4x": prepared["4x"],
                                   "palette_fit_seconds": palette_fit_seconds(work / "prepared"),
                                   **noop_repro_seconds()}
        photos = megapixel_photos(work)
        results["photos"] = [p.name for p in photos]
        results["released"] = released_figures(photos, args.repeat)
        print(f"released model: {results['released']['colorize_seconds_per_megapixel']:.3f} s/MP colorize at "
              f"{results['released']['colorize_working_size']} px", flush=True)
        results["models"] = {}
        for name in names if not args.released_only else []:
            model = config.model_params(params, name)
            figures = train_figures(name, model, train, work, args.steps, peak)
            from chromalab.colorizer import build_colorizer

            summary = json.loads((work / "prepared" / "summary.json").read_text())
            colorizer, _, _ = build_colorizer(model, summary, work / "palette")
            figures.update(colorize_figures(colorizer, summary["size"], photos, args.repeat))
            results["models"][name] = figures
            print(f"{name}: {figures['colorize_seconds_per_megapixel']:.3f} s/MP colorize, "
                  f"{figures['train_images_per_second']:.0f} img/s train (ratio {figures['train_data_path_ratio']:.2f}, "
                  f"{figures['train_peak_fraction']:.1%} of peak)", flush=True)
    if args.released_only:
        print(json.dumps(results["released"], indent=2))
        return 0
    recommended = recommended_model(names)
    results["recommended"] = recommended
    chosen = results["models"][recommended]
    results.update({
        "colorize_seconds_per_megapixel": chosen["colorize_seconds_per_megapixel"],
        "colorize_prepost_fraction": chosen["colorize_prepost_fraction"],
        "train_data_path_ratio": chosen["train_data_path_ratio"],
        "train_peak_fraction": chosen["train_peak_fraction"],
        "noop_repro_seconds": results["pipeline"]["noop_repro_seconds"],
        "palette_fit_seconds": results["pipeline"]["palette_fit_seconds"],
        "prepare_images_per_second": results["pipeline"]["prepare_1x"]["images_per_second"],
    })
    results["seconds"] = time.perf_counter() - started
    out = ROOT / paths.REPORTS / "benchmarks.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_table:
        write_table(results)
    print(f"wrote {out} in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
