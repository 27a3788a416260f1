"""`chromalab export`: the released model as ONNX through the real CLI, run by onnxruntime on the
CPU against PyTorch at several shapes; bad inputs are one-line errors that write nothing."""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from chromalab import cli
from chromalab.core import color
from chromalab.serving.release import PACKAGED_RELEASE
from helpers import real_photos

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# Max |ab difference| between onnxruntime and PyTorch, Lab units (docs/colorize.md#export-to-onnx:
# 4e-4 measured here; one uint8 step of sRGB is about 0.5 ab units).
TOLERANCE = 0.05
# (photo, batch, height, width): the working size, a non-square shape, batch 2, and sides that are
# no multiple of the network's 32 (padded inside the graph).
SHAPES = [("astronaut", 1, 256, 256), ("coffee", 1, 192, 320), ("chelsea+rocket", 2, 256, 256),
          ("china", 1, 200, 333)]


def lightness(photos: dict, name: str, height: int, width: int) -> np.ndarray:
    """A real photo resized to height x width: its Lab L, float32 (height, width)."""
    rgb = np.asarray(Image.fromarray(photos[name]).resize((width, height), Image.BILINEAR))
    return np.ascontiguousarray(color.rgb_to_lab(rgb)[..., 0])


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """`chromalab export --format onnx --out lite_bins.onnx` over a stale file: refused without
    --force (the stale files untouched), done with it. Returns the folder and both calls' results."""
    folder = tmp_path_factory.mktemp("export")
    out, sidecar = folder / "lite_bins.onnx", folder / "lite_bins.json"
    out.write_text("stale")
    sidecar.write_text("{}")
    calls = {}
    for name, extra in (("refused", []), ("forced", ["--force"])):
        with pytest.MonkeyPatch.context() as mp, _captured() as captured:
            mp.chdir(folder)
            code = cli.main(["export", "--format", "onnx", "--out", str(out), *extra])
        calls[name] = (code, *captured(), out.read_bytes(), leftovers(folder))
    return folder, calls


class _captured:
    """stdout and stderr of a block (capsys is function-scoped; the export runs once per module)."""

    def __enter__(self):
        import io

        self.out, self.err = io.StringIO(), io.StringIO()
        self.saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = self.out, self.err
        return lambda: (self.out.getvalue(), self.err.getvalue())

    def __exit__(self, *exc):
        sys.stdout, sys.stderr = self.saved


def test_an_existing_file_is_kept_without_force(exported):
    folder, calls = exported
    code, stdout, stderr, content, files = calls["refused"]
    assert code == 2 and stdout == ""
    assert stderr == f"error: {folder / 'lite_bins.onnx'}: already exists; pass --force to replace it\n"
    assert content == b"stale" and files == ["lite_bins.json", "lite_bins.onnx"]


def test_the_released_model_exports_with_its_sidecar(exported):
    folder, calls = exported
    code, stdout, stderr, content, files = calls["forced"]
    assert code == 0 and files == ["lite_bins.json", "lite_bins.onnx"], (stdout, stderr)
    assert stdout.startswith(f"exported lite_bins to {folder / 'lite_bins.onnx'} (") and "opset 17" in stdout
    release = json.loads((PACKAGED_RELEASE / "release.json").read_text())
    meta = json.loads((folder / "lite_bins.json").read_text())
    assert meta["model"] == "lite_bins" and meta["source_sha256"] == release["sha256"]
    assert meta["sha256"] == hashlib.sha256(content).hexdigest() and meta["bytes"] == len(content)
    assert meta["opset"] == 17 and meta["working_size"] == 256 and meta["size_multiple"] == 32
    assert meta["input"]["name"] == "L" and meta["output"]["name"] == "ab"
    assert meta["representation"] == "bins" and 0 < meta["temperature"] <= 1
    assert [c["shape"] for c in meta["verified"]] == [[1, 1, 256, 256], [2, 1, 197, 333]]
    assert all(c["max_abs_ab_diff"] <= TOLERANCE for c in meta["verified"])
    model = onnx.load(str(folder / "lite_bins.onnx"))
    assert model.opset_import[0].version == 17

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert dims(model.graph.input[0]) == ["batch", 1, "height", "width"] and model.graph.input[0].name == "L"
    assert dims(model.graph.output[0]) == ["batch", 2, "height", "width"] and model.graph.output[0].name == "ab"


def test_onnxruntime_gives_pytorchs_ab(exported):
    from chromalab.serving import model_choice

    folder, _ = exported
    runner, _ = model_choice.load(None, None, "cpu")
    session = ort.InferenceSession(str(folder / "lite_bins.onnx"), providers=["CPUExecutionProvider"])
    measured, photos = [], real_photos()
    for names, batch, height, width in SHAPES:
        L = np.stack([lightness(photos, name, height, width)[None] for name in names.split("+")])
        assert L.shape == (batch, 1, height, width)
        got = session.run(["ab"], {"L": L})[0]
        with torch.no_grad():
            want = runner.colorizer(torch.from_numpy(L)).numpy()
        assert got.shape == want.shape == (batch, 2, height, width)
        measured.append((f"{batch}x1x{height}x{width}", float(np.abs(got - want).max())))
    print("max |ab difference|, onnxruntime vs PyTorch:", ", ".join(f"{d:.1e} at {s}" for s, d in measured))
    assert all(d <= TOLERANCE for _, d in measured), measured


@pytest.mark.parametrize("argv, message", [
    (["export", "nosuch"], "MODEL nosuch: no checkpoint at "),
    (["export", "--opset", "13"], "--opset 13: must be at least 17"),
    (["export", "--opset", "21"], "--opset 21: torch's TorchScript ONNX exporter writes opsets 17..20"),
    (["export", "--out", "model.txt"], "--out model.txt: must end in .onnx"),
])
def test_bad_input_is_one_line_and_writes_nothing(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"error: {message}") and captured.err.count("\n") == 1
    assert leftovers(tmp_path) == []


def test_an_existing_sidecar_alone_also_needs_force(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.json").write_text("{}")
    assert cli.main(["export", "--out", "m.onnx"]) == 2
    assert capsys.readouterr().err == "error: m.json: already exists; pass --force to replace it\n"
    assert leftovers(tmp_path) == ["m.json"]


def test_without_onnxruntime_the_error_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # importlib.util.find_spec: not installed
    assert cli.main(["export"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: chromalab export needs onnxruntime, not installed: pip install ")
    assert "[export]" in err and err.count("\n") == 1 and leftovers(tmp_path) == []


def test_a_model_the_exporter_cannot_take_is_named_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    def unsupported(*args, **kwargs):
        raise torch.onnx.errors.UnsupportedOperatorError("aten::fancy", 17, None)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.onnx, "export", unsupported)
    assert cli.main(["export", "--out", "out/m.onnx"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: lite_bins: cannot be exported to ONNX opset 17 (")
    assert "aten::fancy" in errors[0]
    assert leftovers(tmp_path / "out") == []  # no .onnx, no sidecar, no temporary file
