"""CIFAR-10's official python release, read without trusting pickle.

cifar-10-python.tar.gz holds six pickled batches, data_batch_1 … data_batch_5 (the 50,000
training images) and test_batch (the 10,000 test images), and batches.meta (the ten class
names). Each batch is a Python 2 pickle of a dict: `data`, a uint8 array (N, 3072) of 32×32
images stored plane by plane (1024 red values, then green, then blue, each row by row), `labels`,
a list of class indices, plus `batch_label` and `filenames`.

`pickle.load` would call whatever a tampered file names. The unpickler here resolves only the
three globals a pickled numpy array needs (numpy.core.multiarray._reconstruct, numpy.ndarray,
numpy.dtype) and refuses every other one; lists, dicts, strings and numbers need no globals.
The batches are read straight from the tarball: nothing is unpacked to disk.
"""

from __future__ import annotations

import io
import pickle
import posixpath
import tarfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from chromalab.core.errors import UserError

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
SIDE = 32


def _reconstruct():
    try:  # numpy >= 2 keeps it in numpy._core; numpy.core is a deprecated alias there
        from numpy._core.multiarray import _reconstruct
    except ImportError:
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


# The globals of the published batches (Python 2 named numpy's core module numpy.core).
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not part of the CIFAR-10 format")
        return ALLOWED_GLOBALS[(module, name)]()


class Batch(NamedTuple):
    name: str  # data_batch_1 … data_batch_5, test_batch
    split: str  # train or test, as published
    images: np.ndarray  # (N, 32, 32, 3) uint8 RGB
    labels: list[int]  # indices into the class names


def _unpickle(archive: Path, member: str, data: bytes) -> dict:
    try:
        # latin1 turns Python 2 str into str and hands numpy its raw array bytes unchanged.
        obj = _BatchUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise UserError(f"{archive.name}: {member}: refused to unpickle ({err})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{archive.name}: {member}: not a CIFAR-10 batch (a {type(obj).__name__})")
    return obj


def _batch(archive: Path, name: str, obj: dict, n_classes: int) -> Batch:
    data, labels = obj.get("data"), obj.get("labels")
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3 * SIDE * SIDE):
        raise UserError(f"{archive.name}: {name}: 'data' is not a uint8 array of N x 3072 pixels")
    if not (isinstance(labels, list) and len(labels) == len(data)
            and all(isinstance(v, int) and 0 <= v < n_classes for v in labels)):
        raise UserError(f"{archive.name}: {name}: 'labels' is not one class index per image")
    images = data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)
    return Batch(name, "test" if name == TEST_BATCH else "train", images, labels)


def read(archive: Path) -> tuple[list[str], list[Batch]]:
    """The class names and the six batches of the tarball, training batches first."""
    wanted = {*TRAIN_BATCHES, TEST_BATCH, META}
    found = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = posixpath.basename(member.name)
                if member.isfile() and name in wanted:
                    found[name] = _unpickle(archive, name, tar.extractfile(member).read())
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise UserError(f"{archive.name}: not a readable CIFAR-10 tarball ({err})") from None
    missing = sorted(wanted - set(found))
    if missing:
        raise UserError(f"{archive.name}: not the CIFAR-10 python release (missing {', '.join(missing)})")
    names = found[META].get("label_names")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise UserError(f"{archive.name}: {META}: 'label_names' is not a list of class names")
    batches = [_batch(archive, name, found[name], len(names)) for name in (*TRAIN_BATCHES, TEST_BATCH)]
    return names, batches
