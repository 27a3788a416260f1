"""Models register themselves by name, as timm's create_model does: adding a model is adding a file."""

from __future__ import annotations

import inspect
from typing import Callable

from chromalab.core.errors import UserError

_REGISTRY: dict[str, Callable] = {}


def register_model(name: str | Callable):
    """Register a network: `@register_model("unet")` on its nn.Module class, whose __init__
    (in_channels, out_channels, **network_args) says its knobs and their defaults once; or
    `@register_model` on a factory function of that signature, registered by its own name."""
    if callable(name):
        return _register(name.__name__, name)
    return lambda target: _register(name, target)


def _register(name: str, target: Callable) -> Callable:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} registered twice")
    _REGISTRY[name] = target
    return target


def list_models() -> list[str]:
    # Every model file has registered: importing this module imported its package, chromalab.models,
    # whose __init__ imports them all.
    return sorted(_REGISTRY)


def knobs(name: str) -> list[str]:
    """The knobs a network takes; the channels are set by the pipeline (L in, the
    representation's channels out), not by params."""
    params = inspect.signature(_REGISTRY[name]).parameters  # a class: its __init__'s, without self
    return [k for k in params if k not in ("in_channels", "out_channels")]


def create_model(name: str, out_channels: int, **network_args):
    """Build the network `name`; unknown names and unknown or mistyped knobs are user errors."""
    if name not in list_models():
        raise UserError(f"unknown network {name!r}; known: {', '.join(list_models())}")
    accepted = knobs(name)
    for key in network_args:
        if key not in accepted:
            raise UserError(f"network_args.{key}: {name} has no such knob; it takes: {', '.join(accepted)}")
    try:
        return _REGISTRY[name](in_channels=1, out_channels=out_channels, **network_args)
    except (TypeError, ValueError) as err:  # e.g. base_channels: "wide"
        raise UserError(f"network_args of {name} {network_args}: {err}") from None
