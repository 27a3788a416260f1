"""Colour representations: what a network predicts and how that becomes ab.

A representation is separate from the network that predicts it, so any architecture pairs with
any representation. Each one owns its number of output channels, its target encoding, its loss
and its decoding back to ab in Lab units. It is an nn.Module so that what it needs at decode time
(a palette, bin centres) travels inside the model's state_dict.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from chromalab import color
from chromalab.errors import UserError

_REGISTRY: dict[str, type] = {}


def register_representation(cls):
    _REGISTRY[cls.name] = cls
    return cls


def list_representations() -> list[str]:
    return sorted(_REGISTRY)


def create_representation(name: str, **args) -> "Representation":
    if name not in _REGISTRY:
        raise UserError(f"unknown representation {name!r}; known: {', '.join(list_representations())}")
    cls = _REGISTRY[name]
    accepted = inspect.signature(cls.__init__).parameters
    for key in args:
        if key not in accepted or key == "self":
            raise UserError(f"representation_args.{key}: the {name} representation has no such knob")
    return cls(**args)


def representation_args(name: str, args: dict, palette_dir) -> dict:
    """The user's knobs plus what the representation takes from the palette stage's outputs
    (k-means colours, gamut bins), so a checkpoint's config rebuilds it without data/."""
    if name not in _REGISTRY:
        raise UserError(f"unknown representation {name!r}; known: {', '.join(list_representations())}")
    return _REGISTRY[name].with_palette(dict(args), palette_dir)


class Representation(nn.Module):
    name: str
    channels: int

    @classmethod
    def with_palette(cls, args: dict, palette_dir) -> dict:
        """Add palette-derived constructor arguments to `args` (nothing, unless overridden)."""
        return args

    def target(self, L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Ground truth (Lab units, (B,1,H,W) and (B,2,H,W)) -> what the network is trained to output."""
        raise NotImplementedError

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, output: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
        """Network output -> ab in Lab units, (B, 2, H, W)."""
        raise NotImplementedError


@register_representation
class ABRegression(Representation):
    """ab regressed directly, scaled by 110 to [-1, 1], with MSE.

    `activation` squashes the output into range: tanh (Deep Koalarization; seed 004's sigmoid on
    a symmetric range is the same curve), sigmoid (Iizuka et al.: ab mapped to [0, 1]), or none
    (plain linear output, clipped at decode time).
    """

    name = "ab"
    channels = 2

    def __init__(self, activation: str = "tanh"):
        super().__init__()
        if activation not in ("tanh", "sigmoid", "none"):
            raise UserError(f"representation_args.activation: expected tanh, sigmoid or none, got {activation!r}")
        self.activation = activation

    def _squash(self, output):
        """Network output -> normalised ab in [-1, 1]."""
        if self.activation == "tanh":
            return torch.tanh(output)
        if self.activation == "sigmoid":
            return 2.0 * torch.sigmoid(output) - 1.0
        return output

    def target(self, L, ab):
        return color.normalize_ab(ab)

    def loss(self, output, target):
        scale = 0.25 if self.activation == "sigmoid" else 1.0  # MSE measured on [0, 1] as Iizuka et al.
        return scale * nn.functional.mse_loss(self._squash(output), target)

    def decode(self, output, L):
        return color.denormalize_ab(self._squash(output).clamp(-1.0, 1.0))
