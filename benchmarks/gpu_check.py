"""`make gpu-check`: one short script that says whether chromalab trains and colorizes correctly on
a CUDA machine, and how fast.

    python benchmarks/gpu_check.py                       # on a CUDA machine (make gpu-check)
    python benchmarks/gpu_check.py --device cpu --steps 30 --size 64 --batch-size 4   # a dry run here

On CUDA it
1. trains chromalab's own model, `lite_bins` (encoder_unet with the packaged ImageNet Lite0 encoder,
   Zhang's bins with the combined loss), built from params.yaml's `models.lite_bins` by the
   library's own `build_colorizer`, for `--steps` (300) steps with AMP (bf16 autocast where the GPU
   supports it, else fp16 with a GradScaler: `train.autocast`'s rule) and channels_last on the
   model and its inputs, cudnn.benchmark on. The data are real photos: data/prepared's memory-mapped
   train arrays when they exist, else random crops (prepare's own crop_boxes) of the real colour
   photos shipped with scikit-image, scikit-learn and matplotlib (the `builtin` source's list),
   converted with chromalab.core.color.rgb_to_lab and written as prepare writes them. As the pipeline
   does, the frozen encoder's features are computed once per image (feature_cache.precompute);
2. checks that the loss falls (the mean of the last 20 % of the steps below (1 - LOSS_MARGIN)
   times the mean of the first 20 %) and that the first `--compare-steps` (5) steps, from the same
   initial weights on the same batches with the same dropout masks, give the losses of a CPU
   float32 run within AMP_RTOL (and, with AMP off and TF32 off, within FP32_RTOL); then runs the
   pipeline's own `chromalab.training.train.train` for one short epoch on the device (validation and the
   temperature sweep included), so a device-placement slip in the stage itself shows here;
3. colorizes one real photo at full resolution with the released model through `FullResolution`
   and `colorize_files`, the path `chromalab colorize --device cuda` takes, into
   reports/gpu_check/PHOTO.png, and checks it is not grey (mean Lab chroma at least prepare's
   grey_chroma) and that it matches the same photo colorized on the CPU (mean |difference| of
   the uint8 RGB at most COLORIZE_MAX_DIFF);
4. prints training images/s (with AMP and in float32), the frozen features' images/s and
   colorize's seconds per megapixel, every timed region between torch.cuda.synchronize() calls,
   and writes them with the device, the versions, the losses and every check to
   reports/gpu_check.json.

Without a CUDA device it prints one line saying so and what it would have checked, and exits 0.
`--device cpu` is a dry run of the same logic on the CPU (AMP off, as the pipeline has it, unless
`--amp bf16` asks for CPU bf16 autocast); its figures say nothing about a GPU. A failed check
exits 1 with a one-line reason (the JSON is written first); a usage error exits 2.

This file holds the options, the checks and the report; the data are gpu_check_data.py's, the
training steps and the rules on the losses gpu_check_training.py's.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # gpu_check_data and _training beside this script
from gpu_check_data import ROOT, Data, Rows, builtin_photo_paths, load_data  # noqa: E402
from gpu_check_training import (LOSS_FRACTION, amp_setup, batches, loss_falls, losses_match, place,  # noqa: E402
                                seed_dropout, sync, tf32, timed_precompute, train_steps)

from chromalab.colorizing.colorize import colorize_files
from chromalab.colorizing.colorizer import Colorizer, build_colorizer, count_parameters
from chromalab.core import color, config, paths
from chromalab.core.config import TrainParams
from chromalab.core.errors import UserError, first_line
from chromalab.core.images import load_rgb
from chromalab.data.lab_arrays import LabBatches

MODEL = "lite_bins"

# The first steps against a CPU float32 run: the largest |loss - reference| / reference over the
# steps. Measured on the CPU (docs/scaling.md, 5 steps of batch 32 at 128 px): bf16 autocast 5e-5
# (the logits are small and their rounding averages out over the pixels); slips that change what
# is computed: a doubled learning rate 5 %, no update at all 8 %, every image given another
# image's features 1.3 %, the mirror images' features ignored 0.35 %, other dropout masks 0.19 %.
# AMP_RTOL is 100 x bf16's difference, room for other kernels, TF32 and an fp16 step skipped by
# the GradScaler, and still catches the first three; FP32_RTOL (float32 on the device, TF32 off:
# only the order of the sums differs) is 20 x bf16's and catches all five.
AMP_RTOL = 0.005
FP32_RTOL = 1e-3
# Colorize on the device against the CPU: mean |difference| of the uint8 RGB output, in levels.
COLORIZE_MAX_DIFF = 1.0
COLORIZE_REPEATS = 3
FP32_TIMING_STEPS = 100  # the float32 training run that measures img/s without AMP (CUDA)
PIPELINE_EPOCH_BATCHES = 4  # the pipeline's train() runs one epoch of this many batches
DEFAULT_PHOTO = "astronaut"  # colorized by step 3 (a builtin photo), unless --photo

class CheckFailed(Exception):
    """A check did not pass: its one-line reason."""


# --- options ----------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (a dry run of the logic); default cuda")
    p.add_argument("--steps", type=int, default=300, help="training steps with AMP (default 300)")
    p.add_argument("--batch-size", type=int, default=None, help="default: params.yaml's train.batch_size")
    p.add_argument("--lr", type=float, default=None, help="default: params.yaml's train.lr for lite_bins")
    p.add_argument("--data", choices=("auto", "prepared", "photos"), default="auto",
                   help="auto: data/prepared when it has train arrays, else crops of the builtin photos")
    p.add_argument("--size", type=int, default=128, help="crop size of the builtin photos (default 128)")
    p.add_argument("--crops", type=int, default=32, help="random crops per builtin photo (default 32)")
    p.add_argument("--max-images", type=int, default=4096, help="at most this many train images (a seeded subset)")
    p.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), default="auto",
                   help="auto: bf16 where supported, else fp16 with a GradScaler, on CUDA; off on the CPU")
    p.add_argument("--compare-steps", type=int, default=5, help="first steps compared with a CPU float32 run")
    p.add_argument("--photo", default=None, help=f"the photo to colorize (default: the builtin {DEFAULT_PHOTO})")
    p.add_argument("--reports", default=str(ROOT / paths.REPORTS),
                   help="writes REPORTS/gpu_check.json and REPORTS/gpu_check/PHOTO.png (default reports/)")
    p.add_argument("--no-pipeline", action="store_true", help="skip the pipeline train() epoch")
    p.add_argument("-v", "--verbose", action="store_true", help="the library's log lines too")
    args = p.parse_args(argv)
    if args.steps < 5:
        p.error("--steps: at least 5 (the loss check compares the first and last 20 %)")
    if args.compare_steps < 1 or args.compare_steps > args.steps:
        p.error("--compare-steps: between 1 and --steps")
    if args.size < 32 or args.size % 32:
        p.error("--size: a multiple of 32 (encoder_unet's size multiple)")
    if not (args.device == "cpu" or args.device == "cuda" or args.device.startswith("cuda:")):
        p.error("--device: cuda, cuda:N or cpu")
    if args.device == "cpu" and args.amp == "fp16":
        p.error("--amp fp16: CUDA only (its GradScaler); on the CPU use bf16 or off")
    return args


def no_cuda_line(args) -> str:
    built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    return (f"gpu-check: no CUDA device here (torch {torch.__version__}, {built}), nothing checked. On a CUDA "
            f"machine it trains {MODEL} for {args.steps} steps with AMP and channels_last, checks the loss falls "
            f"and the first {args.compare_steps} steps match a CPU float32 run (within {AMP_RTOL:.1%}), runs the "
            "pipeline's train() for one epoch, colorizes a photo at full resolution on CUDA and writes "
            "reports/gpu_check.json; `--device cpu --steps 30` dry-runs the logic here.")


# --- the checks ---------------------------------------------------------------------------------


def compare_with_cpu(init: Colorizer, data: LabBatches, device: torch.device, args, params: TrainParams,
                     batch_size: int, lr: float, amp_mode: str, channels_last: bool) -> dict:
    """The first `compare_steps` steps on the device (with AMP, and in float32 with TF32 off)
    against a CPU float32 run: the same initial weights, batches, flips and dropout masks. On the
    CPU the float32 run is a second identical run (it must agree to the last bit)."""
    k = args.compare_steps
    rows = sorted({int(r) for step, (b, _) in zip(range(k), batches(len(data), batch_size, params)) for r in b})
    # The comparison trains on exactly the images of its first k batches, renumbered.
    subset = Rows(data, rows) if not isinstance(data, Rows) else Rows(data.base, data.rows[rows])

    def run(dev: torch.device, mode: str, nhwc: bool) -> dict:
        colorizer = place(seed_dropout(copy.deepcopy(init), params.seed), dev, nhwc)
        cache, _ = timed_precompute(colorizer, subset, batch_size, dev)
        return train_steps(colorizer, subset, cache, k, dev, params, batch_size, lr, mode, nhwc)

    cpu = torch.device("cpu")
    reference = run(cpu, "off", False)["losses"]
    out = {"steps": k, "reference": "cpu float32", "reference_losses": [round(v, 6) for v in reference]}
    ctx, dtype, _ = amp_setup(device, amp_mode)
    if dtype != "float32":
        out["amp"] = {"dtype": dtype, **losses_match(run(device, amp_mode, channels_last)["losses"], reference, AMP_RTOL)}
    with tf32(False):
        # On the CPU: a second identical run, which must agree exactly.
        fp32 = run(device, "off", channels_last)["losses"]
    out["float32"] = losses_match(fp32, reference, FP32_RTOL if device.type == "cuda" else 0.0)
    out["passed"] = all(v["passed"] for v in (out.get("amp"), out["float32"]) if v)
    return out


def pipeline_epoch(data: Data, device: torch.device, params: TrainParams, batch_size: int, scratch: Path) -> dict:
    """The pipeline's own train() (chromalab.training.train.train, what `dvc repro train@lite_bins` runs)
    for one epoch of a few batches on the device, AMP and channels_last as params.yaml has them,
    with validation and a temperature sweep, MLflow off. Returns what happened, never raises."""
    from chromalab.training.train import train

    small = scratch / "pipeline_prepared"
    small.mkdir(exist_ok=True)
    n_train = PIPELINE_EPOCH_BATCHES * batch_size
    for split, (start, count) in (("train", (0, n_train)), ("val", (n_train, batch_size))):
        for part in ("L", "ab"):
            arr = np.load(data.prepared / f"train_{part}.npy", mmap_mode="r")
            lo = min(start, max(0, len(arr) - count))  # a small train split: val repeats some of it
            np.save(small / f"{split}_{part}.npy", np.asarray(arr[lo:lo + count]))
    (small / "summary.json").write_text(json.dumps({**data.summary, "labels": []}))
    model = config.model_params(config.load_params(ROOT / config.PARAMS_FILE), MODEL)
    run_params = dataclasses.replace(params, epochs=1, batch_size=batch_size, device=str(device),
                                     temperatures=[0.38, 1.0], checkpoint_every=0, num_workers=0, nproc=1,
                                     deterministic=device.type == "cpu")
    before = os.environ.get("CHROMALAB_MLFLOW")
    os.environ["CHROMALAB_MLFLOW"] = "off"
    t0 = time.perf_counter()
    try:
        best = train(MODEL, model, run_params, small, data.palette, scratch / "pipeline_model",
                     scratch / "pipeline_history.csv", logged_params={})
        result = {"passed": bool(np.isfinite(best["val_loss"])), "val_loss": round(best["val_loss"], 6),
                  "val_psnr": round(best["val_psnr"], 3), "temperature": best["representation_args"]["temperature"]}
        if not result["passed"]:
            result["reason"] = f"val_loss is {best['val_loss']}"
    except Exception as err:  # the point of the check: any failure of the stage on this device
        result = {"passed": False, "reason": f"{type(err).__name__}: {first_line(err)}"}
    finally:
        if before is None:
            os.environ.pop("CHROMALAB_MLFLOW", None)
        else:
            os.environ["CHROMALAB_MLFLOW"] = before
    result.update(images=n_train, batch_size=batch_size, seconds=round(time.perf_counter() - t0, 3))
    return result


def colorize_check(device: torch.device, photo: Path, out_dir: Path, grey_chroma: float) -> dict:
    """The released model on `photo` at full resolution through the CLI's path (model_choice.load,
    FullResolution, colorize_files) on the device: not grey, and the CPU's result within
    COLORIZE_MAX_DIFF; seconds per megapixel of the FullResolution call (synchronised)."""
    from chromalab.serving import model_choice

    runner, info = model_choice.load(None, None, str(device))
    t0 = time.perf_counter()
    outcome = colorize_files(runner, [photo], out_dir, overwrite=True, progress=False)
    file_seconds = time.perf_counter() - t0
    if outcome.failed:
        raise CheckFailed(f"colorize {photo.name} on {device}: {outcome.failed[0][1]}")
    written = outcome.written[0]
    rgb, result = load_rgb(photo), load_rgb(written)
    times = []
    for _ in range(COLORIZE_REPEATS):
        sync(device)
        t = time.perf_counter()
        runner(rgb)
        sync(device)
        times.append(time.perf_counter() - t)
    cpu_runner, _ = model_choice.load(None, None, "cpu")
    diff = np.abs(cpu_runner(rgb).astype(np.int16) - result.astype(np.int16))
    megapixels = rgb.shape[0] * rgb.shape[1] / 1e6
    chroma = color.mean_chroma(result)
    out = {"photo": str(photo), "output": str(written), "model": info["model"], "working_size": runner.size,
           "height": rgb.shape[0], "width": rgb.shape[1], "megapixels": round(megapixels, 4),
           "mean_chroma": round(chroma, 3), "grey_below": grey_chroma, "not_grey": bool(chroma >= grey_chroma),
           "cpu_mean_abs_diff": round(float(diff.mean()), 4), "cpu_max_abs_diff": int(diff.max()),
           "cpu_tolerance": COLORIZE_MAX_DIFF, "matches_cpu": bool(diff.mean() <= COLORIZE_MAX_DIFF),
           "s_per_mp": round(statistics.median(times) / megapixels, 5), "seconds": [round(t, 5) for t in times],
           "file_seconds_first_call": round(file_seconds, 4)}
    out["passed"] = out["not_grey"] and out["matches_cpu"]
    return out


# --- main ---------------------------------------------------------------------------------------


def environment(device: torch.device) -> dict:
    env = {"device": str(device), "dry_run": device.type != "cuda", "torch": torch.__version__,
           "cuda": torch.version.cuda, "python": platform.python_version(), "host_cpu": platform.processor() or platform.machine(),
           "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(device_name=torch.cuda.get_device_name(device), capability=f"{props.major}.{props.minor}",
                   memory_gib=round(props.total_memory / 2**30, 1), cudnn=torch.backends.cudnn.version(),
                   bf16_supported=torch.cuda.is_bf16_supported(), cudnn_benchmark=torch.backends.cudnn.benchmark,
                   tf32_conv=torch.backends.cudnn.allow_tf32, tf32_matmul=torch.backends.cuda.matmul.allow_tf32)
    else:
        env["device_name"] = "cpu"
    return env


def failures_of(checks: dict) -> list[str]:
    """One line per failed check."""
    lines = []
    falls = checks.get("loss_falls")
    if falls and not falls["passed"]:
        lines.append(f"the loss did not fall: last {LOSS_FRACTION:.0%} of steps mean {falls['last_mean']:.4f} is "
                     f"{falls['ratio']:.3f} x the first {LOSS_FRACTION:.0%}'s {falls['first_mean']:.4f} (must be below "
                     f"{falls['must_be_below']:.2f}){'' if falls['all_finite'] else '; a loss is not finite'}")
    cmp = checks.get("matches_cpu")
    for key in ("amp", "float32"):
        if cmp and cmp.get(key) and not cmp[key]["passed"]:
            lines.append(f"the first {cmp['steps']} {key} steps differ from the CPU float32 run by "
                         f"{cmp[key]['max_relative_difference']:.3g} (relative; tolerance {cmp[key]['tolerance']:g})")
    pipe = checks.get("pipeline_train")
    if pipe and not pipe["passed"]:
        lines.append(f"the pipeline's train() failed on the device: {pipe['reason']}")
    col = checks.get("colorize")
    if col and not col["not_grey"]:
        lines.append(f"the colorized photo is grey: mean chroma {col['mean_chroma']:.2f} < {col['grey_below']:g}")
    if col and not col["matches_cpu"]:
        lines.append(f"the colorized photo differs from the CPU's by {col['cpu_mean_abs_diff']:.2f} levels on average "
                     f"(tolerance {COLORIZE_MAX_DIFF:g})")
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(no_cuda_line(args))
        return 0
    device = torch.device(args.device)
    if device.type == "cuda":
        if device.index is None:  # torch.cuda.set_device and friends want an index
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    params_all = config.load_params(ROOT / config.PARAMS_FILE)
    model = config.model_params(params_all, MODEL)
    params = config.train_params_for(params_all, MODEL)
    batch_size = args.batch_size or params.batch_size
    lr = params.lr if args.lr is None else args.lr  # --lr 0 is allowed: it makes the loss check fail
    channels_last = device.type == "cuda" and params.channels_last
    from chromalab.training.train import seed_everything

    seed_everything(params.seed, deterministic=device.type == "cpu")
    torch.backends.cudnn.benchmark = device.type == "cuda"  # autotuned kernels, as train.deterministic: false
    reports = Path(args.reports)
    env = environment(device)
    record = {**env, "command": " ".join([Path(sys.argv[0]).name] + (sys.argv[1:] if argv is None else list(argv))),
              "model": MODEL, "steps": args.steps, "batch_size": batch_size, "lr": lr, "channels_last": channels_last}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as scratch_name:
        scratch = Path(scratch_name)
        data = load_data(args, params_all, params.seed, scratch)
        train_set = LabBatches(data.prepared, "train")
        if len(train_set) > args.max_images:
            keep = np.random.default_rng(params.seed).choice(len(train_set), args.max_images, replace=False)
            train_data = Rows(train_set, keep)
        else:
            train_data = Rows(train_set, np.arange(len(train_set)))
        size = data.summary["size"]
        torch.manual_seed(params.seed)
        init, _, _ = build_colorizer(model, data.summary, data.palette)
        trained = sum(p.numel() for p in init.parameters() if p.requires_grad)
        record["model_info"] = {"network": model.network, "representation": model.representation,
                                "network_args": dict(model.network_args), "bins": init.representation.channels,
                                "parameters": count_parameters(init), "trained_parameters": trained}
        record["data"] = {"source": data.source, "train_images": len(train_data), "size": size}
        ctx, amp_dtype, _ = amp_setup(device, args.amp)
        record["amp"] = amp_dtype
        print(f"gpu-check on {device} ({env['device_name']}, torch {torch.__version__}"
              f"{', CUDA ' + torch.version.cuda if device.type == 'cuda' else ''}): {MODEL} ({model.network} -> "
              f"{model.representation}), {len(train_data)} train images at {size} px from {data.source}", flush=True)

        # 2b. The first steps against a CPU float32 run (before the long run: a wrong result shows at once).
        checks = {"matches_cpu": compare_with_cpu(init, train_data, device, args, params, batch_size, lr,
                                                  args.amp, channels_last)}
        cmp = checks["matches_cpu"]
        amp_part = f"{cmp['amp']['dtype']} {cmp['amp']['max_relative_difference']:.2g} (tol {AMP_RTOL:g}), " if cmp.get("amp") else ""
        print(f"  first {cmp['steps']} steps vs CPU float32: max relative loss difference {amp_part}"
              f"float32 {cmp['float32']['max_relative_difference']:.2g} (tol {cmp['float32']['tolerance']:g}): "
              f"{'ok' if cmp['passed'] else 'FAILED'}", flush=True)

        # 1. Train with AMP and channels_last; 2a. the loss falls.
        colorizer = place(copy.deepcopy(init), device, channels_last)
        cache, precompute_s = timed_precompute(colorizer, train_data, batch_size, device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        warmup = min(10, args.steps // 5)
        run = train_steps(colorizer, train_data, cache, args.steps, device, params, batch_size, lr, args.amp,
                          channels_last, model.class_loss_weight, warmup)
        record["losses"] = [round(v, 6) for v in run["losses"]]
        checks["loss_falls"] = loss_falls(run["losses"])
        falls = checks["loss_falls"]
        views = 2 if cache is not None and cache.mirrored is not None else 1
        timings = {"train_img_per_s": {run["dtype"]: round(run["img_per_s"], 2) if run["img_per_s"] else None},
                   "train_timed_steps": args.steps - warmup, "train_seconds": round(run["seconds"], 4),
                   "precompute_img_per_s": round(views * len(train_data) / precompute_s, 2),
                   "precompute_seconds": round(precompute_s, 4)}
        if run["grad_scale"] is not None:
            record["final_grad_scale"] = run["grad_scale"]
        if device.type == "cuda":
            timings["train_peak_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        print(f"  train {args.steps} steps, batch {batch_size}, {run['dtype']}{' + channels_last' if channels_last else ''}: "
              f"loss {falls['first_mean']:.4f} -> {falls['last_mean']:.4f} (last/first {falls['ratio']:.3f}, must be "
              f"< {falls['must_be_below']:.2f}): {'ok' if falls['passed'] else 'FAILED'}", flush=True)
        if run["dtype"] != "float32":
            # The same training in float32, for img/s without AMP (from the same weights; losses not checked).
            fp32 = train_steps(place(copy.deepcopy(init), device, channels_last), train_data, cache,
                               min(args.steps, FP32_TIMING_STEPS), device, params, batch_size, lr, "off",
                               channels_last, model.class_loss_weight, warmup)
            timings["train_img_per_s"]["float32"] = round(fp32["img_per_s"], 2) if fp32["img_per_s"] else None
        del colorizer, cache

        # 2c. The pipeline's own train() on this device.
        if not args.no_pipeline:
            checks["pipeline_train"] = pipeline_epoch(data, device, params, batch_size, scratch)
            pipe = checks["pipeline_train"]
            print(f"  pipeline train() 1 epoch of {PIPELINE_EPOCH_BATCHES} batches on {device}: "
                  f"{'ok' if pipe['passed'] else 'FAILED: ' + pipe['reason']}", flush=True)

    # 3. Colorize one real photo at full resolution.
    photo = Path(args.photo) if args.photo else builtin_photo_paths()[DEFAULT_PHOTO]
    grey = config.section(params_all, "prepare").grey_chroma
    checks["colorize"] = col = colorize_check(device, photo, reports / "gpu_check", grey)
    timings["colorize_s_per_mp"] = col["s_per_mp"]
    print(f"  colorize {photo.name} ({col['width']}x{col['height']}) on {device}: mean chroma {col['mean_chroma']:.1f} "
          f"(grey < {grey:g}), vs CPU mean |diff| {col['cpu_mean_abs_diff']:.3f} levels: "
          f"{'ok' if col['passed'] else 'FAILED'} -> {col['output']}", flush=True)

    # 4. Figures and the record.
    img_s = ", ".join(f"{v:.1f} img/s ({k})" for k, v in timings["train_img_per_s"].items() if v)
    print(f"  speed: train {img_s}; frozen features {timings['precompute_img_per_s']:.1f} img/s; "
          f"colorize {col['s_per_mp']:.4f} s/MP at {col['megapixels']:.2f} MP", flush=True)
    failures = failures_of(checks)
    record.update(checks=checks, timings=timings, passed=not failures, failures=failures)
    reports.mkdir(parents=True, exist_ok=True)
    out = reports / "gpu_check.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"  wrote {out}" + (" (a CPU dry run: no GPU figures)" if device.type != "cuda" else ""), flush=True)
    if failures:
        print(f"gpu-check: FAILED: {failures[0]}" + (f" (and {len(failures) - 1} more in {out})" if len(failures) > 1 else ""),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (UserError, CheckFailed) as err:
        print(f"gpu-check: error: {first_line(err)}", file=sys.stderr)
        sys.exit(2 if isinstance(err, UserError) else 1)
