"""Where raw photos come from: each source lists candidate image files with an id and a label.

A source only lists files; download decodes, deduplicates and copies them. Sources return a
Listing rather than yielding lazily because download reports how many non-image files were
skipped, and a folder with no images must fail before anything is written.

Public datasets (data/public.py) are fetched into the download cache and verified (fetch.py),
archives are unpacked there safely (archives.py), and the unpacked files are listed like a
folder; CIFAR-10's images live in pickled arrays (data/cifar10.py) and are written on demand.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import tarfile
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from chromalab.core.config import DataParams, dataset_names
from chromalab.core.digest import sha256_file
from chromalab.core.errors import UserError
from chromalab.core.images import IMAGE_EXTENSIONS, save_png
from chromalab.data import archives, fetch
from chromalab.data import cifar10 as cifar10_format
from chromalab.data import public

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
    path: Path  # the file to copy (its suffix is kept)
    source_id: str  # unique within a listing; becomes the stored file's name
    label: str  # class label, '' if none
    split: str = ""  # a split the source publishes (train/val/test), '' if none
    origin: str = ""  # how rejected.csv names it when `path` means nothing to a user ('' = path)
    write: Callable[[Path], None] | None = None  # writes the file when there is none to copy
    dataset: str = ""  # which of several folders/archives it came from ('' = the only one)


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


def folders(paths: list[str]) -> Listing:
    """Several folders or archives, each a dataset named after it (config.dataset_name): its
    photos carry that name, and their ids are prefixed with it so two datasets never share one.
    prepare splits each dataset on its own, so val and test hold photos of every one."""
    candidates, skipped = [], 0
    for name, path in zip(dataset_names(paths), paths):
        listing = folder(path)
        skipped += listing.skipped
        candidates += [c._replace(source_id=f"{name}__{c.source_id}", dataset=name) for c in listing.candidates]
    return Listing(candidates, skipped)


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
    """Images under a directory tree (or in a zip/tar archive); the first-level sub-folder a file
    sits in is its label.

    A tree whose first level is train/, val/ or test/ publishes its split: that level is the
    split, the next one the label (prepare keeps a published test split as it is)."""
    root = Path(path).expanduser()
    if not root.exists():
        raise UserError(f"data.path: {root}: folder not found")
    if root.is_file():
        if not archives.is_archive(root):
            raise UserError(f"data.path: {root}: is a file, expected a folder of photos or a zip/tar archive")
        return _archive_folder(root, sha256_file(root))
    return _folder(root)


def _folder(root: Path, shown_as: str = "") -> Listing:
    """Images under `root`; `shown_as` names root in rejected.csv when it is a cache folder."""
    candidates, owners = [], {}
    files = _walk_files(root)
    images = [rel for rel in files if rel.suffix.lower() in IMAGE_EXTENSIONS]
    skipped = len(files) - len(images)
    split_folders = _has_split_folders(images)
    for rel in images:
        candidate = _folder_candidate(root, rel, split_folders)
        if shown_as:
            candidate = candidate._replace(origin=f"{shown_as}/{rel.as_posix()}")
        # a/b.jpg and a/b.png (or a__b.jpg) would share an id: refuse rather than guess.
        if candidate.source_id in owners:
            raise UserError(
                f"{shown_as or root}: {owners[candidate.source_id]} and {rel.as_posix()} would "
                f"share the id {candidate.source_id!r}; rename one"
            )
        owners[candidate.source_id] = rel.as_posix()
        candidates.append(candidate)
    if skipped:
        log.info("skipped %d non-image file(s) in %s", skipped, shown_as or root)
    if not candidates:
        extensions = " ".join(sorted(IMAGE_EXTENSIONS))
        raise UserError(f"{shown_as or f'data.path: {root}'}: no image files found (looked for {extensions})")
    return Listing(candidates, skipped)


def _single_folder(root: Path) -> Path:
    """Below the folders an archive wraps everything in (photos.zip -> photos/...)."""
    while True:
        entries = [e for e in root.iterdir() if e.name not in archives.JUNK_FOLDERS]
        if len(entries) != 1 or not entries[0].is_dir():
            return root
        root = entries[0]


def _archive_folder(archive: Path, sha256: str) -> Listing:
    """An archive of photos, listed like a folder once unpacked (safely, into the cache)."""
    root = archives.unpack(archive, sha256)
    inner = _single_folder(root)
    shown = "/".join([archive.name, *inner.relative_to(root).parts])
    return _folder(inner, shown_as=shown)


def url(address: str, sha256: str | None) -> Listing:
    """A zip or tar of photos (organised as for the folder source), or a single image."""
    fetched = fetch.fetch(address, sha256=sha256)
    if archives.is_archive(fetched.path):
        return _archive_folder(fetched.path, fetched.sha256)
    if fetched.path.suffix.lower() in IMAGE_EXTENSIONS:
        return Listing([Candidate(fetched.path, fetched.path.stem, "", origin=address)], skipped=0)
    raise UserError(f"data.url: {address}: neither a zip/tar archive nor an image file "
                    f"({' '.join(sorted(IMAGE_EXTENSIONS))})")


def _fetch_public(name: str, mirror: str | None) -> list[fetch.Fetched]:
    """A public dataset's files from their official URLs, or from the folder `mirror` that
    serves the same file names; either way checked against the published size and sha256."""
    dataset = public.DATASETS[name]
    log.info("%s (%s): %s", dataset.title, dataset.homepage, dataset.terms)
    return [
        fetch.fetch(f"{mirror.rstrip('/')}/{f.name}" if mirror else f.url, sha256=f.sha256, size=f.size)
        for f in dataset.files
    ]


def cifar10(mirror: str | None) -> Listing:
    """CIFAR-10's 60,000 images as PNG (lossless), labelled with its class names and split as
    published: data_batch_1-5 are train, test_batch is test."""
    (archive,) = _fetch_public("cifar10", mirror)
    names, batches = cifar10_format.read(archive.path)
    candidates = [
        Candidate(
            Path(archive.path.name, batch.name, f"{i:05d}.png"),
            f"{batch.split}__{batch.name}__{i:05d}",
            names[label],
            batch.split,
            write=functools.partial(save_png, rgb=image),
        )
        for batch in batches
        for i, (image, label) in enumerate(zip(batch.images, batch.labels))
    ]
    return Listing(candidates, skipped=0)


def _read_member(archive: Path, name: str) -> str:
    """The text of one member of a tar, found by its base name (read in memory, not unpacked)."""
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            if member.isfile() and Path(member.name).name == name:
                return tar.extractfile(member).read().decode("utf-8")
    raise UserError(f"{archive.name}: {name} not found in the archive")


def places365_labels(filelist: Path) -> dict[str, str]:
    """Image file name -> scene name, from the official list (`/a/airfield 0` in
    categories_places365.txt, `Places365_val_00000001.jpg 165` in places365_val.txt)."""
    categories = {}
    for line in _read_member(filelist, "categories_places365.txt").splitlines():
        if line.strip():
            name, index = line.rsplit(maxsplit=1)
            categories[index] = name.split("/", 2)[2]  # "/s/swimming_pool/outdoor" -> "swimming_pool/outdoor"
    labels = {}
    for line in _read_member(filelist, "places365_val.txt").splitlines():
        if line.strip():
            image, index = line.split()
            labels[image] = categories[index]
    return labels


def places365(mirror: str | None) -> Listing:
    """Places365-Standard's 36,500 validation images (256x256), labelled with their scene. The
    whole set is one pool here: prepare draws train/val/test from it."""
    images, filelist = _fetch_public("places365", mirror)
    labels = places365_labels(filelist.path)
    listing = _archive_folder(images.path, images.sha256)
    return listing._replace(candidates=[c._replace(label=labels.get(c.path.name, ""))
                                        for c in listing.candidates])


def coco(mirror: str | None) -> Listing:
    """COCO's 5,000 val2017 images, unlabelled (image-level labels would need the annotations)."""
    (archive,) = _fetch_public("coco", mirror)
    return _archive_folder(archive.path, archive.sha256)


