"""Bad input, as a user hands it over, through the real entry points: `chromalab colorize` and the
stage scripts `python pipeline/<stage>.py` in a small workspace.

A mistake ends with one `error:` line naming the file or the params key, a non-zero exit code and
no partial output. A valid photo in an unusual form (CMYK, 16-bit, palette, alpha, EXIF-rotated,
already grey, 1×1) is no mistake: colorize handles it at its own size and orientation, download
keeps it, prepare drops it only when it carries no colour.
"""

import copy
import csv
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from chromalab import cli
from chromalab.colorizing import checkpoint
from chromalab.core import color
from chromalab.core.config import DataParams, PaletteParams
from chromalab.core.images import MAX_PIXELS, load_rgb
from chromalab.data.manifest import read_manifest

from helpers import REPO, TINY, TINY_PREPARE, real_photos, write_photo_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- files a user might hand over --------------------------------------------------------------

def _rgb(size=(60, 40)) -> Image.Image:
    return Image.fromarray(real_photos()["chelsea"]).resize(size)


def zero_byte(path):
    path.write_bytes(b"")
    return path


def truncated_png(path):
    buffer = path.with_suffix(".full")
    _rgb().save(buffer, format="PNG")
    data = buffer.read_bytes()
    buffer.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def corrupt_jpeg(path):
    """A JPEG whose header segments (quantisation and Huffman tables) are overwritten with noise."""
    _rgb().save(path, format="JPEG")
    data = bytearray(path.read_bytes())
    data[20:600] = np.random.default_rng(0).integers(0, 256, 580, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def text_as_png(path):
    path.write_text("holiday notes, not a picture\n")
    return path


def fifty_megapixels(path):
    """A 10000 × 5000 PNG of one colour: 50 MP behind a file of 160 kB (made in about 2 s)."""
    Image.new("RGB", (10_000, 5_000), (200, 80, 40)).save(path)
    return path


def cmyk_jpeg(path):
    _rgb().convert("CMYK").save(path, format="JPEG")
    return path


def grey16_png(path):
    """16-bit greyscale (PIL mode I;16) using the full 0..65535 range."""
    ramp = np.linspace(0, 65535, 60, dtype=np.float64)[None, :].repeat(40, axis=0)
    Image.fromarray(ramp.astype(np.uint16)).save(path)
    return path


def rgb16_tiff(path):
    import tifffile

    tifffile.imwrite(path, np.asarray(_rgb()).astype(np.uint16) * 257, photometric="rgb")
    return path


def palette_png(path):
    _rgb().convert("P", palette=Image.Palette.ADAPTIVE, colors=32).save(path)
    return path


def rgba_png(path):
    """Colour with a fully transparent top band."""
    img = _rgb().convert("RGBA")
    alpha = np.full((40, 60), 255, np.uint8)
    alpha[:10] = 0
    img.putalpha(Image.fromarray(alpha))
    img.save(path)
    return path


def grey_alpha_png(path):
    """Grey + alpha (LA) with the left half fully transparent."""
    img = _rgb().convert("LA")
    alpha = np.full((40, 60), 255, np.uint8)
    alpha[:, :30] = 0
    img.putalpha(Image.fromarray(alpha))
    img.save(path)
    return path


def exif_rotated_jpeg(path):
    """Stored 60 wide × 40 high, bright on the left; EXIF orientation 6 (turn 90° clockwise to
    display), so it is 40 wide × 60 high upright and bright at the top."""
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:, :30] = (230, 200, 150)
    stored[:, 30:] = (40, 30, 90)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=95)
    return path


def grey_rgb_jpeg(path):
    _rgb().convert("L").convert("RGB").save(path)
    return path


def one_pixel_png(path):
    Image.new("RGB", (1, 1), (180, 40, 40)).save(path)
    return path


# --- helpers -----------------------------------------------------------------------------------

def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def one_error(stderr: str, *names) -> str:
    """The single `error:` line, which must name each of `names`."""
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    for name in names:
        assert str(name) in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def album(tmp_path, shared_model_dir, monkeypatch):
    """A pipeline folder with a trained model, as after dvc repro, and a folder for the inputs."""
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    shutil.copytree(shared_model_dir, tmp_path / "data" / "models" / "tiny")
    (tmp_path / "in").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def colorize(album, *args, model="tiny"):
    return cli.main(["colorize", *map(str, args), "--out", str(album / "out"), "--model", str(model)])


