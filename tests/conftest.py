"""Fixtures that make small real data: crops of real colour photos shipped with scikit-image and
scikit-learn, written as files, then run through the real download, prepare and palette code."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from chromalab.config import DataParams, PaletteParams, PrepareParams


def real_photos() -> dict[str, np.ndarray]:
    """Six real colour photographs (uint8 RGB), as the libraries ship them."""
    from skimage import data
    from sklearn.datasets import load_sample_image

    return {
        "astronaut": data.astronaut(),
        "chelsea": data.chelsea(),
        "coffee": data.coffee(),
        "rocket": data.rocket(),
        "china": load_sample_image("china.jpg"),
        "flower": load_sample_image("flower.jpg"),
    }


def write_photo_folder(root, size: int = 96, grey: int = 1, labels: bool = True):
    """Write each real photo, shrunk so its shorter side is `size`, as a JPEG or PNG under root
    (in a class sub-folder when `labels`), plus `grey` photos that carry no colour."""
    root.mkdir(parents=True, exist_ok=True)
    for i, (name, rgb) in enumerate(real_photos().items()):
        img = Image.fromarray(rgb)
        img.thumbnail((size * 2, size * 2))
        folder = root / ("animal" if name in ("astronaut", "chelsea") else "scene") if labels else root
        folder.mkdir(exist_ok=True)
        img.save(folder / f"{name}.{'png' if i % 2 else 'jpg'}")
    for j in range(grey):
        img = Image.fromarray(real_photos()["coffee"]).convert("L")
        img.thumbnail((size * 2, size * 2))
        (root / "greys").mkdir(exist_ok=True)
        img.save(root / "greys" / f"grey{j}.png")
    return root


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
    from chromalab.download import download

    out = tmp_path / "data" / "raw"
    download(DataParams(source="folder", path=str(photo_folder)), out)
    return out


TINY_PREPARE = PrepareParams(size=32, crops_per_image=4, val_fraction=0.2, test_fraction=0.2, seed=0)


@pytest.fixture
def prepared_dir(tmp_path, raw_dir):
    from chromalab.prepare import prepare

    out = tmp_path / "data" / "prepared"
    prepare(TINY_PREPARE, raw_dir, out)
    return out


@pytest.fixture
def palette_dir(tmp_path, prepared_dir):
    from chromalab.palette import build_palette

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


TINY_MODEL = dict(network="unet", representation="ab", network_args={"base_channels": 8})


def train_tiny(tmp_path, prepared_dir, name="tiny", epochs=2, seed=0, palette_dir=None, model=None,
               **train_overrides):
    """Train a small U-Net for a few epochs with the real training loop; returns its folder."""
    from chromalab.config import ModelParams, TrainParams
    from chromalab.train import train

    params = TrainParams(epochs=epochs, batch_size=8, lr=3e-3, seed=seed, **train_overrides)
    model = ModelParams(**(model or TINY_MODEL))
    out = tmp_path / "data" / "models" / name
    train(name, model, params, prepared_dir, palette_dir, out, tmp_path / "reports" / "train" / name / "history.csv",
          logged_params={"train": params.__dict__, "model": model.__dict__})
    return out


@pytest.fixture
def trained_model(tmp_path, prepared_dir, mlflow_uri):
    return train_tiny(tmp_path, prepared_dir)


@pytest.fixture(scope="session")
def shared_model_dir(tmp_path_factory):
    """One small trained model for the tests that only use it (training takes seconds each time)."""
    from chromalab.download import download
    from chromalab.prepare import prepare

    root = tmp_path_factory.mktemp("shared")
    download(DataParams(source="folder", path=str(write_photo_folder(root / "photos"))), root / "raw")
    prepare(TINY_PREPARE, root / "raw", root / "prepared")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("DVC_ROOT", str(root))
        return train_tiny(root, root / "prepared")


@pytest.fixture(scope="session")
def tiny_baseline(tmp_path_factory):
    """The tiny pipeline (test_pipeline.TINY) reproduced once in a fresh git + DVC repository, its
    results committed: (root, env, stdout of that first `dvc repro`). Tests that start from a
    finished run take a copy (copy_repo) rather than paying for another `dvc repro`."""
    from test_pipeline import run, tiny_repo

    root = tmp_path_factory.mktemp("baseline") / "repo"
    env = tiny_repo(root)
    first = run(["dvc", "repro"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "baseline results"], root, env)
    return root, env, first


def copy_repo(baseline, dest):
    """A private copy of the baseline repository (git history, DVC cache, outputs, MLflow store)."""
    import shutil

    shutil.copytree(baseline[0], dest, symlinks=True)
    return dest
