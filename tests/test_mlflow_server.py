"""A real MLflow tracking server over HTTP, as a team runs one: the tiny pipeline's train and
evaluate stages log to it, and MlflowClient reads the run, its metrics and the model back."""

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_pipeline import TINY, run, tiny_repo

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on a free port with a SQLite backend and a local artifact root; its URI.
    Always stopped afterwards: the whole process group (uvicorn runs workers as children)."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--default-artifact-root", str(tmp_path / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180  # about 15 s on an idle 2-core machine
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "mlflow server did not answer /health in 180 s"
            time.sleep(1)
        yield uri, tmp_path / "artifacts"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


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