ADE20K_SPLITS = {"training": "train", "validation": "test"}


def ade20k(mirror: str | None) -> Listing:
    """ADE20K's 20,210 training and 2,000 validation images with their scene category. The
    annotation masks are never unpacked (they are PNGs, not photos). Its validation set is the
    benchmark's public test set, so it becomes the test split; prepare carves val from train."""
    (archive,) = _fetch_public("ade20k", mirror)
    root = archives.unpack(archive.path, archive.sha256, variant="images",
                           select=lambda n: "/images/" in f"/{n}" or n.endswith("sceneCategories.txt"))
    found = sorted((p.parent for p in root.glob("**/images") if p.is_dir()), key=lambda p: len(p.parts))
    if not found:
        raise UserError(f"{archive.path.name}: no images/ folder inside; not the ADE20K scene-parsing release")
    base = found[0]
    scenes = {}
    if (base / "sceneCategories.txt").is_file():  # "ADE_train_00000001 airport_terminal"
        scenes = dict(line.split(maxsplit=1) for line in
                      (base / "sceneCategories.txt").read_text().splitlines() if line.strip())
    listing = _folder(base / "images", shown_as=f"{archive.path.name}/images")
    candidates = []
    for c in listing.candidates:
        if c.label not in ADE20K_SPLITS:
            raise UserError(f"{c.origin}: expected images/training/ or images/validation/")
        stem = c.path.stem
        candidates.append(c._replace(source_id=stem, label=scenes.get(stem, "").strip(),
                                     split=ADE20K_SPLITS[c.label]))
    return Listing(candidates, listing.skipped)


