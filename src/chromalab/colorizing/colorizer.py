"""A Colorizer = a network + the colour representation it predicts: L in Lab units -> ab.

This is the object that is trained, checkpointed, logged to MLflow and used by `chromalab
colorize`. Its forward pads any input to the network's size multiple and crops back, so a model
trained on 64 px crops colorizes a photo of any shape.

What a network may offer beyond forward(x) -> outputs (see models/registry.py):
- `num_classes > 0` and `forward_with_classes(x)` -> (outputs, class logits): a classification head
  trained beside the colours (Iizuka et al.);
- `precompute(x)` and `forward(x, precomputed=...)`: per-image features from a frozen pre-trained
  network, which training computes once per dataset (Deep Koalarization's embeddings);
  `precompute_mirrored = True` when they are spatial, so a mirrored image needs its own;
- `output_stride` s > 1: outputs at 1/s of the input (Zhang et al. predicted their bins at 1/4).
  The loss then compares them with the truth at that size (area-averaged) and the decoded ab is
  upsampled bilinearly to the input: colour is smooth, the detail comes from the input's own L;
- `parameter_groups()` -> [(parameters, learning-rate scale)]: parts that learn more slowly.

A representation that predicts a distribution (bins, palette) also gives a per-pixel confidence
(`confidence`, `forward_with_confidence`), taken at the outputs' resolution and upsampled as the
ab is; its shrink rule (confidence.py), when on, is inside its decoding and so inside `decode`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

import logging

from chromalab.colorizing import representations
from chromalab.colorizing.representations import PULL_KNOBS, create_representation, list_representations, pulls_on
from chromalab.core import color
from chromalab.core.config import GREY, ModelParams
from chromalab.core.errors import UserError
from chromalab.models import create_model, list_models, registry

log = logging.getLogger(__name__)


def check_names(key: str, network: str, representation: str) -> None:
    """A one-line error naming `key` (e.g. models.unet) when the network or the representation is
    not registered."""
    if network not in list_models():
        raise UserError(f"{key}.network: unknown network {network!r}; known: {', '.join(list_models())}")
    if representation not in list_representations():
        raise UserError(f"{key}.representation: unknown representation {representation!r}; "
                        f"known: {', '.join(list_representations())}")


class Colorizer(nn.Module):
    runs_network = True

    def __init__(self, network: str, representation: str, network_args: dict | None = None,
                 representation_args: dict | None = None):
        super().__init__()
        self.representation = create_representation(representation, **(representation_args or {}))
        self.network = create_model(network, out_channels=self.representation.channels, **(network_args or {}))
        self.size_multiple = getattr(self.network, "size_multiple", 1)

    @property
    def num_classes(self) -> int:
        return getattr(self.network, "num_classes", 0)

    @property
    def has_confidence(self) -> bool:
        """Whether the model says how sure it is of each pixel (a distribution: bins, palette)."""
        return self.representation.has_confidence

    def outputs(self, L: torch.Tensor, **extra) -> torch.Tensor:
        """Raw network outputs for L (B, 1, H, W) in Lab units; H and W must fit size_multiple."""
        return self.network(color.normalize_l(L), **extra)

    def outputs_and_classes(self, L: torch.Tensor, **extra):
        """(outputs, class logits or None): the class head runs only where there is one."""
        if self.num_classes:
            return self.network.forward_with_classes(color.normalize_l(L), **extra)
        return self.outputs(L, **extra), None

    def loss(self, out: torch.Tensor, L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """The representation's loss of outputs `out` against the truth (L, ab in Lab units), taken
        at the outputs' resolution."""
        if out.shape[-2:] != ab.shape[-2:]:
            L, ab = (F.interpolate(t.float(), size=out.shape[-2:], mode="area") for t in (L, ab))
        return self.representation.loss(out.float(), self.representation.target(L, ab))

    def decode(self, out: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
        """Outputs -> ab (B, 2, H, W) in Lab units at L's resolution (upsampled bilinearly)."""
        small = L if out.shape[-2:] == L.shape[-2:] else F.interpolate(L.float(), size=out.shape[-2:], mode="area")
        ab = self.representation.decode(out, small)
        if ab.shape[-2:] != L.shape[-2:]:
            ab = F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)
        return ab

    def confidence(self, out: torch.Tensor, L: torch.Tensor, measure: str | None = None) -> torch.Tensor:
        """Outputs -> the per-pixel confidence (B, 1, H, W) in [0, 1] at L's resolution (computed at
        the outputs' resolution, upsampled bilinearly as decode upsamples the ab). A UserError for
        a representation without one (ab, rgb)."""
        conf = self.representation.confidence(out, measure)
        if conf is None:
            raise UserError(f"the {self.representation.name} representation gives no per-pixel confidence "
                            "(only a distribution does: bins, palette)")
        if conf.shape[-2:] != L.shape[-2:]:
            conf = F.interpolate(conf, size=L.shape[-2:], mode="bilinear", align_corners=False).clamp(0.0, 1.0)
        return conf

    def _pad(self, L: torch.Tensor) -> torch.Tensor:
        """L padded at the bottom and right to the network's size multiple."""
        h, w = L.shape[-2:]
        m = self.size_multiple
        pad_h, pad_w = (-h) % m, (-w) % m
        if pad_h or pad_w:
            # Reflection keeps image statistics at the border; replicate covers pads wider than the image.
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            L = nn.functional.pad(L, (0, pad_w, 0, pad_h), mode=mode)
        return L

    def padded_outputs(self, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(outputs, L padded to the size multiple) for L at any H and W: what forward decodes,
        for a caller that decodes (or takes the confidence) itself; crop to [..., :H, :W]."""
        L = self._pad(L)
        return self.outputs(L), L

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        """ab (B, 2, H, W) in Lab units for L (B, 1, H, W) in Lab units, at any H and W."""
        h, w = L.shape[-2:]
        out, L = self.padded_outputs(L)
        return self.decode(out, L)[..., :h, :w]

    def forward_with_confidence(self, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ab (B, 2, H, W), confidence (B, 1, H, W)) for L, the network run once; as forward."""
        h, w = L.shape[-2:]
        out, L = self.padded_outputs(L)
        return self.decode(out, L)[..., :h, :w], self.confidence(out, L)[..., :h, :w]


def batch_loss(colorizer: "Colorizer", batch: dict, class_loss_weight: float, extra: dict, outputs=None):
    """The representation's loss, plus α·CE(class) where the network has a class head and the
    batch has labels (Iizuka et al.). `outputs` computes the network's outputs (the colorizer's
    own method, or its DistributedDataParallel wrapper)."""
    L, ab, label = batch["L"], batch["ab"], batch["label"]
    out, logits = (outputs if outputs is not None else colorizer.outputs_and_classes)(L, **extra)
    loss = colorizer.loss(out, L, ab)
    labelled = label >= 0
    if logits is not None and class_loss_weight > 0 and labelled.any():
        loss = loss + class_loss_weight * nn.functional.cross_entropy(logits.float()[labelled], label[labelled])
    return loss, out


def build_colorizer(model: ModelParams, summary: dict, palette_dir) -> tuple[Colorizer, dict, dict]:
    """The Colorizer a model's params describe, with what the data decides filled in: the palette
    for palette/bins representations, the number of classes for a network with a class head."""
    network_args = dict(model.network_args)
    if "num_classes" in registry.knobs(model.network):
        network_args["num_classes"] = len(summary.get("labels", []))
        if not network_args["num_classes"]:
            log.info("%s: the data has no class labels, so the classification head is disabled", model.network)
    rep_args = representations.representation_args(model.representation, model.representation_args, palette_dir)
    return Colorizer(model.network, model.representation, network_args, rep_args), network_args, rep_args


class GreyBaseline(nn.Module):
    """The baseline every model must beat: ab = 0, the grey input itself. It has a Colorizer's
    inference interface (forward(L) -> ab at any size), so evaluation and colorizing treat it as
    one more model; it runs no network, so it has no speed to report."""

    name = GREY
    size_multiple = 1
    runs_network = False
    has_confidence = False

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        return L.new_zeros((L.shape[0], 2, *L.shape[2:]))


def disable_shrink(model: nn.Module) -> bool:
    """Turn the representation's pulls towards neutral off for this model object (`colorize
    --no-shrink`): the low-confidence shrink and the mean pull; whether either was on."""
    rep = getattr(model, "representation", None)
    was_on = pulls_on(rep)
    if was_on:
        for knob in PULL_KNOBS:
            setattr(rep, knob, 0.0)
    return was_on


def describe_shrink(model: nn.Module) -> str | None:
    """The pulls towards neutral in one phrase when one is on ("low-confidence shrink γ=1 below
    entropy confidence 0.5, mean pull 0.15"), else None."""
    rep = getattr(model, "representation", None)
    parts = []
    if getattr(rep, "shrink_gamma", 0.0) > 0:
        parts.append(f"low-confidence shrink γ={rep.shrink_gamma:g} below {rep.confidence_measure} confidence "
                     f"{rep.shrink_threshold:g}")
    if getattr(rep, "mean_pull", 0.0) > 0:
        parts.append(f"mean pull {rep.mean_pull:g}")
    return ", ".join(parts) or None


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
