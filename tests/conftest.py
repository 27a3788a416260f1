"""Fixtures that make small real data: crops of real colour photos shipped with scikit-image and
scikit-learn, written as files, then run through the real download, prepare and palette code.
Only fixtures live here; the plain helpers and constants they use are in helpers.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from chromalab.core.config import DataParams, PaletteParams, PrepareParams
from helpers import TINY_PREPARE, free_port, run, tiny_repo, train_tiny, write_photo_folder


@pytest.fixture(autouse=True)
def restore_logging():
    """The CLI sets the root logger's level and handler (e.g. ERROR under -q); give every test the
    logging it started with, so a test's caplog never depends on which CLI test ran before it."""
    import logging

    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    yield
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: extra threads only spin and cost seconds on a busy 2-core machine. Test
    modules opt in with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def photo_folder(tmp_path):
    return write_photo_folder(tmp_path / "photos")


@pytest.fixture
def raw_dir(tmp_path, photo_folder):
    from chromalab.data.download import download

    out = tmp_path / "data" / "raw"
    download(DataParams(source="folder", path=str(photo_folder)), out)
    return out


@pytest.fixture
def prepared_dir(tmp_path, raw_dir):
    from chromalab.data.prepare import prepare

    out = tmp_path / "data" / "prepared"
    prepare(TINY_PREPARE, raw_dir, out)
    return out


@pytest.fixture
def palette_dir(tmp_path, prepared_dir):
    from chromalab.data.palette import build_palette

    out = tmp_path / "data" / "palette"
    build_palette(PaletteParams(k=8, sample_pixels=5000), prepared_dir, out, tmp_path / "reports" / "palette.png")
    return out


@pytest.fixture(scope="session")
def mlflow_store_template(tmp_path_factory):
    """An empty SQLite MLflow store, created once: MLflow's schema migrations take seconds per new
    store, a copy of the file takes milliseconds."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch, mlflow_store_template):
    """A real SQLite MLflow store in the test's folder (a copy of the empty template)."""
    import shutil

    shutil.copyfile(mlflow_store_template, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))  # artifacts land beside the store, in tmp_path
    return uri


@pytest.fixture
def trained_model(tmp_path, prepared_dir, mlflow_uri):
    return train_tiny(tmp_path, prepared_dir)


@pytest.fixture(scope="session")
def shared_model_dir(tmp_path_factory):
    """One small trained model for the tests that only use it (training takes seconds each time)."""
    from chromalab.data.download import download
    from chromalab.data.prepare import prepare

    root = tmp_path_factory.mktemp("shared")
    download(DataParams(source="folder", path=str(write_photo_folder(root / "photos"))), root / "raw")
    prepare(TINY_PREPARE, root / "raw", root / "prepared")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("DVC_ROOT", str(root))
        return train_tiny(root, root / "prepared")


@pytest.fixture(scope="session")
def tiny_baseline(tmp_path_factory):
    """The tiny pipeline (helpers.TINY) reproduced once in a fresh git + DVC repository, its
    results committed: (root, env, stdout of that first `dvc repro`). Tests that start from a
    finished run take a copy (copy_repo) rather than paying for another `dvc repro`."""
    root = tmp_path_factory.mktemp("baseline") / "repo"
    env = tiny_repo(root)
    first = run(["dvc", "repro"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "baseline results"], root, env)
    return root, env, first


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


@pytest.fixture(scope="module")
def resume_data(tmp_path_factory):
    """Prepared arrays and a palette big enough for several steps per epoch."""
    from chromalab.data.download import download
    from chromalab.data.palette import build_palette
    from chromalab.data.prepare import prepare

    root = tmp_path_factory.mktemp("resume_data")
    download(DataParams(source="folder", path=str(write_photo_folder(root / "photos"))), root / "raw")
    prepare(PrepareParams(size=32, crops_per_image=12, val_fraction=0.2, test_fraction=0.2), root / "raw",
            root / "prepared")
    build_palette(PaletteParams(k=8, sample_pixels=5000), root / "prepared", root / "palette", root / "palette.png")
    return root / "prepared", root / "palette"
