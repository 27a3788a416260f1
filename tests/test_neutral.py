"""The neutral-scene check (stage neutral@MODEL): grey textures made in code, the photos prepare
dropped as grey, colorized by the full-resolution path, their output's chroma measured."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from chromalab.colorizing import checkpoint
from chromalab.colorizing.colorize import FullResolution
from chromalab.colorizing.colorizer import Colorizer, GreyBaseline
from chromalab.core import color, config
from chromalab.core.config import NeutralParams
from chromalab.core.errors import UserError
from chromalab.scoring import neutral

from helpers import REPO, real_photos

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = NeutralParams(count=2, size=48)


def test_textures_are_grey_seeded_and_each_kind_its_own():
    made = list(neutral.textures(SMALL))
    assert [kind for kind, _ in made] == [k for k in neutral.KINDS for _ in range(2)]
    for kind, rgb in made:
        assert rgb.shape == (48, 48, 3) and rgb.dtype == np.uint8
        assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
        lab = color.rgb_to_lab(rgb)
        assert np.hypot(lab[..., 1], lab[..., 2]).max() < 1  # grey in truth (Lab rounding: about 0.005)
        assert neutral.chroma(rgb).max() == 0
        assert rgb[..., 0].std() > 5, kind  # a texture, not a flat field
    again = dict(enumerate(rgb for _, rgb in neutral.textures(NeutralParams(count=3, size=48))))
    assert np.array_equal(again[0], made[0][1]) and np.array_equal(again[3], made[2][1])  # count keeps the others
    assert not np.array_equal(made[0][1], made[1][1])
    assert not np.array_equal(neutral.texture("asphalt", 0, 48, 1), neutral.texture("asphalt", 0, 48, 0))


def test_the_grey_baseline_paints_no_chroma():
    result = neutral.measure(FullResolution(GreyBaseline(), 32, torch.device("cpu")), SMALL)
    assert result["images"] == 8 and result["pixels"] == 8 * 48 * 48
    assert result["mean_chroma"] == 0 and result["p99_chroma"] == 0
    assert set(result["kinds"]) == set(neutral.KINDS)
    assert all(k["mean_chroma"] == 0 and k["p99_chroma"] == 0 and k["images"] == 2 for k in result["kinds"].values())


def _workspace(root, model_name=None):
    """data/raw with two photos prepare dropped as grey (one listed but missing), its summary, and
    optionally a small bins model."""
    raw = root / "data" / "raw"
    (raw / "images").mkdir(parents=True)
    Image.fromarray(real_photos()["coffee"]).convert("L").resize((90, 60)).save(raw / "images" / "old.png")
    prepared = root / "data" / "prepared"
    prepared.mkdir(parents=True)
    (prepared / "summary.json").write_text(json.dumps(
        {"dropped_grey": 2, "dropped_grey_paths": ["images/old.png", "images/gone.png"]}))
    if model_name:
        centers = [[float(a), float(b)] for a in range(-40, 50, 10) for b in range(-40, 50, 10)]
        args = {"centers": centers, "weights": [1.0] * len(centers)}
        torch.manual_seed(0)
        model = Colorizer("kmeans_cnn", "bins", {"channels": 4}, args)
        with torch.no_grad():
            model.network.layers[-1].bias.copy_(torch.randn(len(centers)) * 3)  # some colour
        (root / "data" / "models" / model_name).mkdir(parents=True)
        checkpoint.save(root / "data" / "models" / model_name / "best.pt", model,
                        {"network": "kmeans_cnn", "representation": "bins", "network_args": {"channels": 4},
                         "representation_args": args, "image_size": 24})
    return root


def test_the_stage_measures_textures_and_dropped_photos_into_metrics_json(tmp_path, caplog):
    root = _workspace(tmp_path, "m")
    data = root / "data"
    result = neutral.neutral("m", SMALL, data / "models", data / "prepared", data / "raw",
                             root / "reports" / "neutral" / "m")
    written = json.loads((root / "reports" / "neutral" / "m" / "metrics.json").read_text())
    assert written == result and written["model"] == "m" and written["working_size"] == 24
    assert list(written["kinds"]) == [*neutral.KINDS, neutral.DROPPED]
    photo = written["kinds"][neutral.DROPPED]
    assert photo["images"] == 1 and photo["pixels"] == 48 * 72  # reduced to a 48 px shorter side
    assert photo["truth_mean_chroma"] == 0  # saved as greyscale
    assert "images/gone.png: listed as dropped grey" in caplog.text
    assert written["images"] == 9 and written["mean_chroma"] > 0.5  # this model does paint colour
    assert 0 <= written["mean_chroma"] <= written["p99_chroma"]
    pooled = sum(k["mean_chroma"] * k["pixels"] for k in written["kinds"].values()) / written["pixels"]
    assert written["mean_chroma"] == pytest.approx(pooled, abs=1e-3)
    assert neutral.load(root / "reports") == {"m": written}
    assert neutral.load(tmp_path / "nowhere") == {}


def test_dropped_photos_are_a_seeded_choice_when_there_are_too_many(tmp_path):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    assert neutral.dropped_grey_paths(prepared, tmp_path / "raw", None, 0) == []  # no summary: none
    (prepared / "summary.json").write_text(json.dumps({"dropped_grey_paths": [f"p{i}.png" for i in range(10)]}))
    chosen = neutral.dropped_grey_paths(prepared, tmp_path / "raw", 4, 0)
    assert len(chosen) == 4 and chosen == neutral.dropped_grey_paths(prepared, tmp_path / "raw", 4, 0)
    assert chosen == sorted(chosen, key=lambda p: int(p.stem[1:]))  # in listed order
    assert len(neutral.dropped_grey_paths(prepared, tmp_path / "raw", None, 0)) == 10


def test_bad_neutral_params_are_one_line_errors():
    for values, key in [({"count": 0}, "neutral.count"), ({"size": 8}, "neutral.size"),
                        ({"working_size": 4}, "neutral.working_size"), ({"cout": 3}, "neutral.cout")]:
        with pytest.raises(UserError, match=key):
            config.section({"neutral": values}, "neutral")


def test_the_stage_script_writes_the_grey_baselines_file(tmp_path):
    root = _workspace(tmp_path)
    (root / "params.yaml").write_text(yaml.safe_dump({"neutral": {"count": 1, "size": 32}}))
    (root / "dvc.yaml").write_text("stages: {}\n")
    env = {"PATH": f"{REPO / '.venv' / 'bin'}", "DVC_ROOT": str(root), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(REPO / "pipeline" / "neutral.py"), "grey"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    written = json.loads((root / "reports" / "neutral" / "grey" / "metrics.json").read_text())
    assert written["images"] == 5 and written["mean_chroma"] == 0 and written["p99_chroma"] == 0
    bad = subprocess.run([sys.executable, str(REPO / "pipeline" / "neutral.py"), "nosuch"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")


def test_the_released_stage_measures_the_packaged_model_as_colorize_loads_it(tmp_path):
    """neutral_released: the real released model (src/chromalab/released), at the working size
    `chromalab colorize` uses by default, on the same inputs as neutral@MODEL."""
    from chromalab.serving.release import read_release

    root = _workspace(tmp_path)
    (root / "params.yaml").write_text(yaml.safe_dump({"neutral": {"count": 1, "size": 48}}))
    (root / "dvc.yaml").write_text("stages: {}\n")
    env = {"PATH": f"{REPO / '.venv' / 'bin'}", "DVC_ROOT": str(root), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(REPO / "pipeline" / "neutral_released.py")], cwd=root, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    written = json.loads((root / "reports" / "neutral" / config.RELEASED / "metrics.json").read_text())
    _, info = read_release()
    assert written["model"] == "released" and written["working_size"] == info["working_size"]
    assert written["images"] == 5 and set(written["kinds"]) == {*neutral.KINDS, neutral.DROPPED}
    assert 0 < written["mean_chroma"] <= written["p99_chroma"]  # a real model paints some colour
    assert neutral.load(root / "reports") == {"released": written}
    with pytest.raises(UserError, match="'released' names the packaged released model"):
        config.league({"league": ["released"], "models": {"released": {}}})
