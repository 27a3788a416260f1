"""Shared test helpers and constants; the fixtures live in conftest.py. Test files import the
shared helpers from this module only: not from one another, and not out of conftest.py."""

from __future__ import annotations

import csv
import html.parser
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from chromalab.core.config import PrepareParams

REPO = Path(__file__).resolve().parents[1]


# --- small real data: real colour photos, the tiny prepare profile, a tiny trained model --------


def real_photos() -> dict[str, np.ndarray]:
    """Six real colour photographs (uint8 RGB), as the libraries ship them."""
    from skimage import data
    from sklearn.datasets import load_sample_image

    return {
        "astronaut": data.astronaut(),
        "chelsea": data.chelsea(),
        "coffee": data.coffee(),
        "rocket": data.rocket(),
        "china": load_sample_image("china.jpg"),
        "flower": load_sample_image("flower.jpg"),
    }


def write_photo_folder(root, size: int = 96, grey: int = 1, labels: bool = True):
    """Write each real photo, shrunk so its shorter side is `size`, as a JPEG or PNG under root
    (in a class sub-folder when `labels`), plus `grey` photos that carry no colour."""
    root.mkdir(parents=True, exist_ok=True)
    for i, (name, rgb) in enumerate(real_photos().items()):
        img = Image.fromarray(rgb)
        img.thumbnail((size * 2, size * 2))
        folder = root / ("animal" if name in ("astronaut", "chelsea") else "scene") if labels else root
        folder.mkdir(exist_ok=True)
        img.save(folder / f"{name}.{'png' if i % 2 else 'jpg'}")
    for j in range(grey):
        img = Image.fromarray(real_photos()["coffee"]).convert("L")
        img.thumbnail((size * 2, size * 2))
        (root / "greys").mkdir(exist_ok=True)
        img.save(root / "greys" / f"grey{j}.png")
    return root


TINY_PREPARE = PrepareParams(size=32, crops_per_image=4, val_fraction=0.2, test_fraction=0.2, seed=0)

TINY_MODEL = dict(network="unet", representation="ab", network_args={"base_channels": 8})


def train_tiny(tmp_path, prepared_dir, name="tiny", epochs=2, seed=0, palette_dir=None, model=None,
               **train_overrides):
    """Train a small U-Net for a few epochs with the real training loop; returns its folder."""
    from chromalab.core.config import ModelParams, TrainParams
    from chromalab.training.train import train

    params = TrainParams(epochs=epochs, batch_size=8, lr=3e-3, seed=seed, **train_overrides)
    model = ModelParams(**(model or TINY_MODEL))
    out = tmp_path / "data" / "models" / name
    train(name, model, params, prepared_dir, palette_dir, out, tmp_path / "reports" / "train" / name / "history.csv",
          logged_params={"train": params.__dict__, "model": model.__dict__})
    return out


# --- the real pipeline in a fresh git + DVC repository ----------------------------------------

TINY = {
    "data": {"source": "builtin"},
    "prepare": {"size": 32, "crops_per_image": 6, "seed": 0},
    "palette": {"k": 8, "sample_pixels": 5000},
    "league": ["unet"],
    "models": {"unet": {"network": "unet", "representation": "ab", "network_args": {"base_channels": 8}}},
    "train": {"epochs": 2, "batch_size": 16},
    "evaluate": {"gallery": 3},
    "neutral": {"count": 2, "size": 64},
    "video": {"clip_width": 96, "clip_height": 64, "clip_frames": 6},
    "report": {"max_delta_colorfulness": 5},
}


