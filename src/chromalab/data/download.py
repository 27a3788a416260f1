"""The download stage: copy the source's photos into data/raw/images and describe them in
manifest.csv (plus rejected.csv listing files that would not decode).

The whole folder is built beside the target and renamed into place at the end, so an interrupted
run leaves nothing that looks complete.
"""

from __future__ import annotations

import logging
import shutil
import struct
import sys
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from chromalab.core.atomic import atomic_path, write_text
from chromalab.core.config import DataParams
from chromalab.core.digest import sha256_file
from chromalab.core.errors import UserError
from chromalab.core.images import open_image
from chromalab.data import sources
from chromalab.data.manifest import to_csv, write_manifest

log = logging.getLogger(__name__)

IMAGES = "images"
MANIFEST = "manifest.csv"
REJECTED = "rejected.csv"
REJECTED_COLUMNS = ["path", "reason"]

# What a corrupt, truncated or hostile file can make PIL raise (UnidentifiedImageError is an
# OSError; PNG verify raises SyntaxError; DecompressionBombError is its own Exception).
DECODE_ERRORS = (
    OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError,
)


class BadImage(Exception):
    """A file PIL cannot decode; its message is the reason written to rejected.csv."""


def image_size(path: Path) -> tuple[int, int]:
    """The stored pixel size (width, height), after checking the file decodes completely and is
    within the decompression-bomb guard (images.MAX_PIXELS)."""
    try:
        with open_image(path) as image:
            image.verify()
        # verify() leaves the image unusable and does not notice a truncated JPEG: reopen and
        # decode the pixels.
        with open_image(path) as image:
            image.load()
            return image.size
    except UnidentifiedImageError:
        # PIL's own message names the temporary copy, which means nothing once the run is over.
        raise BadImage("UnidentifiedImageError: not an image format PIL recognises") from None
    except DECODE_ERRORS as err:
        reason = str(err).replace(str(path), path.name).splitlines()[0] if str(err) else ""
        raise BadImage(f"{type(err).__name__}: {reason}") from None


def _store(candidate: sources.Candidate, images: Path) -> Path:
    target = images / f"{candidate.source_id}{candidate.path.suffix.lower()}"
    if candidate.write:
        candidate.write(target)
    else:
        shutil.copyfile(candidate.path, target)
    return target


def _copy_images(listing: sources.Listing, out: Path) -> tuple[list[dict], list[dict], int]:
    """Copy, verify and deduplicate; return manifest rows, rejected rows and duplicates dropped."""
    images = out / IMAGES
    images.mkdir()
    rows, rejected, seen = [], [], {}
    progress = tqdm(listing.candidates, desc="images", unit="img", disable=not sys.stderr.isatty())
    for candidate in progress:
        origin = candidate.origin or str(candidate.path)
        # Check the copy, not the original: the manifest then describes exactly the stored bytes.
        stored = _store(candidate, images)
        digest = sha256_file(stored)
        if digest in seen:
            log.debug("%s duplicates %s; kept once", origin, seen[digest])
            stored.unlink()
            continue
        try:
            width, height = image_size(stored)
        except BadImage as err:
            log.warning("rejected %s: %s", origin, err)
            rejected.append({"path": origin, "reason": str(err)})
            stored.unlink()
            continue
        seen[digest] = origin
        rows.append({
            "path": stored.relative_to(out).as_posix(),
            "source_id": candidate.source_id,
            "label": candidate.label,
            "width": width,
            "height": height,
            "sha256": digest,
            "split": candidate.split,
            "dataset": candidate.dataset,
        })
    duplicates = len(listing.candidates) - len(rows) - len(rejected)
    return rows, rejected, duplicates


def download(params: DataParams, out_dir) -> dict:
    """Fill out_dir with images/, manifest.csv and rejected.csv; return a summary of counts."""
    out_dir = Path(out_dir)
    listing = sources.list_candidates(params)
    with atomic_path(out_dir, is_dir=True) as tmp:
        rows, rejected, duplicates = _copy_images(listing, tmp)
        if not rows:
            raise UserError(
                f"{params.source} source: none of {len(listing.candidates)} image file(s) could "
                f"be decoded (see the warnings above)"
            )
        write_manifest(tmp / MANIFEST, rows)
        # Written even when empty, so the stage's output has the same shape every run.
        write_text(tmp / REJECTED, to_csv(rejected, REJECTED_COLUMNS))
    summary = {
        "source": params.source,
        "images": len(rows),
        "skipped": listing.skipped,
        "rejected": len(rejected),
        "duplicates": duplicates,
    }
    log.info(
        "download: %d images, %d skipped non-image files, %d rejected, %d duplicates -> %s",
        summary["images"], summary["skipped"], summary["rejected"], summary["duplicates"], out_dir,
    )
    return summary
