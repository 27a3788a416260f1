"""Reproducible and interruptible, as a user runs the pipeline: a fresh `git clone` of a finished
tiny run, reproduced with `dvc repro` and killed with SIGKILL in the middle of training, leaves only
whole files and keeps dvc.lock as it was; the next `dvc repro` resumes and ends with the committed
results to the last byte: `git status` is clean (timings and MLflow run ids live in files DVC and
git ignore)."""

import json
import os
import signal
import subprocess
import time

import pytest
import torch

from helpers import run

pytestmark = pytest.mark.slow


def scores(root) -> dict:
    return json.loads((root / "reports/metrics.json").read_text())


def test_a_fresh_clone_reproduced_and_killed_mid_training_ends_with_a_clean_git_tree(tmp_path, tiny_baseline):
    env = tiny_baseline[1]
    root = tmp_path / "clone"
    run(["git", "clone", "-q", str(tiny_baseline[0]), str(root)], tmp_path, env)  # no data/, no DVC cache
    lock_before = (root / "dvc.lock").read_text()
    expected = scores(root)
    snapshot = root / "data/resume/unet/state.pt"

    # Every stage again, download to report; kill the whole `dvc repro` once the first epoch's
    # training snapshot exists: training is half done.
    proc = subprocess.Popen(["dvc", "repro"], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and not snapshot.is_file():
            time.sleep(0.01)
        assert proc.poll() is None, "the pipeline ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    # download, prepare and palette ran again and made the same bytes; nothing half-made was recorded.
    assert (root / "dvc.lock").read_text() == lock_before
    status = json.loads(run(["dvc", "status", "--json"], root, env).stdout)
    assert "train@unet" in status and "prepare" not in status  # DVC sees training as not done
    # Whatever the killed stage left is whole: every checkpoint loads, every table parses.
    model_dir = root / "data/models/unet"
    for path in model_dir.glob("*.pt") if model_dir.is_dir() else []:
        torch.load(path, weights_only=True)
    history = root / "reports/train/unet/history.csv"
    if history.is_file():
        lines = history.read_text().splitlines()
        assert lines and all(line.count(",") == lines[0].count(",") for line in lines)

    finished = run(["dvc", "repro"], root, env)
    assert "resuming at epoch 2, step 0" in finished.stderr + finished.stdout
    assert scores(root) == expected  # the same params and seed: the same metrics
    # ... from the same bytes: the trained models match dvc.lock, so evaluate and report did not
    # even rerun, and nothing tracked changed.
    changed = run(["git", "status", "--porcelain"], root, env).stdout
    assert changed == "", f"a rerun changed tracked files:\n{changed}{run(['git', 'diff'], root, env).stdout[:3000]}"
    assert (root / "data/models/unet/timings.json").is_file() and (root / "data/models/unet/run.json").is_file()
    assert not json.loads(run(["dvc", "status", "--json"], root, env).stdout)
    assert not list((root / "data/models").rglob("*.tmp"))  # no temporary file reaches DVC's outputs