# --- colorize: files that cannot be read -------------------------------------------------------

@pytest.mark.parametrize("make, name, says", [
    (zero_byte, "empty.jpg", "empty file"),
    (truncated_png, "cut.png", "truncated"),
    (corrupt_jpeg, "noise.jpg", "not an image PIL can read"),
    (text_as_png, "notes.png", "not an image PIL can read"),
], ids=["zero-byte", "truncated", "corrupt", "non-image"])
def test_colorize_reports_an_unreadable_file_in_one_line_and_writes_nothing_for_it(album, capsys, make, name, says):
    bad = make(album / "in" / name)
    _rgb().save(album / "in" / "good.jpg")
    assert colorize(album, bad, album / "in" / "good.jpg") == 1
    line = one_error(capsys.readouterr().err, bad, says)
    assert line.startswith(f"error: {bad}")
    assert sorted(p.name for p in (album / "out").iterdir()) == ["good.png"]


def test_colorize_refuses_a_50_megapixel_image_at_once_as_a_decompression_bomb(album, capsys):
    bomb = fifty_megapixels(album / "in" / "poster.png")
    started = time.perf_counter()
    assert colorize(album, bomb) == 1
    assert time.perf_counter() - started < 15  # refused from the header, never decoded
    one_error(capsys.readouterr().err, bomb, "too many pixels", f"{MAX_PIXELS // 1_000_000} megapixels")
    assert not (album / "out" / "poster.png").exists()


def test_colorize_of_an_empty_folder_is_a_usage_error_naming_it(album, capsys):
    empty = album / "in" / "empty_album"
    empty.mkdir()
    assert colorize(album, empty) == 2
    one_error(capsys.readouterr().err, empty, "no image or video files")
    assert not (album / "out").exists()


# --- colorize: valid photos in unusual forms succeed at their own size ---------------------------

@pytest.mark.parametrize("make, name", [
    (cmyk_jpeg, "cmyk.jpg"),
    (rgb16_tiff, "scan16.tif"),
    (palette_png, "gif_like.png"),
    (grey_rgb_jpeg, "already_grey.jpg"),
], ids=["CMYK", "16-bit-RGB", "palette", "already-grey"])
def test_colorize_succeeds_and_keeps_the_size_for_an_unusual_mode(album, make, name):
    src = make(album / "in" / name)
    assert colorize(album, src) == 0
    out = Image.open(album / "out" / f"{Path(name).stem}.png")
    assert out.size == (60, 40) and out.mode == "RGB"
    # The photo's own lightness survives: the model only adds ab.
    L_in = color.rgb_to_lab(load_rgb(src))[..., 0]
    assert np.abs(color.rgb_to_lab(np.asarray(out))[..., 0] - L_in).mean() < 2.0


def test_colorize_reads_16_bit_grey_over_its_full_range(album):
    src = grey16_png(album / "in" / "xray.png")
    assert colorize(album, src) == 0
    L = color.rgb_to_lab(np.asarray(Image.open(album / "out" / "xray.png")))[..., 0]
    # A 0..65535 ramp is black to white, not clipped to white past 255.
    assert L[:, :3].mean() < 5 and L[:, -3:].mean() > 90
    assert np.corrcoef(L.mean(axis=0), np.arange(60))[0, 1] > 0.98


def test_colorize_shows_transparent_pixels_on_white_like_an_image_viewer(album):
    src = grey_alpha_png(album / "in" / "cutout.png")
    assert colorize(album, src) == 0
    L = color.rgb_to_lab(np.asarray(Image.open(album / "out" / "cutout.png")))[..., 0]
    assert L.shape == (40, 60)
    assert L[:, :30].mean() > 97  # the transparent half
    assert L[:, 30:].mean() < 90


def test_colorize_turns_an_exif_rotated_jpeg_upright(album):
    src = exif_rotated_jpeg(album / "in" / "phone.jpg")
    assert colorize(album, src) == 0
    out = Image.open(album / "out" / "phone.png")
    assert out.size == (40, 60)  # upright: 40 wide, 60 high
    L = color.rgb_to_lab(np.asarray(out))[..., 0]
    assert L[:30].mean() > L[30:].mean() + 30  # the stored left (bright) half is now on top


