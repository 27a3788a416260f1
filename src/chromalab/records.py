"""The evaluate stage's outputs read back: one record per model, checked, and the summary that
reports/metrics.json holds (what `dvc metrics show/diff` display)."""

from __future__ import annotations

import math
from pathlib import Path

from chromalab import paths
from chromalab.atomic import read_json
from chromalab.errors import UserError
from chromalab.recommend import RECOMMENDED

EVAL_SUBDIR = paths.EVAL.relative_to(paths.REPORTS)  # "eval", kept in step with paths.py
METRICS = (
    "psnr",
    "ssim",
    "auc",
    "auc_rebalanced",
    "colorfulness",
    "colorfulness_gt",
    "delta_colorfulness",
    "images_per_second",
)
OPTIONAL_METRICS = {"train_seconds"}  # None for grey and for evaluations older than the key


def _number(path: Path, data: dict, key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{path}: {key} must be a number, got {value!r}")
    if not math.isfinite(value):
        # json.dumps would write NaN/Infinity, which is not JSON and breaks `dvc metrics`.
        raise UserError(f"{path}: {key} must be a finite number, got {value!r}")
    return float(value)


def read_metrics(path: Path) -> dict:
    """One model's metrics.json, checked: a dict with every metric a finite number."""
    data = read_json(path, missing="not found; run the evaluate stage first (dvc repro)")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(data).__name__}")
    for key in (*METRICS, "images"):
        if key not in data:
            raise UserError(f"{path}: missing key {key!r}")
    for key in METRICS:
        data[key] = _number(path, data, key)
    for key in OPTIONAL_METRICS:
        data[key] = _number(path, data, key) if data.get(key) is not None else None
    if isinstance(data["images"], bool) or not isinstance(data["images"], int):
        raise UserError(f"{path}: images must be an integer, got {data['images']!r}")
    return data


def load_records(names: list[str], reports_dir: Path) -> list[dict]:
    """Each name's metrics.json plus its name, in the given order."""
    if not names:
        raise UserError("report: no models to compare")
    seen = set()
    for name in names:
        if name in seen:
            raise UserError(f"report: model {name!r} is listed twice")
        seen.add(name)
    eval_dir = reports_dir / EVAL_SUBDIR
    return [{**read_metrics(eval_dir / name / "metrics.json"), "name": name} for name in names]


def metrics_summary(records: list[dict], recommended: str | None) -> dict:
    """{name: {metric: value rounded to 4 decimals}, "recommended": name}: what `dvc metrics
    show/diff` display, and what `chromalab colorize` uses when no --model is given."""
    summary = {r["name"]: {key: round(r[key], 4) for key in METRICS} for r in records}
    return {**summary, RECOMMENDED: recommended}
