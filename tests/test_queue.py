"""Parallel experiments: two queued `dvc exp run`s with different params, run two at a time by
`dvc queue start -j 2`, both finish and both log to the pipeline's one SQLite MLflow store."""

import sqlite3
import subprocess
import time

import pytest

from helpers import copy_repo, run

pytestmark = pytest.mark.slow

EXPERIMENTS = {"batch-8": 8, "batch-32": 32}  # name: train.batch_size


def queue_statuses(root, env) -> dict[str, str]:
    """{experiment name: Queued | Running | Success | Failed} from `dvc queue status`."""
    statuses = {}
    for line in run(["dvc", "queue", "status"], root, env).stdout.splitlines():
        words = line.split()
        for name in EXPERIMENTS:
            if name in words:
                statuses[name] = words[-1]
    return statuses


def test_two_queued_experiments_run_in_parallel_and_both_log_to_one_sqlite_store(tmp_path, tiny_baseline):
    # A finished, committed baseline: the experiments rerun only training and after.
    root, env = copy_repo(tiny_baseline, tmp_path / "repo"), tiny_baseline[1]
    for name, batch_size in EXPERIMENTS.items():
        run(["dvc", "exp", "run", "--queue", "-n", name, "-S", f"train.batch_size={batch_size}",
             "-S", "train.epochs=1"], root, env)
    assert set(queue_statuses(root, env).values()) == {"Queued"}

    # Not through run(): the workers it forks keep captured pipes open until the queue is empty.
    started = subprocess.run(["dvc", "queue", "start", "-j", "2"], cwd=root, env=env, timeout=120,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert started.returncode == 0
    most_running = 0
    try:
        deadline = time.monotonic() + 1500
        while not set(statuses := queue_statuses(root, env).values()) <= {"Success", "Failed"}:
            assert time.monotonic() < deadline, f"experiments still {statuses} after 25 min"
            most_running = max(most_running, list(statuses).count("Running"))
            time.sleep(5)
    finally:
        run(["dvc", "queue", "stop", "--kill"], root, env, check=False)
    logs = {name: run(["dvc", "queue", "logs", name], root, env, check=False).stdout for name in EXPERIMENTS}
    assert queue_statuses(root, env) == {name: "Success" for name in EXPERIMENTS}, logs
    assert most_running == 2  # side by side, not one after the other
    for log in logs.values():
        assert "database is locked" not in log

    shown = run(["dvc", "exp", "show", "--csv"], root, env).stdout
    assert all(name in shown for name in EXPERIMENTS)

    with sqlite3.connect(root / "mlflow.db") as con:
        runs = dict(con.execute("select tags.value, runs.run_uuid from runs join tags using (run_uuid) "
                                "where tags.key = 'dvc_exp_name' and runs.status = 'FINISHED'"))
        assert set(EXPERIMENTS) <= set(runs)
        for name, batch_size in EXPERIMENTS.items():
            params = dict(con.execute("select key, value from params where run_uuid = ?", (runs[name],)))
            assert params["train.batch_size"] == str(batch_size) and params["train.epochs"] == "1"
            metrics = {k for (k,) in con.execute("select key from metrics where run_uuid = ?", (runs[name],))}
            assert {"val_loss", "test_psnr"} <= metrics  # the evaluate stage found its run too
