"""The recommended model registered in MLflow as `models:/<registered_model>@champion`, and the
run pages linked. Never fails the report: a run without MLflow is still a run."""

from __future__ import annotations

import logging
import os

from chromalab.core.errors import first_line

log = logging.getLogger(__name__)


def register_recommended(recommended: str | None, records: list[dict], lineage, params) -> str:
    """Point `models:/<registered_model>@champion` at the recommended model; returns what happened,
    in words for the page. Never fails the report: a run without MLflow is still a run."""
    from chromalab.core import tracking

    if recommended is None:
        return "Nothing registered: there is no model to recommend."
    if not tracking.enabled():
        log.warning("not registering %s in MLflow: tracking is off (CHROMALAB_MLFLOW)", recommended)
        return f"Not registered in MLflow: tracking is off (CHROMALAB_MLFLOW={os.environ.get('CHROMALAB_MLFLOW')})."
    run = next(r for r in lineage.runs if r.name == recommended)
    if not run.model_uri:
        reason = run.note or "its run.json names no logged model"
        log.warning("not registering %s in MLflow: %s", recommended, reason)
        return f"Not registered in MLflow: {recommended}: {reason}."
    record = next(r for r in records if r["name"] == recommended)
    tags = {
        "chromalab.model": recommended,
        "network": record.get("network"),
        "representation": record.get("representation"),
        "image_size": lineage.image_size,
        "data_sha256": lineage.data_sha256,
        "git_commit": lineage.git_commit,
        "mlflow_run_id": run.run_id,
        "test_psnr": round(record["psnr"], 4),
        "test_delta_colorfulness": round(record["delta_colorfulness"], 4),
    }
    uri = f"models:/{params.registered_model}@{tracking.CHAMPION}"
    try:
        tracking.check_reachable()  # a dead server would make MLflow's client retry for minutes
        version = tracking.register_champion(run.model_uri, params.registered_model,
                                             {k: v for k, v in tags.items() if v is not None})
    except Exception as err:  # an unreachable store must not cost the user the report
        reason = first_line(err)
        log.warning("not registering %s in MLflow at %s: %s", recommended, tracking.tracking_uri(), reason)
        return f"Not registered in MLflow: {reason}."
    log.info("registered %s (%s) as %s, version %d", recommended, run.model_uri, uri, version)
    return f"{uri} is {recommended} (version {version} of {params.registered_model})."


def link_runs(lineage) -> None:
    """Fill in each run's experiment id, which the MLflow UI's run page needs (MLflow is imported
    only when some model has a run)."""
    from chromalab.core import tracking

    run_ids = [r.run_id for r in lineage.runs if r.run_id]
    if run_ids and tracking.enabled():
        try:
            tracking.check_reachable()
            lineage.experiment_ids = tracking.experiment_ids(run_ids)
        except Exception as err:
            log.warning("MLflow run pages not linked: %s", first_line(err))
