"""Training survives a SIGKILL (resumes to exactly the same result) and scales out with torchrun:
the real stage script, run as a user's `dvc repro` runs it, in a small workspace."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import TRAIN_SCRIPT, stage_env, train_params, train_workspace

pytestmark = pytest.mark.slow


def _train(root: Path, model: str, **extra) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(TRAIN_SCRIPT), model], cwd=root, env=stage_env(root, **extra),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def _history(root: Path, model: str) -> list[dict]:
    with open(root / "reports" / "train" / model / "history.csv") as f:
        return list(csv.DictReader(f))


def _weights(root: Path, model: str, which: str = "last.pt") -> dict:
    return torch.load(root / "data" / "models" / model / which, weights_only=True)["state_dict"]


def test_training_killed_mid_epoch_resumes_to_exactly_the_uninterrupted_result(tmp_path, resume_data):
    # Five epochs: the kill comes in the second, and the three after it leave the poller a wide
    # window (with three, a fast idle machine once finished before the poller saw epoch 2 begin).
    params = train_params({"base_channels": 16}, epochs=5)
    straight = train_workspace(tmp_path / "straight", *resume_data, params)
    _train(straight, "net")

    killed = train_workspace(tmp_path / "killed", *resume_data, params)
    state_file = killed / "data" / "resume" / "net" / "state.pt"
    proc = subprocess.Popen([sys.executable, str(TRAIN_SCRIPT), "net"], cwd=killed, env=stage_env(killed),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if state_file.is_file():
                state = torch.load(state_file, weights_only=True)
                if state["epoch"] >= 2 and state["step"] > 0:  # mid-way through the second epoch
                    break
            time.sleep(0.01)
        assert proc.poll() is None, "training ended before it could be killed mid-epoch"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert state_file.is_file()
    saved = torch.load(state_file, weights_only=True)

    resumed = _train(killed, "net")
    assert f"resuming at epoch {saved['epoch']}, step {saved['step']}" in resumed.stderr
    assert not state_file.exists()  # done: the snapshot is no longer needed
    keys = ("epoch", "train_loss", "val_loss", "val_psnr", "lr")
    assert [{k: r[k] for k in keys} for r in _history(killed, "net")] == \
           [{k: r[k] for k in keys} for r in _history(straight, "net")]
    for which in ("last.pt", "best.pt"):
        a, b = _weights(straight, "net", which), _weights(killed, "net", which)
        assert all(torch.equal(a[k], b[k]) for k in a), which


def test_a_snapshot_from_other_params_is_not_resumed(tmp_path, resume_data):
    root = train_workspace(tmp_path / "ws", *resume_data, train_params({"base_channels": 8}, epochs=1))
    state_file = root / "data" / "resume" / "net" / "state.pt"
    state_file.parent.mkdir(parents=True)
    torch.save({"format": "chromalab-resume/1", "fingerprint": "another run"}, state_file)
    result = _train(root, "net")
    assert "saved by a run with other params or data; starting from scratch" in result.stderr
    assert len(_history(root, "net")) == 1


def test_two_gloo_processes_under_torchrun_match_one_process(tmp_path, resume_data):
    """kmeans_cnn has no BatchNorm (whose statistics are per process on the CPU) and no dropout,
    so 2 processes with half-batches must take the same steps as 1 process: the same rows per
    global batch, the same per-image augmentation, averaged gradients. Tolerance: float32
    summation order, 1e-5 on every weight and on the validation loss."""
    single = train_workspace(tmp_path / "one", *resume_data,
                             train_params({"channels": 8}, network="kmeans_cnn", epochs=2))
    _train(single, "net")
    double = train_workspace(tmp_path / "two", *resume_data,
                             train_params({"channels": 8}, network="kmeans_cnn", epochs=2, nproc=2))
    result = _train(double, "net")
    assert "x 2 processes" in result.stderr
    a, b = _weights(single, "net"), _weights(double, "net")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    for ra, rb in zip(_history(single, "net"), _history(double, "net"), strict=True):
        assert float(ra["val_loss"]) == pytest.approx(float(rb["val_loss"]), abs=1e-5)
        assert float(ra["train_loss"]) == pytest.approx(float(rb["train_loss"]), abs=1e-5)
