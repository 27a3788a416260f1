"""train@MODEL stage: fit one Colorizer on the train split, validate every epoch, keep the best.

Outputs: data/models/MODEL/{best.pt, last.pt, run.json} and reports/train/MODEL/history.csv (the
per-epoch curves `dvc plots` draws). The best checkpoint is chosen on the validation split; the
test split is never touched here.
"""

from __future__ import annotations

import csv
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

from chromalab import atomic, checkpoint, color, distributed, metrics, representations, resume, tracking
from chromalab.colorizer import Colorizer, count_parameters
from chromalab.config import ModelParams, TrainParams, as_dict
from chromalab.data.lab_arrays import LabBatches, batch_loader, load_summary
from chromalab.errors import UserError
from chromalab.models import registry

log = logging.getLogger(__name__)

# temperature and val_delta_colorfulness: annealed-mean models with train.temperatures, whose val
# PSNR is then the one at the temperature chosen that epoch.
HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_psnr", "lr", "seconds", "temperature",
                   "val_delta_colorfulness"]


def select_device(name: str) -> torch.device:
    """`auto` is CUDA when present, else the CPU; asking for CUDA without one is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"train.device: {name} asked for, but this machine has no CUDA device")
    return torch.device(name)


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


def batch_loss(colorizer: Colorizer, batch: dict, class_loss_weight: float, extra: dict, outputs=None):
    """The representation's loss, plus α·CE(class) where the network has a class head and the
    batch has labels (Iizuka et al.). `outputs` computes the network's outputs (the colorizer's
    own method, or its DistributedDataParallel wrapper)."""
    L, ab, label = batch["L"], batch["ab"], batch["label"]
    out, logits = (outputs if outputs is not None else colorizer.outputs_and_classes)(L, **extra)
    loss = colorizer.loss(out, L, ab)
    labelled = label >= 0
    if logits is not None and class_loss_weight > 0 and labelled.any():
        loss = loss + class_loss_weight * nn.functional.cross_entropy(logits.float()[labelled], label[labelled])
    return loss, out


class FeatureCache:
    """Per-image features of a frozen pre-trained network, computed once per split (Deep
    Koalarization precomputed its Inception embeddings the same way): each a tensor or a tuple of
    tensors (multi-scale maps), stored row by row. Spatial features (`precompute_mirrored`) are
    also computed for each mirrored image, which the flip augmentation then takes."""

    def __init__(self, plain: tuple, mirrored: tuple | None):
        self.plain, self.mirrored = plain, mirrored

    def take(self, rows: torch.Tensor, flip: torch.Tensor | None = None):
        rows = rows.cpu()
        parts = [t[rows] for t in self.plain]
        if self.mirrored is not None and flip is not None and bool(flip.any()):
            parts = [torch.where(flip.view(-1, *[1] * (p.ndim - 1)), m[rows], p)
                     for p, m in zip(parts, self.mirrored)]
        return parts[0] if len(parts) == 1 else tuple(parts)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.plain + (self.mirrored or ()))


@torch.no_grad()
def precompute(colorizer: Colorizer, dataset: LabBatches, batch_size: int, device) -> FeatureCache | None:
    """The FeatureCache of a split for a network with frozen pre-trained features, else None."""
    network = colorizer.network
    if not getattr(network, "precomputable", False) or len(dataset) == 0:
        return None
    colorizer.eval()
    mirrored = getattr(network, "precompute_mirrored", False)
    stores: dict[str, list[torch.Tensor]] = {}

    def put(key: str, start: int, feats) -> None:
        feats = feats if isinstance(feats, tuple) else (feats,)
        if key not in stores:  # allocated once: the list-then-concatenate way would need twice the memory
            stores[key] = [torch.empty((len(dataset), *f.shape[1:]), dtype=f.dtype) for f in feats]
        for store, f in zip(stores[key], feats):
            store[start:start + len(f)] = f.cpu()

    start = 0
    for batch in batch_loader(dataset, batch_size, shuffle=False):
        x = color.normalize_l(batch["L"].to(device))
        put("plain", start, network.precompute(x))
        if mirrored:
            put("mirrored", start, network.precompute(x.flip(-1)))
        start += len(x)
    cache = FeatureCache(tuple(stores["plain"]), tuple(stores["mirrored"]) if mirrored else None)
    log.info("features of the frozen network computed once for the %d %s images%s (%.0f MB)",
             len(dataset), dataset.split, " and their mirror images" if mirrored else "", cache.nbytes / 1e6)
    return cache


def _extra(cache: FeatureCache | None, batch, flip=None) -> dict:
    return {"precomputed": cache.take(batch["rows"], flip)} if cache is not None else {}


@torch.no_grad()
def validate(colorizer: Colorizer, loader, device, class_loss_weight: float, cache=None) -> dict:
    """Mean loss and mean PSNR (uint8 RGB, as the evaluate stage scores) on a held-out split."""
    colorizer.eval()
    losses, psnrs = [], []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        loss, out = batch_loss(colorizer, batch, class_loss_weight, _extra(cache, batch))
        losses.append(loss.item() * len(batch["L"]))
        pred = colorizer.decode(out, batch["L"]).float().cpu().numpy()
        for l_plane, p, t in zip(batch["L"].cpu().numpy(), pred, batch["ab"].cpu().numpy()):
            psnrs.append(metrics.psnr(color.lab_planes_to_rgb_uint8(l_plane, p),
                                      color.lab_planes_to_rgb_uint8(l_plane, t)))
    if not psnrs:  # no val split (val_fraction 0): NaN, so every epoch counts as the best so far
        return {"val_loss": float("nan"), "val_psnr": float("nan")}
    return {"val_loss": sum(losses) / len(psnrs), "val_psnr": float(np.mean(psnrs))}


def augmentation_table(n: int, params: TrainParams, epoch: int) -> dict:
    """Per-image augmentation of one epoch, drawn from (seed, epoch) alone: a resumed run and
    every DDP process draw the same as one uninterrupted process. Mirroring and shifting move
    pixels, never change their colours."""
    g = torch.Generator().manual_seed(params.seed * 100_003 + epoch)
    flip = torch.rand(n, generator=g) < 0.5 if params.hflip else torch.zeros(n, dtype=torch.bool)
    shift = torch.randint(-params.translate, params.translate + 1, (n, 2), generator=g)
    return {"flip": flip, "shift": shift}


def augment(L: torch.Tensor, ab: torch.Tensor, rows: torch.Tensor, table: dict, translate: int):
    """Mirror and shift each image of a batch as the epoch's table says (L and ab together)."""
    flip = table["flip"][rows.cpu()].to(L.device)[:, None, None, None]
    L, ab = torch.where(flip, L.flip(-1), L), torch.where(flip, ab.flip(-1), ab)
    if translate:
        # Reflect-pad, then cut each image's window at its own offset (CIFAR's classic shift).
        size = L.shape[-2:]
        both = nn.functional.pad(torch.cat([L, ab], 1), [translate] * 4, mode="reflect")
        shifts = table["shift"][rows.cpu()] + translate
        both = torch.stack([img[:, dy:dy + size[0], dx:dx + size[1]] for img, (dy, dx) in zip(both, shifts.tolist())])
        L, ab = both[:, :1], both[:, 1:]
    return L, ab


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
    writer = csv.DictWriter(out, HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def build_colorizer(model: ModelParams, summary: dict, palette_dir) -> tuple[Colorizer, dict, dict]:
    """The Colorizer a model's params describe, with what the data decides filled in: the palette
    for palette/bins representations, the number of classes for a network with a class head."""
    network_args = dict(model.network_args)
    if "num_classes" in registry.knobs(model.network):
        network_args["num_classes"] = len(summary.get("labels", []))
        if not network_args["num_classes"]:
            log.info("%s: the data has no class labels, so the classification head is disabled", model.network)
    representation_args = representations.representation_args(
        model.representation, model.representation_args, palette_dir)
    colorizer = Colorizer(model.network, model.representation, network_args, representation_args)
    return colorizer, network_args, representation_args


class _Tracking:
    """The MLflow calls of one training run (rank 0 only). A tracking server that goes away
    mid-run must not cost the training: the first failure is reported, later calls are skipped,
    the DVC outputs are written as usual, and `chromalab relog` can log the run afterwards."""

    def __init__(self, enabled: bool, name: str):
        self.enabled, self.name, self.failure = enabled, name, None

    def __call__(self, fn, *args, **kwargs):
        if not self.enabled or self.failure:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            self.failure = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            log.error("%s: MLflow tracking at %s failed (%s); training goes on and its outputs are written. "
                      "Log the run later with: chromalab relog %s", self.name, tracking.tracking_uri(),
                      self.failure, self.name)
            return None


def _epoch_batches(n: int, per_rank: int, world, params: TrainParams, epoch: int) -> list[list[int]]:
    rows = distributed.epoch_rows(n, world, params.seed, epoch)
    return [rows[i:i + per_rank] for i in range(0, len(rows), per_rank)]


def train(name: str, model: ModelParams, params: TrainParams, prepared_dir, palette_dir, out_dir, history_path,
          logged_params: dict, resume_path=None) -> dict:
    """Train model `name`; returns the checkpoint config of the best epoch.

    With `resume_path`, a snapshot of the whole training state is kept there (every
    train.checkpoint_every steps and at each epoch end) and a run killed part-way continues from
    it. Under torchrun, each process trains on its share of every batch (see distributed.py)."""
    prepared_dir, out_dir = Path(prepared_dir), Path(out_dir)
    summary = load_summary(prepared_dir)
    seed_everything(params.seed, params.deterministic)
    device = select_device(params.device)
    world = distributed.join(device.type)
    device = distributed.device_for(world, device)
    if params.batch_size % world.size:
        raise UserError(f"train.batch_size: {params.batch_size} does not split evenly over {world.size} processes")
    per_rank = params.batch_size // world.size
    colorizer, network_args, representation_args = build_colorizer(model, summary, palette_dir)
    for key in ("size", "eval_size"):
        if summary.get(key, summary["size"]) % colorizer.size_multiple:
            raise UserError(f"prepare.{key}: {summary.get(key)} is not a multiple of {colorizer.size_multiple}, "
                            f"which the {model.network} network needs")
    if params.translate >= summary["size"]:
        raise UserError(f"train.translate: {params.translate} px must be below the image size {summary['size']}")
    colorizer.to(device)
    if device.type == "cuda" and params.channels_last:
        colorizer.to(memory_format=torch.channels_last)
    train_set, val_set = LabBatches(prepared_dir, "train"), LabBatches(prepared_dir, "val")
    if len(train_set) == 0:
        raise UserError(f"{prepared_dir}: the train split is empty")
    pin = device.type == "cuda"
    val_loader = batch_loader(val_set, params.batch_size, False, 0, params.num_workers, pin)
    trainable = [p for p in colorizer.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameter_groups(colorizer, params.lr), lr=params.lr, weight_decay=params.weight_decay)
    steps_per_epoch = len(_epoch_batches(len(train_set), per_rank, world, params, 0))
    total_steps, warmup_steps = steps_per_epoch * params.epochs, round(params.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(params.schedule, step, total_steps, warmup_steps))
    amp, scaler = autocast(device, params.amp)
    n_params = count_parameters(colorizer)
    log.info("%s: %s -> %s, %d parameters (%d trained), %d train / %d val images at %d px on %s%s",
             name, model.network, model.representation, n_params, sum(p.numel() for p in trainable),
             len(train_set), len(val_set), summary["size"], device,
             f" x {world.size} processes" if world.distributed else "")
    cache = {split: precompute(colorizer, ds, params.batch_size, device)
             for split, ds in (("train", train_set), ("val", val_set))}
    # Annealed-mean models with temperatures to try: the epoch is chosen as the temperature is, by val
    # PSNR within max_delta_colorfulness (the val loss, a rebalanced cross-entropy, keeps rising
    # while the colours still improve).
    sweeping = bool(params.temperatures) and annealed(colorizer) and len(val_set) > 0
    if params.translate and cache["train"] is not None and cache["train"].mirrored is not None:
        raise UserError(f"train.translate: {model.network}'s frozen features are computed once per image, so "
                        "images cannot be shifted in training; set train.translate: 0")
    alpha = model.class_loss_weight
    net = distributed.wrap(_Outputs(colorizer), world, device)
    if params.compile:
        net = torch.compile(net)  # compiles on the first step; checkpoints still save `colorizer`

    config = {
        "model": name, "network": model.network, "representation": model.representation,
        "network_args": network_args, "representation_args": representation_args,
        "image_size": summary["size"], "labels": summary.get("labels", []),
        # The size `chromalab colorize` works at by default: what val chose the model on.
        "working_size": summary.get("eval_size", summary["size"]),
        "data_sha256": summary["manifest_sha256"], "mlflow_run_id": None,
        "parameters": n_params, "train": as_dict(params),
    }
    fingerprint = resume.fingerprint(config)
    state = resume.load(resume_path, fingerprint) if resume_path else None
    history, best, best_weights, epoch0, step0, seconds0 = [], None, None, 1, 0, 0.0
    if state:
        colorizer.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history, best, best_weights = state["history"], state["best"], state["best_weights"]
        epoch0, step0, seconds0 = state["epoch"], state["step"], state["train_seconds"]
        log.info("%s: resuming at epoch %d, step %d of %d (state saved in %s)", name, epoch0, step0,
                 steps_per_epoch, resume_path)

    track = _Tracking(world.is_main and tracking.enabled(), name)
    if world.is_main:
        run_id = state["run_id"] if state and state.get("run_id") else None
        if run_id and track(tracking.resume_run, run_id) is None:
            run_id = None
        if not run_id:
            run_id = tracking.start_run(name, logged_params, summary["manifest_sha256"]) if track.enabled else None
        config["mlflow_run_id"] = run_id
    if best_weights is not None and world.is_main:
        best_model = Colorizer(model.network, model.representation, network_args, representation_args)
        best_model.load_state_dict(best_weights)
        checkpoint.save(out_dir / "best.pt", best_model, best)

    def snapshot(epoch: int, step: int, totals: tuple[float, int]) -> None:
        if resume_path and world.is_main:
            resume.save(resume_path, {
                "fingerprint": fingerprint, "model": colorizer.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                "history": history, "best": best, "best_weights": best_weights, "epoch": epoch, "step": step,
                "totals": list(totals), "run_id": config["mlflow_run_id"],
                "train_seconds": seconds0 + time.perf_counter() - started,
            })

    started = time.perf_counter()
    if state:
        resume.set_rng_state(state["rng"])  # last: everything above may draw random numbers
    try:
        for epoch in range(epoch0, params.epochs + 1):
            net.train()
            table = augmentation_table(len(train_set), params, epoch)
            batches = _epoch_batches(len(train_set), per_rank, world, params, epoch)
            first = step0 if epoch == epoch0 else 0
            total, seen = (state["totals"] if state and epoch == epoch0 else (0.0, 0))
            epoch_start = time.perf_counter()
            # A list of row lists is a sampler: the DataLoader's workers read whole batches ahead.
            # Its own generator: a loader otherwise draws its workers' seed from the global RNG,
            # which would shift dropout's random numbers in a resumed epoch.
            loader = torch.utils.data.DataLoader(train_set, sampler=batches[first:], batch_size=None,
                                                 num_workers=params.num_workers, pin_memory=pin,
                                                 generator=torch.Generator().manual_seed(params.seed + epoch))
            bar = tqdm(loader, desc=f"{name} epoch {epoch}/{params.epochs}", leave=False,
                       disable=None if world.is_main else True)
            for step, batch in enumerate(bar, start=first):
                batch = {k: v.to(device, non_blocking=pin) for k, v in batch.items()}
                batch["L"], batch["ab"] = augment(batch["L"], batch["ab"], batch["rows"], table, params.translate)
                flip = table["flip"][batch["rows"].cpu()]
                with amp:
                    loss, _ = batch_loss(colorizer, batch, alpha, _extra(cache["train"], batch, flip), outputs=net)
                optimizer.zero_grad(set_to_none=True)
                if scaler:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
                scheduler.step()
                total, seen = total + loss.item() * len(batch["L"]), seen + len(batch["L"])
                bar.set_postfix(loss=f"{total / seen:.4f}")
                if params.checkpoint_every and (step + 1) % params.checkpoint_every == 0 and step + 1 < len(batches):
                    snapshot(epoch, step + 1, (total, seen))
            row = {"epoch": epoch, "train_loss": distributed.all_mean(total / seen, world)}
            if world.is_main:
                row.update(validate(colorizer, val_loader, device, alpha, cache["val"]))
                if sweeping:
                    row.update(_sweep(colorizer, config, params, val_loader, device, cache["val"]))
                row.update(lr=optimizer.param_groups[0]["lr"], seconds=time.perf_counter() - epoch_start)
                history.append({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()})
                track(tracking.log_metrics, {k: v for k, v in row.items() if k != "epoch"}, step=epoch)
                log.info("%s epoch %d/%d: train_loss %.4f val_loss %.4f val_psnr %.2f dB (%.1f s)", name, epoch,
                         params.epochs, row["train_loss"], row["val_loss"], row["val_psnr"], row["seconds"])
                config.update(epoch=epoch, train_seconds=round(seconds0 + time.perf_counter() - started, 2),
                              val_loss=row["val_loss"], val_psnr=row["val_psnr"],
                              val_delta_colorfulness=row.get("val_delta_colorfulness"))
                checkpoint.save(out_dir / "last.pt", colorizer, config)
                if best is None or _better(config, best, sweeping, params.max_delta_colorfulness):
                    best, best_weights = dict(config), {k: v.detach().clone() for k, v in colorizer.state_dict().items()}
                    checkpoint.save(out_dir / "best.pt", colorizer, best)
                atomic.write_text(history_path, _history_csv(history))
                snapshot(epoch + 1, 0, (0.0, 0))
            distributed.barrier(world)
        if world.is_main:
            _finish(name, out_dir, config, best, track)
    except BaseException:
        if world.is_main:
            track(tracking.end_run, "FAILED")
        raise
    finally:
        distributed.leave(world)
    if world.is_main and resume_path:
        resume.discard(resume_path)
    return best


def annealed(colorizer: Colorizer) -> bool:
    """Whether the colorizer decodes by an annealed mean, so a temperature can be chosen."""
    rep = colorizer.representation
    return hasattr(rep, "temperature") and getattr(rep, "decode_mode", "annealed_mean") == "annealed_mean"


@torch.no_grad()
def tune_temperature(colorizer: Colorizer, loader, device, temperatures: list, max_delta_cf: float,
                     cache=None) -> tuple[float, list[dict]]:
    """Zhang et al.'s annealed mean trades colour for accuracy through T. Score each T on the val
    split; keep the best PSNR among those within max_delta_cf of the truth's colourfulness, else
    the T whose colourfulness is closest. Returns (T, the sweep)."""
    colorizer.eval()
    accumulators = {float(t): metrics.MetricAccumulator() for t in temperatures}
    for batch in loader:  # the network runs once per batch; only the decoding depends on T
        batch = {k: v.to(device) for k, v in batch.items()}
        out = colorizer.outputs(batch["L"], **_extra(cache, batch))
        L, truth = batch["L"].cpu().numpy(), batch["ab"].cpu().numpy()
        for t, acc in accumulators.items():
            colorizer.representation.temperature = t
            acc.update(L, colorizer.decode(out, batch["L"]).float().cpu().numpy(), truth)
    sweep = []
    for t, acc in accumulators.items():
        r = acc.result()
        sweep.append({"temperature": t, "val_psnr": r["psnr"], "val_delta_colorfulness": r["delta_colorfulness"]})
    faithful = [s for s in sweep if s["val_delta_colorfulness"] <= max_delta_cf]
    chosen = max(faithful, key=lambda s: s["val_psnr"]) if faithful else min(sweep, key=lambda s: s["val_delta_colorfulness"])
    colorizer.representation.temperature = chosen["temperature"]
    return chosen["temperature"], sweep


def _sweep(colorizer: Colorizer, config: dict, params: TrainParams, val_loader, device, cache) -> dict:
    """This epoch's decoding temperature, chosen on val (tune_temperature), written into `config`;
    returns the history columns it fills."""
    t, sweep = tune_temperature(colorizer, val_loader, device, params.temperatures, params.max_delta_colorfulness,
                                cache)
    chosen = next(s for s in sweep if s["temperature"] == t)
    config["representation_args"] = {**config["representation_args"], "temperature": t}
    config["temperature_sweep"] = sweep
    log.info("decoding temperature %.2f chosen on val (%s)", t, ", ".join(
        f"T={s['temperature']:g}: {s['val_psnr']:.2f} dB, ΔCF {s['val_delta_colorfulness']:.1f}" for s in sweep))
    return {"temperature": t, "val_psnr": chosen["val_psnr"], "val_delta_colorfulness": chosen["val_delta_colorfulness"]}


def _better(new: dict, best: dict, sweeping: bool, max_delta_cf: float) -> bool:
    """Whether this epoch's model beats the best so far: lower val loss (NaN, no val split: the
    last one wins); with a temperature sweep, tune_temperature's own rule (faithful colourfulness
    first, then PSNR)."""
    if not sweeping:
        return not new["val_loss"] >= best["val_loss"]

    def key(c):
        faithful = c["val_delta_colorfulness"] <= max_delta_cf
        return faithful, c["val_psnr"] if faithful else -c["val_delta_colorfulness"]

    return key(new) > key(best)


def _finish(name: str, out_dir: Path, config: dict, best: dict, track: _Tracking) -> None:
    """Log the best model to MLflow and write run.json (which says whether logging worked)."""
    best_colorizer, _ = checkpoint.load(out_dir / "best.pt")
    if "temperature" in best["representation_args"] and best.get("temperature_sweep"):
        track(tracking.log_metrics, {"temperature": best["representation_args"]["temperature"]})
    model_uri = track(tracking.log_colorizer, best_colorizer)
    track(tracking.log_metrics, {"best_epoch": best["epoch"], "train_seconds": config["train_seconds"]})
    track(tracking.end_run)
    tracking.write_run_file(out_dir / "run.json", config["mlflow_run_id"] if not track.failure else None,
                            model_uri, failure=track.failure)
    log.info("%s: best epoch %d (val_loss %.4f, val_psnr %.2f dB%s) in %.0f s", name, best["epoch"],
             best["val_loss"], best["val_psnr"],
             f" at T = {best['representation_args']['temperature']:g}" if best.get("temperature_sweep") else "",
             config["train_seconds"])


class _Outputs(nn.Module):
    """The colorizer's raw outputs as forward(): DistributedDataParallel synchronises gradients
    of what runs through a forward call, and the loss needs outputs_and_classes, not colours."""

    def __init__(self, colorizer: Colorizer):
        super().__init__()
        self.colorizer = colorizer

    def forward(self, L, **extra):
        return self.colorizer.outputs_and_classes(L, **extra)
