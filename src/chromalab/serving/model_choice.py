"""Which model `chromalab colorize --model` means, loaded for inference.

- none: chromalab's released model (release.py: shipped inside the package, so a fresh install
  colorizes out of the box);
- `recommended`: the model the workspace's reports/metrics.json recommends;
- a league name (data/models/NAME/best.pt) or a checkpoint path;
- an MLflow model URI (`models:/chromalab@champion`, `models:/NAME/3`, `runs:/ID/model`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from chromalab.colorizing import checkpoint
from chromalab.colorizing.colorize import FullResolution
from chromalab.colorizing.device import select_device
from chromalab.core import config, paths
from chromalab.core.atomic import read_json
from chromalab.core.errors import UserError
from chromalab.report.recommend import RECOMMENDED, recommended_model

log = logging.getLogger(__name__)

MLFLOW_SCHEMES = ("models:/", "runs:/")


def default_model_name(root: Path) -> str:
    """The model reports/metrics.json recommends (see chromalab.report.recommend.recommended_model).

    A metrics file from before the report recorded its recommendation gets the same rule applied
    here, with params.yaml's threshold, so there is only ever one rule.
    """
    path = root / paths.REPORTS / "metrics.json"
    metrics = read_json(path, missing="missing, so there is no recommended model; run `dvc repro` or pass --model")
    name = metrics.get(RECOMMENDED)
    if isinstance(name, str):
        return name
    records = [{"name": k, **v} for k, v in metrics.items()
               if isinstance(v, dict) and {"psnr", "delta_colorfulness"} <= set(v)]
    params_file = root / config.PARAMS_FILE
    params = config.section(config.load_params(params_file), "report") if params_file.is_file() \
        else config.ReportParams()
    name = recommended_model(records, params.max_delta_colorfulness)
    if name is None:
        raise UserError(f"{path}: lists no trained model; pass --model")
    return name


def is_mlflow_uri(model: str) -> bool:
    return model.startswith(MLFLOW_SCHEMES)


def resolve_checkpoint(model: str | None, root: Path, what: str = "--model") -> Path:
    """--model: a checkpoint path, a league name (data/models/NAME/best.pt), or `recommended` (also
    None here: the workspace's recommended model). `what` names the argument in errors."""
    if model in (None, RECOMMENDED):
        model = default_model_name(root)
        log.info("using %s, the recommended model in reports/metrics.json", model)
    as_path = Path(model)
    if as_path.suffix == ".pt" or as_path.is_file():
        return as_path
    ckpt = root / paths.MODELS / model / "best.pt"
    if not ckpt.is_file():
        raise UserError(f"{what} {model}: no checkpoint at {paths.shown(ckpt)}; train it with `dvc repro train@{model}`"
                        " (or give a checkpoint's path)")
    return ckpt


def _load_logged_checkpoint(uri: str) -> torch.nn.Module:
    """A logged Colorizer from its run's copy of the checkpoint: checked against the sha256 the run
    recorded, then read with weights_only=True (checkpoint.load). The pickled MLflow model beside
    it, for MLflow's own tools, is never unpickled here."""
    import tempfile

    from chromalab.core import tracking
    from chromalab.core.digest import sha256_file

    with tempfile.TemporaryDirectory() as tmp:
        path, expected = tracking.checkpoint_of(uri, Path(tmp))
        actual = sha256_file(path)
        if actual != expected:
            raise UserError(f"{uri}: its checkpoint's sha256 is {actual[:12]}…, not the {expected[:12]}… its run "
                            "recorded; refusing to load it")
        colorizer, _ = checkpoint.load(path)
    return colorizer


def _load_mlflow(uri: str, dev: torch.device) -> tuple[torch.nn.Module, dict]:
    """A logged Colorizer and what the registry knows about it (its version tags, set by the report)."""
    from chromalab.core import tracking

    tags = tracking.registered_tags(uri)
    colorizer = _load_logged_checkpoint(uri).to(dev).eval()
    info = {"model": tags.get("chromalab.model", uri), "name": tags.get("chromalab.model", uri),
            "network": tags.get("network", "?"),
            "representation": tags.get("representation", "?"), "source": uri}
    if tags.get("image_size", "").isdigit():
        info["image_size"] = int(tags["image_size"])
    return colorizer, info


def load(model: str | None, size: int | None, device: str, root: Path | None = None,
         what: str = "--model") -> tuple[FullResolution, dict]:
    """The FullResolution runner for --model/--size/--device, and a description: model (as said to
    the user), name (the model's own name), network, representation, source (its checkpoint file or
    MLflow URI) and image_size (its working size: the size it was chosen at on val, when known).
    `what` names the model's argument in errors (export's positional MODEL)."""
    root = root or paths.repo_root()
    dev = select_device(device, "--device")
    if model and is_mlflow_uri(model):
        colorizer, info = _load_mlflow(model, dev)
    else:
        if model is None:
            from chromalab.serving.release import read_release

            ckpt, _ = read_release()
        else:
            ckpt = resolve_checkpoint(model, root, what)
        colorizer, cfg = checkpoint.load(ckpt, device=dev)
        working = cfg.get("working_size") or cfg["image_size"]
        name = cfg.get("model", ckpt.stem)
        info = {"model": ("released " if model is None else "") + name, "name": name,
                "network": cfg["network"], "representation": cfg["representation"], "source": paths.shown(ckpt),
                "image_size": int(working)}
    if size is None and "image_size" not in info:
        size = config.PrepareParams().size
        log.warning("%s does not say what size it was trained at; working at %d px (choose with --size)", model, size)
    return FullResolution(colorizer, size or info["image_size"], dev), info