def test_colorize_turns_a_1x1_image_into_a_1x1_png(album):
    src = one_pixel_png(album / "in" / "dot.png")
    assert colorize(album, src) == 0
    assert Image.open(album / "out" / "dot.png").size == (1, 1)


# --- colorize: checkpoints that are not what they claim ------------------------------------------

class _Payload:
    """Unpickling this runs a shell command: what a hostile checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("packaging", ["torch.save", "raw-pickle"])
def test_colorize_refuses_a_checkpoint_carrying_a_malicious_pickle_without_running_it(album, capsys, packaging):
    marker = album / "pwned"
    evil = album / "evil.pt"
    payload = {"format": checkpoint.FORMAT, "config": {}, "state_dict": {}, "hook": _Payload(marker)}
    if packaging == "torch.save":
        torch.save(payload, evil)
    else:
        evil.write_bytes(pickle.dumps(payload, protocol=2))
    _rgb().save(album / "in" / "a.jpg")
    assert colorize(album, album / "in" / "a.jpg", model=evil) == 2
    one_error(capsys.readouterr().err, evil, "not a chromalab checkpoint: expected a .pt file written by the train stage")
    assert not marker.exists()
    assert not (album / "out" / "a.png").exists()
    # The payload is live: an unrestricted unpickling runs it (so the check above can fail).
    pickle.loads(evil.read_bytes()) if packaging == "raw-pickle" else torch.load(evil, weights_only=False)
    assert marker.exists()


def test_colorize_refuses_a_checkpoint_whose_config_claims_another_network(album, capsys):
    payload = torch.load(album / "data/models/tiny/best.pt", weights_only=True)
    payload["config"]["network"] = "autoencoder"  # unet weights under an autoencoder label
    tampered = album / "relabelled.pt"
    torch.save(payload, tampered)
    _rgb().save(album / "in" / "a.jpg")
    assert colorize(album, album / "in" / "a.jpg", model=tampered) == 2
    one_error(capsys.readouterr().err, tampered, "weights do not fit autoencoder/ab")


def test_colorize_refuses_a_pytorch_checkpoint_of_a_model_that_is_not_chromalab(album, capsys):
    foreign = album / "classifier.pt"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(8, 10)).state_dict(), foreign)
    _rgb().save(album / "in" / "a.jpg")
    assert colorize(album, album / "in" / "a.jpg", model=foreign) == 2
    one_error(capsys.readouterr().err, foreign, "not a chromalab checkpoint")


def test_colorize_refuses_a_truncated_checkpoint(album, capsys):
    data = (album / "data/models/tiny/best.pt").read_bytes()
    cut = album / "half.pt"
    cut.write_bytes(data[: len(data) // 2])
    _rgb().save(album / "in" / "a.jpg")
    assert colorize(album, album / "in" / "a.jpg", model=cut) == 2
    one_error(capsys.readouterr().err, cut, "not a chromalab checkpoint: expected a .pt file written by the train stage")


# --- the stage scripts in a workspace ----------------------------------------------------------

@pytest.fixture(scope="module")
def prepared_workspace(tmp_path_factory):
    """A workspace after download, prepare and palette: the stage scripts, params.yaml (the tiny
    profile on a folder of real photos) and data/ as the stages left it."""
    from chromalab.data.download import download
    from chromalab.data.palette import build_palette
    from chromalab.data.prepare import prepare

    root = tmp_path_factory.mktemp("workspace")
    shutil.copytree(REPO / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    photos = write_photo_folder(root / "photos")
    download(DataParams(source="folder", path=str(photos)), root / "data/raw")
    prepare(TINY_PREPARE, root / "data/raw", root / "data/prepared")
    build_palette(PaletteParams(k=8, sample_pixels=5000), root / "data/prepared", root / "data/palette",
                  root / "reports/palette.png")
    return root


@pytest.fixture
def workspace(tmp_path, prepared_workspace):
    ws = tmp_path / "ws"
    shutil.copytree(prepared_workspace, ws, symlinks=True)
    write_params(ws)
    return ws


def write_params(ws, **changes):
    """The tiny profile on the workspace's photo folder, with `section={key: value}` changes."""
    params = copy.deepcopy(TINY)
    params["data"] = {"source": "folder", "path": str(ws / "photos")}
    for section, values in changes.items():
        if isinstance(values, dict) and isinstance(params.get(section), dict):
            params[section].update(values)
        else:
            params[section] = values
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def stage(ws, name, *args, env=None):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_", "CHROMALAB_"))}
    base["MLFLOW_TRACKING_URI"] = f"sqlite:///{ws / 'mlflow.db'}"
    base.update(env or {})
    return subprocess.run([sys.executable, f"pipeline/{name}.py", *args], cwd=ws, env=base,
                          capture_output=True, text=True, timeout=600)


