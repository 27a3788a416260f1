"""Networks that map normalised L (B, 1, H, W) to a colour representation's channels.

Every module in this package registers its networks with @register_model when imported; this
file imports them all, so adding a network is adding a file (as in timm).
"""

import importlib
import pkgutil

from chromalab.models.registry import create_model, list_models, register_model  # noqa: F401

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "registry" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
