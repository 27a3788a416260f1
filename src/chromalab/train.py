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
from torch import nn
from tqdm import tqdm

from chromalab import atomic, checkpoint, color, metrics, representations, tracking
from chromalab.colorizer import Colorizer, count_parameters
from chromalab.config import ModelParams, TrainParams, as_dict
from chromalab.data.lab_arrays import LabBatches, batch_loader, load_summary
from chromalab.errors import UserError
from chromalab.models import registry

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


def batch_loss(colorizer: Colorizer, batch: dict, class_loss_weight: float, extra: dict):
    """The representation's loss, plus α·CE(class) where the network has a class head and the
    batch has labels (Iizuka et al.)."""
    L, ab, label = batch["L"], batch["ab"], batch["label"]
    out, logits = colorizer.outputs_and_classes(L, **extra)
    loss = colorizer.representation.loss(out.float(), colorizer.representation.target(L, ab))
    labelled = label >= 0
    if logits is not None and class_loss_weight > 0 and labelled.any():
        loss = loss + class_loss_weight * nn.functional.cross_entropy(logits.float()[labelled], label[labelled])
    return loss, out


@torch.no_grad()
def precompute(colorizer: Colorizer, dataset: LabBatches, batch_size: int, device) -> torch.Tensor | None:
    """Per-image features of a frozen pre-trained network, computed once per split (Deep
    Koalarization precomputed its Inception embeddings the same way); None if the network has none."""
    if not getattr(colorizer.network, "precomputable", False):
        return None
    colorizer.eval()
    loader = batch_loader(dataset, batch_size, shuffle=False)
    feats = [colorizer.network.precompute(color.normalize_l(b["L"].to(device))) for b in loader]
    return torch.cat(feats) if feats else None


def _extra(cache, batch) -> dict:
    return {"precomputed": cache[batch["rows"]]} if cache is not None else {}


@torch.no_grad()
def validate(colorizer: Colorizer, loader, device, class_loss_weight: float, cache=None) -> dict:
    """Mean loss and mean PSNR (uint8 RGB, as the evaluate stage scores) on a held-out split."""
    colorizer.eval()
    losses, psnrs = [], []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        loss, out = batch_loss(colorizer, batch, class_loss_weight, _extra(cache, batch))
        losses.append(loss.item() * len(batch["L"]))
        pred = colorizer.representation.decode(out, batch["L"]).float().cpu().numpy()
        for l_plane, p, t in zip(batch["L"].cpu().numpy(), pred, batch["ab"].cpu().numpy()):
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


def train(name: str, model: ModelParams, params: TrainParams, prepared_dir, palette_dir, out_dir, history_path,
          logged_params: dict) -> dict:
    """Train model `name`; returns the checkpoint config of the best epoch."""
    prepared_dir, out_dir = Path(prepared_dir), Path(out_dir)
    summary = load_summary(prepared_dir)
    seed_everything(params.seed, params.deterministic)
    device = select_device(params.device)
    colorizer, network_args, representation_args = build_colorizer(model, summary, palette_dir)
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
    trainable = [p for p in colorizer.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=params.lr, weight_decay=params.weight_decay)
    amp, scaler = autocast(device, params.amp)
    n_params = count_parameters(colorizer)
    log.info("%s: %s -> %s, %d parameters (%d trained), %d train / %d val images at %d px on %s",
             name, model.network, model.representation, n_params, sum(p.numel() for p in trainable),
             len(train_set), len(val_set), summary["size"], device)
    cache = {split: precompute(colorizer, ds, params.batch_size, device)
             for split, ds in (("train", train_set), ("val", val_set))}
    alpha = model.class_loss_weight

    run_id = tracking.start_run(name, logged_params, summary["manifest_sha256"])
    config = {
        "model": name, "network": model.network, "representation": model.representation,
        "network_args": network_args, "representation_args": representation_args,
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
            for batch in bar:
                batch = {k: v.to(device, non_blocking=pin) for k, v in batch.items()}
                if params.hflip:
                    batch["L"], batch["ab"] = mirror_half(batch["L"], batch["ab"])
                with amp:
                    loss, _ = batch_loss(colorizer, batch, alpha, _extra(cache["train"], batch))
                optimizer.zero_grad(set_to_none=True)
                if scaler:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
                total, seen = total + loss.item() * len(batch["L"]), seen + len(batch["L"])
                bar.set_postfix(loss=f"{total / seen:.4f}")
            row = {"epoch": epoch, "train_loss": total / seen,
                   **validate(colorizer, val_loader, device, alpha, cache["val"]),
                   "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - epoch_start}
            history.append({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()})
            tracking.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch)
            log.info("%s epoch %d/%d: train_loss %.4f val_loss %.4f val_psnr %.2f dB (%.1f s)", name, epoch,
                     params.epochs, row["train_loss"], row["val_loss"], row["val_psnr"], row["seconds"])
            config.update(epoch=epoch, train_seconds=round(time.perf_counter() - started, 2),
                          val_loss=row["val_loss"], val_psnr=row["val_psnr"])
            checkpoint.save(out_dir / "last.pt", colorizer, config)
            if best is None or not row["val_loss"] >= best["val_loss"]:  # NaN (no val split): keep the last
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
