"""Networks that map normalised L (B, 1, H, W) to a colour representation's channels.

Each file registers its factory with @register_model; importing this package imports them all.
"""

from chromalab.models.registry import create_model, list_models, register_model  # noqa: F401
from chromalab.models import unet  # noqa: F401  (registers itself)