def fails(result, *names) -> str:
    assert result.returncode == 2, result.stderr
    return one_error(result.stderr, *names)


def test_download_lists_unreadable_files_in_rejected_csv_and_keeps_the_good_ones(workspace):
    photos = workspace / "photos"
    bad = {"empty.jpg": zero_byte, "cut.png": truncated_png, "noise.jpg": corrupt_jpeg,
           "notes.png": text_as_png, "poster.png": fifty_megapixels}
    for name, make in bad.items():
        make(photos / name)
    shutil.rmtree(workspace / "data/raw")
    result = stage(workspace, "download")
    assert result.returncode == 0, result.stderr
    with open(workspace / "data/raw/rejected.csv", newline="") as f:
        rejected = {Path(row["path"]).name: row["reason"] for row in csv.DictReader(f)}
    assert set(rejected) == set(bad)
    assert rejected["poster.png"].startswith("DecompressionBombError")
    kept = {Path(r["path"]).stem for r in read_manifest(workspace / "data/raw/manifest.csv")}
    assert len(kept) == 7 and not kept & {Path(n).stem for n in bad}  # 6 colour photos + 1 grey


def test_download_keeps_unusual_valid_photos_and_prepare_drops_only_those_without_colour(workspace):
    photos = workspace / "photos"
    unusual = {"cmyk.jpg": cmyk_jpeg, "scan16.tif": rgb16_tiff, "gif_like.png": palette_png,
               "phone.jpg": exif_rotated_jpeg, "xray.png": grey16_png, "sticker.png": rgba_png,
               "already_grey.jpg": grey_rgb_jpeg}
    for name, make in unusual.items():
        make(photos / name)
    shutil.rmtree(workspace / "data")
    assert stage(workspace, "download").returncode == 0
    kept = {r["source_id"] for r in read_manifest(workspace / "data/raw/manifest.csv")}
    assert {Path(n).stem for n in unusual} <= kept
    result = stage(workspace, "prepare")
    assert result.returncode == 0, result.stderr
    summary = json.loads((workspace / "data/prepared/summary.json").read_text())
    dropped = {Path(p).stem for p in summary["dropped_grey_paths"]}
    assert dropped == {"xray", "already_grey", "greys__grey0"}
    prepared = (workspace / "data/prepared/manifest.csv").read_text()
    for colour in ("cmyk", "scan16", "gif_like", "phone", "sticker"):
        assert f",{colour}," in prepared


def test_download_of_a_folder_of_only_broken_files_fails_and_writes_no_data(workspace):
    broken = workspace / "broken"
    broken.mkdir()
    zero_byte(broken / "a.jpg")
    text_as_png(broken / "b.png")
    write_params(workspace, data={"source": "folder", "path": str(broken)})
    shutil.rmtree(workspace / "data")
    fails(stage(workspace, "download"), "none of 2 image file(s) could be decoded")
    assert list((workspace / "data").iterdir()) == []  # neither data/raw nor its temporary sibling


def test_download_of_an_empty_folder_fails_naming_it_and_writes_no_data(workspace):
    (workspace / "empty").mkdir()
    write_params(workspace, data={"source": "folder", "path": str(workspace / "empty")})
    shutil.rmtree(workspace / "data")
    fails(stage(workspace, "download"), "data.path", workspace / "empty", "no image files")
    assert not (workspace / "data").exists()


