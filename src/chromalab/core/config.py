"""params.yaml, read and validated: one dataclass per section, one section per stage.

A stage validates the sections it depends on when it starts, so a typo'd key, a wrong type or an
out-of-range value fails at once with a one-line error naming the key, not after an hour of
training.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from chromalab.core.errors import UserError, first_line

PARAMS_FILE = "params.yaml"
GREY = "grey"  # the built-in baseline (ab = 0: the grey input itself), reserved as a model name
RELEASED = "released"  # the packaged released model's neutral-scene check (reports/neutral/released), reserved


# Which DataParams keys each source reads; a key set for a source that ignores it is a mistake.
DATA_KEY_USERS = {
    "path": ("folder", "imagenet", "kaggle-landscape"),
    "url": ("url", "cifar10", "places365", "coco", "ade20k"),
    "sha256": ("url",),
}


@dataclasses.dataclass(frozen=True)
class DataParams:
    """download: where the raw photos come from."""

    source: Literal["builtin", "folder", "url", "cifar10", "places365", "coco", "ade20k",
                    "imagenet", "kaggle-landscape"] = "builtin"
    # folder (or archive) of photos, or a list of them (folder source: each one a named dataset,
    # see dataset_names); a user's copy of imagenet / kaggle-landscape
    path: str | list | None = None
    url: str | None = None  # url source: the archive or image; public sources: a mirror's folder
    sha256: str | None = None  # url source: the file's expected sha256
    classes: list | None = None  # keep only these class labels (seed 000's single-class runs)
    limit: int | None = None  # keep a seeded random subset of this many images
    seed: int = 0

    def check(self, key: str) -> None:
        if self.source == "folder" and not self.path:
            raise UserError(f"{key}.path: the folder source needs a directory of photos")
        if self.source == "url" and not self.url:
            raise UserError(f"{key}.url: the url source needs the URL of an archive or an image")
        for name, users in DATA_KEY_USERS.items():
            if getattr(self, name) is not None and self.source not in users:
                raise UserError(f"{key}.{name}: not used by the {self.source} source (only by "
                                f"{', '.join(users)}); set it to null")
        if isinstance(self.path, list):
            if self.source != "folder":
                raise UserError(f"{key}.path: a list of paths is for the folder source; the {self.source} "
                                f"source takes one path")
            dataset_names(self.path, key)
        if self.url is not None and not self.url.startswith(("http://", "https://", "file://")):
            raise UserError(f"{key}.url: expected an http://, https:// or file:// URL, got {self.url!r}")
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", self.sha256):
            raise UserError(f"{key}.sha256: expected 64 hexadecimal digits, got {self.sha256!r}")
        if self.classes is not None and (not self.classes or not all(isinstance(c, str) for c in self.classes)):
            raise UserError(f"{key}.classes: expected a non-empty list of class names, got {self.classes!r}")
        if self.limit is not None:
            _at_least(key, "limit", self.limit, 1)


ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip")


def dataset_name(path: str) -> str:
    """What a photo folder or archive is called in manifests and per-source tables: its file name
    without the archive suffix (../photos/intel-scenes-150.tar -> intel-scenes-150)."""
    name = Path(str(path).rstrip("/\\")).name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def dataset_names(paths: list, key: str = "data") -> list[str]:
    """The datasets of data.path given as a list, one per path; two paths may not share a name."""
    if not paths or not all(isinstance(p, str) and p for p in paths):
        raise UserError(f"{key}.path: expected a non-empty list of folders or archives, got {paths!r}")
    names = [dataset_name(p) for p in paths]
    for i, name in enumerate(names):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise UserError(f"{key}.path: {paths[i]!r}: its name {name!r} cannot name a dataset (letters, "
                            f"digits, '.', '_', '-')")
        if name in names[:i]:
            raise UserError(f"{key}.path: {paths[names.index(name)]!r} and {paths[i]!r} are both called "
                            f"{name!r}; rename one")
    return names


# What prepare.sources may set for one dataset of a multi-source folder.
PER_SOURCE_KEYS = ("crops_per_image", "min_crop_fraction", "val_fraction", "test_fraction")


@dataclasses.dataclass(frozen=True)
class PrepareParams:
    """prepare: decode, drop grey images, crop, split by source photo, convert to Lab."""

    size: int = 64
    # val and test: null, crops as train; N: each photo whole, resized to N x N (the protocol of
    # DDColor and CT2 at 256: models are chosen and scored on whole photos at the literature's size)
    eval_size: int | None = None
    crops_per_image: int = 0  # 0: one centre crop of each image; N: N random crops of each
    min_crop_fraction: float = 0.35  # random crops: smallest side, as a fraction of the short side
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    grey_chroma: float = 2.0  # mean Lab chroma below which a photo counts as already grey
    dtype: Literal["float16", "float32"] = "float16"
    seed: int = 0
    # Per dataset of a multi-source folder (data.path a list), any of PER_SOURCE_KEYS, e.g.
    # {intel-scenes-150: {crops_per_image: 2, val_fraction: 0.03}}; the keys above are the default.
    sources: dict | None = None

    def check(self, key: str) -> None:
        for name, overrides in (self.sources or {}).items():
            if not isinstance(overrides, dict):
                raise UserError(f"{key}.sources.{name}: expected a mapping of {', '.join(PER_SOURCE_KEYS)}")
            for k in overrides:
                if k not in PER_SOURCE_KEYS:
                    raise UserError(f"{key}.sources.{name}.{k}: not a per-source key (one of "
                                    f"{', '.join(PER_SOURCE_KEYS)}){_did_you_mean(k, PER_SOURCE_KEYS)}")
            self.for_source(name).check(f"{key}.sources.{name}")
        _at_least(key, "size", self.size, 8)
        if self.eval_size is not None:
            _at_least(key, "eval_size", self.eval_size, 8)
        _at_least(key, "crops_per_image", self.crops_per_image, 0)
        _between(key, "min_crop_fraction", self.min_crop_fraction, 0.05, 1.0)
        _between(key, "val_fraction", self.val_fraction, 0.0, 0.9)
        _between(key, "test_fraction", self.test_fraction, 0.0, 0.9)
        if self.val_fraction + self.test_fraction >= 1:
            raise UserError(f"{key}.val_fraction + {key}.test_fraction must be below 1")
        _at_least(key, "grey_chroma", self.grey_chroma, 0.0)

    def for_source(self, dataset: str) -> "PrepareParams":
        """These params with dataset's own overrides from `sources` (none for the single pool "")."""
        overrides = (self.sources or {}).get(dataset) or {}
        checked = {k: _check_type(f"prepare.sources.{dataset}.{k}", v, typing.get_type_hints(PrepareParams)[k])
                   for k, v in overrides.items()}
        return dataclasses.replace(self, sources=None, **checked)


