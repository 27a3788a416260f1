"""The galleries: which picture of reports/eval goes in which cell, for the page, the hero picture
and gallery.png (grey input | each model | ground truth)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from PIL import Image

from chromalab.config import GREY
from chromalab.records import EVAL_SUBDIR

log = logging.getLogger(__name__)

GALLERY_WIDTH = 128  # px the gallery pictures are scaled up to (by a whole factor)


@dataclasses.dataclass(frozen=True)
class Gallery:
    """Which picture goes in which cell: paths relative to reports/, None where one is missing."""

    headers: list[str]
    rows: list[tuple[str, list[str | None]]]  # (image file name, one path per header)
    width: int  # display width in px
    pixelated: bool = True  # small crops scaled up by a whole factor; full-size photos are not


@dataclasses.dataclass(frozen=True)
class GalleryKind:
    """Where one gallery's pictures live: eval/NAME/<folder>, and the truth in eval/grey/<truth>."""

    folder: str
    truth: str
    keep_empty_columns: bool  # the test gallery shows a missing model as missing; photos are optional


TEST_IMAGES = GalleryKind("gallery", "truth", keep_empty_columns=True)
# Full-resolution photos (evaluate.photos): eval/NAME/photos/, the originals in eval/grey/photos_truth/.
PHOTOS = GalleryKind("photos", "photos_truth", keep_empty_columns=False)
PHOTO_WIDTH = 320


def _image_order(file_name: str):
    stem = Path(file_name).stem
    # Numeric order, so 100.png follows 99.png.
    return (0, int(stem), file_name) if stem.isdigit() else (1, 0, file_name)


def display_width(path: Path, target: int) -> int:
    """Scale small pictures up by a whole factor: pixelated scaling stays even."""
    try:
        with Image.open(path) as img:
            width = img.width
    except OSError:
        return target
    return width * max(1, target // width)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def collect_gallery(names: list[str], reports_dir: Path, kind: GalleryKind = TEST_IMAGES, warn: bool = True) -> Gallery:
    eval_rel = Path(EVAL_SUBDIR)
    folders = [("input (grey)", eval_rel / GREY / kind.folder)]
    folders += [(name, eval_rel / name / kind.folder) for name in names if name != GREY]
    folders.append(("ground truth", eval_rel / GREY / kind.truth))
    if not kind.keep_empty_columns:
        folders = [(h, f) for h, f in folders if (reports_dir / f).is_dir()]
        if not any(h not in ("input (grey)", "ground truth") for h, _ in folders):
            return Gallery([], [], PHOTO_WIDTH, pixelated=False)

    present = {
        folder: {p.name for p in (reports_dir / folder).glob("*")
                 if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}
        for _, folder in folders
    }
    files = sorted(set().union(*present.values()), key=_image_order)
    rows = []
    for file_name in files:
        cells = [
            (folder / file_name).as_posix() if file_name in present[folder] else None
            for _, folder in folders
        ]
        rows.append((file_name, cells))
        for (_, folder), cell in zip(folders, cells):
            if cell is None and warn:
                log.warning("gallery: %s has no %s", reports_dir / folder, file_name)
    if kind is PHOTOS:
        return Gallery([header for header, _ in folders], rows, PHOTO_WIDTH, pixelated=False)
    first = next((c for _, cells in rows for c in cells if c), None)
    width = display_width(reports_dir / first, GALLERY_WIDTH) if first else GALLERY_WIDTH
    return Gallery([header for header, _ in folders], rows, width)
