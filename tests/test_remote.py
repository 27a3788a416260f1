"""DVC remote storage: the tiny pipeline pushed to a remote, pulled into a fresh clone of the git
repository, is complete there: nothing to rerun, every output the same bytes."""

import hashlib
import shutil

import pytest

from helpers import copy_repo, run

pytestmark = pytest.mark.slow


# Per-run measurements and MLflow links beside the outputs: ignored by DVC and git (.dvcignore), so
# neither pushed nor cloned, by design.
LOCAL_ONLY = ("timings.json", "run.json")


def digests(root, folders=("data", "reports")) -> dict[str, str]:
    """sha256 of every file under `folders` that DVC or git carries, by path relative to root."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders for path in sorted((root / folder).rglob("*"))
        if path.is_file() and path.name not in LOCAL_ONLY
    }


def test_a_fresh_clone_pulls_every_output_from_the_remote_and_has_nothing_to_rerun(tmp_path, tiny_baseline):
    origin, storage, clone = tmp_path / "origin", tmp_path / "storage", tmp_path / "clone"
    copy_repo(tiny_baseline, origin)  # the tiny pipeline, reproduced
    env = tiny_baseline[1]
    run(["dvc", "remote", "add", "-d", "local", str(storage)], origin, env)
    run(["git", "add", "-A"], origin, env)
    run(["git", "commit", "-qm", "results, and a DVC remote"], origin, env)
    run(["dvc", "push"], origin, env)
    assert "in sync" in run(["dvc", "status", "--cloud"], origin, env).stdout
    produced = digests(origin)
    assert "data/models/unet/best.pt" in produced and "data/prepared/train_L.npy" in produced

    run(["git", "clone", "-q", str(origin), str(clone)], tmp_path, env)
    shutil.rmtree(origin)  # the clone has only git and the remote to go on
    assert not (clone / "data").exists()
    run(["dvc", "pull"], clone, env)

    assert "Data and pipelines are up to date." in run(["dvc", "status"], clone, env).stdout
    repro = run(["dvc", "repro"], clone, env)
    assert "Running stage" not in repro.stdout and "up to date" in repro.stdout
    assert digests(clone) == produced