@dataclasses.dataclass(frozen=True)
class PaletteParams:
    """palette: seed 000's k-means colours and Zhang et al.'s quantized ab gamut."""

    k: int = 32
    space: Literal["ab", "rgb"] = "ab"
    sample_pixels: int = 200_000
    bin_size: float = 10.0
    rebalance_lambda: float = 0.5
    rebalance_sigma: float = 5.0
    seed: int = 0

    def check(self, key: str) -> None:
        _at_least(key, "k", self.k, 2)
        _at_least(key, "sample_pixels", self.sample_pixels, self.k)
        _between(key, "bin_size", self.bin_size, 1.0, 50.0)
        _between(key, "rebalance_lambda", self.rebalance_lambda, 0.0, 1.0)
        _at_least(key, "rebalance_sigma", self.rebalance_sigma, 0.0)


@dataclasses.dataclass(frozen=True)
class TrainParams:
    """train@MODEL: the training loop shared by every model."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # mixed precision, on CUDA only
    num_workers: int = 0
    hflip: bool = True  # mirror half of each batch: more photos for free, colours untouched
    translate: int = 0  # shift each image by up to this many pixels (reflect padding)
    schedule: Literal["constant", "cosine", "onecycle"] = "constant"  # learning rate over the run
    warmup_epochs: float = 0.0  # linear warm-up before the schedule (constant, cosine)
    checkpoint_every: int = 500  # steps between resumable snapshots (also at each epoch end); 0: epochs only
    nproc: int = 1  # processes (GPUs) on this machine: > 1 launches torchrun with DDP
    channels_last: bool = True  # NHWC memory layout on CUDA (faster convolutions with AMP)
    compile: bool = False  # torch.compile the training step's network (pays off on long GPU runs)
    # Annealed-mean models (bins; palette with decode: annealed_mean): after training, pick the
    # decoding temperature from this list on the val split: the best val PSNR among those whose
    # colourfulness is within max_delta_colorfulness of the truth's (else the one that misses the
    # limits least; selection.choose). The epoch kept is chosen by the same rule.
    temperatures: list | None = None
    max_delta_colorfulness: float = 5.0
    # The same choice (selection.py) also asks for a val neutral chroma (the mean predicted chroma
    # of the pixels whose true chroma is below neutral_threshold: a colour cast on greys) of at most
    # max_neutral_chroma; null: no limit.
    max_neutral_chroma: float | None = None
    neutral_threshold: float = 5.0
    # bins models: prior corrections c (representations.BinClassification) swept with the
    # temperatures, e.g. [0, 0.5, 1]; null: the model's own representation_args.prior_correction
    prior_corrections: list | None = None
    # Models with a per-pixel confidence (bins, palette): at the end of training, the low-confidence
    # shrink (ab · min(c / c0, 1) ** γ) of the best checkpoint chosen on val from γ in shrink_gammas ×
    # c0 in shrink_thresholds by the rule above (shrink_choice.choose_on_val); null: none chosen, the
    # model's own representation_args.shrink_gamma (default 0: off)
    shrink_gammas: list | None = None
    shrink_thresholds: list = dataclasses.field(default_factory=lambda: [1.0])
    # ... and, with them, the mean pull β (ab − β · the image's mean ab) from these, e.g. [0.1, 0.2]
    # (β = 0 always competes); null: none chosen, the model's own representation_args.mean_pull (0)
    mean_pulls: list | None = None
    seed: int = 0
    deterministic: bool = True

    def check(self, key: str) -> None:
        _at_least(key, "epochs", self.epochs, 1)
        _at_least(key, "translate", self.translate, 0)
        _at_least(key, "warmup_epochs", self.warmup_epochs, 0.0)
        _at_least(key, "checkpoint_every", self.checkpoint_every, 0)
        _at_least(key, "nproc", self.nproc, 1)
        _at_least(key, "max_delta_colorfulness", self.max_delta_colorfulness, 0.0)
        if self.max_neutral_chroma is not None:
            _at_least(key, "max_neutral_chroma", self.max_neutral_chroma, 0.0)
        _above_zero(key, "neutral_threshold", self.neutral_threshold)
        if self.prior_corrections is not None and (not self.prior_corrections or not all(
                isinstance(c, (int, float)) and not isinstance(c, bool) and 0 <= c <= 1 for c in self.prior_corrections)):
            raise UserError(f"{key}.prior_corrections: expected a non-empty list of numbers in [0, 1], "
                            f"got {self.prior_corrections!r}")
        if self.prior_corrections is not None and self.temperatures is None:
            raise UserError(f"{key}.prior_corrections: swept with the temperatures; set train.temperatures too")
        if self.shrink_gammas is not None and (not self.shrink_gammas or not all(
                isinstance(g, (int, float)) and not isinstance(g, bool) and g >= 0 for g in self.shrink_gammas)):
            raise UserError(f"{key}.shrink_gammas: expected a non-empty list of numbers >= 0 (0: no shrink), "
                            f"got {self.shrink_gammas!r}")
        if self.mean_pulls is not None and (not self.mean_pulls or not all(
                isinstance(m, (int, float)) and not isinstance(m, bool) and 0 <= m < 1 for m in self.mean_pulls)):
            raise UserError(f"{key}.mean_pulls: expected a non-empty list of numbers in [0, 1) (0: no pull), "
                            f"got {self.mean_pulls!r}")
        if not self.shrink_thresholds or not all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t <= 1
                                                 for t in self.shrink_thresholds):
            raise UserError(f"{key}.shrink_thresholds: expected a non-empty list of numbers in (0, 1], "
                            f"got {self.shrink_thresholds!r}")
        if self.temperatures is not None and (not self.temperatures or not all(
                isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0 for t in self.temperatures)):
            raise UserError(f"{key}.temperatures: expected a non-empty list of numbers > 0, got {self.temperatures!r}")
        _at_least(key, "batch_size", self.batch_size, 1)
        _between(key, "lr", self.lr, 1e-8, 10.0)
        _at_least(key, "weight_decay", self.weight_decay, 0.0)
        _at_least(key, "num_workers", self.num_workers, 0)
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise UserError(f"{key}.device: expected auto, cpu, cuda or cuda:N, got {self.device!r}")


@dataclasses.dataclass(frozen=True)
class ModelParams:
    """models.NAME: which network predicts which colour representation, and their knobs."""

    network: str = "unet"
    representation: str = "ab"
    network_args: dict = dataclasses.field(default_factory=dict)
    representation_args: dict = dataclasses.field(default_factory=dict)
    class_loss_weight: float = 0.0  # α of Iizuka et al.'s loss MSE + α·CE(class), for networks with a class head
    train: dict = dataclasses.field(default_factory=dict)  # this model's own train.* values, e.g. {epochs: 3}

    def check(self, key: str) -> None:
        _at_least(key, "class_loss_weight", self.class_loss_weight, 0.0)
        parse_section(f"{key}.train", self.train, TrainParams)  # the same checks as the train section
        # network and representation names are checked against their registries by the train
        # stage (colorizer.check_names), which imports torch anyway; params validation does not.


@dataclasses.dataclass(frozen=True)
class EvaluateParams:
    """evaluate@MODEL: scoring on the test split."""

    batch_size: int = 64
    gallery: int = 6  # test images shown in the report's gallery
    seed: int = 0  # which test images the gallery shows
    photos: str | None = None  # a folder of colour photos, also colorized at full resolution and scored
    photo_size: int = 256  # the side photos and their colorizations are resized to for scoring
    working_size: int | None = None  # photos: the shorter side the model sees (null: the model's own)
    photos_shown: int = 6  # full-resolution photos shown in the report
    photos_min_chroma: float = 2.0  # photos whose mean Lab chroma is below this are already grey: skipped
    judge: bool = True  # ImageNet judges (semantic agreement, Fréchet distance): judge.py
    bootstrap_draws: int = 1000  # resamples of the test images behind each 95 % interval (0: none)
    neutral_threshold: float = 5.0  # neutral_chroma: pixels whose true Lab chroma is below this are neutral

    def check(self, key: str) -> None:
        _at_least(key, "batch_size", self.batch_size, 1)
        _at_least(key, "gallery", self.gallery, 0)
        _at_least(key, "photo_size", self.photo_size, 16)
        if self.working_size is not None:
            _at_least(key, "working_size", self.working_size, 8)
        _at_least(key, "photos_shown", self.photos_shown, 0)
        _at_least(key, "photos_min_chroma", self.photos_min_chroma, 0)
        _at_least(key, "bootstrap_draws", self.bootstrap_draws, 0)
        _above_zero(key, "neutral_threshold", self.neutral_threshold)


@dataclasses.dataclass(frozen=True)
class NeutralParams:
    """neutral@MODEL: how much colour a model paints on inputs that have none (neutral.py)."""

    count: int = 8  # synthetic grey textures of each kind (fractal, asphalt, concrete, brushed metal)
    size: int = 256  # their side in px; the photos prepare dropped as grey are reduced to this shorter side
    seed: int = 0  # the textures' random seed
    photos: int | None = 64  # at most this many of those dropped photos (a seeded choice); null: all
    working_size: int | None = None  # the shorter side the model sees (null: its own, as `chromalab colorize`)

    def check(self, key: str) -> None:
        _at_least(key, "count", self.count, 1)
        _at_least(key, "size", self.size, 16)
        if self.photos is not None:
            _at_least(key, "photos", self.photos, 0)
        if self.working_size is not None:
            _at_least(key, "working_size", self.working_size, 8)


@dataclasses.dataclass(frozen=True)
class VideoParams:
    """video: the stabiliser's knobs (video/stabilise.py; `colorize`'s film options default to
    them) and the made test clip the `video` stage measures them on (video/clip.py)."""

    strength: float = 0.8  # 0: each frame on its own; towards 1: colour carried longer along the motion
    tolerance: float = 6.0  # L units of change the motion leaves unexplained that still let colour be carried
    cut_lightness: float = 12.0  # L units: a pixel this far from its motion-compensated past is new
    cut_fraction: float = 0.5  # this share of new pixels makes a cut: nothing carried across it
    clip_width: int = 320  # the made clip: a pan and zoom over one photo, a cut, a pan over another
    clip_height: int = 240
    clip_fps: int = 24
    clip_frames: int = 36  # frames before the cut (two thirds as many after it)

    def check(self, key: str) -> None:
        if not 0 <= self.strength < 1:
            raise UserError(f"{key}.strength: must be at least 0 and below 1, got {self.strength}")
        _above_zero(key, "tolerance", self.tolerance)
        _above_zero(key, "cut_lightness", self.cut_lightness)
        _between(key, "cut_fraction", self.cut_fraction, 0.01, 1)
        _at_least(key, "clip_width", self.clip_width, 32)
        _at_least(key, "clip_height", self.clip_height, 32)
        _at_least(key, "clip_fps", self.clip_fps, 1)
        _at_least(key, "clip_frames", self.clip_frames, 3)


@dataclasses.dataclass(frozen=True)
class ReportParams:
    """report: which model the report recommends, and where MLflow registers it."""

    # Recommend the best test PSNR among models whose colourfulness is within this many units of
    # the truth's: a model that wins PSNR by painting everything sepia is not what a user wants.
    max_delta_colorfulness: float = 5.0
    registered_model: str = "chromalab"  # MLflow registered model; alias `champion` = the recommended one
    hero_images: int = 3  # rows of reports/hero.png (grey | recommended model | truth)

    def check(self, key: str) -> None:
        _at_least(key, "max_delta_colorfulness", self.max_delta_colorfulness, 0.0)
        _at_least(key, "hero_images", self.hero_images, 1)
        if not self.registered_model.strip() or "/" in self.registered_model or "@" in self.registered_model:
            raise UserError(f"{key}.registered_model: expected a plain MLflow model name, got {self.registered_model!r}")


SECTIONS: dict[str, type] = {
    "data": DataParams,
    "prepare": PrepareParams,
    "palette": PaletteParams,
    "train": TrainParams,
    "evaluate": EvaluateParams,
    "neutral": NeutralParams,
    "video": VideoParams,
    "report": ReportParams,
}
TOP_LEVEL_KEYS = set(SECTIONS) | {"league", "models"}


def _at_least(section, name, value, low):
    if value < low:
        raise UserError(f"{section}.{name}: must be at least {low}, got {value}")


def _above_zero(section, name, value):
    if not value > 0:
        raise UserError(f"{section}.{name}: must be above 0, got {value}")


def _between(section, name, value, low, high):
    if not low <= value <= high:
        raise UserError(f"{section}.{name}: must be between {low} and {high}, got {value}")


def _did_you_mean(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_type(key: str, value: Any, annotation) -> Any:
    """Check one value against its dataclass annotation; ints are accepted where floats are."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        if value not in typing.get_args(annotation):
            choices = ", ".join(repr(a) for a in typing.get_args(annotation))
            hint = _did_you_mean(value, typing.get_args(annotation)) if isinstance(value, str) else ""
            raise UserError(f"{key}: expected one of {choices}, got {value!r}{hint}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(annotation):
            return None
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(inner) == 1:
            return _check_type(key, value, inner[0])
        for alternative in inner:  # e.g. str | list: the first type the value is
            try:
                return _check_type(key, value, alternative)
            except UserError:
                continue
        names = " or ".join(getattr(a, "__name__", str(a)) for a in inner)
        raise UserError(f"{key}: expected {names}, got {value!r}")
    expected = origin or annotation
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is float and isinstance(value, str):
        try:  # YAML 1.1 reads 1e-3 (no dot) as a string; take it as the number it means
            return float(value)
        except ValueError:
            pass
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise UserError(f"{key}: expected an integer, got {value!r}")
    if not isinstance(value, expected):
        raise UserError(f"{key}: expected {expected.__name__}, got {value!r}")
    return value


def parse_section(key: str, values: dict | None, cls):
    """Build the dataclass `cls` from the mapping at `key`, rejecting unknown keys and bad values."""
    values = values or {}
    if not isinstance(values, dict):
        raise UserError(f"{key}: expected a mapping of parameters, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for name in values:
        if name not in fields:
            raise UserError(f"{key}.{name}: unknown parameter{_did_you_mean(name, fields)}")
    checked = {name: _check_type(f"{key}.{name}", v, hints[name]) for name, v in values.items()}
    obj = cls(**checked)
    obj.check(key)
    return obj


def load_params(path=PARAMS_FILE) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: params file not found")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({first_line(err)})") from None
    if not isinstance(params, dict):
        raise UserError(f"{path}: expected a mapping of sections")
    for key in params:
        if key not in TOP_LEVEL_KEYS:
            raise UserError(f"{path}: unknown section {key!r}{_did_you_mean(key, TOP_LEVEL_KEYS)}")
    return params


def section(params: dict, name: str):
    """The validated dataclass of one section of params.yaml."""
    return parse_section(name, params.get(name), SECTIONS[name])


def league(params: dict) -> list[str]:
    """The model names listed in `league`, each with its `models.NAME` entry."""
    names = params.get("league") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UserError(f"league: expected a list of model names, got {names!r}")
    models = params.get("models") or {}
    for name in names:
        if name == GREY:
            raise UserError(f"league: {GREY!r} is the built-in baseline, not a model to train")
        if name == RELEASED:
            raise UserError(f"league: {RELEASED!r} names the packaged released model's checks; rename that model")
        if name not in models:
            raise UserError(f"league: {name!r} has no entry under models{_did_you_mean(name, models)}")
    return names


def model_params(params: dict, name: str) -> ModelParams:
    models = params.get("models") or {}
    if name not in models:
        raise UserError(f"models.{name}: no such model in params.yaml{_did_you_mean(name, models)}")
    return parse_section(f"models.{name}", models[name], ModelParams)


def train_params_for(params: dict, name: str) -> TrainParams:
    """The train section with model `name`'s own overrides (models.NAME.train) applied: a league
    can give a slow network fewer epochs, or a fast one a longer schedule."""
    base = section(params, "train")
    overrides = model_params(params, name).train
    return parse_section(f"models.{name}.train", {**as_dict(base), **overrides}, TrainParams) if overrides else base


def as_dict(obj) -> dict:
    return dataclasses.asdict(obj)
