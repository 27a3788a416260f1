"""A colorizer as an ONNX file, to deploy without chromalab or PyTorch: `chromalab export`.

The graph is the colorizer's inference function, the call `chromalab colorize` makes on the
working-size lightness: input `L` (batch, 1, height, width) float32, CIE Lab L in [0, 100]; output
`ab` (batch, 2, height, width) float32 in Lab units, the representation's decoding included (the
annealed mean at the model's chosen temperature for the bins models). Batch, height and width are
dynamic. What colorize does around that call (the photo resized to the working size, out-of-gamut
chroma reduced, ab upsampled and laid over the full-resolution L) is left to the caller;
docs/colorize.md shows it with numpy and PIL.

An export checks itself before it writes anything: onnxruntime (CPU) runs the graph on two
batches of real photos' L, one square at the working size and one non-square of batch 2 whose
sides are not multiples of the network's, and its ab must match PyTorch's within TOLERANCE. The
file and its JSON sidecar (what the graph takes and gives, where it came from, the differences
measured) are written atomically, and an existing one is replaced only when asked. onnx and
onnxruntime (the `export` extra) are imported here only, so colorizing never needs them.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from chromalab.core import atomic, color
from chromalab.core.digest import sha256_file
from chromalab.core.errors import UserError, first_line
from chromalab.serving import model_choice

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
MIN_OPSET = 17  # the oldest opset these exports are checked at (ONNX 1.12, 2022)
MAX_OPSET = 20  # the newest the TorchScript exporter writes (torch.onnx._constants)
# Max |ab difference| allowed between onnxruntime and PyTorch, in Lab units (ab spans about
# -110..110; one uint8 step of sRGB is about 0.5 ab units, so 0.05 cannot be seen). Measured for the
# released model: 4e-4 at most (docs/colorize.md#export-to-onnx); the margin is for other CPUs'
# kernels. What tracing gets wrong (a shape frozen at the example's) differs by whole ab units.
TOLERANCE = 0.05
INPUT, OUTPUT = "L", "ab"
INSTALL = "pip install -c constraints.txt -e '.[export]' in chromalab's folder (or pip install onnx onnxruntime)"


def require_onnx():
    """The onnx and onnxruntime modules, or a one-line error saying how to install them."""
    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"chromalab export needs {' and '.join(missing)}, not installed: {INSTALL}")
    import onnx
    import onnxruntime

    return onnx, onnxruntime


def check_opset(opset: int) -> None:
    if opset < MIN_OPSET:
        raise UserError(f"--opset {opset}: must be at least {MIN_OPSET} (the oldest opset the export is checked at)")
    if opset > MAX_OPSET:
        raise UserError(f"--opset {opset}: torch's TorchScript ONNX exporter writes opsets {MIN_OPSET}..{MAX_OPSET} here")


def sidecar_path(out: Path) -> Path:
    return out.with_suffix(".json")


def check_out(out: Path, force: bool) -> None:
    """An .onnx path whose file and sidecar may be written: new, or replaced under --force."""
    if out.suffix != ".onnx":
        raise UserError(f"--out {out}: must end in .onnx (its JSON sidecar is written beside it)")
    for path in (out, sidecar_path(out)):
        if path.is_dir():
            raise UserError(f"{path}: is a folder")
        if path.exists() and not force:
            raise UserError(f"{path}: already exists; pass --force to replace it")


class InferenceGraph(nn.Module):
    """colorizer(L), with its padding to the network's size multiple kept dynamic under tracing.

    Colorizer.forward pads H and W up to the multiple under a Python `if` on the input's size,
    which tracing freezes at the example's size. Here the padding is always applied (reflection,
    as Colorizer.forward pads; zero rows where a side already fits), its amounts computed from
    the input's size inside the graph, so the colorizer's own `if` always sees a fitting size and
    the crop back to H x W stays dynamic. Reflection needs sides of at least the multiple (the
    colorizer replicates instead below that): the sidecar's input_constraint."""

    def __init__(self, colorizer: nn.Module):
        super().__init__()
        self.colorizer = colorizer
        self.multiple = int(getattr(colorizer, "size_multiple", 1))

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        h, w = L.shape[-2:]
        m = self.multiple
        if m > 1:
            L = F.pad(L, (0, (m - w % m) % m, 0, (m - h % m) % m), mode="reflect")
        return self.colorizer(L)[..., :h, :w]


def check_inputs(size: int, multiple: int) -> list[torch.Tensor]:
    """Real photos' L (scikit-image's astronaut and coffee, area-resized): 1 x size x size, then a
    batch of 2 at a non-square shape with odd sides (never a multiple: the in-graph padding runs)."""
    from skimage import data

    photos = [torch.from_numpy(np.ascontiguousarray(color.rgb_to_lab(rgb)[..., 0]))[None, None]
              for rgb in (data.astronaut(), data.coffee())]
    h, w = max(multiple, round(size * 0.77) | 1), max(multiple, round(size * 1.3) | 1)
    return [F.interpolate(photos[0], size=(size, size), mode="area"),
            torch.cat([F.interpolate(p, size=(h, w), mode="area") for p in photos])]


