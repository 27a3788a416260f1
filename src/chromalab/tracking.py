"""MLflow tracking: one run per trained model, which the evaluate stage completes.

The store is MLFLOW_TRACKING_URI when set (a team's server), else a SQLite file at the pipeline's
root (DVC_ROOT inside a stage, so queued `dvc exp` runs log to the same store), with artifacts in
`mlartifacts/` beside it. mlflow is imported lazily: it takes seconds, and most commands never
need it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

from chromalab import atomic
from chromalab.errors import UserError
from chromalab.paths import repo_root

log = logging.getLogger(__name__)

EXPERIMENT = "chromalab"


def tracking_uri() -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{repo_root() / 'mlflow.db'}"


def flatten(params: dict, prefix: str = "") -> dict:
    """{'train': {'epochs': 3}} -> {'train.epochs': 3}: MLflow params are flat strings."""
    flat = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _mlflow():
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    return mlflow


def _experiment_id(mlflow) -> str:
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return experiment.experiment_id
    artifacts = None
    if tracking_uri().startswith("sqlite:"):
        # Beside the SQLite file rather than MLflow's default ./mlruns under whatever the cwd is.
        artifacts = (repo_root() / "mlartifacts").as_uri()
    return mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts)


def start_run(model_name: str, params: dict, data_sha256: str) -> str:
    """Open a run for one model's training, with params flattened and lineage tags; returns its id."""
    mlflow = _mlflow()
    try:
        experiment_id = _experiment_id(mlflow)
    except Exception as err:
        raise UserError(f"MLflow tracking store {tracking_uri()} is unusable: {str(err).splitlines()[0]}") from None
    root = repo_root()
    run = mlflow.start_run(experiment_id=experiment_id, run_name=model_name)
    mlflow.log_params({k: str(v)[:6000] for k, v in flatten(params).items()})
    mlflow.set_tags({
        "chromalab.model": model_name,
        "git_commit": git_commit(root),
        "dvc_stage": os.environ.get("DVC_STAGE", ""),
        "dvc_exp_name": os.environ.get("DVC_EXP_NAME", ""),
        "data_manifest_sha256": data_sha256,
    })
    return run.info.run_id


def log_metrics(metrics: dict, step: int | None = None) -> None:
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def log_colorizer(colorizer, registered_name: str | None = None) -> str:
    """Log the model so `mlflow.pytorch.load_model` colorizes L of any size; returns its URI.

    Pickle format, not MLflow 3's default pt2: torch.export would freeze the input shape, and
    a colorizer must take any H and W. The signature says so with -1 dimensions.
    """
    import mlflow
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 1, -1, -1))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 2, -1, -1))]),
    )
    package = Path(__file__).resolve().parent
    info = mlflow.pytorch.log_model(
        colorizer.cpu().eval(), name="model", signature=signature, serialization_format="pickle",
        code_paths=[str(package)], registered_model_name=registered_name,
    )
    return info.model_uri


def end_run(status: str = "FINISHED") -> None:
    import mlflow

    mlflow.end_run(status=status)


def resume_run(run_id: str):
    """Re-open a training run (the evaluate stage adds its test metrics to it)."""
    mlflow = _mlflow()
    return mlflow.start_run(run_id=run_id)


def write_run_file(path, run_id: str, model_uri: str | None) -> None:
    atomic.write_json(path, {"run_id": run_id, "model_uri": model_uri, "tracking_uri": tracking_uri()})


def read_run_file(path) -> dict | None:
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None
