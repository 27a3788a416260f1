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
from pathlib import Path

from chromalab.core import atomic, vcs
from chromalab.core.digest import sha256_file
from chromalab.core.errors import UserError, first_line
from chromalab.core.paths import repo_root

log = logging.getLogger(__name__)

EXPERIMENT = "chromalab"


def tracking_uri() -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{repo_root() / 'mlflow.db'}"


def check_reachable(timeout: float = 5.0) -> None:
    """Fail fast when MLFLOW_TRACKING_URI is an http(s) server that does not answer.

    MLflow's client retries a dead server for minutes, and only once a run opens: a stage should
    stop before it trains, not after. `mlflow server` answers GET <uri>/health with 200 and no
    authentication; a 401 or 403 is a proxy asking for the credentials MLflow's client will send,
    so the server is there too. Local stores (sqlite, file) are checked when the run opens.
    """
    import ssl
    import urllib.error
    import urllib.request

    uri = tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return
    # The TLS settings MLflow's own client honours, so a server it can use is never refused here.
    context = ssl.create_default_context(cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None)
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout, context=context):
            return
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            return
        reason = f"GET /health: HTTP {err.code} {err.reason}"
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = str(getattr(err, "reason", err))
    raise UserError(f"MLFLOW_TRACKING_URI={uri}: no MLflow server answers ({reason}); start it, fix the URI, "
                    f"or set CHROMALAB_MLFLOW=off to train without tracking")


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
        raise UserError(f"MLflow tracking store {tracking_uri()} is unusable: {first_line(err)}") from None
    root = repo_root()
    run = mlflow.start_run(experiment_id=experiment_id, run_name=model_name)
    mlflow.log_params({k: str(v)[:6000] for k, v in flatten(params).items()})
    mlflow.set_tags({
        "chromalab.model": model_name,
        "git_commit": vcs.head(root)[0],
        "dvc_stage": os.environ.get("DVC_STAGE", ""),
        "dvc_exp_name": os.environ.get("DVC_EXP_NAME", ""),
        "data_manifest_sha256": data_sha256,
    })
    return run.info.run_id


def log_metrics(metrics: dict, step: int | None = None) -> None:
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


# The run's copy of the checkpoint (state_dict + config) is what chromalab loads back, after
# checking it against the sha256 recorded at logging time; the pickled MLflow model beside it is for
# MLflow's own tools (`mlflow models serve`, mlflow.pytorch.load_model) and is never unpickled here.
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_FILE = "best.pt"  # the name both train and relog log it under
CHECKPOINT_SHA256_TAG = "chromalab.checkpoint_sha256"


