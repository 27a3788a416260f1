"""train@MODEL stage: fit one Colorizer on the train split, validate every epoch, keep the best.

Outputs: data/models/MODEL/{best.pt, last.pt} and reports/train/MODEL/history.csv (the per-epoch
curves `dvc plots` draws): the same bytes on every rerun with the same params and seed on one CPU
type. Beside them, ignored by DVC and git, run.json (the MLflow run) and timings.json (seconds).
The best checkpoint is chosen on the validation split (selection.py); the test split is never
touched here.

The loop reads top to bottom in `train`: build everything (`_setup`), restore a killed run's
`TrainingState` if there is one, then per epoch the steps (`_train_epoch`) and the end-of-epoch
bookkeeping (`_end_epoch`). What changes as training goes is one `TrainingState`, saved and
restored in one place.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import random
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from chromalab.colorizing import checkpoint
from chromalab.colorizing.colorizer import Colorizer, batch_loss, build_colorizer, check_names, count_parameters
from chromalab.colorizing.device import select_device
from chromalab.core import atomic, timings, tracking
from chromalab.core.config import ModelParams, TrainParams, as_dict
from chromalab.core.errors import UserError
from chromalab.data.lab_arrays import LabBatches, batch_loader, load_summary
from chromalab.training import distributed, resume, shrink_choice
from chromalab.training.augment import augment, augmentation_table
from chromalab.training.feature_cache import extra_inputs, precompute
from chromalab.training.selection import annealed, better, sweep_temperature, validate

log = logging.getLogger(__name__)

# temperature and val_delta_colorfulness: annealed-mean models with train.temperatures, whose val
# PSNR (and neutral chroma) is then the one at the temperature chosen that epoch.
HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_psnr", "lr", "temperature", "val_delta_colorfulness",
                   "val_neutral_chroma", "prior_correction"]


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = not deterministic  # autotuning picks kernels by timing
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


def autocast(device: torch.device, enabled: bool):
    """Mixed precision on CUDA only (bf16 where supported, else fp16); full fp32 on the CPU."""
    if not enabled or device.type != "cuda":
        return nullcontext(), None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return torch.autocast("cuda", dtype=dtype), scaler


def parameter_groups(colorizer: Colorizer, lr: float) -> list[dict]:
    """The optimizer's parameter groups: one at train.lr, unless the network asks for parts that
    learn more slowly (a fine-tuned pre-trained encoder)."""
    groups = getattr(colorizer.network, "parameter_groups", None)
    if groups is None:
        return [{"params": [p for p in colorizer.parameters() if p.requires_grad]}]
    return [{"params": ps, "lr": lr * scale} for ps, scale in groups() if ps]


def lr_factor(schedule: str, step: int, total: int, warmup: int) -> float:
    """The learning rate at `step` as a fraction of train.lr: linear warm-up, then constant or a
    cosine decay to zero (onecycle: warm-up over 30 % of the run, then cosine)."""
    if schedule == "onecycle":
        warmup = max(1, int(0.3 * total))
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _history_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, HISTORY_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def epoch_batches(n: int, per_rank: int, world, params: TrainParams, epoch: int) -> list[list[int]]:
    """This process's batches (lists of row numbers) of one epoch, drawn from (seed, epoch)."""
    rows = distributed.epoch_rows(n, world, params.seed, epoch)
    return [rows[i:i + per_rank] for i in range(0, len(rows), per_rank)]


class _Outputs(nn.Module):
    """The colorizer's raw outputs as forward(): DistributedDataParallel synchronises gradients
    of what runs through a forward call, and the loss needs outputs_and_classes, not colours."""

    def __init__(self, colorizer: Colorizer):
        super().__init__()
        self.colorizer = colorizer

    def forward(self, L, **extra):
        return self.colorizer.outputs_and_classes(L, **extra)


