"""The galleries: which picture of reports/eval goes in which cell, for the page, the hero picture
and gallery.png (grey input | each model | ground truth)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from PIL import Image

from chromalab.core.config import GREY
from chromalab.core.paths import CONFIDENCE_SUFFIX
from chromalab.report.records import EVAL_SUBDIR

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


def collect_gallery(names: list[str], reports_dir: Path, kind: GalleryKind = TEST_IMAGES, warn: bool = True,
                    confidence: bool = True) -> Gallery:
    """The gallery's cells: grey input, each model (in `names` order) and the truth; with
    `confidence`, a model whose evaluation wrote confidence maps (NN.confidence.png) gets a
    column of them right after its own."""
    eval_rel = Path(EVAL_SUBDIR)
    # (header, folder, suffix): a cell is folder/<picture's stem><suffix>, or folder/<picture> for "".
    columns = [("input (grey)", eval_rel / GREY / kind.folder, "")]
    for name in names:
        if name == GREY:
            continue
        folder = eval_rel / name / kind.folder
        columns.append((name, folder, ""))
        if confidence and any((reports_dir / folder).glob(f"*{CONFIDENCE_SUFFIX}")):
            columns.append((f"{name} confidence", folder, CONFIDENCE_SUFFIX))
    columns.append(("ground truth", eval_rel / GREY / kind.truth, ""))
    if not kind.keep_empty_columns:
        columns = [c for c in columns if (reports_dir / c[1]).is_dir()]
        if not any(h not in ("input (grey)", "ground truth") for h, _, _ in columns):
            return Gallery([], [], PHOTO_WIDTH, pixelated=False)

    present = {
        folder: {p.name for p in (reports_dir / folder).glob("*")
                 if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}
        for _, folder, _ in columns
    }
    # One row per picture; a confidence map is a cell of its picture's row, not a row of its own.
    pictures = {name for names in present.values() for name in names if not name.endswith(CONFIDENCE_SUFFIX)}
    rows = []
    for file_name in sorted(pictures, key=_image_order):
        cells = []
        for _, folder, suffix in columns:
            wanted = f"{Path(file_name).stem}{suffix}" if suffix else file_name
            cells.append((folder / wanted).as_posix() if wanted in present[folder] else None)
        rows.append((file_name, cells))
        for (_, folder, suffix), cell in zip(columns, cells):
            if cell is None and warn:
                log.warning("gallery: %s has no %s", reports_dir / folder,
                            f"{Path(file_name).stem}{suffix}" if suffix else file_name)
    headers = [header for header, _, _ in columns]
    if kind is PHOTOS:
        return Gallery(headers, rows, PHOTO_WIDTH, pixelated=False)
    first = next((c for _, cells in rows for c in cells if c), None)
    width = display_width(reports_dir / first, GALLERY_WIDTH) if first else GALLERY_WIDTH
    return Gallery(headers, rows, width)
