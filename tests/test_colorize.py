import json
import shutil

import numpy as np
import pytest
from PIL import Image

from chromalab import cli
from chromalab.colorizing.colorize import working_shape
from chromalab.core import color
from chromalab.core.errors import UserError
from chromalab.serving.model_choice import default_model_name

from helpers import real_photos


@pytest.fixture
def repo(tmp_path, shared_model_dir, monkeypatch):
    """A pipeline folder with a trained model and a metrics file naming it, as after dvc repro."""
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    shutil.copytree(shared_model_dir, tmp_path / "data" / "models" / "tiny")
    (tmp_path / "reports").mkdir(exist_ok=True)
    (tmp_path / "reports" / "metrics.json").write_text(json.dumps(
        {"tiny": {"psnr": 22.0, "delta_colorfulness": 3.0}, "grey": {"psnr": 30.0, "delta_colorfulness": 33.0},
         "recommended": "tiny"}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _photo(path, mode, size):
    img = Image.fromarray(real_photos()["chelsea"]).resize(size)
    if mode == "RGBA":
        img = img.convert("RGBA")
        alpha = np.full(size[::-1], 255, np.uint8)
        alpha[: size[1] // 3] = 0  # a transparent band
        img.putalpha(Image.fromarray(alpha))
    else:
        img = img.convert(mode)
    img.save(path)
    return path


def test_colorize_keeps_input_size_for_rgba_png(repo, capsys):
    src = _photo(repo / "odd.png", "RGBA", (77, 51))
    assert cli.main(["colorize", str(src), "--out", str(repo / "out"), "--model", "recommended"]) == 0
    out = Image.open(repo / "out" / "odd.png")
    assert out.size == (77, 51) and out.mode == "RGB"


def test_colorize_greyscale_photo_keeps_its_full_resolution_lightness(repo):
    src = _photo(repo / "old_photo.jpg", "L", (203, 150))
    assert cli.main(["colorize", str(src), "--out", str(repo / "out"), "--model", "tiny"]) == 0
    out = np.asarray(Image.open(repo / "out" / "old_photo.png"))
    assert out.shape == (150, 203, 3)
    L_in = color.rgb_to_lab(np.asarray(Image.open(src).convert("RGB")))[..., 0]
    L_out = color.rgb_to_lab(out)[..., 0]
    # Only ab comes from the model (at 32 px); L is the photo's own, up to gamut clipping and rounding.
    assert np.abs(L_in - L_out).mean() < 2.0


def test_colorize_walks_folders_and_honours_size(repo):
    folder = repo / "album"
    (folder / "sub").mkdir(parents=True)
    _photo(folder / "a.jpg", "RGB", (64, 64))
    _photo(folder / "sub" / "b.png", "P", (40, 90))
    (folder / "notes.txt").write_text("not a photo")
    assert cli.main(["colorize", str(folder), "--out", str(repo / "out"), "--size", "48", "--model", "recommended"]) == 0
    assert sorted(p.name for p in (repo / "out").iterdir()) == ["a.png", "b.png"]


def test_a_bad_file_is_reported_and_the_rest_still_done(repo, capsys):
    good = _photo(repo / "good.jpg", "RGB", (50, 40))
    bad = repo / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    code = cli.main(["colorize", str(bad), str(good), "--out", str(repo / "out"), "--model", "recommended"])
    assert code == 1
    assert (repo / "out" / "good.png").is_file() and not (repo / "out" / "broken.png").exists()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.jpg" in errors[0]


def test_unknown_model_is_a_one_line_error_with_exit_code_2(repo, capsys):
    src = _photo(repo / "x.jpg", "RGB", (32, 32))
    assert cli.main(["colorize", str(src), "--out", str(repo / "out"), "--model", "nosuch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --model nosuch") and "Traceback" not in "".join(err)


def test_default_model_is_the_one_metrics_json_recommends(repo):
    metrics = repo / "reports" / "metrics.json"
    data = json.loads(metrics.read_text())
    data["recommended"] = "other"
    metrics.write_text(json.dumps(data))
    assert default_model_name(repo) == "other"


def test_default_model_of_an_older_metrics_file_follows_the_same_rule(repo):
    # No "recommended" key (a report from before it was recorded): recommend.recommended_model decides,
    # with params.yaml's threshold, and never picks the grey baseline.
    metrics = repo / "reports" / "metrics.json"
    metrics.write_text(json.dumps({"vivid": {"psnr": 21.0, "delta_colorfulness": 2.0},
                                   "sepia": {"psnr": 23.0, "delta_colorfulness": 9.0},
                                   "grey": {"psnr": 30.0, "delta_colorfulness": 33.0}}))
    assert default_model_name(repo) == "vivid"
    (repo / "params.yaml").write_text("report:\n  max_delta_colorfulness: 10\n")
    assert default_model_name(repo) == "sepia"
    metrics.write_text(json.dumps({"grey": {"psnr": 30.0, "delta_colorfulness": 33.0}}))
    with pytest.raises(UserError, match="no trained model"):
        default_model_name(repo)


def test_existing_outputs_are_skipped_unless_overwrite(repo, capsys):
    src = _photo(repo / "a.jpg", "RGB", (40, 30))
    out = repo / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"kept")
    assert cli.main(["colorize", str(src), "-o", str(out), "--model", "recommended"]) == 0
    assert (out / "a.png").read_bytes() == b"kept"
    assert "1 skipped: output exists (--overwrite to redo)" in capsys.readouterr().out
    assert cli.main(["colorize", str(src), "-o", str(out), "--overwrite", "--model", "recommended"]) == 0
    assert Image.open(out / "a.png").size == (40, 30)


def test_suffix_names_each_output(repo):
    src = _photo(repo / "a.jpg", "RGB", (40, 30))
    assert cli.main(["colorize", str(src), "-o", str(repo / "out"), "--suffix", "_color", "--model", "recommended"]) == 0
    assert [p.name for p in (repo / "out").iterdir()] == ["a_color.png"]


def test_compare_puts_the_input_and_its_colorization_side_by_side(repo):
    src = _photo(repo / "a.png", "L", (40, 30))
    assert cli.main(["colorize", str(src), "-o", str(repo / "plain"), "--model", "recommended"]) == 0
    assert cli.main(["colorize", str(src), "-o", str(repo / "both"), "--compare", "--model", "recommended"]) == 0
    both = np.asarray(Image.open(repo / "both" / "a.png"))
    plain = np.asarray(Image.open(repo / "plain" / "a.png"))
    assert both.shape == (30, 40 + 8 + 40, 3)
    assert (both[:, :40] == np.asarray(Image.open(src).convert("RGB"))).all()  # the input as given
    assert (both[:, 48:] == plain).all()


def test_quoted_glob_patterns_are_expanded_and_an_unmatched_one_fails(repo, capsys):
    (repo / "scans" / "1990").mkdir(parents=True)
    _photo(repo / "scans" / "1990" / "a.tif", "RGB", (32, 32))
    _photo(repo / "scans" / "b.tif", "RGB", (32, 32))
    _photo(repo / "scans" / "c.jpg", "RGB", (32, 32))
    code = cli.main(["colorize", str(repo / "scans" / "**" / "*.tif"), str(repo / "nothing*.png"),
                     "-o", str(repo / "out"), "--model", "recommended"])
    assert code == 1  # one input matched nothing: not every input succeeded
    assert sorted(p.name for p in (repo / "out").iterdir()) == ["a.png", "b.png"]
    assert "nothing*.png: no image file matches this pattern" in capsys.readouterr().err


def test_quiet_prints_nothing_but_errors(repo, capsys):
    good = _photo(repo / "good.jpg", "RGB", (32, 32))
    assert cli.main(["colorize", str(good), "-o", str(repo / "out"), "-q", "--model", "recommended"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    bad = repo / "bad.jpg"
    bad.write_bytes(b"no")
    assert cli.main(["-q", "colorize", str(bad), str(good), "-o", str(repo / "out2"), "--model", "recommended"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ") and len(captured.err.splitlines()) == 1


def test_working_shape_keeps_aspect_and_never_upsamples():
    assert working_shape(1000, 2000, 250) == (250, 500)
    assert working_shape(40, 30, 64) == (40, 30)


def test_colours_outside_the_srgb_gamut_lose_chroma_not_hue():
    import torch

    L = torch.tensor([[[[50.0, 95.0, 5.0, 60.0]]]])
    ab = torch.tensor([[[[20.0, 60.0, -70.0, 100.0]], [[10.0, 80.0, 40.0, -100.0]]]])
    clamped = color.clamp_to_gamut(L, ab)
    assert torch.equal(clamped[..., 0], ab[..., 0])  # L 50, ab (20, 10): inside, untouched
    rgb = color.lab_to_rgb_torch(torch.cat([L, clamped], dim=1), clip=False)
    assert rgb.min() >= -2e-3 and rgb.max() <= 1 + 2e-3  # all inside now
    for i in (1, 2, 3):  # outside: scaled towards grey, the hue angle kept
        scale = clamped[0, :, 0, i] / ab[0, :, 0, i]
        assert 0 < scale[0] < 1 and torch.isclose(scale[0], scale[1])
    assert not torch.equal(color.lab_to_rgb_torch(torch.cat([L, ab], 1), clip=False).clamp(0, 1), rgb)


def test_colorize_works_at_the_model_working_size_unless_told(repo):
    from chromalab.serving.model_choice import load

    runner, info = load("tiny", None, "cpu", root=repo)
    assert runner.size == info["image_size"] == 32  # trained at 32 px without eval_size: its working size
    assert load("tiny", 64, "cpu", root=repo)[0].size == 64


# --- --confidence and --no-shrink --------------------------------------------------------------------


def _bins_model(repo, name, **shrink):
    """A small untrained bins model (a 10-unit ab grid of bins) as data/models/NAME/best.pt."""
    import torch

    from chromalab.colorizing import checkpoint
    from chromalab.colorizing.colorizer import Colorizer

    centers = [[float(a), float(b)] for a in range(-60, 70, 10) for b in range(-60, 70, 10) if np.hypot(a, b) <= 60]
    args = {"centers": centers, "weights": [1.0] * len(centers), "temperature": 1.0, **shrink}
    torch.manual_seed(0)
    colorizer = Colorizer("kmeans_cnn", "bins", {"channels": 4}, args)
    with torch.no_grad():  # livelier logits than an untrained network's: some colour, some certainty
        colorizer.network.layers[-1].weight.mul_(10.0)
        colorizer.network.layers[-1].bias.copy_(torch.randn(len(centers)) * 2)
    config = {"model": name, "network": "kmeans_cnn", "representation": "bins", "network_args": {"channels": 4},
              "representation_args": args, "image_size": 32}
    (repo / "data" / "models" / name).mkdir(parents=True)
    checkpoint.save(repo / "data" / "models" / name / "best.pt", colorizer, config)


def test_confidence_writes_a_greyscale_map_of_the_photo_size_beside_each_output(repo, capsys):
    _bins_model(repo, "bins")
    src = _photo(repo / "odd.png", "RGB", (77, 51))
    grey = _photo(repo / "old.jpg", "L", (40, 64))
    code = cli.main(["colorize", str(src), str(grey), "-o", str(repo / "out"), "--model", "bins", "--confidence",
                     "--suffix", "_c"])
    assert code == 0
    assert sorted(p.name for p in (repo / "out").iterdir()) == ["odd_c.confidence.png", "odd_c.png",
                                                                "old_c.confidence.png", "old_c.png"]
    for stem, size in (("odd_c", (77, 51)), ("old_c", (40, 64))):
        conf = Image.open(repo / "out" / f"{stem}.confidence.png")
        assert conf.size == size and conf.mode == "L"
        assert Image.open(repo / "out" / f"{stem}.png").size == size
    assert np.asarray(conf).std() > 0  # a map, not a constant
    assert "colorized 2 of 2 photo(s) into" in capsys.readouterr().out


def test_confidence_adds_a_missing_map_without_touching_an_existing_output(repo, capsys):
    _bins_model(repo, "bins")
    src = _photo(repo / "a.jpg", "RGB", (40, 30))
    out = repo / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"kept")
    assert cli.main(["colorize", str(src), "-o", str(out), "--model", "bins", "--confidence"]) == 0
    assert (out / "a.png").read_bytes() == b"kept" and Image.open(out / "a.confidence.png").size == (40, 30)
    assert "colorized 0 of 1 photo(s) into" in capsys.readouterr().out
    assert cli.main(["colorize", str(src), "-o", str(out), "--model", "bins", "--confidence"]) == 0
    assert "1 skipped: output exists" in capsys.readouterr().out  # both files there now


def test_confidence_with_a_model_that_has_none_is_one_line_exit_2_and_writes_nothing(repo, capsys):
    src = _photo(repo / "a.jpg", "RGB", (40, 30))
    assert cli.main(["colorize", str(src), "-o", str(repo / "out"), "--model", "tiny", "--confidence"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: --confidence: tiny (unet -> ab) gives no per-pixel confidence; only models that "
                   "predict a distribution (bins, palette) do\n")
    assert not (repo / "out").exists()


def test_no_shrink_paints_the_model_without_its_shrink(repo, capsys):
    _bins_model(repo, "plain")
    _bins_model(repo, "shrunk", shrink_gamma=2.0, shrink_threshold=1.0)  # the same weights
    src = _photo(repo / "a.jpg", "RGB", (48, 40))
    for name, extra in (("plain", []), ("shrunk", []), ("shrunk_off", ["--no-shrink"])):
        model = name.split("_")[0]
        assert cli.main(["colorize", str(src), "-o", str(repo / name), "--model", model, *extra]) == 0
    err = capsys.readouterr().err
    assert err.count("low-confidence shrink γ=2 below entropy confidence 1") == 1  # said only while it is on
    images = {name: np.asarray(Image.open(repo / name / "a.png")) for name in ("plain", "shrunk", "shrunk_off")}
    chroma = {name: np.hypot(*color.rgb_to_lab(rgb)[..., 1:].transpose(2, 0, 1)).mean() for name, rgb in images.items()}
    assert chroma["shrunk"] < chroma["plain"]
    assert (images["shrunk_off"] == images["plain"]).all()


@pytest.mark.parametrize("device, words", [("tpu", "--device tpu: expected auto, cpu, cuda or cuda:N"),
                                           ("cuda:x", "--device cuda:x: expected auto, cpu, cuda or cuda:N")])
def test_an_unknown_device_is_a_usage_error_naming_the_flag(repo, capsys, device, words):
    src = _photo(repo / "p.png", "RGB", (40, 30))
    assert cli.main(["colorize", str(src), "--device", device, "--out", str(repo / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {words}"]
    assert not (repo / "out").exists()


def test_cuda_without_a_cuda_device_names_the_flag_not_a_param(repo, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    src = _photo(repo / "p.png", "RGB", (40, 30))
    assert cli.main(["colorize", str(src), "--device", "cuda", "--out", str(repo / "out")]) == 2
    assert capsys.readouterr().err.strip() == "error: --device cuda: this machine has no CUDA device (use auto or cpu)"


@pytest.mark.parametrize("fmt, pil_format", [("jpg", "JPEG"), ("webp", "WEBP")])
def test_format_writes_a_lossy_file_of_that_kind_at_the_photos_size(repo, fmt, pil_format):
    src = _photo(repo / "p.png", "L", (90, 60))
    assert cli.main(["-q", "colorize", str(src), "--format", fmt, "--quality", "80", "--out", str(repo / "out"),
                     "--model", "recommended"]) == 0
    out = Image.open(repo / "out" / f"p.{fmt}")
    assert out.format == pil_format and out.size == (90, 60)
    assert not (repo / "out" / "p.png").exists()


def test_quality_out_of_range_is_a_usage_error(repo, capsys):
    src = _photo(repo / "p.png", "RGB", (40, 30))
    assert cli.main(["colorize", str(src), "--format", "jpg", "--quality", "0", "--out", str(repo / "out")]) == 2
    assert capsys.readouterr().err.strip() == "error: --quality 0: must be 1 to 100"


def test_the_python_example_of_colorize_md_runs_as_written_and_matches_the_command(tmp_path, monkeypatch, capsys):
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "colorize.md").read_text(encoding="utf-8")
    section = doc[doc.index("## From Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    _photo(tmp_path / "old_photo.jpg", "L", (203, 150))
    exec(compile(code, "docs/colorize.md", "exec"), {})
    assert "released lite_bins (150, 203, 3)" in capsys.readouterr().out
    from_python = np.asarray(Image.open(tmp_path / "old_photo_colour.png"))
    # The command, with the same (released) model, paints the same pixels, up to a level of rounding:
    # it runs the network on one thread fewer (a core for PNG encoding), so its sums add in another order.
    assert cli.main(["colorize", "old_photo.jpg", "--out", "cli", "-q"]) == 0
    by_command = np.asarray(Image.open(tmp_path / "cli" / "old_photo.png"))
    assert np.abs(from_python.astype(int) - by_command).max() <= 1
    assert color.rgb_to_lab(from_python)[..., 1:].std() > 1.0  # colour, not the grey it was given
