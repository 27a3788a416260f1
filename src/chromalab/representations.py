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


class Representation(nn.Module):
    name: str
    channels: int

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
    """ab regressed directly, scaled by 110 to [-1, 1] and squashed by tanh (MSE loss).

    tanh on the symmetric range is seed 004's sigmoid on [0, 1]: the same curve, shifted.
    `activation: none` gives the plain linear output with clipping at decode time instead.
    """

    name = "ab"
    channels = 2

    def __init__(self, activation: str = "tanh"):
        super().__init__()
        if activation not in ("tanh", "none"):
            raise UserError(f"representation_args.activation: expected tanh or none, got {activation!r}")
        self.activation = activation

    def _squash(self, output):
        return torch.tanh(output) if self.activation == "tanh" else output

    def target(self, L, ab):
        return color.normalize_ab(ab)

    def loss(self, output, target):
        return nn.functional.mse_loss(self._squash(output), target)

    def decode(self, output, L):
        return color.denormalize_ab(self._squash(output).clamp(-1.0, 1.0))
