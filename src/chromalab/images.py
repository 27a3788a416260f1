"""Reading photos as a user hands them over: any PIL mode, EXIF orientation, alpha, 16-bit."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from chromalab.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def is_image_file(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greys: scale to 8 bits by the mode's range, not by clipping.
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode != "F" and arr.max() > 255 else max(arr.max(), 1.0)
        img = Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels have no colour of their own: show them on white, as a viewer does.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def load_rgb(path) -> np.ndarray:
    """Decode an image file to uint8 RGB (H, W, 3), upright as EXIF says; a bad file is a UserError."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            return np.asarray(_to_rgb(img), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except Image.DecompressionBombError as err:
        raise UserError(f"{path}: too many pixels to decode safely ({err})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"{path}: not a readable image ({err})") from None


def save_png(path, rgb: np.ndarray) -> None:
    """Write uint8 RGB as PNG atomically (a killed run never leaves half a picture)."""
    from chromalab.atomic import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")
