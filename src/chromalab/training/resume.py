"""The resumable state of a training run, so a killed stage continues where it stopped.

The state lives in data/resume/MODEL/, outside the stage's DVC outputs: `dvc repro` deletes a
stage's outputs before running it again, and this file is exactly what must survive that. It holds
everything the next step depends on (weights, optimizer, LR schedule, loss scaler, the Python,
NumPy and torch RNG states, epoch and step, the history so far and the best weights), so a resumed
run ends with the same metrics as an uninterrupted one. It is written atomically and read with
torch.load(weights_only=True); a fingerprint of the run's settings makes a state from different
params or data be ignored rather than silently continued. It is removed once training finishes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path

import numpy as np
import torch

from chromalab.core import atomic
from chromalab.core.errors import first_line

log = logging.getLogger(__name__)

FORMAT = "chromalab-resume/1"
# Train params that change how fast or where a run goes, not where it ends up.
NOT_FINGERPRINTED = ("device", "num_workers", "checkpoint_every")


def fingerprint(config: dict) -> str:
    """A hash of what determines the result: model, representation, data and training params."""
    train = {k: v for k, v in config["train"].items() if k not in NOT_FINGERPRINTED}
    keyed = {k: config[k] for k in ("model", "network", "representation", "network_args",
                                    "representation_args", "image_size", "data_sha256")}
    text = json.dumps({**keyed, "train": train}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "python": list(random.getstate()[1]),
        "python_version": random.getstate()[0],
        "numpy": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate((state["python_version"], tuple(state["python"]), None))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path, state: dict) -> None:
    with atomic.atomic_path(Path(path)) as tmp:
        torch.save({"format": FORMAT, **state, "rng": rng_state()}, tmp)


def load(path, expected_fingerprint: str) -> dict | None:
    """The saved state if there is one for these exact settings, else None (with a log line)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # damaged: starting over is safe, crashing would not help
        log.warning("%s: unreadable resume state (%s); starting from scratch", path, first_line(err))
        return None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        log.warning("%s: not a chromalab resume state; starting from scratch", path)
        return None
    if state.get("fingerprint") != expected_fingerprint:
        log.info("%s: saved by a run with other params or data; starting from scratch", path)
        return None
    return state


def discard(path) -> None:
    Path(path).unlink(missing_ok=True)
