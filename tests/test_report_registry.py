"""The report's lineage and the MLflow registry: a really trained model, logged to a real SQLite
store, registered by the report stage as `champion`, then used by `chromalab colorize` through
`models:/chromalab@champion`."""

import hashlib
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from PIL import Image

from chromalab import cli
from chromalab.colorizing import checkpoint
from chromalab.core.config import DataParams
from chromalab.report.report import build_report
from helpers import TINY_PREPARE, real_photos, train_tiny, write_eval, write_photo_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ALL_PARAMS = {"train": {"epochs": 2, "batch_size": 8}, "league": ["tiny"], "models": {"tiny": {"network": "unet"}}}


def _git(root, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A pipeline folder (a git repository) after train, evaluate and report: `tiny` is recommended."""
    from chromalab.data.download import download
    from chromalab.data.prepare import prepare

    root = tmp_path_factory.mktemp("registry")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("DVC_ROOT", str(root))
        download(DataParams(source="folder", path=str(write_photo_folder(root / "photos"))), root / "data" / "raw")
        prepare(TINY_PREPARE, root / "data" / "raw", root / "data" / "prepared")
        train_tiny(root, root / "data" / "prepared")
        write_eval(root / "reports", {"tiny": "unet", "grey": "grey"})
        _git(root, "init", "-q")
        _git(root, "commit", "-q", "--allow-empty", "-m", "the run")
        build_report(["tiny", "grey"], root / "reports", all_params=ALL_PARAMS)
        yield root


def test_report_registers_the_recommended_model_as_champion(registered):
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("chromalab", "champion")
    run = json.loads((registered / "data" / "models" / "tiny" / "run.json").read_text())
    assert version.source == run["model_uri"] and version.run_id == run["run_id"]
    assert version.tags["chromalab.model"] == "tiny" and version.tags["image_size"] == "32"
    assert version.tags["test_psnr"] == "24.5012"
    page = (registered / "reports" / "index.html").read_text()
    assert "models:/chromalab@champion is tiny (version 1 of chromalab)." in page


def test_rebuilding_the_report_adds_no_second_registry_version(registered):
    build_report(["tiny", "grey"], registered / "reports", all_params=ALL_PARAMS)
    versions = mlflow.MlflowClient().search_model_versions("name = 'chromalab'")
    assert [int(v.version) for v in versions] == [1]


def test_lineage_names_the_commit_changed_params_data_and_mlflow_run(registered):
    page = (registered / "reports" / "index.html").read_text()
    commit = _git(registered, "rev-parse", "HEAD").strip()
    summary = json.loads((registered / "data" / "prepared" / "summary.json").read_text())
    run = json.loads((registered / "data" / "models" / "tiny" / "run.json").read_text())
    experiment = mlflow.get_run(run["run_id"]).info.experiment_id

    assert f"<code>{commit}</code> the run" in page
    assert summary["manifest_sha256"] in page and "32 px images" in page
    assert "train.epochs = 2 (default 10), train.batch_size = 8 (default 32)" in page
    assert f'href="http://127.0.0.1:5000/#/experiments/{experiment}/runs/{run["run_id"]}"' in page
    assert f"mlflow ui --backend-store-uri {run['tracking_uri']}" in page


def _photo(path, size=(90, 60)):
    Image.fromarray(real_photos()["coffee"]).convert("L").resize(size).save(path)
    return path


def test_colorize_with_the_champion_alias_uses_the_recommended_model(registered, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(registered)
    src = _photo(tmp_path / "old.jpg")
    with caplog.at_level(logging.INFO):
        assert cli.main(["colorize", str(src), "-o", str(tmp_path / "alias"), "--model",
                         "models:/chromalab@champion"]) == 0
    assert "model tiny (unet -> ab) from models:/chromalab@champion, working size 32 px" in caplog.text
    # The registered model is the best checkpoint: the same colours to the last pixel.
    # (The run's copy of it is what loads; the pickled MLflow model is never unpickled: see below.)
    assert cli.main(["colorize", str(src), "-o", str(tmp_path / "ckpt"), "--model", "tiny"]) == 0
    by_alias = np.asarray(Image.open(tmp_path / "alias" / "old.png"))
    by_checkpoint = np.asarray(Image.open(tmp_path / "ckpt" / "old.png"))
    assert by_alias.shape == (60, 90, 3) and (by_alias == by_checkpoint).all()


def _logged_checkpoint(root):
    """The run's copy of tiny's checkpoint in the local artifact store."""
    from urllib.parse import unquote, urlparse

    run = json.loads((root / "data" / "models" / "tiny" / "run.json").read_text())
    artifacts = mlflow.get_run(run["run_id"]).info.artifact_uri
    return Path(unquote(urlparse(artifacts).path)) / "checkpoint" / "best.pt", run


def test_a_logged_model_loads_from_its_checked_checkpoint_never_from_pickle(registered, tmp_path, monkeypatch, capsys):
    from chromalab.serving import model_choice

    monkeypatch.chdir(registered)
    copy, run = _logged_checkpoint(registered)
    assert copy.read_bytes() == (registered / "data" / "models" / "tiny" / "best.pt").read_bytes()
    assert mlflow.get_run(run["run_id"]).data.tags["chromalab.checkpoint_sha256"] == hashlib.sha256(
        copy.read_bytes()).hexdigest()

    def unpickle(*args, **kwargs):
        raise AssertionError("mlflow.pytorch.load_model unpickles; chromalab must not call it")

    monkeypatch.setattr(mlflow.pytorch, "load_model", unpickle)
    trained, _ = checkpoint.load(registered / "data" / "models" / "tiny" / "best.pt")
    for uri in ("models:/chromalab@champion", "models:/chromalab/1", f"runs:/{run['run_id']}/model", run["model_uri"]):
        runner, info = model_choice.load(uri, None, "cpu", registered)
        loaded = runner.colorizer.state_dict()
        assert info["source"] == uri and all(torch.equal(t, loaded[k]) for k, t in trained.state_dict().items())
    # A checkpoint changed in the artifact store is refused in one line, and nothing is written.
    original = copy.read_bytes()
    try:
        copy.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        src = _photo(tmp_path / "old.jpg")
        assert cli.main(["colorize", str(src), "-o", str(tmp_path / "out"), "--model", "models:/chromalab@champion"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "its checkpoint's sha256 is" in err[0] and "refusing to load it" in err[0]
        assert not (tmp_path / "out").exists()
    finally:
        copy.write_bytes(original)


def test_an_unknown_alias_is_a_one_line_error(registered, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(registered)
    src = _photo(tmp_path / "old.jpg")
    assert cli.main(["colorize", str(src), "--model", "models:/chromalab@nosuch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: models:/chromalab@nosuch: not in the MLflow registry")


def test_report_with_tracking_off_registers_nothing_and_says_so(registered, monkeypatch, caplog):
    monkeypatch.setenv("CHROMALAB_MLFLOW", "off")
    out = registered.parent / "tracking-off"
    shutil.copytree(registered / "reports", out / "reports")
    shutil.copytree(registered / "data" / "models", out / "data" / "models")
    with caplog.at_level(logging.WARNING, logger="chromalab.report.report"):
        build_report(["tiny", "grey"], out / "reports", all_params={})
    assert "not registering tiny in MLflow: tracking is off (CHROMALAB_MLFLOW)" in caplog.text
    assert "Not registered in MLflow: tracking is off (CHROMALAB_MLFLOW=off)." in (out / "reports" / "index.html").read_text()
    assert [int(v.version) for v in mlflow.MlflowClient().search_model_versions("name = 'chromalab'")] == [1]


def test_report_without_an_mlflow_run_says_why_it_did_not_register(tmp_path, caplog):
    reports = tmp_path / "reports"
    write_eval(reports, {"unet": "unet", "grey": "grey"})
    run_file = tmp_path / "data" / "models" / "unet" / "run.json"
    run_file.parent.mkdir(parents=True)
    run_file.write_text(json.dumps({"run_id": None, "model_uri": None, "tracking_uri": "sqlite:///x.db",
                                    "failure": "MLflow tracking was off (CHROMALAB_MLFLOW=off)"}))
    with caplog.at_level(logging.WARNING, logger="chromalab.report.report"):
        metrics = build_report(["unet", "grey"], reports, all_params={})
    assert metrics["recommended"] == "unet"  # the report itself is complete
    assert "not registering unet in MLflow: MLflow tracking was off (CHROMALAB_MLFLOW=off)" in caplog.text
    page = (reports / "index.html").read_text()
    assert "Not registered in MLflow: unet: MLflow tracking was off" in page

    run_file.unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="chromalab.report.report"):
        build_report(["unet", "grey"], reports, all_params={})
    assert f"not registering unet in MLflow: {run_file} is missing" in caplog.text


def test_report_with_an_unreachable_tracking_server_is_still_written(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # the discard port: nobody answers
    reports = tmp_path / "reports"
    write_eval(reports, {"unet": "unet", "grey": "grey"})
    run_file = tmp_path / "data" / "models" / "unet" / "run.json"
    run_file.parent.mkdir(parents=True)
    run_file.write_text(json.dumps({"run_id": "abc", "model_uri": "models:/m-abc", "tracking_uri": "http://127.0.0.1:9"}))
    with caplog.at_level(logging.WARNING, logger="chromalab.report.report"):
        assert build_report(["unet", "grey"], reports, all_params={})["recommended"] == "unet"
    assert "not registering unet in MLflow at http://127.0.0.1:9" in caplog.text
    assert "Not registered in MLflow" in (reports / "index.html").read_text()
