"""Which confidence ranks a bins model's errors best: each measure's AUROC against ab error > 10,
read from the distribution with a share c_conf of the class rebalancing divided out.

    python benchmarks/confidence_measures.py CHECKPOINT PREPARED_DIR [--split val] [--json OUT]

CHECKPOINT: a bins model (a train stage's best.pt, or src/chromalab/released/lite_bins.pt);
PREPARED_DIR: a prepare stage's output (data/prepared), scored on its `--split` (val: choose there,
never on test). The network runs once per batch; every (measure, c_conf) is scored on the same
outputs against the model's own decoding (its temperature and prior correction, no shrink), at
the split's resolution, pooled over pixels with the evaluate stage's histograms. docs/confidence.md
("Which distribution") shows its table for the 12-07 release.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from chromalab.colorizing import checkpoint, confidence
from chromalab.colorizing.representations import PULL_KNOBS
from chromalab.data.lab_arrays import load_split

CORRECTIONS = (0.1, 0.5, 1.0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("prepared")
    parser.add_argument("--split", default="val")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--json", help="also write the table here")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    colorizer, _ = checkpoint.load(args.checkpoint, "cpu")
    rep = colorizer.representation
    if rep.name != "bins":
        print(f"error: {args.checkpoint}: a {rep.name} model; this compares the bins representation's corrections",
              file=sys.stderr)
        return 2
    for knob in PULL_KNOBS:  # the error of the colour the confidence speaks of: as painted
        setattr(rep, knob, 0.0)
    L_all, ab_all = load_split(args.prepared, args.split)
    points = [(m, c) for c in CORRECTIONS for m in confidence.MEASURES]
    counts = {p: None for p in points}
    chroma_counts = None
    with torch.no_grad():
        for i in range(0, len(L_all), args.batch):
            L = torch.from_numpy(np.asarray(L_all[i:i + args.batch], np.float32))
            ab_true = np.asarray(ab_all[i:i + args.batch], np.float32)
            h, w = L.shape[-2:]
            out, padded = colorizer.padded_outputs(L)
            ab = colorizer.decode(out, padded)[..., :h, :w]
            error = np.linalg.norm(ab.numpy() - ab_true, axis=1)
            for measure, c in points:
                rep.confidence_correction = c
                conf = colorizer.confidence(out, padded, measure)[..., :h, :w].numpy()
                counts[(measure, c)] = _add(counts[(measure, c)], confidence.histograms(conf, error))
            painted = 1.0 / (1.0 + np.linalg.norm(ab.numpy(), axis=1) / 10.0)  # baseline: vivid = risky
            chroma_counts = _add(chroma_counts, confidence.histograms(painted, error))
    rows = [{"measure": m, "confidence_correction": c,
             "auroc": float(confidence.auroc_from_histograms(counts[(m, c)]["wrong"], counts[(m, c)]["right"]))}
            for m, c in points]
    rows.append({"measure": "painted chroma 1/(1+|ab|/10)", "confidence_correction": None,
                 "auroc": float(confidence.auroc_from_histograms(chroma_counts["wrong"], chroma_counts["right"]))})
    print(f"{args.split}: {len(L_all)} images")
    for r in rows:
        c = "—" if r["confidence_correction"] is None else f"{r['confidence_correction']:g}"
        print(f"{r['measure']:30s} c_conf {c:>4s}  AUROC {r['auroc']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


def _add(total, new):
    return new if total is None else {k: total[k] + new[k] for k in total}


if __name__ == "__main__":
    sys.exit(main())