@dataclasses.dataclass
class Setup:
    """What a run trains with, built the same way whether it starts or resumes."""

    name: str
    params: TrainParams
    colorizer: Colorizer
    net: nn.Module  # the colorizer's outputs, wrapped for DDP and torch.compile when asked
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: object | None
    amp: object
    device: torch.device
    world: object
    train_set: LabBatches
    val_loader: object
    alpha: float  # class_loss_weight: α of Iizuka et al.'s class loss, for networks with a class head
    cache: dict  # split -> FeatureCache or None
    sweeping: bool  # annealed-mean model with temperatures to try: epoch and T chosen together
    per_rank: int
    steps_per_epoch: int
    config: dict  # the checkpoint's config, updated every epoch
    out_dir: Path
    history_path: Path


@dataclasses.dataclass
class TrainingState:
    """What changes as training goes: everything a resumed run needs to end as an uninterrupted one
    would (with the weights, optimizer, schedule and RNG states that `save` adds)."""

    history: list = dataclasses.field(default_factory=list)
    best: dict | None = None  # the config of the best epoch so far
    best_weights: dict | None = None
    epoch: int = 1  # where to go on: this epoch, from this step, with these running loss totals
    step: int = 0
    totals: tuple = (0.0, 0)
    run_id: str | None = None
    seconds: float = 0.0  # training time before this process started
    epoch_seconds: list = dataclasses.field(default_factory=list)
    rng: dict | None = None  # the saved RNG states, restored last

    def save(self, path: Path, setup: Setup, fingerprint: str, seconds: float) -> None:
        resume.save(path, {
            "fingerprint": fingerprint, "model": setup.colorizer.state_dict(),
            "optimizer": setup.optimizer.state_dict(), "scheduler": setup.scheduler.state_dict(),
            "scaler": setup.scaler.state_dict() if setup.scaler else None,
            "history": self.history, "best": self.best, "best_weights": self.best_weights,
            "epoch": self.epoch, "step": self.step, "totals": list(self.totals), "run_id": self.run_id,
            "train_seconds": seconds, "epoch_seconds": self.epoch_seconds,
        })

    @classmethod
    def restore(cls, path: Path, setup: Setup, fingerprint: str) -> TrainingState | None:
        saved = resume.load(path, fingerprint)
        if not saved:
            return None
        setup.colorizer.load_state_dict(saved["model"])
        setup.optimizer.load_state_dict(saved["optimizer"])
        setup.scheduler.load_state_dict(saved["scheduler"])
        if setup.scaler and saved.get("scaler"):
            setup.scaler.load_state_dict(saved["scaler"])
        return cls(saved["history"], saved["best"], saved["best_weights"], saved["epoch"], saved["step"],
                   tuple(saved["totals"]), saved.get("run_id"), saved["train_seconds"],
                   saved.get("epoch_seconds", []), saved["rng"])


def _check_sizes(summary: dict, colorizer: Colorizer, model: ModelParams, params: TrainParams) -> None:
    for key in ("size", "eval_size"):
        if summary.get(key, summary["size"]) % colorizer.size_multiple:
            raise UserError(f"prepare.{key}: {summary.get(key)} is not a multiple of {colorizer.size_multiple}, "
                            f"which the {model.network} network needs")
    if params.translate >= summary["size"]:
        raise UserError(f"train.translate: {params.translate} px must be below the image size {summary['size']}")


