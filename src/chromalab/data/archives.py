"""Unpacking archives made by someone else without letting them write outside their folder.

A tar or zip can name members `/etc/x` or `../../x`, hold links that point anywhere, or device
files. Every member is checked before anything is written: absolute paths, `..`, links leading
out of the folder, devices, fifos and encrypted members are refused. tar extraction then goes
through tarfile's `data` filter as a second guard, and the folder is built beside its target and
renamed into place, so a hostile or broken archive fails with one line naming the member and
leaves nothing behind.

Unpacked archives are kept in the download cache, keyed by the archive's sha256, so a second
`dvc exp` run does not unpack a gigabyte again.
"""

from __future__ import annotations

import logging
import posixpath
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PureWindowsPath
from typing import Callable

from chromalab.core.atomic import atomic_path
from chromalab.core.errors import UserError
from chromalab.data.fetch import cache_dir

log = logging.getLogger(__name__)

# The resource forks macOS adds to zips it makes: `._name.jpg` files that only look like photos.
JUNK_FOLDERS = ("__MACOSX",)


def is_archive(path) -> bool:
    """A zip or tar (plain, gz, bz2 or xz), recognised by its content rather than its name."""
    return zipfile.is_zipfile(path) or tarfile.is_tarfile(path)


def unpack(archive: Path, sha256: str, select: Callable[[str], bool] | None = None,
           variant: str = "") -> Path:
    """The archive's files, unpacked once into the cache (keyed by its sha256) and reused.

    `select(member_name)` keeps only some members; give each different selection a `variant`
    name, since it unpacks into a folder of its own."""
    dest = cache_dir() / "unpacked" / (sha256[:16] + (f"-{variant}" if variant else ""))
    if dest.is_dir():
        log.info("%s: unpacked copy in the cache (%s)", archive.name, dest)
        return dest
    log.info("unpacking %s to %s", archive.name, dest)
    extract(archive, dest, select)
    return dest


def extract(archive: Path, dest: Path, select: Callable[[str], bool] | None = None) -> None:
    """Unpack a zip or tar into the folder `dest`, refusing any member that could escape it."""
    archive = Path(archive)
    with atomic_path(dest, is_dir=True) as tmp:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, tmp, select)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, tmp, select)
        else:
            raise UserError(f"{archive}: not a zip or tar archive")


def _wanted(name: str, select) -> bool:
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    return not (parts and parts[0] in JUNK_FOLDERS) and (select is None or select(name))


def _refuse(archive: Path, name: str, why: str):
    raise UserError(f"{archive.name}: member {name!r} {why}; refusing to unpack this archive")


def _check_path(archive: Path, name: str) -> None:
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        _refuse(archive, name, "has an absolute path")
    if ".." in name.replace("\\", "/").split("/"):
        _refuse(archive, name, "climbs out of the folder with '..'")


def _check_link(archive: Path, name: str, target: str, relative_to_member: bool) -> None:
    """A link may only point at something inside the unpacked folder."""
    if target.startswith(("/", "\\")) or PureWindowsPath(target).drive:
        _refuse(archive, name, f"is a link to the absolute path {target!r}")
    base = posixpath.dirname(name) if relative_to_member else ""
    resolved = posixpath.normpath(posixpath.join(base, target.replace("\\", "/")))
    if resolved == ".." or resolved.startswith("../"):
        _refuse(archive, name, f"is a link pointing outside the folder ({target!r})")


def _extract_tar(archive: Path, dest: Path, select) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_path(archive, member.name)
                if member.ischr() or member.isblk() or member.isfifo():
                    _refuse(archive, member.name, "is a device file or fifo")
                if member.issym():
                    _check_link(archive, member.name, member.linkname, relative_to_member=True)
                elif member.islnk():
                    _check_link(archive, member.name, member.linkname, relative_to_member=False)
            wanted = [m for m in members if _wanted(m.name, select)]
            tar.extractall(dest, members=wanted, filter="data")
    except tarfile.FilterError as err:
        raise UserError(f"{archive.name}: {err}; refusing to unpack this archive") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise UserError(f"{archive.name}: corrupt or truncated tar archive ({err})") from None


def _extract_zip(archive: Path, dest: Path, select) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            wanted = []
            for info in zf.infolist():
                _check_path(archive, info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                    _refuse(archive, info.filename, "is a device file, fifo or socket")
                if info.flag_bits & 0x1:
                    _refuse(archive, info.filename, "is encrypted")
                if stat.S_ISLNK(mode):
                    # zipfile would write a link as a small file holding its target: check the
                    # target, then leave the link out.
                    _check_link(archive, info.filename, zf.read(info).decode("utf-8", "replace"),
                                relative_to_member=True)
                    continue
                if _wanted(info.filename, select):
                    wanted.append(info)
            for info in wanted:
                zf.extract(info, dest)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as err:
        raise UserError(f"{archive.name}: corrupt or unsupported zip archive ({err})") from None