def test_prepare_of_photos_that_are_all_grey_fails_and_keeps_no_output(workspace):
    greys = workspace / "greys"
    greys.mkdir()
    for i, name in enumerate(("coffee", "rocket")):
        Image.fromarray(real_photos()[name]).convert("L").resize((64, 48)).save(greys / f"{i}.png")
    write_params(workspace, data={"source": "folder", "path": str(greys)})
    shutil.rmtree(workspace / "data")
    assert stage(workspace, "download").returncode == 0
    fails(stage(workspace, "prepare"), "data/raw", "none of the 2 photos carries colour")
    assert not (workspace / "data/prepared").exists()


def test_a_typo_in_a_params_key_is_named_with_a_suggestion(workspace):
    write_params(workspace, train={"epoch": 3})
    fails(stage(workspace, "train", "unet"), "train.epoch: unknown parameter (did you mean 'epochs'?)")
    assert not (workspace / "data/models").exists()


def test_a_typo_in_a_params_section_is_named_with_a_suggestion(workspace):
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["prepair"] = params.pop("prepare")
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.rmtree(workspace / "data/prepared")
    fails(stage(workspace, "prepare"), "params.yaml", "unknown section 'prepair' (did you mean 'prepare'?)")
    assert not (workspace / "data/prepared").exists()


@pytest.mark.parametrize("epochs, says", [
    (-3, "train.epochs: must be at least 1, got -3"),
    (0, "train.epochs: must be at least 1, got 0"),
    (2.5, "train.epochs: expected an integer, got 2.5"),
    ("ten", "train.epochs: expected an integer, got 'ten'"),
])
def test_epochs_that_are_negative_or_not_an_integer_stop_training_before_it_starts(workspace, epochs, says):
    write_params(workspace, train={"epochs": epochs})
    fails(stage(workspace, "train", "unet"), says)
    assert not (workspace / "data/models").exists() and not (workspace / "mlflow.db").exists()


@pytest.mark.parametrize("k", [1, 0, -4])
def test_a_palette_of_fewer_than_two_colours_is_refused(workspace, k):
    write_params(workspace, palette={"k": k})
    shutil.rmtree(workspace / "data/palette")
    fails(stage(workspace, "palette"), f"palette.k: must be at least 2, got {k}")
    assert not (workspace / "data/palette").exists()


def test_an_unknown_model_name_for_the_train_stage_is_named(workspace):
    fails(stage(workspace, "train", "unte"), "models.unte: no such model in params.yaml (did you mean 'unet'?)")
    assert not (workspace / "data/models").exists()


def test_an_unknown_network_in_params_lists_the_known_ones(workspace):
    write_params(workspace, models={"unet": {"network": "u-net", "representation": "ab"}})
    line = fails(stage(workspace, "train", "unet"), "models.unet.network: unknown network 'u-net'")
    assert "unet" in line.split("known:")[1]
    assert not (workspace / "data/models").exists()


def test_an_image_size_the_network_cannot_take_stops_training_before_it_starts(workspace):
    """prepare.size 40 is fine for prepare, but the U-Net halves the image four times (needs 16 | size)."""
    write_params(workspace, prepare={"size": 40})
    shutil.rmtree(workspace / "data")
    for name in ("download", "prepare", "palette"):
        assert stage(workspace, name).returncode == 0
    fails(stage(workspace, "train", "unet"), "prepare.size: 40 is not a multiple of 16", "unet")
    assert not (workspace / "data/models").exists() and not (workspace / "mlflow.db").exists()


def test_an_unreachable_mlflow_server_stops_the_train_stage_before_any_training(workspace):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    result = stage(workspace, "train", "unet", env={"MLFLOW_TRACKING_URI": uri})
    took = time.perf_counter() - started
    fails(result, f"MLFLOW_TRACKING_URI={uri}", "no MLflow server answers")
    assert took < 120  # imports included; MLflow's own client would retry for minutes
    assert not (workspace / "data/models").exists() and not (workspace / "reports/train").exists()


def test_the_evaluate_stage_refuses_a_tampered_checkpoint_without_running_it(workspace):
    marker = workspace / "pwned"
    model_dir = workspace / "data/models/unet"
    model_dir.mkdir(parents=True)
    torch.save({"format": checkpoint.FORMAT, "hook": _Payload(marker)}, model_dir / "best.pt")
    fails(stage(workspace, "evaluate", "unet"), "data/models/unet/best.pt", "not a chromalab checkpoint: expected a .pt file written by the train stage")
    assert not marker.exists()
    assert not (workspace / "reports/eval/unet").exists()