def run(args, cwd, env, check=True):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def tiny_repo(root: Path, params: dict = TINY) -> dict:
    """Make `root` a fresh git + DVC repository holding the pipeline and `params` (the tiny profile
    by default), committed; returns the environment to run git and dvc in it with."""
    root.mkdir(parents=True, exist_ok=True)
    for item in ("dvc.yaml", ".dvcignore", "pipeline", "src"):
        src = REPO / item
        shutil.copytree(src, root / item, ignore=shutil.ignore_patterns("__pycache__")) if src.is_dir() \
            else shutil.copy(src, root / item)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / ".gitignore").write_text("/data/\n/mlflow.db\n/mlartifacts/\ntimings.json\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    run(["git", "init", "-q", "-b", "main"], root, env)
    run(["dvc", "init", "-q"], root, env)
    run(["dvc", "config", "core.analytics", "false"], root, env)
    shutil.copytree(REPO / ".dvc" / "plots", root / ".dvc" / "plots")  # dvc.yaml's plot templates
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "tiny pipeline"], root, env)
    return env


def copy_repo(baseline, dest):
    """A private copy of the baseline repository (git history, DVC cache, outputs, MLflow store)."""
    shutil.copytree(baseline[0], dest, symlinks=True)
    return dest


# --- the training stage script in a small workspace (no DVC) ----------------------------------

TRAIN_SCRIPT = REPO / "pipeline" / "train.py"


def train_workspace(root: Path, source_prepared: Path, source_palette: Path, params: dict) -> Path:
    root.mkdir(parents=True)
    shutil.copytree(source_prepared, root / "data" / "prepared")
    shutil.copytree(source_palette, root / "data" / "palette")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "dvc.yaml").write_text("stages: {}\n")
    return root


