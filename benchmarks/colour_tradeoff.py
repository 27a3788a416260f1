"""Colourful and accurate at once: what a finished run's models reach on val, alone, mirrored,
ensembled and blended, and how far the knowledge they hold lets any decoding go.

    python benchmarks/colour_tradeoff.py WORKSPACE [--split val] [--out FILE.json]

WORKSPACE is a repository (or a DVC experiment's workspace) after `dvc repro`: data/prepared,
data/palette and data/models/NAME/best.pt. Everything is measured on the val split, the split
choices are made on (test is for the evaluate stage, once):

1. every model as trained, and with a horizontal-flip test-time augmentation (the mean of its ab
   for the image and, mirrored back, for its mirror image);
2. an ensemble: the mean ab of every model that regresses ab;
3. blends w * (most colourful model) + (1 - w) * (most accurate model), w = 0.25, 0.5, 0.75;
4. an energy bound. Let m = E[ab | grey image] be the best possible prediction in the mean-square
   sense and R2 = E|m|^2 / E|ab|^2 the share of the colour energy it explains. For a prediction p,
   with c = E|p|^2 / E|ab|^2 (its colour energy against the truth's) and r = E[ab . p] / E|ab|^2,
   the rescaled prediction (r / c) p has MSE / E|ab|^2 = 1 - r^2 / c, and no prediction beats m, so
   R2 >= r^2 / c: every prediction measured gives a lower estimate, and the largest is kept. For any
   prediction p, E[ab . p] = E[m . p] <= sqrt(E|m|^2 E|p|^2), hence
   MSE(p) / E|ab|^2 >= 1 + c - 2 sqrt(c R2). With the estimate of R2 it says what a prediction as
   colourful as a given one could reach at best with the knowledge of the models measured (each
   row is at or above its bound; the row that gave the estimate is on it, unless it is
   anti-correlated with the truth, r < 0): a colourful model far above the bound is wasting
   knowledge, one near it needs more knowledge (a better network, more training, pre-trained
   features), not a better decoding.

The ab-space MSE is what the bound speaks of; the PSNR (uint8 RGB, a mean over images) moves with
it but is not a function of it, so both are reported. Nothing here is asserted: figures are
printed and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from chromalab.colorizing import checkpoint
from chromalab.data.lab_arrays import load_split
from chromalab.data.palette import Gamut
from chromalab.scoring.metrics import MetricAccumulator

BLEND_WEIGHTS = (0.25, 0.5, 0.75)


@torch.no_grad()
def predict(colorizer, L: np.ndarray, batch_size: int = 256, flip: bool = False) -> np.ndarray:
    """ab (N, 2, H, W) for L (N, 1, H, W); with flip, the mean with the mirrored image's ab."""
    out = []
    for start in range(0, len(L), batch_size):
        x = torch.from_numpy(np.asarray(L[start : start + batch_size], np.float32))
        ab = colorizer(x)
        if flip:
            ab = 0.5 * (ab + colorizer(x.flip(-1)).flip(-1))
        out.append(ab.numpy())
    return np.concatenate(out)


def score(L: np.ndarray, pred: np.ndarray, truth: np.ndarray, gamut: Gamut | None, batch_size: int = 256) -> dict:
    """The evaluate stage's metrics plus the ab-energy figures of the bound."""
    accumulator = MetricAccumulator(pixel_weights=gamut.pixel_weights if gamut else None)
    for start in range(0, len(L), batch_size):
        rows = slice(start, start + batch_size)
        accumulator.update(np.asarray(L[rows], np.float32), pred[rows], np.asarray(truth[rows], np.float32))
    result = accumulator.result()
    truth64, pred64 = np.asarray(truth, np.float64), pred.astype(np.float64)
    energy = float(np.mean(truth64**2))
    result["mse_ratio"] = float(np.mean((pred64 - truth64) ** 2)) / energy
    result["energy_ratio"] = float(np.mean(pred64**2)) / energy
    result["overlap"] = float(np.mean(pred64 * truth64)) / energy  # r
    result["explained"] = result["overlap"] ** 2 / result["energy_ratio"] if result["energy_ratio"] > 0 else 0.0
    return result