def log_colorizer(colorizer, checkpoint_path, registered_name: str | None = None) -> str:
    """Log the model so `mlflow.pytorch.load_model` colorizes L of any size, and the checkpoint it
    came from (artifact checkpoint/, its sha256 as a run tag); returns the model's URI.

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
    package = Path(__file__).resolve().parents[1]  # all of chromalab, not just core/
    info = mlflow.pytorch.log_model(
        colorizer.cpu().eval(), name="model", signature=signature, serialization_format="pickle",
        code_paths=[str(package)], registered_model_name=registered_name,
    )
    mlflow.log_artifact(str(checkpoint_path), artifact_path=CHECKPOINT_DIR)
    mlflow.set_tag(CHECKPOINT_SHA256_TAG, sha256_file(checkpoint_path))
    return info.model_uri


def end_run(status: str = "FINISHED") -> None:
    import mlflow

    mlflow.end_run(status=status)


def resume_run(run_id: str):
    """Re-open a training run (the evaluate stage adds its test metrics to it)."""
    mlflow = _mlflow()
    return mlflow.start_run(run_id=run_id)


def enabled() -> bool:
    """MLflow tracking is on unless CHROMALAB_MLFLOW=off (e.g. a quick local trial)."""
    return os.environ.get("CHROMALAB_MLFLOW", "on").lower() not in ("off", "0", "false", "no")


def write_run_file(path, run_id: str | None, model_uri: str | None, failure: str | None = None) -> None:
    """run.json beside the checkpoints: which MLflow run holds this model, or why none does."""
    record = {"run_id": run_id, "model_uri": model_uri, "tracking_uri": tracking_uri()}
    if failure:
        record["failure"] = failure
    atomic.write_json(path, record)


def read_run_file(path) -> dict | None:
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


# --- the model registry: `models:/NAME@champion` is the report's recommended model -------------

CHAMPION = "champion"


def register_champion(model_uri: str, name: str, tags: dict) -> int:
    """Register a logged model under `name` and point the alias `champion` at it; returns the version.

    A model already registered from the same logged model keeps its version (a rerun of the report
    adds no duplicate); its tags are refreshed, so they describe the latest report.
    """
    mlflow = _mlflow()
    client = mlflow.MlflowClient()
    existing = [v for v in client.search_model_versions(f"name = '{name}'") if v.source == model_uri]
    version = existing[0].version if existing else mlflow.register_model(model_uri, name).version
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))
    client.set_registered_model_alias(name, CHAMPION, version)
    return int(version)


def _registry_version(client, ref: str):
    """The registry's ModelVersion for `NAME@ALIAS` or `NAME/VERSION` (a models:/ URI's rest)."""
    if "@" in ref:
        return client.get_model_version_by_alias(*ref.split("@", 1))
    return client.get_model_version(*ref.split("/", 1))


def registered_tags(model_uri: str) -> dict:
    """The tags of the registry version a `models:/NAME@ALIAS` or `models:/NAME/VERSION` URI names
    ({} for other URIs, e.g. a logged model's `models:/m-…`); a URI the registry lacks is a UserError."""
    ref = model_uri.removeprefix("models:/")
    if not model_uri.startswith("models:/") or ("@" not in ref and "/" not in ref):
        return {}
    mlflow = _mlflow()
    client = mlflow.MlflowClient()
    try:
        version = _registry_version(client, ref)
    except Exception as err:  # MlflowException for an unknown name, alias or version
        raise UserError(f"{model_uri}: not in the MLflow registry at {tracking_uri()} "
                        f"({first_line(err)})") from None
    return dict(version.tags)


def checkpoint_of(model_uri: str, dst: Path) -> tuple[Path, str]:
    """Download the run's copy of the checkpoint of a logged model into folder `dst`; returns its
    path and the sha256 the run recorded for it (model_choice checks and loads it)."""
    mlflow = _mlflow()
    run_id = source_run(model_uri)
    try:
        expected = mlflow.get_run(run_id).data.tags.get(CHECKPOINT_SHA256_TAG)
    except Exception as err:
        raise UserError(f"{model_uri}: its run {run_id} is not in MLflow at {tracking_uri()} ({first_line(err)})") from None
    if not expected:
        raise UserError(f"{model_uri}: run {run_id} holds no chromalab checkpoint (logged by an older chromalab); "
                        "log it again with `chromalab relog`, or give the checkpoint's path")
    # A 3.6 MB file needs no progress bar, and the CLI's stderr is for one-line errors.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"{CHECKPOINT_DIR}/{CHECKPOINT_FILE}",
                                                    dst_path=str(dst))
    except Exception as err:
        raise UserError(f"{model_uri}: cannot download its checkpoint from {tracking_uri()} ({first_line(err)})") from None
    return Path(local), expected


def source_run(model_uri: str) -> str:
    """The id of the run that logged the model a `runs:/ID/…`, `models:/NAME@ALIAS`,
    `models:/NAME/VERSION` or `models:/m-…` (a logged model's id) URI names."""
    mlflow = _mlflow()
    ref = model_uri.removeprefix("models:/")
    try:
        if model_uri.startswith("runs:/"):
            return model_uri.removeprefix("runs:/").split("/", 1)[0]
        if "@" in ref or "/" in ref:
            return _registry_version(mlflow.MlflowClient(), ref).run_id
        return mlflow.get_logged_model(ref).source_run_id
    except Exception as err:  # MlflowException for an unknown name, alias, version or model
        raise UserError(f"{model_uri}: not in MLflow at {tracking_uri()} ({first_line(err)})") from None


def experiment_ids(run_ids: list[str]) -> dict[str, str]:
    """{run id: experiment id} for the runs this store knows: the MLflow UI's run page needs both."""
    mlflow = _mlflow()
    found = {}
    for run_id in run_ids:
        try:
            found[run_id] = mlflow.get_run(run_id).info.experiment_id
        except Exception:  # a run logged to another store: the report shows its id without a link
            continue
    return found


class RunTracker:
    """The MLflow calls of one training run (rank 0 only). A tracking server that goes away
    mid-run must not cost the training: the first failure is reported, later calls are skipped,
    the DVC outputs are written as usual, and `chromalab relog` can log the run afterwards."""

    def __init__(self, enabled: bool, name: str):
        self.enabled, self.name, self.failure = enabled, name, None

    def __call__(self, fn, *args, **kwargs):
        if not self.enabled or self.failure:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            self.failure = f"{type(err).__name__}: {first_line(err)}"
            log.error("%s: MLflow tracking at %s failed (%s); training goes on and its outputs are written. "
                      "Log the run later with: chromalab relog %s", self.name, tracking_uri(),
                      self.failure, self.name)
            return None
