"""The report's pictures: training curves, the error CDF of every model, the confidence's
reliability, quality against speed, and the hero composite.

Each function returns the file's bytes, so the report stage can render everything before writing
anything. Plots are matplotlib on the Agg backend (no display needed), drawn on a `Figure` object
rather than through pyplot, so no global figure state leaks between calls. SVGs are made
byte-for-byte reproducible (no date, fixed element ids): an unchanged run gives unchanged files
and a clean `git diff`.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from chromalab.core.errors import UserError

# Read when saving: fixed ids instead of random ones, and text kept as text (small, searchable).
SVG_STYLE = {"svg.hashsalt": "chromalab", "svg.fonttype": "none"}


def columns(rows: list[dict[str, str]]) -> dict[str, list[float]]:
    """CSV rows (csv.DictReader) as {column: floats}; empty cells become NaN, and a column that is
    not numeric is left out (nothing to plot)."""
    out: dict[str, list[float]] = {}
    for key in rows[0] if rows else ():
        try:
            out[key] = [float(r[key]) if r.get(key) not in ("", None) else math.nan for r in rows]
        except ValueError:
            continue
    return out


def _svg(fig) -> bytes:
    import matplotlib

    out = io.BytesIO()
    with matplotlib.rc_context(SVG_STYLE):
        fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _figure(width: float, height: float, ncols: int):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols)
    for ax in np.atleast_1d(axes):
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(alpha=0.3)
    return fig, axes


def training_figure(name: str, history: dict[str, list[float]]) -> bytes:
    """One model's history.csv: train and val loss per epoch, and val PSNR (what picks the best epoch)."""
    epochs = history.get("epoch")
    if not epochs:
        raise UserError(f"{name}: history has no epoch column")
    fig, (loss, psnr) = _figure(6.4, 2.4, 2)
    marker = "o" if len(epochs) <= 12 else None  # a single epoch still shows as a point
    for key, label in (("train_loss", "train"), ("val_loss", "val")):
        if key in history:
            loss.plot(epochs, history[key], marker=marker, markersize=3, label=label)
    loss.set(xlabel="epoch", ylabel="loss", title=f"{name}: loss")
    loss.legend(frameon=False)
    if "val_psnr" in history:
        psnr.plot(epochs, history["val_psnr"], marker=marker, markersize=3, color="tab:green")
    psnr.set(xlabel="epoch", ylabel="dB", title=f"{name}: val PSNR")
    for ax in (loss, psnr):
        ax.xaxis.get_major_locator().set_params(integer=True)
    return _svg(fig)


def error_cdf_figure(curves: dict[str, dict[str, list[float]]], baseline: str) -> bytes:
    """Zhang et al.'s AuC curve of every model on one plot: the share of pixels whose ab error is
    within each threshold, raw and class-rebalanced. The grey baseline is dashed."""
    fig, axes = _figure(9.0, 3.4, 2)
    for ax, key, title in zip(axes, ("cdf", "cdf_rebalanced"), ("error CDF", "error CDF, class-rebalanced")):
        for name, curve in curves.items():
            if key in curve:
                grey = name == baseline
                ax.plot(curve["threshold"], curve[key], label=name, linewidth=1.2,
                        linestyle="--" if grey else "-", color="0.3" if grey else None)
        ax.set(xlabel="ab error threshold", ylabel="share of pixels", title=title, ylim=(0, 1.01),
               xlim=(0, _saturation(curves, key)))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", frameon=False, fontsize=8)
    return _svg(fig)


def speed_quality_figure(points: dict[str, tuple[float, dict]], grey: dict | None) -> bytes:
    """PSNR and ΔCF on the full-resolution photos against seconds per megapixel, one point per model
    with its 95 % interval; the grey input's scores as a dotted line."""
    fig, axes = _figure(9.0, 3.4, 2)
    for ax, key, label in zip(axes, ("photos_psnr", "photos_delta_colorfulness"),
                              ("PSNR (dB), higher is better", "ΔCF, lower is better")):
        for name, (speed, m) in points.items():
            ci = m.get(f"{key}_ci")
            err = [[m[key] - ci["low"]], [ci["high"] - m[key]]] if ci else None
            ax.errorbar(speed, m[key], yerr=err, fmt="o", capsize=3, label=name)
        if grey and key in grey:
            ax.axhline(grey[key], color="0.4", linestyle=":", linewidth=1, label="grey input")
        ax.set(xlabel="seconds per megapixel (evaluate stage, this machine)", ylabel=label)
    axes[0].set_title("full-resolution photos: quality against speed", fontsize=9)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", frameon=False, fontsize=8)
    return _svg(fig)