def energy_bound(energy_ratio: float, r2: float) -> float:
    """The least MSE / E|ab|^2 of any prediction with this colour energy, given R2 (see above)."""
    return 1.0 + energy_ratio - 2.0 * math.sqrt(energy_ratio * r2)


def analyse(workspace: Path, split: str = "val", limit: int | None = None) -> dict:
    workspace = Path(workspace)
    L, truth = load_split(workspace / "data" / "prepared", split)
    if limit:
        L, truth = L[:limit], truth[:limit]
    L, truth = np.asarray(L, np.float32), np.asarray(truth, np.float32)
    palette_dir = workspace / "data" / "palette"
    gamut = Gamut.load(palette_dir) if palette_dir.is_dir() else None

    rows, preds, kinds = {}, {}, {}
    rows["grey"] = score(L, np.zeros_like(truth), truth, gamut)
    for ckpt in sorted((workspace / "data" / "models").glob("*/best.pt")):
        name = ckpt.parent.name
        colorizer, config = checkpoint.load(ckpt)
        colorizer.eval()
        kinds[name] = config["representation"]
        preds[name] = predict(colorizer, L)
        rows[name] = score(L, preds[name], truth, gamut)
        rows[f"{name} + flip"] = score(L, predict(colorizer, L, flip=True), truth, gamut)
        print(f"{name}: PSNR {rows[name]['psnr']:.2f} dB (flip {rows[name + ' + flip']['psnr']:.2f}), "
              f"ΔCF {rows[name]['delta_colorfulness']:.2f}", file=sys.stderr)
    if not preds:
        raise SystemExit(f"error: {workspace}/data/models: no trained model (best.pt)")

    regressors = [n for n in preds if kinds[n] == "ab"]
    if len(regressors) > 1:
        rows[f"mean of {len(regressors)} ab models"] = score(L, np.mean([preds[n] for n in regressors], axis=0),
                                                            truth, gamut)
    accurate = min(preds, key=lambda n: rows[n]["mse_ratio"])
    colourful = min(preds, key=lambda n: rows[n]["delta_colorfulness"])
    if colourful != accurate:
        for w in BLEND_WEIGHTS:
            blend = w * preds[colourful] + (1 - w) * preds[accurate]
            rows[f"{w:g} {colourful} + {1 - w:g} {accurate}"] = score(L, blend, truth, gamut)

    r2 = max(row["explained"] for row in rows.values())
    for row in rows.values():
        row["mse_ratio_bound"] = energy_bound(row["energy_ratio"], r2)
    return {"workspace": str(workspace), "split": split, "images": len(L), "most_accurate": accurate,
            "r2_estimate": r2, "most_colourful": colourful, "rows": rows}


def table(result: dict) -> str:
    lines = ["| prediction | PSNR (dB) | AuC | CF | ΔCF | MSE / grey's | colour energy c | bound on MSE / grey's |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in result["rows"].items():
        lines.append(f"| {name} | {r['psnr']:.2f} | {r['auc']:.3f} | {r['colorfulness']:.2f} | "
                     f"{r['delta_colorfulness']:.2f} | {r['mse_ratio']:.3f} | {r['energy_ratio']:.3f} | "
                     f"{r['mse_ratio_bound']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--split", default="val", choices=["train", "val", "test"])
    parser.add_argument("--limit", type=int, default=None, help="score only the first N images of the split")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    result = analyse(args.workspace, args.split, args.limit)
    print(f"{result['images']} {args.split} images; most accurate: {result['most_accurate']}"
          f"; R2 >= {result['r2_estimate']:.3f}; most colourful: {result['most_colourful']}")
    print(table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
