"""`make photos`: the profile's -S overrides, applied to params.yaml by DVC's own code as `dvc exp
run` does, give params every stage accepts (a typo in the Makefile would otherwise surface an hour
into the run), with one dataset per archive and the scenes' own crops and split fractions."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from dvc.utils.hydra import apply_overrides

from chromalab.core import config

REPO = Path(__file__).resolve().parents[1]


def profile_overrides(photos_data: str) -> list[str]:
    """The -S arguments `make photos` would pass to `dvc exp run` (make -n prints the command)."""
    out = subprocess.run(["make", "-n", "photos", f"PHOTOS_DATA={photos_data}"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    command = next(line for line in out.splitlines() if "dvc exp run" in line)
    words = shlex.split(command)
    return [words[i + 1] for i, w in enumerate(words) if w == "-S"]


def applied(tmp_path, overrides) -> dict:
    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    apply_overrides(params, overrides)
    return config.load_params(params)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_two_archives_make_two_datasets_with_the_scenes_own_crops(tmp_path):
    archives = "../shared/datasets/imagenet-sample-800.tar ../shared/datasets/intel-scenes-150.tar"
    params = applied(tmp_path, profile_overrides(archives))
    data = config.section(params, "data")
    assert data.path == archives.split()
    assert config.dataset_names(data.path) == ["imagenet-sample-800", "intel-scenes-150"]
    prepare = config.section(params, "prepare")
    scenes = prepare.for_source("intel-scenes-150")
    assert (prepare.crops_per_image, scenes.crops_per_image) == (16, 1)
    assert scenes.val_fraction == scenes.test_fraction == 0.03 and prepare.val_fraction == 0.1
    for name in config.league(params):  # every model's train section validates, with its own epochs
        config.train_params_for(params, name)
        config.model_params(params, name)
    assert params["models"]["lite_bins"]["network_args"]["encoder"] == "tf_efficientnet_lite2"
    train = config.section(params, "train")
    assert (train.max_delta_colorfulness, train.max_neutral_chroma) == (3.0, 6.0)
    assert train.prior_corrections == [0, 0.1, 0.2, 0.3, 0.5] and train.shrink_gammas == [0.5, 1, 2]
    assert train.shrink_thresholds == [0.3, 0.5] and train.mean_pulls == [0.1, 0.15, 0.2]
    assert params["models"]["lite_bins"]["representation_args"]["confidence_measure"] == "spread"
    config.model_params(params, "lite_bins")  # the measure is one the representation knows
    for name in ("evaluate", "report", "palette"):
        config.section(params, name)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_one_archive_is_one_dataset_without_the_scenes_keys(tmp_path):
    overrides = profile_overrides("photos.zip")
    assert not any(re.match(r"prepare\.sources=", o) for o in overrides)
    params = applied(tmp_path, overrides)
    assert config.section(params, "data").path == ["photos.zip"]
    assert config.section(params, "prepare").sources is None