def reliability_figure(tables: dict[str, dict[str, list[float]]], measures: dict[str, str]) -> bytes:
    """Each confident model's reliability table (evaluate's reliability.csv): left, the share of
    pixels it got right (ab error <= 10) against their mean confidence, one point per confidence
    bin, the diagonal dotted (where a confidence would be that probability, as the radius measure
    at r = 10 means to be); right, how its pixels spread over the confidence bins."""
    fig, (calibration, spread) = _figure(9.0, 3.4, 2)
    calibration.plot([0, 1], [0, 1], color="0.5", linestyle=":", linewidth=1)
    for name, table in tables.items():
        label = f"{name} ({measures.get(name, '?')})"
        x = [c for c, p in zip(table["mean_confidence"], table["pixels"]) if p > 0 and not math.isnan(c)]
        y = [r for r, p in zip(table["share_right"], table["pixels"]) if p > 0 and not math.isnan(r)]
        calibration.plot(x, y, marker="o", markersize=3, linewidth=1.2, label=label)
        total = sum(table["pixels"]) or 1.0
        centres = [(lo + hi) / 2 for lo, hi in zip(table["low"], table["high"])]
        spread.plot(centres, [p / total for p in table["pixels"]], marker="o", markersize=3, linewidth=1.2, label=label)
    calibration.set(xlabel="mean confidence in the bin", ylabel="share of pixels with ab error ≤ 10",
                    title="reliability (test pixels)", xlim=(0, 1), ylim=(0, 1.01))
    spread.set(xlabel="confidence bin", ylabel="share of pixels", title="where the confidences lie", xlim=(0, 1))
    fig.legend(*calibration.get_legend_handles_labels(), loc="outside right center", frameon=False, fontsize=8)
    return _svg(fig)


def _saturation(curves: dict[str, dict[str, list[float]]], key: str) -> float:
    """Where every curve has (nearly) reached 1: beyond it the plot would be flat lines only."""
    ends = []
    for curve in curves.values():
        xs, ys = curve.get("threshold", []), curve.get(key, [])
        reached = [x for x, y in zip(xs, ys) if y >= 0.999]
        ends.append(reached[0] if reached else (xs[-1] if xs else 150))
    return min(max(ends, default=150) * 1.15, max((c["threshold"][-1] for c in curves.values() if c.get("threshold")), default=150))


# --- the hero composite ----------------------------------------------------------------------

HERO_CELL = 192  # px: small gallery crops are scaled up by a whole factor to at least this
HERO_GAP = 6
HERO_LABEL = 24


def _cell(path: Path, height: int) -> Image.Image:
    with Image.open(path) as img:
        img = img.convert("RGB")
    if img.height < height:
        factor = math.ceil(height / img.height)  # whole factor, nearest: crisp pixels, no blur
        img = img.resize((img.width * factor, img.height * factor), Image.NEAREST)
    width = round(img.width * height / img.height)
    return img.resize((width, height), Image.LANCZOS) if img.height != height else img


def hero_image(rows: list[list[Path]], headers: list[str]) -> bytes:
    """A PNG grid: one row per photo, one column per header (grey | model | truth), labelled on top."""
    if not rows:
        raise UserError("hero: no pictures to show")
    cells = [[_cell(p, HERO_CELL) for p in row] for row in rows]
    widths = [max(row[c].width for row in cells) for c in range(len(headers))]
    width = sum(widths) + HERO_GAP * (len(widths) + 1)
    height = HERO_LABEL + len(cells) * (HERO_CELL + HERO_GAP) + HERO_GAP
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=15)
    x = HERO_GAP
    for c, header in enumerate(headers):
        draw.text((x + widths[c] / 2, HERO_LABEL / 2 + 2), header, fill="black", font=font, anchor="mm")
        y = HERO_LABEL
        for row in cells:
            img = row[c]
            canvas.paste(img, (x + (widths[c] - img.width) // 2, y))
            y += HERO_CELL + HERO_GAP
        x += widths[c] + HERO_GAP
    return _png(canvas)


def placeholder_png(text: str) -> bytes:
    """A small picture saying why there is nothing to show (an output DVC expects must exist)."""
    canvas = Image.new("RGB", (480, 60), "white")
    ImageDraw.Draw(canvas).text((240, 30), text, fill="black", font=ImageFont.load_default(size=13), anchor="mm")
    return _png(canvas)


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()
