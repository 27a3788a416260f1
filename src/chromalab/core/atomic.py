"""Atomic outputs: write beside the target, then rename, so an interrupted stage never leaves a
file or folder that looks complete (and DVC never caches half an output). And their reading back:
`read_json` turns a missing or broken JSON file into a one-line error."""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from chromalab.core.errors import UserError


def _tmp_sibling(path: Path, is_dir: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path, is_dir: bool = False):
    """Yield a temporary path to write; on success it replaces `path`, on failure it is removed."""
    path = Path(path)
    tmp = _tmp_sibling(path, is_dir)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True) if is_dir else tmp.unlink(missing_ok=True)
        raise
    if is_dir:
        if path.exists():
            # Move the old folder aside first: a rename cannot replace a non-empty folder.
            old = _tmp_sibling(path, is_dir=True)
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    else:
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def read_json(path, missing: str | None = None):
    """A JSON file's content; None when it does not exist and `missing` is None, else a UserError
    saying `missing` (what to do)."""
    path = Path(path)
    if not path.is_file():
        if missing is None:
            return None
        raise UserError(f"{path}: {missing}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