def _trace(graph: InferenceGraph, example: torch.Tensor, path: Path, opset: int, name: str) -> None:
    # The TorchScript exporter (dynamo=False), not torch 2.14's default dynamo exporter: for the
    # released model with dynamic H and W the dynamo exporter took 268 s on this 2-core CPU (1 s
    # here), wrote opset 18 at the least (its conversion down to 17 fails on Pad) and needs
    # onnxscript. Tracing freezes Python control flow at the example's shape: InferenceGraph keeps
    # the padding dynamic, and check_inputs' second shape catches whatever else a network freezes.
    axes = {0: "batch", 2: "height", 3: "width"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the frozen `if`s, handled above
            warnings.simplefilter("ignore", DeprecationWarning)  # the exporter's notice: chosen above
            torch.onnx.export(graph, (example,), str(path), dynamo=False, opset_version=opset,
                              input_names=[INPUT], output_names=[OUTPUT], dynamic_axes={INPUT: axes, OUTPUT: axes})
    except Exception as err:  # an op without an ONNX form, a shape the tracer cannot follow...
        raise UserError(f"{name}: cannot be exported to ONNX opset {opset} ({first_line(err)})") from err


def _describe(onnx, path: Path, info: dict) -> None:
    """The output's channel count (the crop leaves it symbolic) and what the model is, in the file."""
    proto = onnx.load(str(path))
    proto.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 2
    proto.doc_string = (f"chromalab {info['name']} ({info['network']} -> {info['representation']}): "
                        f"{INPUT} (batch, 1, H, W) Lab L in [0, 100] -> {OUTPUT} (batch, 2, H, W) Lab ab")
    onnx.helper.set_model_props(proto, {"chromalab.model": info["name"], "chromalab.source": info["source"],
                                        "chromalab.working_size": str(info["image_size"])})
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _verify(ort, path: Path, colorizer: nn.Module, inputs: list[torch.Tensor], name: str) -> list[dict]:
    """onnxruntime's ab against the PyTorch colorizer's for each input: shape and max |difference|."""
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    checks = []
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for L in inputs:
            got = session.run([OUTPUT], {INPUT: L.numpy()})[0]
            with torch.no_grad():
                want = colorizer(L).float().numpy()
            if got.shape != want.shape:
                raise UserError(f"{name}: the ONNX graph gives ab of shape {got.shape} for L of shape "
                                f"{tuple(L.shape)}, PyTorch {want.shape}; not written")
            diff = float(np.abs(got - want).max())
            if not diff <= TOLERANCE:  # NaN fails too
                raise UserError(f"{name}: the ONNX graph's ab differs from PyTorch's by up to {diff:.3g} at "
                                f"{'x'.join(map(str, L.shape))} (tolerance {TOLERANCE}); not written")
            checks.append({"shape": list(L.shape), "max_abs_ab_diff": diff})
    except UserError:
        raise
    except Exception as err:  # onnxruntime's own errors: an op or a shape it cannot run
        raise UserError(f"{name}: onnxruntime cannot run the exported graph ({first_line(err)})") from err
    return checks


def _decoding(colorizer: nn.Module) -> dict:
    """How the representation turns outputs into ab (the annealed mean's temperature, for one)."""
    rep = getattr(colorizer, "representation", None)
    return {k: getattr(rep, k) for k in ("decode", "temperature") if isinstance(getattr(rep, k, None), (str, float))}


def export_onnx(model: str | None, out: Path | None = None, opset: int | None = None, force: bool = False,
                root: Path | None = None) -> dict:
    """Export `model` (as `chromalab colorize --model` names it; None: the released model) to `out`
    (default ./NAME.onnx) at `opset` (default DEFAULT_OPSET) with its sidecar; returns the
    sidecar's content plus out and sidecar."""
    opset = DEFAULT_OPSET if opset is None else opset
    check_opset(opset)
    onnx, ort = require_onnx()
    if out is not None:
        check_out(out, force)  # before the model loads: a mistake costs nothing
    runner, info = model_choice.load(model, None, "cpu", root, what="MODEL")
    colorizer, name = runner.colorizer.eval(), info["name"]
    log.info("model %s (%s -> %s) from %s, working size %d px", info["model"], info["network"],
             info["representation"], info["source"], runner.size)
    if out is None:
        out = Path(re.sub(r"[^\w.-]+", "_", name) + ".onnx")
        check_out(out, force)
    graph = InferenceGraph(colorizer).eval()
    inputs = check_inputs(runner.size, graph.multiple)
    source = info["source"]
    sidecar = {
        "format": "onnx",
        "file": out.name,
        "model": name,
        "network": info["network"],
        "representation": info["representation"],
        **_decoding(colorizer),
        "source": source,
        "source_sha256": None if model_choice.is_mlflow_uri(source) else sha256_file(Path(source)),
        "opset": opset,
        "exporter": f"torch {torch.__version__}, torch.onnx.export(dynamo=False)",
        "input": {"name": INPUT, "shape": ["batch", 1, "height", "width"], "dtype": "float32",
                  "units": "CIE Lab L (D65), 0 to 100"},
        "output": {"name": OUTPUT, "shape": ["batch", 2, "height", "width"], "dtype": "float32",
                   "units": "CIE Lab a and b (D65), as the PyTorch colorizer gives them (not gamut-clamped)"},
        "working_size": runner.size,
        "size_multiple": graph.multiple,
        "input_constraint": (f"height and width at least {graph.multiple} (padded to multiples of {graph.multiple} "
                             "inside the graph, by reflection, and cropped back)") if graph.multiple > 1
                            else "any height and width",
        "tolerance": TOLERANCE,
    }
    with atomic.atomic_path(out) as tmp:
        _trace(graph, inputs[0], tmp, opset, name)
        _describe(onnx, tmp, {**info, "image_size": runner.size})
        checks = _verify(ort, tmp, colorizer, inputs, name)
        sidecar.update(verified=checks, max_abs_ab_diff=max(c["max_abs_ab_diff"] for c in checks),
                       onnxruntime=ort.__version__, sha256=sha256_file(tmp), bytes=tmp.stat().st_size)
        # The sidecar first: the .onnx appears last, and only once its description is in place.
        atomic.write_json(sidecar_path(out), sidecar)
    log.debug("wrote %s and %s", out, sidecar_path(out))
    return {**sidecar, "out": out, "sidecar": sidecar_path(out)}
