"""The real-photo profile's results for the docs: `python benchmarks/photo_tradeoff.py WORKSPACE`.

Reads a workspace where `make photos` ran (reports/, data/models/) and writes into docs/:
- photos_comparison.md: the run's league table (reports/comparison.md) and the issue's bars
  checked against it (ΔCF <= 5 and PSNR >= grey - 1 dB on the test photos at 256 px; on the
  full-resolution photos PSNR >= grey - 1 dB and ΔCF <= 10);
- photos_gallery.png: the run's gallery (grey | every model | truth);
- photos_tradeoff.png and .json: PSNR against ΔCF on the test photos for every model and grey, and
  for the annealed-mean models every temperature of train.temperatures. The temperature each model
  uses was chosen on val; the test curve only shows what the other choices would have given.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from chromalab import checkpoint, paths
from chromalab.data.lab_arrays import load_split
from chromalab.metrics import MetricAccumulator
from chromalab.selection import annealed

DOCS = Path(__file__).resolve().parents[1] / "docs"
EXTRA_TEMPERATURES = (0.7, 1.0)  # beyond the usual list: where the curve goes
BARS = {"test_delta_cf": 5.0, "test_psnr_below_grey": 1.0, "photos_psnr_below_grey": 1.0, "photos_delta_cf": 10.0}


@torch.no_grad()
def test_sweep(colorizer, L_all, ab_all, temperatures, batch_size=16) -> list[dict]:
    """PSNR and ΔCF on the test split at each temperature (the network runs once per batch)."""
    accumulators = {t: MetricAccumulator() for t in temperatures}
    for start in range(0, len(L_all), batch_size):
        L = torch.from_numpy(np.asarray(L_all[start:start + batch_size], np.float32))
        truth = np.asarray(ab_all[start:start + batch_size], np.float32)
        out = colorizer.outputs(L)
        for t, acc in accumulators.items():
            colorizer.representation.temperature = t
            acc.update(L.numpy(), colorizer.decode(out, L).float().numpy(), truth)
    return [{"temperature": t, "psnr": acc.result()["psnr"], "delta_colorfulness": acc.result()["delta_colorfulness"]}
            for t, acc in accumulators.items()]


def bars(root: Path, rec: str) -> list[str]:
    """The issue's bars for the recommended model, from the evaluate stage's own files (they hold
    the full-resolution photo scores, which reports/metrics.json leaves out)."""
    m, grey = (json.loads((root / paths.EVAL / name / "metrics.json").read_text()) for name in (rec, "grey"))
    lines = [f"Recommended model: **{rec}**.", "",
             "| bar | measured | met |", "| --- | --- | --- |"]

    def row(text, value, ok):
        lines.append(f"| {text} | {value} | {'yes' if ok else '**no**'} |")

    row("test photos at 256 px: ΔCF ≤ 5", f"{m['delta_colorfulness']:.2f}", m["delta_colorfulness"] <= 5)
    row("test photos at 256 px: PSNR ≥ grey − 1 dB", f"{m['psnr']:.2f} dB vs grey {grey['psnr']:.2f} dB "
        f"({m['psnr'] - grey['psnr']:+.2f})", m["psnr"] >= grey["psnr"] - 1.0)
    if "photos_psnr" in m:
        row("full-resolution photos: PSNR ≥ grey − 1 dB", f"{m['photos_psnr']:.2f} dB vs grey {grey['photos_psnr']:.2f} dB "
            f"({m['photos_psnr'] - grey['photos_psnr']:+.2f})", m["photos_psnr"] >= grey["photos_psnr"] - 1.0)
        row("full-resolution photos: ΔCF ≤ 10", f"{m['photos_delta_colorfulness']:.2f}",
            m["photos_delta_colorfulness"] <= 10)
    return lines


def figure(points: dict, curves: dict, grey: dict) -> bytes:
    from chromalab.figures import _figure
    import io

    fig, ax = _figure(6.5, 4.2, 1)
    ax.axvspan(0, BARS["test_delta_cf"], color="tab:green", alpha=0.08)
    ax.axhline(grey["psnr"] - BARS["test_psnr_below_grey"], color="tab:green", ls=":", lw=1)
    for name, sweep in curves.items():
        xs, ys = [s["delta_colorfulness"] for s in sweep], [s["psnr"] for s in sweep]
        ax.plot(xs, ys, "-", alpha=0.5, lw=1)
        for s in sweep:
            ax.annotate(f"T={s['temperature']:g}", (s["delta_colorfulness"], s["psnr"]), fontsize=6, alpha=0.7)
    for name, p in points.items():
        ax.plot(p["delta_colorfulness"], p["psnr"], "o" if name != "grey" else "s", label=name)
    ax.set_xlabel("ΔCF on the test photos (|colourfulness − truth's|)")
    ax.set_ylabel("PSNR on the test photos at 256 px (dB)")
    ax.set_title("green: the bars (ΔCF ≤ 5, PSNR ≥ grey − 1 dB); line: T", fontsize=9)
    ax.legend(fontsize=7)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=130)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path, help="the folder where `make photos` ran")
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args()
    root = args.workspace
    metrics = json.loads((root / paths.REPORTS / "metrics.json").read_text())
    names = [n for n in metrics if n not in ("grey", "recommended")]
    L_all, ab_all = load_split(root / paths.PREPARED, "test")
    points, curves = {}, {}
    for name in [*names, "grey"]:
        points[name] = {k: metrics[name][k] for k in ("psnr", "delta_colorfulness")}
    for name in names:
        colorizer, cfg = checkpoint.load(root / paths.MODELS / name / "best.pt")
        sweep = cfg.get("temperature_sweep")
        if sweep and annealed(colorizer):
            temperatures = sorted({s["temperature"] for s in sweep} | set(EXTRA_TEMPERATURES))
            curves[name] = test_sweep(colorizer, L_all, ab_all, temperatures)
            points[name]["temperature"] = cfg["representation_args"]["temperature"]
            points[name]["val_sweep"] = sweep
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "photos_tradeoff.json").write_text(json.dumps({"models": points, "test_sweeps": curves}, indent=2) + "\n")
    (args.out / "photos_tradeoff.png").write_bytes(figure(points, curves, metrics["grey"]))
    shutil.copyfile(root / paths.REPORTS / "gallery.png", args.out / "photos_gallery.png")
    table = (root / paths.REPORTS / "comparison.md").read_text().replace("# Model comparison", "").strip()
    text = "\n".join(["# The real-photo profile: `make photos`", "",
                      f"Written by `python benchmarks/photo_tradeoff.py {root}` from that run's reports.", "",
                      table, "", "## The bars", "", *bars(root, metrics["recommended"]), "",
                      "![PSNR against ΔCF](photos_tradeoff.png)", ""])
    (args.out / "photos_comparison.md").write_text(text)
    print(f"wrote {args.out}/photos_comparison.md, photos_gallery.png, photos_tradeoff.png/.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
