"""Where does a bins model's warm cast come from? A measurement on a split of the prepared data.

    python benchmarks/cast_probe.py MODEL [--prepared data/prepared] [--palette data/palette]
        [--split val] [--temperatures 0.2 0.38 0.6 1.0] [--corrections 0 0.5 1] [--out FILE.json]

MODEL: a checkpoint (data/models/NAME/best.pt, or the released src/chromalab/released/lite_bins.pt)
or a model folder. It prints, and writes as JSON:

1. the palette's colour statistics: the mean ab of the training pixels (the data's own colour
   balance), the mean of the rebalanced prior w·p̃ (what the rebalanced loss teaches an unsure pixel
   to predict) and the unweighted centroid of the gamut's bins (where a flat distribution decodes);
2. for each decoding (temperature T, prior correction c; representations.BinClassification) and
   each dataset of the split: PSNR against the grey input's, ΔCF (signed: prediction minus
   truth), the a*/b* bias, and on truly neutral pixels (true chroma < 5) the mean predicted chroma
   and its mean a*, b* (the cast's direction). The network runs once per batch; only decoding varies.

Choose on val; the test split is for the evaluate stage.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from chromalab.colorizing import checkpoint
from chromalab.core import color
from chromalab.data.lab_arrays import load_split
from chromalab.scoring import metrics

NEUTRAL = metrics.NEUTRAL_THRESHOLD


def palette_statistics(palette_dir: Path) -> dict:
    gamut = json.loads((palette_dir / "gamut.json").read_text())
    centers, prior, weights = (np.asarray(gamut[k], np.float64) for k in ("centers", "prior", "weights"))
    rebalanced = weights * prior / (weights * prior).sum()
    return {"bins": len(centers), "data_mean_ab": (prior @ centers).tolist(),
            "rebalanced_prior_mean_ab": (rebalanced @ centers).tolist(), "bin_centroid_ab": centers.mean(0).tolist(),
            "weight_of_neutral_bin": float(weights[np.argmin((centers**2).sum(1))]),
            "weight_range": [float(weights.min()), float(weights.max())]}


def datasets_of(prepared: Path, split: str, n: int) -> list[str]:
    path = prepared / "manifest.csv"
    if not path.is_file():
        return ["all"] * n
    with open(path, newline="", encoding="utf-8") as f:
        rows = sorted((int(r["index"]), r.get("dataset") or "all") for r in csv.DictReader(f) if r["split"] == split)
    return [d for _, d in rows]


class Tally:
    """Sums for one (decoding, dataset) cell."""

    def __init__(self):
        self.sums = defaultdict(float)

    def add(self, L, pred, truth, truth_rgb, grey_psnr):
        s = self.sums
        pred_rgb = color.lab_planes_to_rgb_uint8(L, pred)
        true_chroma, pred_chroma = np.hypot(*truth), np.hypot(*pred)
        neutral = true_chroma < NEUTRAL
        s["images"] += 1
        s["psnr"] += metrics.psnr(pred_rgb, truth_rgb)
        s["grey_psnr"] += grey_psnr
        s["cf"] += metrics.colorfulness(pred_rgb)
        s["cf_gt"] += metrics.colorfulness(truth_rgb)
        s["pixels"] += true_chroma.size
        s["a_error"] += float((pred[0] - truth[0]).sum())
        s["b_error"] += float((pred[1] - truth[1]).sum())
        s["neutral"] += int(neutral.sum())
        s["neutral_chroma"] += float(pred_chroma[neutral].sum())
        s["neutral_a"] += float(pred[0][neutral].sum())
        s["neutral_b"] += float(pred[1][neutral].sum())

    def result(self) -> dict:
        s, n, px, neutral = self.sums, self.sums["images"], self.sums["pixels"], max(self.sums["neutral"], 1)
        return {"images": int(n), "psnr": s["psnr"] / n, "grey_psnr": s["grey_psnr"] / n,
                "delta_colorfulness": (s["cf"] - s["cf_gt"]) / n, "a_bias": s["a_error"] / px,
                "b_bias": s["b_error"] / px, "neutral_fraction": s["neutral"] / px,
                "neutral_chroma": s["neutral_chroma"] / neutral, "neutral_a": s["neutral_a"] / neutral,
                "neutral_b": s["neutral_b"] / neutral}


@torch.no_grad()
def probe(colorizer, L_all, ab_all, datasets, temperatures, corrections, batch_size=16) -> list[dict]:
    rep = colorizer.representation
    if not hasattr(rep, "prior_correction"):
        raise SystemExit(f"error: {rep.name} is not a bins representation: no rebalancing to probe")
    cells = defaultdict(Tally)
    for start in range(0, len(L_all), batch_size):
        L = torch.from_numpy(np.asarray(L_all[start:start + batch_size], np.float32))
        truth = np.asarray(ab_all[start:start + batch_size], np.float32)
        out = colorizer.outputs(L)
        L_np = L.numpy()
        truth_rgb = [color.lab_planes_to_rgb_uint8(l, t) for l, t in zip(L_np, truth)]
        grey = [metrics.psnr(color.lab_planes_to_rgb_uint8(l, np.zeros_like(t)), rgb)
                for l, t, rgb in zip(L_np, truth, truth_rgb)]
        for c in corrections:
            for t in temperatures:
                rep.temperature, rep.prior_correction = t, c
                pred = colorizer.decode(out, L).numpy()
                for i in range(len(L_np)):
                    for key in ((t, c, datasets[start + i]), (t, c, "all")):
                        cells[key].add(L_np[i], pred[i], truth[i], truth_rgb[i], grey[i])
    names = sorted({d for _, _, d in cells}, key=lambda d: (d != "all", d))
    return [{"dataset": d, "temperature": t, "prior_correction": c, **cells[(t, c, d)].result()}
            for d in names for c in corrections for t in temperatures if (t, c, d) in cells]


def table(rows: list[dict]) -> str:
    lines = ["| dataset | c | T | PSNR | grey | ΔCF | a* bias | b* bias | neutral chroma | neutral a*, b* |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['prior_correction']:g} | {r['temperature']:g} | {r['psnr']:.2f} | "
                     f"{r['grey_psnr']:.2f} | {r['delta_colorfulness']:+.1f} | {r['a_bias']:+.2f} | {r['b_bias']:+.2f} | "
                     f"{r['neutral_chroma']:.2f} | {r['neutral_a']:+.1f}, {r['neutral_b']:+.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--prepared", default="data/prepared")
    parser.add_argument("--palette", default="data/palette")
    parser.add_argument("--split", default="val", choices=("train", "val", "test"))
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.2, 0.38, 0.6, 1.0])
    parser.add_argument("--corrections", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    model = Path(args.model)
    colorizer, _ = checkpoint.load(model / "best.pt" if model.is_dir() else model)
    colorizer.eval()
    prepared = Path(args.prepared)
    L_all, ab_all = load_split(prepared, args.split)
    stats = palette_statistics(Path(args.palette))
    rows = probe(colorizer, L_all, ab_all, datasets_of(prepared, args.split, len(L_all)), args.temperatures,
                 args.corrections)
    print(f"palette ({stats['bins']} bins): data mean ab {np.round(stats['data_mean_ab'], 2).tolist()}, rebalanced "
          f"prior mean {np.round(stats['rebalanced_prior_mean_ab'], 2).tolist()}, bin centroid "
          f"{np.round(stats['bin_centroid_ab'], 2).tolist()}, neutral bin's weight {stats['weight_of_neutral_bin']:.3f} "
          f"(weights {stats['weight_range'][0]:.3f}..{stats['weight_range'][1]:.2f})")
    print(table(rows))
    if args.out:
        Path(args.out).write_text(json.dumps({"palette": stats, "decodings": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
