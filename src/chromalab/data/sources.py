"""Where raw photos come from: each source lists candidate image files with an id and a label.

A source only lists files; download decodes, deduplicates and copies them. Sources return a
Listing rather than yielding lazily because download reports how many non-image files were
skipped, and a folder with no images must fail before anything is written.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from chromalab.config import DataParams
from chromalab.errors import UserError
from chromalab.images import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)


# The real colour photographs shipped inside installed dependencies, as (package, folder inside
# the package, file names). Everything else those folders hold is excluded on purpose: greyscale
# images and textures (camera, moon, brick, grass, gravel, text, page, coins, horse), clip-art and
# logos (logo, color, chessboard_*, no_time_for_that_tiny), microscopy, medical and astronomy
# images (cell, ihc, retina, microaneurysms, phantom, hubble_deep_field), synthetic charts and
# data files, and motorcycle_right, the stereo twin of motorcycle_left (the same scene twice
# would leak across splits).
BUILTIN = (
    ("skimage", "data", ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
                         "motorcycle_left.png")),
    ("sklearn", "datasets/images", ("china.jpg", "flower.jpg")),
    ("matplotlib", "sample_data", ("grace_hopper.jpg",)),
)


class Candidate(NamedTuple):
    path: Path  # the file to copy
    source_id: str  # unique within a listing; becomes the stored file's name
    label: str  # class label, '' if none
    split: str = ""  # a split the source publishes (train/val/test), '' if none


class Listing(NamedTuple):
    candidates: list[Candidate]
    skipped: int  # non-image files passed over


def _package_dir(package: str) -> Path:
    """An installed package's folder, found without importing it (skimage is slow to import)."""
    if package == "matplotlib":
        # Its data can be relocated (MATPLOTLIBDATA, distro packages): ask matplotlib itself.
        import matplotlib

        return Path(matplotlib.get_data_path())
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise UserError(f"builtin source: package {package!r} is not installed")
    return Path(spec.origin).parent


def builtin() -> Listing:
    candidates = []
    for package, folder, names in BUILTIN:
        base = _package_dir(package) / folder
        for name in names:
            path = base / name
            if not path.is_file():
                raise UserError(f"builtin source: {path} not found ({package} version changed?)")
            candidates.append(Candidate(path, Path(name).stem, ""))
    return Listing(candidates, skipped=0)


def _walk_files(root: Path) -> list[Path]:
    """Every file under root, relative to it, in sorted order (symlinked folders not followed)."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        found += [Path(folder, name).relative_to(root) for name in files]
    return sorted(found, key=lambda p: p.as_posix())


PUBLISHED_SPLITS = {"train", "val", "test"}


def _has_split_folders(rels: list[Path]) -> bool:
    """True when every image sits under a train/, val/ or test/ folder (an ImageFolder-style
    dataset such as CIFAR-10's train/<class>/ and test/<class>/)."""
    tops = {rel.parts[0] for rel in rels if len(rel.parts) > 1}
    return bool(tops) and tops <= PUBLISHED_SPLITS and all(len(rel.parts) > 1 for rel in rels)


def _folder_candidate(root: Path, rel: Path, split_folders: bool) -> Candidate:
    parts = rel.parts[1:] if split_folders else rel.parts
    label = parts[0] if len(parts) > 1 else ""
    source_id = rel.with_suffix("").as_posix().replace("/", "__")
    return Candidate(root / rel, source_id, label, rel.parts[0] if split_folders else "")


def folder(path: str) -> Listing:
    """Images under a directory tree; the first-level sub-folder a file sits in is its label.

    A tree whose first level is train/, val/ or test/ publishes its split: that level is the
    split, the next one the label (prepare keeps a published test split as it is)."""
    root = Path(path).expanduser()
    if not root.exists():
        raise UserError(f"data.path: {root}: folder not found")
    if not root.is_dir():
        raise UserError(f"data.path: {root}: is a file, expected a folder of photos")
    candidates, owners = [], {}
    files = _walk_files(root)
    images = [rel for rel in files if rel.suffix.lower() in IMAGE_EXTENSIONS]
    skipped = len(files) - len(images)
    split_folders = _has_split_folders(images)
    for rel in images:
        candidate = _folder_candidate(root, rel, split_folders)
        # a/b.jpg and a/b.png (or a__b.jpg) would share an id: refuse rather than guess.
        if candidate.source_id in owners:
            raise UserError(
                f"{root}: {owners[candidate.source_id]} and {rel.as_posix()} would share the id "
                f"{candidate.source_id!r}; rename one"
            )
        owners[candidate.source_id] = rel.as_posix()
        candidates.append(candidate)
    if skipped:
        log.info("skipped %d non-image file(s) in %s", skipped, root)
    if not candidates:
        extensions = " ".join(sorted(IMAGE_EXTENSIONS))
        raise UserError(f"data.path: {root}: no image files found (looked for {extensions})")
    return Listing(candidates, skipped)


def keep_classes(listing: Listing, classes: list[str]) -> Listing:
    """Only the images of the named classes (seed 000 trained on one class, e.g. deer)."""
    known = sorted({c.label for c in listing.candidates} - {""})
    unknown = [c for c in classes if c not in known]
    if unknown:
        raise UserError(f"data.classes: {', '.join(map(repr, unknown))} not among the source's classes "
                        f"({', '.join(known) or 'it has none'})")
    wanted = set(classes)
    return Listing([c for c in listing.candidates if c.label in wanted], listing.skipped)


def subset(listing: Listing, limit: int, seed: int) -> Listing:
    """A seeded random subset of `limit` images, kept in listing order (the same params always
    give the same images)."""
    if limit >= len(listing.candidates):
        return listing
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(listing.candidates), size=limit, replace=False))
    return Listing([listing.candidates[i] for i in keep], listing.skipped)


def list_candidates(params: DataParams) -> Listing:
    listing = folder(params.path) if params.source == "folder" else builtin()
    if params.classes:
        listing = keep_classes(listing, params.classes)
    return subset(listing, params.limit, params.seed) if params.limit else listing
