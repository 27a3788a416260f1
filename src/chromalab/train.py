"""train@MODEL stage: fit one Colorizer on the train split, validate every epoch, keep the best.

Outputs: data/models/MODEL/{best.pt, last.pt, run.json} and reports/train/MODEL/history.csv (the
per-epoch curves `dvc plots` draws). The best checkpoint is chosen on the validation split; the
test split is never touched here.
"""

from __future__ import annotations

import csv
import io
import logging
import random
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from chromalab import atomic, checkpoint, color, metrics, tracking
from chromalab.colorizer import Colorizer, count_parameters
from chromalab.config import ModelParams, TrainParams, as_dict
from chromalab.data.lab_arrays import LabBatches, batch_loader, load_summary
from chromalab.errors import UserError

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_psnr", "lr", "seconds"]


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


@torch.no_grad()
def validate(colorizer: Colorizer, loader, device) -> dict:
    """Mean loss and mean PSNR (uint8 RGB, as the evaluate stage scores) on a held-out split."""
    colorizer.eval()
    losses, psnrs = [], []
    for L, ab in loader:
        L, ab = L.to(device), ab.to(device)
        out = colorizer.outputs(L)
        losses.append(colorizer.representation.loss(out, colorizer.representation.target(L, ab)).item() * len(L))
        pred = colorizer.representation.decode(out, L).float().cpu().numpy()
        for l_plane, p, t in zip(L.cpu().numpy(), pred, ab.cpu().numpy()):
            psnrs.append(metrics.psnr(color.lab_planes_to_rgb_uint8(l_plane, p),
                                      color.lab_planes_to_rgb_uint8(l_plane, t)))
    if not psnrs:  # no val split (val_fraction 0): NaN, so every epoch counts as the best so far
        return {"val_loss": float("nan"), "val_psnr": float("nan")}
    return {"val_loss": sum(losses) / len(psnrs), "val_psnr": float(np.mean(psnrs))}


def mirror_half(L: torch.Tensor, ab: torch.Tensor):
    """Flip a random half of the batch left-right (the seeded global RNG keeps runs repeatable)."""
    flip = (torch.rand(len(L)) < 0.5).to(L.device)[:, None, None, None]
    return torch.where(flip, L.flip(-1), L), torch.where(flip, ab.flip(-1), ab)


def _history_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def train(name: str, model: ModelParams, params: TrainParams, prepared_dir, out_dir, history_path,
          logged_params: dict) -> dict:
    """Train model `name`; returns the checkpoint config of the best epoch."""
    prepared_dir, out_dir = Path(prepared_dir), Path(out_dir)
    summary = load_summary(prepared_dir)
    seed_everything(params.seed, params.deterministic)
    device = select_device(params.device)
    colorizer = Colorizer(model.network, model.representation, model.network_args, model.representation_args)
    if summary["size"] % colorizer.size_multiple:
        raise UserError(f"prepare.size: {summary['size']} is not a multiple of {colorizer.size_multiple}, "
                        f"which the {model.network} network needs")
    colorizer.to(device)
    train_set, val_set = LabBatches(prepared_dir, "train"), LabBatches(prepared_dir, "val")
    if len(train_set) == 0:
        raise UserError(f"{prepared_dir}: the train split is empty")
    pin = device.type == "cuda"
    train_loader = batch_loader(train_set, params.batch_size, True, params.seed, params.num_workers, pin)
    val_loader = batch_loader(val_set, params.batch_size, False, 0, params.num_workers, pin)
    optimizer = torch.optim.Adam(colorizer.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    amp, scaler = autocast(device, params.amp)
    n_params = count_parameters(colorizer)
    log.info("%s: %s -> %s, %d parameters, %d train / %d val images at %d px on %s",
             name, model.network, model.representation, n_params, len(train_set), len(val_set),
             summary["size"], device)

    run_id = tracking.start_run(name, logged_params, summary["manifest_sha256"])
    config = {
        "model": name, "network": model.network, "representation": model.representation,
        "network_args": dict(model.network_args), "representation_args": dict(model.representation_args),
        "image_size": summary["size"], "labels": summary.get("labels", []),
        "data_sha256": summary["manifest_sha256"], "mlflow_run_id": run_id,
        "parameters": n_params, "train": as_dict(params),
    }
    history, best, started = [], None, time.perf_counter()
    try:
        for epoch in range(1, params.epochs + 1):
            colorizer.train()
            epoch_start, total, seen = time.perf_counter(), 0.0, 0
            bar = tqdm(train_loader, desc=f"{name} epoch {epoch}/{params.epochs}", leave=False, disable=None)
            for L, ab in bar:
                L, ab = L.to(device, non_blocking=pin), ab.to(device, non_blocking=pin)
                if params.hflip:
                    L, ab = mirror_half(L, ab)
                with amp:
                    out = colorizer.outputs(L)
                    loss = colorizer.representation.loss(out.float(), colorizer.representation.target(L, ab))
                optimizer.zero_grad(set_to_none=True)
                if scaler:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
                total, seen = total + loss.item() * len(L), seen + len(L)
                bar.set_postfix(loss=f"{total / seen:.4f}")
            row = {"epoch": epoch, "train_loss": total / seen, **validate(colorizer, val_loader, device),
                   "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - epoch_start}
            history.append({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()})
            tracking.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch)
            log.info("%s epoch %d/%d: train_loss %.4f val_loss %.4f val_psnr %.2f dB (%.1f s)", name, epoch,
                     params.epochs, row["train_loss"], row["val_loss"], row["val_psnr"], row["seconds"])
            config.update(epoch=epoch, train_seconds=round(time.perf_counter() - started, 2),
                          val_loss=row["val_loss"], val_psnr=row["val_psnr"])
            checkpoint.save(out_dir / "last.pt", colorizer, config)
            # No validation images (val_fraction 0): the last epoch counts as the best.
            if best is None or not row["val_loss"] >= best["val_loss"]:
                best = dict(config)
                checkpoint.save(out_dir / "best.pt", colorizer, best)
            atomic.write_text(history_path, _history_csv(history))
        best_colorizer, _ = checkpoint.load(out_dir / "best.pt")
        model_uri = tracking.log_colorizer(best_colorizer)
        tracking.log_metrics({"best_epoch": best["epoch"], "train_seconds": config["train_seconds"]})
        tracking.write_run_file(out_dir / "run.json", run_id, model_uri)
    except BaseException:
        tracking.end_run("FAILED")
        raise
    tracking.end_run()
    log.info("%s: best epoch %d (val_loss %.4f, val_psnr %.2f dB) in %.0f s", name, best["epoch"],
             best["val_loss"], best["val_psnr"], config["train_seconds"])
    return best