def _user_copy(name: str, path: str | None) -> Path:
    """The user's copy of a dataset that has no anonymous download, or one line saying what to
    download and where data.path should point."""
    dataset = public.DATASETS[name]
    if not path:
        raise UserError(f"data.path: the {name} source needs your own copy: {dataset.instructions}")
    root = Path(path).expanduser()
    if not root.exists():
        raise UserError(f"data.path: {root} not found; for the {name} source {dataset.instructions}")
    log.info("%s (%s): %s", dataset.title, dataset.homepage, dataset.terms)
    return root


def imagenet(path: str | None) -> Listing:
    """The user's ImageNet in class folders (train/<wnid>/, val/<wnid>/). Its validation set is
    the public test set, so it becomes the test split; prepare carves val from train."""
    listing = folder(str(_user_copy("imagenet", path)))
    return listing._replace(candidates=[c._replace(split="test") if c.split == "val" else c
                                        for c in listing.candidates])


def kaggle_landscape(path: str | None) -> Listing:
    """Seed 002's landscapes: only the colour photos of the Kaggle archive (its gray/ folder
    holds grey copies of the same scenes, which would leak across splits and teach nothing)."""
    root = _user_copy("kaggle-landscape", path)
    if root.is_file():
        if not archives.is_archive(root):
            raise UserError(f"data.path: {root}: expected the Kaggle archive.zip or its unzipped folder")
        shown, root = root.name, archives.unpack(root, sha256_file(root))
    else:
        shown = str(root)
    colour = sorted(p for p in root.rglob("*") if p.is_dir() and p.name.lower() == "color")
    if not colour:
        raise UserError(f"data.path: {shown}: no color/ folder inside (expected 'landscape Images/color/')")
    return _folder(colour[0], shown_as="/".join([shown, *colour[0].relative_to(root).parts]))


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


SOURCES: dict[str, Callable[[DataParams], Listing]] = {
    "builtin": lambda p: builtin(),
    "folder": lambda p: folders(p.path) if isinstance(p.path, list) else folder(p.path),
    "url": lambda p: url(p.url, p.sha256),
    "cifar10": lambda p: cifar10(p.url),
    "places365": lambda p: places365(p.url),
    "coco": lambda p: coco(p.url),
    "ade20k": lambda p: ade20k(p.url),
    "imagenet": lambda p: imagenet(p.path),
    "kaggle-landscape": lambda p: kaggle_landscape(p.path),
}


def list_candidates(params: DataParams) -> Listing:
    listing = SOURCES[params.source](params)
    if params.classes:
        listing = keep_classes(listing, params.classes)
    return subset(listing, params.limit, params.seed) if params.limit else listing
