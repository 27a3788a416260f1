"""What produced a report: the code, the params, the data and each model's MLflow run.

Before trusting a number, a reader asks "which commit, which settings, which data?". The answers
come from files the pipeline already has (git, params.yaml, the prepared data's summary, each
model's run.json); MLflow itself is only asked where its run pages are, by the report stage.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from chromalab.core import config, tracking, vcs


@dataclasses.dataclass(frozen=True)
class ModelRun:
    """One model's MLflow run, as its run.json records it (run_id None: not tracked, see `note`)."""

    name: str
    run_id: str | None
    model_uri: str | None
    tracking_uri: str | None
    note: str | None = None


@dataclasses.dataclass
class Lineage:
    git_commit: str
    git_subject: str
    dvc_exp_name: str
    data_sha256: str | None
    image_size: int | None
    changed_params: list[tuple[str, object, object]]  # (key, value in params.yaml, code default)
    league: list[str]
    runs: list[ModelRun]
    experiment_ids: dict[str, str] = dataclasses.field(default_factory=dict)  # run id -> experiment id

    @property
    def tracking_uri(self) -> str | None:
        return next((r.tracking_uri for r in self.runs if r.tracking_uri), None)


def changed_params(params: dict) -> list[tuple[str, object, object]]:
    """Every key of the validated sections whose value differs from chromalab's code default, so a
    reader sees what this run chose rather than the whole file."""
    changed = []
    for name, cls in config.SECTIONS.items():
        if name not in params:
            continue
        chosen = dataclasses.asdict(config.section(params, name))
        default = dataclasses.asdict(cls())
        changed += [(f"{name}.{key}", value, default[key]) for key, value in chosen.items() if value != default[key]]
    return changed


def model_runs(names: list[str], models_dir: Path) -> list[ModelRun]:
    runs = []
    for name in names:
        path = Path(models_dir) / name / "run.json"
        try:
            record = tracking.read_run_file(path)
        except (OSError, ValueError) as err:
            runs.append(ModelRun(name, None, None, None, f"{path}: unreadable ({err})"))
            continue
        if record is None:
            runs.append(ModelRun(name, None, None, None, f"{path} is missing"))
            continue
        note = record.get("failure") or (None if record.get("run_id") else "trained without MLflow tracking")
        runs.append(ModelRun(name, record.get("run_id"), record.get("model_uri"), record.get("tracking_uri"), note))
    return runs


def collect(names: list[str], params: dict, models_dir: Path, prepared_dir: Path, root: Path) -> Lineage:
    commit, subject = vcs.head(root)
    summary_path = Path(prepared_dir) / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    return Lineage(
        git_commit=commit,
        git_subject=subject,
        dvc_exp_name=os.environ.get("DVC_EXP_NAME", ""),
        data_sha256=summary.get("manifest_sha256"),
        image_size=summary.get("size"),
        changed_params=changed_params(params),
        league=list(names),
        runs=model_runs(names, models_dir),
    )
