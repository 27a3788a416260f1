"""The tracking server going away mid-run costs nothing: training finishes, its outputs are
written, the failure is reported in one place, and `chromalab relog` logs the run afterwards."""

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from helpers import TRAIN_SCRIPT, stage_env, train_params, train_workspace

pytestmark = pytest.mark.slow


def _epochs_done(root) -> int:
    history = root / "reports" / "train" / "net" / "history.csv"
    if not history.is_file():
        return 0
    with open(history) as f:
        return len(list(csv.DictReader(f)))


def test_server_dying_mid_run_keeps_the_model_and_relog_records_it_later(tmp_path, resume_data, mlflow_server):
    uri, _ = mlflow_server
    root = train_workspace(tmp_path / "ws", *resume_data, train_params({"base_channels": 16}, epochs=6))
    env = stage_env(root, CHROMALAB_MLFLOW="on", MLFLOW_TRACKING_URI=uri, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
                    MLFLOW_HTTP_REQUEST_TIMEOUT="5")
    proc = subprocess.Popen([sys.executable, str(TRAIN_SCRIPT), "net"], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while _epochs_done(root) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before the server could be stopped"
    # Stop the server (the fixture's process group) while training is still running.
    server_pid = None
    for line in subprocess.run(["ps", "-eww", "-o", "pid,pgid,args"], capture_output=True, text=True).stdout.splitlines():
        if "mlflow" in line and "server" in line and uri.rsplit(":", 1)[1] in line:
            server_pid = int(line.split()[1])
    assert server_pid, "could not find the mlflow server process"
    os.killpg(server_pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert _epochs_done(root) == 6
    assert "MLflow tracking at" in err and "chromalab relog net" in err
    assert err.count("MLflow tracking at") == 1  # reported once, not per epoch
    model_dir = root / "data" / "models" / "net"
    assert (model_dir / "best.pt").is_file() and (model_dir / "last.pt").is_file()
    record = json.loads((model_dir / "run.json").read_text())
    assert record["run_id"] is None and record["failure"]

    # Later, against a store that works (here a SQLite file), the documented command logs it all.
    store = tmp_path / "later.db"
    relog_env = {**stage_env(root, CHROMALAB_MLFLOW="on"), "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    result = subprocess.run([sys.executable, "-m", "chromalab.cli", "relog", "net"], cwd=root, env=relog_env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(store) as con:
        steps = {s for (s,) in con.execute("select step from metrics where key = 'val_psnr'")}
        tags = dict(con.execute("select key, value from tags"))
    assert steps == {1, 2, 3, 4, 5, 6}
    assert tags["chromalab.relogged"] == "true"
