"""Log a trained model to MLflow after the fact: `chromalab relog MODEL`.

For a training run whose tracking server went away (run.json then records the failure), or to
copy a model into another store (point MLFLOW_TRACKING_URI at it). Everything comes from what
the pipeline wrote: the checkpoint's config (params, data hash), the per-epoch history and, when
the model has been evaluated, its test metrics. The new run is tagged `chromalab.relogged`.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

from chromalab.colorizing import checkpoint
from chromalab.core import paths, timings, tracking
from chromalab.core.errors import UserError

log = logging.getLogger(__name__)


def relog(name: str, root: Path | None = None) -> dict:
    """Create an MLflow run for model `name` from its outputs; returns {run_id, model_uri}."""
    root = Path(root or paths.repo_root())
    model_dir = root / paths.MODELS / name
    best = model_dir / "best.pt"
    if not best.is_file():
        raise UserError(f"{paths.shown(best)}: no checkpoint to log; train it first (dvc repro train@{name})")
    tracking.check_reachable()
    colorizer, config = checkpoint.load(best)
    params = {"train": config.get("train", {}),
              "model": {k: config.get(k) for k in ("network", "representation", "network_args", "representation_args")}}
    run_id = tracking.start_run(name, params, config.get("data_sha256", ""))
    try:
        import mlflow

        mlflow.set_tag("chromalab.relogged", "true")
        history = root / paths.TRAIN_REPORTS / name / "history.csv"
        if history.is_file():
            with open(history, newline="") as f:
                for row in csv.DictReader(f):
                    tracking.log_metrics({k: float(v) for k, v in row.items() if k != "epoch" and v not in ("", None)},
                                         step=int(row["epoch"]))
        seconds = timings.read(best.parent).get("train_seconds")
        tracking.log_metrics({"best_epoch": config.get("epoch", 0), **({"train_seconds": seconds} if seconds else {})})
        scores_file = root / paths.EVAL / name / "metrics.json"
        if scores_file.is_file():
            scores = json.loads(scores_file.read_text())
            tracking.log_metrics({f"test_{k}": v for k, v in scores.items()
                                  if isinstance(v, (int, float)) and not isinstance(v, bool)})
        model_uri = tracking.log_colorizer(colorizer, best)
    except BaseException:
        tracking.end_run("FAILED")
        raise
    tracking.end_run()
    log.info("%s: logged as MLflow run %s at %s (model %s)", name, run_id, tracking.tracking_uri(), model_uri)
    return {"run_id": run_id, "model_uri": model_uri}
