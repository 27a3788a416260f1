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

The measurements live beside this file, one job each: bench_colorize.py, bench_training.py (with
the data), bench_table.py (the pipeline and the table), bench_common.py (what they share).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench_* modules beside this script

import torch  # noqa: E402

from bench_colorize import child_big, colorize_figures, megapixel_photos, released_figures, speed_figures  # noqa: E402
from bench_common import BIG_SHAPE, ROOT, matmul_peak  # noqa: E402
from bench_table import noop_repro_seconds, recommended_model, write_table  # noqa: E402
from bench_training import build_data, child_train, lite_bins_training, palette_fit_seconds, train_figures  # noqa: E402
from chromalab.core import config, paths  # noqa: E402


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
            from chromalab.colorizing.colorizer import build_colorizer

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
