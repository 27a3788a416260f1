"""The real-photo profile's results for the docs: `python benchmarks/photo_tradeoff.py WORKSPACE`.

Reads a workspace where `make photos` ran (reports/, data/models/) and writes into docs/:
- photos_comparison.md: the run's league table (reports/comparison.md) and the issue's bars
  checked against it (ΔCF <= 5 and PSNR >= grey - 1 dB on the test photos at 256 px; on the
  full-resolution photos PSNR >= grey - 1 dB and ΔCF <= 10);
- photos_gallery.png: the run's gallery (grey | every model | truth);
- photos_tradeoff.png and .json: PSNR against ΔCF on the test photos for every model and grey, and
  for the annealed-mean models every temperature of train.temperatures. The temperature each model
  uses was chosen on val; the test curve only shows what the other choices would have given;
- the full-resolution photos' table (evaluate.photos: PSNR and ΔCF with their 95 % intervals, the
  judges' agreement and FD) and photos_speed_quality.svg, the report's picture of PSNR and ΔCF on
  those photos against the seconds per megapixel each model took to colorize them
  (reports/speed_quality.svg, a side file the report draws from the evaluate stages' timings.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from chromalab.colorizing import checkpoint
from chromalab.core import paths
from chromalab.data.lab_arrays import load_split
from chromalab.scoring.metrics import MetricAccumulator
from chromalab.training.selection import annealed

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


def _cell(m: dict, key: str, digits: int) -> str:
    value, ci = m.get(key), m.get(f"{key}_ci")
    if value is None:
        return "—"
    return f"{value:.{digits}f}" + (f" [{ci['low']:.{digits}f}, {ci['high']:.{digits}f}]" if ci else "")


def photos_table(root: Path, names: list[str]) -> list[str]:
    """The full-resolution photos (evaluate.photos) per model and grey, with intervals and judges."""
    rows = {n: json.loads((root / paths.EVAL / n / "metrics.json").read_text()) for n in [*names, "grey"]}
    if "photos_psnr" not in rows["grey"]:
        return []
    columns = [("photos_psnr", "PSNR (dB)", 2), ("photos_delta_colorfulness", "ΔCF", 2),
               ("photos_semantic_agreement_mobilenetv2", "agree. M", 2), ("photos_semantic_agreement_lite0", "agree. L", 2),
               ("photos_fd_mobilenetv2", "FD M", 1), ("photos_fd_lite0", "FD L", 1)]
    lines = [f"## Full-resolution photos ({rows['grey']['photos_count']} colour photos of evaluate.photos, "
             f"colorized at full size, scored at 256 px)", "",
             "| model | " + " | ".join(title for _, title, _ in columns) + " | s/MP |",
             "|:---|" + "---:|" * (len(columns) + 1)]
    for name, m in rows.items():
        speed = _speed(root, name)
        lines.append(f"| {name} | " + " | ".join(_cell(m, key, d) for key, _, d in columns)
                     + f" | {'—' if speed is None else f'{speed:.3f}'} |")
    return lines + ["", "M = MobileNetV2, L = EfficientNet-Lite0 (ImageNet judges; — where the judge is the "
                        "model's own encoder); s/MP: seconds per megapixel to colorize these photos in the "
                        "evaluate stage (one run on this machine, from timings.json).", ""]


def summary_table(root: Path, names: list[str]) -> list[str]:
    """README's table: per model and grey, the test photos' PSNR and ΔCF with their 95 % intervals,
    both judges' agreement and FD, the full-resolution photos' PSNR and ΔCF, and s/MP."""
    rows = {n: json.loads((root / paths.EVAL / n / "metrics.json").read_text()) for n in [*names, "grey"]}

    def pair(m: dict, key: str, digits: int) -> str:
        return " / ".join("—" if m.get(f"{key}_{judge}") is None else f"{m[f'{key}_{judge}']:.{digits}f}"
                          for judge in ("mobilenetv2", "lite0"))

    lines = ["| model | PSNR (dB) | ΔCF | agreement M / L | FD M / L | photos PSNR | photos ΔCF | s/MP |",
             "|:---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in rows.items():
        speed = _speed(root, name)
        photos = (f"{_cell(m, 'photos_psnr', 2)} | {m['photos_delta_colorfulness']:.1f}" if "photos_psnr" in m
                  else "— | —")
        lines.append(f"| {name} | {_cell(m, 'psnr', 2)} | {_cell(m, 'delta_colorfulness', 1)} | "
                     f"{pair(m, 'semantic_agreement', 2)} | {pair(m, 'fd', 1)} | {photos} | "
                     + ("—" if speed is None else f"{speed:.3f}") + " |")
    return lines


def _images(root: Path) -> int:
    return json.loads((root / paths.EVAL / "grey" / "metrics.json").read_text())["images"]


def _speed(root: Path, name: str) -> float | None:
    path = root / paths.EVAL / name / "timings.json"
    return json.loads(path.read_text()).get("photos_seconds_per_megapixel") if path.is_file() else None


def figure(points: dict, curves: dict, grey: dict) -> bytes:
    from chromalab.report.figures import _figure
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
    speed_svg = root / paths.REPORTS / "speed_quality.svg"
    if speed_svg.is_file():
        shutil.copyfile(speed_svg, args.out / "photos_speed_quality.svg")
    text = "\n".join(["# The real-photo profile: `make photos`", "",
                      f"Written by `python benchmarks/photo_tradeoff.py {root}` from that run's reports.", "",
                      "## In short", "", *summary_table(root, names), "",
                      f"Test photos: the {_images(root)} held-out photos at 256 px, with 95 % "
                      "bootstrap intervals; agreement: the ImageNet judges' top-1 on the colorized photo equal "
                      "to theirs on the truth; FD: Fréchet distance of their features to the truth's (FID's "
                      "formula, not comparable with published FIDs); M = MobileNetV2, L = EfficientNet-Lite0, "
                      "— where the judge is the model's own encoder; photos: the full-resolution photos "
                      "below; s/MP: seconds per megapixel to colorize them in the evaluate stage (one run, "
                      "this machine).", "",
                      "## Test photos (whole photos at 256 px)", "", table.replace("\n## Is", "\n### Is"), "",
                      *photos_table(root, names),
                      *(["![quality against speed](photos_speed_quality.svg)", ""] if speed_svg.is_file() else []),
                      "## The bars", "", *bars(root, metrics["recommended"]), "",
                      "![PSNR against ΔCF](photos_tradeoff.png)", ""])
    (args.out / "photos_comparison.md").write_text(text)
    print("\n".join(summary_table(root, names)))
    print(f"wrote {args.out}/photos_comparison.md, photos_gallery.png, photos_tradeoff.png/.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
