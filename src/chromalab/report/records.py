"""The evaluate stage's outputs read back: one record per model, checked, and the summary that
reports/metrics.json holds (what `dvc metrics show/diff` display)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from chromalab.core import paths
from chromalab.core.atomic import read_json
from chromalab.core.errors import UserError
from chromalab.report.recommend import RECOMMENDED

EVAL_SUBDIR = paths.EVAL.relative_to(paths.REPORTS)  # "eval", kept in step with paths.py
METRICS = (
    "psnr",
    "ssim",
    "auc",
    "auc_rebalanced",
    "colorfulness",
    "colorfulness_gt",
    "delta_colorfulness",
)
# "No warm cast" (metrics.colour_cast), on the test split and on evaluate.photos: absent from an
# evaluation older than them; neutral_chroma None when no pixel of the set is neutral.
CAST_METRICS = ("neutral_chroma", "neutral_fraction", "a_bias", "b_bias")
PHOTO_CAST_METRICS = tuple(f"photos_{key}" for key in CAST_METRICS)
# A model with a per-pixel confidence (bins, palette): its AUROC against the pixels it got wrong;
# one that shrinks unsure pixels' chroma: the uniform desaturation of the same colourfulness
# (evaluate.ConfidenceScorer). Absent for every other model.
CONFIDENCE_METRICS = ("confidence_auroc", "uniform_factor", "uniform_psnr", "uniform_colorfulness")
SHRINK_VERSUS = "shrink_vs_uniform_psnr"  # {difference, ci: [low, high] or None, significant}
# The neutral-scene check (stage neutral@MODEL, reports/neutral/MODEL/metrics.json): its mean and
# 99th-percentile chroma, merged into the model's record by `attach_neutral`.
NEUTRAL_SCENE_METRICS = {"neutral_scene_mean_chroma": "mean_chroma", "neutral_scene_p99_chroma": "p99_chroma"}
NEUTRAL_SUBDIR = "neutral"
# None or absent when evaluate.judge is off (fd: also with fewer than two test images).
OPTIONAL_METRICS = ("semantic_agreement", "fd", "label_top1", "label_top1_truth",
                    "semantic_agreement_mobilenetv2", "semantic_agreement_lite0", "fd_mobilenetv2", "fd_lite0",
                    "label_top1_mobilenetv2", "label_top1_lite0", *CAST_METRICS, *PHOTO_CAST_METRICS,
                    *CONFIDENCE_METRICS, *NEUTRAL_SCENE_METRICS)
# per_image.csv columns that may hold an empty cell: an image without neutral pixels has no
# neutral chroma (its neutral_pixels is 0, so it weighs nothing in the pooled value).
MAY_BE_EMPTY = ("neutral_chroma",)


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
    for key in [k for k in data if k.endswith("_ci")]:
        ci = data[key]
        if not isinstance(ci, dict) or {"low", "high"} - set(ci):
            raise UserError(f"{path}: {key} must be an object with low and high, got {ci!r}")
        data[key] = {"low": _number(path, ci, "low"), "high": _number(path, ci, "high")}
    if isinstance(data["images"], bool) or not isinstance(data["images"], int):
        raise UserError(f"{path}: images must be an integer, got {data['images']!r}")
    if data.get(SHRINK_VERSUS) is not None:
        data[SHRINK_VERSUS] = _paired(path, data[SHRINK_VERSUS])
    return data


def _paired(path: Path, value) -> dict:
    """A paired bootstrap result (uncertainty.paired) read back: difference, ci, significant."""
    if not isinstance(value, dict) or "difference" not in value:
        raise UserError(f"{path}: {SHRINK_VERSUS} must be an object with difference, ci and significant, got {value!r}")
    ci = value.get("ci")
    if ci is not None and (not isinstance(ci, list) or len(ci) != 2):
        raise UserError(f"{path}: {SHRINK_VERSUS}.ci must be [low, high], got {ci!r}")
    return {"difference": _number(path, value, "difference"),
            "ci": None if ci is None else [_number(path, {"ci": v}, "ci") for v in ci],
            "significant": bool(value.get("significant")) if ci is not None else None}


def read_neutral(names: list[str], reports_dir: Path) -> dict[str, dict]:
    """{name: reports/neutral/NAME/metrics.json} for the names whose neutral-scene check ran
    (neutral.py writes them; read here so the report needs none of the model code)."""
    found = {}
    for name in names:
        path = Path(reports_dir) / NEUTRAL_SUBDIR / name / "metrics.json"
        if not path.is_file():
            continue
        data = read_json(path, missing="not found")
        if not isinstance(data, dict):
            raise UserError(f"{path}: expected a JSON object, got {type(data).__name__}")
        for key in ("mean_chroma", "p99_chroma"):
            if key not in data:
                raise UserError(f"{path}: missing key {key!r}; rerun the neutral stage")
            data[key] = _number(path, data, key)
        found[name] = data
    return found


def attach_neutral(records: list[dict], neutral: dict[str, dict]) -> None:
    """Each record's neutral-scene mean and 99th-percentile chroma (NEUTRAL_SCENE_METRICS), from
    read_neutral's results; left None where the check did not run."""
    for record in records:
        found = neutral.get(record["name"])
        for key, source in NEUTRAL_SCENE_METRICS.items():
            record[key] = found[source] if found else None


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
    """{name: {metric: value rounded to 4 decimals, metric_ci: {low, high}}, "recommended": name}:
    what `dvc metrics show/diff` display, and what `chromalab colorize --model recommended` uses."""
    summary = {}
    for r in records:
        entry = {}
        for key in (*METRICS, *OPTIONAL_METRICS):
            if r.get(key) is not None:
                entry[key] = round(r[key], 4)
            if r.get(f"{key}_ci"):
                entry[f"{key}_ci"] = {side: round(v, 4) for side, v in r[f"{key}_ci"].items()}
        if r.get(SHRINK_VERSUS):
            versus = r[SHRINK_VERSUS]
            entry[SHRINK_VERSUS] = {"difference": round(versus["difference"], 4),
                                    "ci": versus["ci"] and [round(v, 4) for v in versus["ci"]],
                                    "significant": versus["significant"]}
        summary[r["name"]] = entry
    return {**summary, RECOMMENDED: recommended}


def read_per_image(source, name=None) -> dict:
    """per_image.csv (a path, or an open text file with its `name`) back: {"image": [...],
    column: np.ndarray}, every value a finite number (an empty cell of a MAY_BE_EMPTY column: NaN)."""
    name = name or str(source)
    if isinstance(source, (str, Path)):
        with open(source, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    else:
        rows = list(csv.DictReader(source))
    if not rows:
        raise UserError(f"{name}: no images")
    out = {"image": [r["image"] for r in rows]}
    for column in rows[0]:
        if column == "image":
            continue
        empty = column in MAY_BE_EMPTY
        try:
            values = np.array([math.nan if empty and r[column] == "" else float(r[column]) for r in rows])
        except (TypeError, ValueError):
            raise UserError(f"{name}: {column} holds a value that is not a number") from None
        if not np.all(np.isfinite(values[~np.isnan(values)] if empty else values)):
            raise UserError(f"{name}: {column} holds a value that is not a finite number")
        out[column] = values
    return out