def _setup(name: str, model: ModelParams, params: TrainParams, prepared_dir: Path, palette_dir,
           out_dir: Path, history_path: Path) -> Setup:
    summary = load_summary(prepared_dir)
    seed_everything(params.seed, params.deterministic)
    device = select_device(params.device)
    world = distributed.join(device.type)
    device = distributed.device_for(world, device)
    if params.batch_size % world.size:
        raise UserError(f"train.batch_size: {params.batch_size} does not split evenly over {world.size} processes")
    check_names(f"models.{name}", model.network, model.representation)
    colorizer, network_args, representation_args = build_colorizer(model, summary, palette_dir)
    _check_sizes(summary, colorizer, model, params)
    colorizer.to(device)
    if device.type == "cuda" and params.channels_last:
        colorizer.to(memory_format=torch.channels_last)
    train_set, val_set = LabBatches(prepared_dir, "train"), LabBatches(prepared_dir, "val")
    if len(train_set) == 0:
        raise UserError(f"{prepared_dir}: the train split is empty")
    optimizer = torch.optim.Adam(parameter_groups(colorizer, params.lr), lr=params.lr, weight_decay=params.weight_decay)
    per_rank = params.batch_size // world.size
    steps_per_epoch = len(epoch_batches(len(train_set), per_rank, world, params, 0))
    total_steps, warmup_steps = steps_per_epoch * params.epochs, round(params.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(params.schedule, step, total_steps, warmup_steps))
    amp, scaler = autocast(device, params.amp)
    n_params, trained = count_parameters(colorizer), sum(p.numel() for p in colorizer.parameters() if p.requires_grad)
    log.info("%s: %s -> %s, %d parameters (%d trained), %d train / %d val images at %d px on %s%s", name,
             model.network, model.representation, n_params, trained, len(train_set), len(val_set), summary["size"],
             device, f" x {world.size} processes" if world.distributed else "")
    cache = {split: precompute(colorizer, ds, params.batch_size, device, mirrors=split == "train" and params.hflip)
             for split, ds in (("train", train_set), ("val", val_set))}
    if params.translate and cache["train"] is not None and getattr(colorizer.network, "precompute_mirrored", False):
        raise UserError(f"train.translate: {model.network}'s frozen features are computed once per image, so "
                        "images cannot be shifted in training; set train.translate: 0")
    net = distributed.wrap(_Outputs(colorizer), world, device)
    if params.compile:
        net = torch.compile(net)  # compiles on the first step; checkpoints still save `colorizer`
    config = {
        "model": name, "network": model.network, "representation": model.representation,
        "network_args": network_args, "representation_args": representation_args,
        "image_size": summary["size"], "labels": summary.get("labels", []),
        # The size `chromalab colorize` works at by default: what val chose the model on.
        "working_size": summary.get("eval_size", summary["size"]),
        "data_sha256": summary["manifest_sha256"],
        "parameters": n_params, "train": as_dict(params),
    }
    val_loader = batch_loader(val_set, params.batch_size, False, 0, params.num_workers, device.type == "cuda")
    sweeping = bool(params.temperatures) and annealed(colorizer) and len(val_set) > 0
    return Setup(name, params, colorizer, net, optimizer, scheduler, scaler, amp, device, world, train_set,
                 val_loader, model.class_loss_weight, cache, sweeping, per_rank, steps_per_epoch, config, out_dir,
                 history_path)


def _train_epoch(setup: Setup, epoch: int, first_step: int, totals: tuple, snapshot) -> tuple[float, int]:
    """One epoch's steps from `first_step` on; returns the running (loss total, images)."""
    params, pin = setup.params, setup.device.type == "cuda"
    setup.net.train()
    table = augmentation_table(len(setup.train_set), params, epoch)
    batches = epoch_batches(len(setup.train_set), setup.per_rank, setup.world, params, epoch)
    total, seen = totals
    # A list of row lists is a sampler: the DataLoader's workers read whole batches ahead. Its own
    # generator: a loader otherwise draws its workers' seed from the global RNG, which would shift
    # dropout's random numbers in a resumed epoch.
    loader = torch.utils.data.DataLoader(setup.train_set, sampler=batches[first_step:], batch_size=None,
                                         num_workers=params.num_workers, pin_memory=pin,
                                         generator=torch.Generator().manual_seed(params.seed + epoch))
    bar = tqdm(loader, desc=f"{setup.name} epoch {epoch}/{params.epochs}", leave=False,
               disable=None if setup.world.is_main else True)
    for step, batch in enumerate(bar, start=first_step):
        batch = {k: v.to(setup.device, non_blocking=pin) for k, v in batch.items()}
        batch["L"], batch["ab"] = augment(batch["L"], batch["ab"], batch["rows"], table, params.translate)
        extra = extra_inputs(setup.cache["train"], batch, table["flip"][batch["rows"].cpu()])
        with setup.amp:
            loss, _ = batch_loss(setup.colorizer, batch, setup.alpha, extra, outputs=setup.net)
        setup.optimizer.zero_grad(set_to_none=True)
        if setup.scaler:
            setup.scaler.scale(loss).backward()
            setup.scaler.step(setup.optimizer)
            setup.scaler.update()
        else:
            loss.backward()
            setup.optimizer.step()
        setup.scheduler.step()
        total, seen = total + loss.item() * len(batch["L"]), seen + len(batch["L"])
        bar.set_postfix(loss=f"{total / seen:.4f}")
        if params.checkpoint_every and (step + 1) % params.checkpoint_every == 0 and step + 1 < len(batches):
            snapshot(epoch, step + 1, (total, seen))
    return total, seen


