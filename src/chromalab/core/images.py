"""Reading photos as a user hands them over: any PIL mode, EXIF orientation, alpha, 16-bit."""

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from chromalab.core.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

# The decompression-bomb guard. Colorizing holds about 33 bytes per pixel (the uint8 photo and its
# output, two float32 planes of L; the rest works in strips: docs/benchmarks.md, a 12 MP photo), so
# 40 megapixels, more than most cameras take, needs some 1.3 GB beside torch and the model; PIL's
# default (a warning past 89 MP, an error only past 179 MP) would let one mistaken or hostile file
# exhaust a laptop's memory, and a decoder's own peak is larger still. A larger photo is refused
# with a message saying so: downscale it first.
MAX_PIXELS = 40_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


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


def open_image(path) -> Image.Image:
    """Image.open (it reads the header only) with MAX_PIXELS as a hard limit: PIL merely warns
    between MAX_IMAGE_PIXELS and twice that, and raises DecompressionBombError only past it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except Image.DecompressionBombWarning as err:
            raise Image.DecompressionBombError(str(err)) from None


def load_rgb(path) -> np.ndarray:
    """Decode an image file to uint8 RGB (H, W, 3), upright as EXIF says; a bad file is a UserError."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise UserError(f"{path}: empty file (0 bytes), not an image")
        with open_image(path) as img:
            img = ImageOps.exif_transpose(img)
            return np.asarray(_to_rgb(img), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except Image.DecompressionBombError as err:
        raise UserError(f"{path}: too many pixels to decode safely ({err}); "
                        f"downscale it to at most {MAX_PIXELS // 1_000_000} megapixels") from None
    except UnidentifiedImageError:
        # PIL's own message only repeats the path.
        raise UserError(f"{path}: not an image PIL can read (unknown format or damaged header)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise UserError(f"{path}: not a readable image ({str(err).replace(str(path), path.name)})") from None


def save_image(path, rgb: np.ndarray, image_format: str = "png", quality: int = 92, compress_level: int = 6) -> None:
    """Write uint8 RGB atomically as PNG (lossless, zlib level `compress_level`), JPEG (full-
    resolution colour: no chroma subsampling, the colour being the point) or WebP, at `quality`."""
    from chromalab.core.atomic import atomic_path

    if image_format == "png":
        save_png(path, rgb, compress_level)
        return
    options = {"jpg": dict(format="JPEG", quality=quality, subsampling=0), "webp": dict(format="WEBP", quality=quality)}
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, **options[image_format])


def save_png(path, rgb: np.ndarray, compress_level: int = 6) -> None:
    """Write uint8 RGB as PNG atomically (a killed run never leaves half a picture); zlib level
    0-9, PIL's default 6."""
    from chromalab.core.atomic import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG", compress_level=compress_level)
