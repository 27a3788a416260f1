"""A real MLflow tracking server over HTTP, as a team runs one: the tiny pipeline's train and
evaluate stages log to it, and MlflowClient reads the run, its metrics and the model back."""

import copy
import json

import pytest

from helpers import TINY, run, tiny_repo

pytestmark = pytest.mark.slow


def test_train_and_evaluate_stages_log_the_run_metrics_and_model_to_a_tracking_server(tmp_path, mlflow_server):
    import mlflow
    import torch
    from mlflow import MlflowClient

    uri, artifacts = mlflow_server
    params = copy.deepcopy(TINY)
    params["train"]["epochs"] = 1
    root = tmp_path / "repo"
    env = tiny_repo(root, params)
    env["MLFLOW_TRACKING_URI"] = uri
    run(["dvc", "repro", "evaluate@unet"], root, env)
    assert not (root / "mlflow.db").exists()  # everything went to the server

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("chromalab")
    (found,) = client.search_runs([experiment.experiment_id])
    record = json.loads((root / "data/models/unet/run.json").read_text())
    assert found.info.run_id == record["run_id"] and record["tracking_uri"] == uri
    assert found.info.run_name == "unet" and found.info.status == "FINISHED"
    assert found.data.params["train.epochs"] == "1"
    assert found.data.tags["dvc_stage"] == "train@unet"
    assert {"train_loss", "val_loss", "val_psnr", "best_epoch", "test_psnr", "test_auc"} <= set(found.data.metrics)
    (val_loss,) = client.get_metric_history(found.info.run_id, "val_loss")
    assert val_loss.step == 1

    # The model was logged through the server, lands in its artifact root and loads over HTTP.
    assert record["model_uri"].startswith("models:/")
    assert any(artifacts.rglob("MLmodel"))
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.pytorch.load_model(record["model_uri"], map_location="cpu")
    finally:
        mlflow.set_tracking_uri(previous)
    with torch.no_grad():
        ab = model(torch.rand(1, 1, 20, 28) * 100)
    assert ab.shape == (1, 2, 20, 28)