def _end_epoch(setup: Setup, state: TrainingState, row: dict, track: tracking.RunTracker, epoch_start: float,
               elapsed) -> None:
    """Validate, choose (the temperature, and whether this epoch is the best so far), record and
    checkpoint; rank 0 only. `elapsed()` is the run's training time so far."""
    params, config, colorizer = setup.params, setup.config, setup.colorizer
    row.update(validate(colorizer, setup.val_loader, setup.device, setup.alpha, setup.cache["val"],
                        params.neutral_threshold))
    if setup.sweeping:
        row.update(sweep_temperature(colorizer, config, params, setup.val_loader, setup.device, setup.cache["val"]))
    row.update(lr=setup.optimizer.param_groups[0]["lr"])
    state.history.append({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()})
    seconds = time.perf_counter() - epoch_start
    state.epoch_seconds.append(round(seconds, 3))
    timings.write(setup.out_dir, {"train_seconds": round(elapsed(), 2), "epoch_seconds": state.epoch_seconds})
    track(tracking.log_metrics, {**{k: v for k, v in row.items() if k != "epoch"}, "seconds": seconds},
          step=row["epoch"])
    log.info("%s epoch %d/%d: train_loss %.4f val_loss %.4f val_psnr %.2f dB (%.1f s)", setup.name, row["epoch"],
             params.epochs, row["train_loss"], row["val_loss"], row["val_psnr"], seconds)
    config.update(epoch=row["epoch"], val_loss=row["val_loss"], val_psnr=row["val_psnr"],
                  val_delta_colorfulness=row.get("val_delta_colorfulness"),
                  val_neutral_chroma=row.get("val_neutral_chroma"))
    checkpoint.save(setup.out_dir / "last.pt", colorizer, config)
    if state.best is None or better(config, state.best, setup.sweeping, params.max_delta_colorfulness,
                                    params.max_neutral_chroma):
        state.best = dict(config)
        state.best_weights = {k: v.detach().clone() for k, v in colorizer.state_dict().items()}
        checkpoint.save(setup.out_dir / "best.pt", colorizer, state.best)
    atomic.write_text(setup.history_path, _history_csv(state.history))


