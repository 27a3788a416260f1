"""Models register themselves by name, as timm's create_model does: adding a model is adding a file."""

from __future__ import annotations

import inspect
from typing import Callable

from chromalab.errors import UserError

_REGISTRY: dict[str, Callable] = {}


def register_model(fn: Callable) -> Callable:
    """Register a factory `fn(in_channels, out_channels, **network_args) -> nn.Module` by its name."""
    if fn.__name__ in _REGISTRY:
        raise ValueError(f"model {fn.__name__!r} registered twice")
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    import chromalab.models  # noqa: F401  (makes sure every model file has registered)

    return sorted(_REGISTRY)


def create_model(name: str, out_channels: int, **network_args):
    """Build the network `name`; unknown names and unknown or mistyped knobs are user errors."""
    if name not in list_models():
        raise UserError(f"unknown network {name!r}; known: {', '.join(list_models())}")
    factory = _REGISTRY[name]
    accepted = inspect.signature(factory).parameters
    for key in network_args:
        if key not in accepted:
            knobs = ", ".join(k for k in accepted if k not in ("in_channels", "out_channels"))
            raise UserError(f"network_args.{key}: {name} has no such knob; it takes: {knobs}")
    return factory(in_channels=1, out_channels=out_channels, **network_args)