def stage_env(root: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    # Tracking off: these tests are about the training state; resuming with MLflow on is covered by
    # tests/test_rerun_and_interrupt.py, and each fresh SQLite store costs seconds to set up.
    env.update(DVC_ROOT=str(root), CHROMALAB_MLFLOW="off", OMP_NUM_THREADS="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")
    env.update(extra)
    return env


def train_params(network_args: dict, network="unet", **train) -> dict:
    return {
        "league": ["net"],
        "models": {"net": {"network": network, "representation": "ab", "network_args": network_args}},
        "train": {"epochs": 3, "batch_size": 8, "lr": 0.003, "translate": 2, "schedule": "cosine",
                  "checkpoint_every": 1, **train},
    }


# --- a local MLflow tracking server -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- evaluation folders for the report stage, and the images a page shows ---------------------

GALLERY = 3

# unet: better PSNR/SSIM/AuC; tiny: better ΔCF and speed. grey's ΔCF is signed and most negative.
METRICS_BY_NAME = {
    "unet": dict(psnr=24.5012, ssim=0.91234, auc=0.8812, auc_rebalanced=0.6123, colorfulness=28.1,
                 colorfulness_gt=33.0, delta_colorfulness=-4.9, psnr_ci={"low": 23.9, "high": 25.1},
                 semantic_agreement=0.75, fd=12.5, judge="mobilenetv2", judge_title="MobileNetV2",
                 semantic_agreement_mobilenetv2=0.75, fd_mobilenetv2=12.5, semantic_agreement_lite0=0.7, fd_lite0=14.0),
    "tiny": dict(psnr=23.9, ssim=0.9011, auc=0.8701, auc_rebalanced=0.6302, colorfulness=31.2,
                 colorfulness_gt=33.0, delta_colorfulness=-1.8, psnr_ci={"low": 23.2, "high": 24.6},
                 semantic_agreement=0.8, fd=9.25, judge="lite0", judge_title="EfficientNet-Lite0",
                 semantic_agreement_lite0=0.8, fd_lite0=9.25),
    "grey": dict(psnr=22.1, ssim=0.8899, auc=0.8456, auc_rebalanced=0.5001, colorfulness=0.0,
                 colorfulness_gt=33.0, delta_colorfulness=-33.0, psnr_ci={"low": 21.5, "high": 22.7},
                 semantic_agreement=0.5, fd=30.0, judge="mobilenetv2", judge_title="MobileNetV2",
                 semantic_agreement_mobilenetv2=0.5, fd_mobilenetv2=30.0, semantic_agreement_lite0=0.55, fd_lite0=28.0),
}
DESCRIPTION = {
    "unet": dict(network="unet", representation="ab", parameters=1_234_567),
    "tiny": dict(network="tiny_cnn", representation="classes", parameters=45_600,
                 setup="embedder=<small_net>, pretrained=False"),
    "grey": dict(network=None, representation=None, parameters=0),
}


def _png(path: Path, seed: int, grey: bool = False) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    if grey:
        pixels[...] = pixels.mean(axis=2, keepdims=True).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _csv(path: Path, header: list[str], rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_eval(reports: Path, names: dict[str, str], palette: bool = True, curves: bool = True) -> None:
    """An evaluate stage's outputs (and the train stage's history); `names` maps each folder name
    to its fixture's metrics."""
    for seed, (name, kind) in enumerate(names.items()):
        folder = reports / "eval" / name
        folder.mkdir(parents=True)
        data = {**METRICS_BY_NAME[kind], "images": 120, **DESCRIPTION[kind]}
        (folder / "metrics.json").write_text(json.dumps(data), encoding="utf-8")
        # 120 images around the model's PSNR, the same images in the same order for every model.
        spread = np.random.default_rng(0).normal(0, 2, data["images"])
        _csv(folder / "per_image.csv", ["image", "psnr", "ssim", "colorfulness", "colorfulness_gt"],
             [(i, round(data["psnr"] + spread[i], 6), data["ssim"], data["colorfulness"], data["colorfulness_gt"])
              for i in range(data["images"])])
        for i in range(GALLERY):
            _png(folder / "gallery" / f"{i:02d}.png", seed * 100 + i, grey=name == "grey")
        if curves:
            steep = 1 + seed  # each model's CDF rises at its own pace
            _csv(folder / "auc_curve.csv", ["threshold", "cdf", "cdf_rebalanced"],
                 [(t, round(min(1.0, t * steep / 60), 6), round(min(1.0, t * steep / 80), 6)) for t in range(151)])
            if name != "grey":
                _csv(reports / "train" / name / "history.csv",
                     ["epoch", "train_loss", "val_loss", "val_psnr", "lr"],
                     [(e, 0.05 / e, 0.06 / e + 0.01, 20 + e / 2, 0.001) for e in (1, 2, 3)])
    for i in range(GALLERY):
        _png(reports / "eval" / "grey" / "truth" / f"{i:02d}.png", 1000 + i)
    if palette:
        _png(reports / "palette.png", 7)


class _Images(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


def img_srcs(page: str) -> list[str]:
    parser = _Images()
    parser.feed(page)
    return parser.srcs


# --- colorize's float64 reference ----------------------------------------------------------------


def float64_colorize(colorizer, size: int, rgb: np.ndarray) -> np.ndarray:
    """The full-resolution colorize path as it was before its float32 strips (the reference it
    must match): the photo's L by scikit-image's rgb2lab in float64, area-downscaled to the working
    size, the network and gamut clamp, ab upsampled bilinearly in float64, scikit-image's lab2rgb in
    float64, rounded."""
    import warnings

    import torch
    from skimage import color as skcolor

    from chromalab.colorizing.colorize import working_shape
    from chromalab.core import color

    L = torch.from_numpy(skcolor.rgb2lab(rgb)[..., 0])[None, None]
    small = working_shape(*L.shape[-2:], size)
    L_small = torch.nn.functional.interpolate(L, size=small, mode="area").float()
    with torch.no_grad():
        ab = color.clamp_to_gamut(L_small, colorizer(L_small).float())
    ab = torch.nn.functional.interpolate(ab.double(), size=L.shape[-2:], mode="bilinear", align_corners=False)
    lab = torch.cat([L, ab], dim=1)[0].permute(1, 2, 0).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # out-of-gamut colours are clipped, as intended
        return np.clip(np.rint(skcolor.lab2rgb(lab) * 255.0), 0, 255).astype(np.uint8)


def load_benchmark(name: str):
    """benchmarks/NAME.py imported as a module (the benchmarks are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