def train(name: str, model: ModelParams, params: TrainParams, prepared_dir, palette_dir, out_dir, history_path,
          logged_params: dict, resume_path=None) -> dict:
    """Train model `name`; returns the checkpoint config of the best epoch.

    With `resume_path`, the TrainingState is saved there (every train.checkpoint_every steps and at
    each epoch end) and a run killed part-way continues from it. Under torchrun, each process
    trains on its share of every batch (see distributed.py)."""
    setup = _setup(name, model, params, Path(prepared_dir), palette_dir, Path(out_dir), Path(history_path))
    world, config = setup.world, setup.config
    fingerprint = resume.fingerprint(config)
    saved = TrainingState.restore(Path(resume_path), setup, fingerprint) if resume_path else None
    state = saved or TrainingState()
    if saved:
        log.info("%s: resuming at epoch %d, step %d of %d (state saved in %s)", name, state.epoch, state.step,
                 setup.steps_per_epoch, resume_path)
    track = tracking.RunTracker(world.is_main and tracking.enabled(), name)
    if world.is_main:
        state.run_id = _open_run(track, state.run_id, name, logged_params, config)
        if state.best_weights is not None:  # the resumed run's best so far, back in its place
            best_model = Colorizer(model.network, model.representation, config["network_args"],
                                   config["representation_args"])
            best_model.load_state_dict(state.best_weights)
            checkpoint.save(setup.out_dir / "best.pt", best_model, state.best)
    started, seconds0 = time.perf_counter(), state.seconds

    def snapshot(epoch: int, step: int, totals: tuple) -> None:
        state.epoch, state.step, state.totals = epoch, step, totals
        if resume_path and world.is_main:
            state.save(Path(resume_path), setup, fingerprint, seconds0 + time.perf_counter() - started)

    if saved:
        resume.set_rng_state(state.rng)  # last: everything above may draw random numbers
    epoch0, step0, totals0 = state.epoch, state.step, state.totals
    try:
        for epoch in range(epoch0, params.epochs + 1):
            epoch_start = time.perf_counter()
            first, totals = (step0, totals0) if epoch == epoch0 else (0, (0.0, 0))
            total, seen = _train_epoch(setup, epoch, first, totals, snapshot)
            row = {"epoch": epoch, "train_loss": distributed.all_mean(total / seen, world)}
            if world.is_main:
                _end_epoch(setup, state, row, track, epoch_start, lambda: seconds0 + time.perf_counter() - started)
                snapshot(epoch + 1, 0, (0.0, 0))
            distributed.barrier(world)
        if world.is_main:
            if params.shrink_gammas or params.mean_pulls:  # the pulls towards neutral, chosen on val
                state.best = shrink_choice.choose_on_val(setup.out_dir / "best.pt", params, setup.val_loader,
                                                         setup.device, setup.cache["val"]) or state.best
            _finish(name, setup.out_dir, state, track, seconds0 + time.perf_counter() - started)
    except BaseException:
        if world.is_main:
            track(tracking.end_run, "FAILED")
        raise
    finally:
        distributed.leave(world)
    if world.is_main and resume_path:
        resume.discard(resume_path)
    return state.best


def _open_run(track: tracking.RunTracker, run_id: str | None, name: str, logged_params: dict, config: dict) -> str | None:
    """The MLflow run this training logs to: the resumed run's own, else a new one."""
    if run_id and track(tracking.resume_run, run_id) is None:
        run_id = None
    if not run_id and track.enabled:
        run_id = tracking.start_run(name, logged_params, config["data_sha256"])
    return run_id


def _finish(name: str, out_dir: Path, state: TrainingState, track: tracking.RunTracker, seconds: float) -> None:
    """Log the best model to MLflow and write run.json (which says whether logging worked)."""
    best = state.best
    best_colorizer, _ = checkpoint.load(out_dir / "best.pt")
    if "temperature" in best["representation_args"] and best.get("temperature_sweep"):
        track(tracking.log_metrics, {"temperature": best["representation_args"]["temperature"]})
    model_uri = track(tracking.log_colorizer, best_colorizer, out_dir / "best.pt")
    track(tracking.log_metrics, {"best_epoch": best["epoch"], "train_seconds": seconds})
    track(tracking.end_run)
    tracking.write_run_file(out_dir / "run.json", state.run_id if not track.failure else None,
                            model_uri, failure=track.failure)
    log.info("%s: best epoch %d (val_loss %.4f, val_psnr %.2f dB%s) in %.0f s", name, best["epoch"],
             best["val_loss"], best["val_psnr"],
             f" at T = {best['representation_args']['temperature']:g}" if best.get("temperature_sweep") else "",
             seconds)
