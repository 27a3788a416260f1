"""archives: safe unpacking of zips and tars that someone else made."""

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from chromalab.core.errors import UserError
from chromalab.data import archives, fetch


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(fetch.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def make_tar(path: Path, members, mode="w:gz") -> Path:
    """members: (name, bytes) for files, or a ready TarInfo for links and devices."""
    with tarfile.open(path, mode) as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def make_zip(path: Path, members) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for member in members:
            if isinstance(member, zipfile.ZipInfo):
                zf.writestr(member, member.comment)  # (the comment carries a link's target)
            else:
                zf.writestr(*member)
    return path


def link(name, target, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def device(name) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info


def zip_link(name, target) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    info.comment = target.encode()
    return info


GOOD = [("photos/a.txt", b"a"), ("photos/sub/b.txt", b"b")]


def test_tar_gz_and_zip_unpack_their_files(tmp_path):
    for archive in (make_tar(tmp_path / "a.tar.gz", GOOD), make_zip(tmp_path / "a.zip", GOOD)):
        dest = tmp_path / f"out-{archive.name}"
        archives.extract(archive, dest)
        assert (dest / "photos" / "sub" / "b.txt").read_bytes() == b"b"
        assert (dest / "photos" / "a.txt").read_bytes() == b"a"


def test_archives_are_recognised_by_content_not_name(tmp_path):
    tar = make_tar(tmp_path / "photos.dat", GOOD)
    zipped = make_zip(tmp_path / "photos.bin", GOOD)
    (tmp_path / "fake.zip").write_bytes(b"not a zip at all")
    assert archives.is_archive(tar) and archives.is_archive(zipped)
    assert not archives.is_archive(tmp_path / "fake.zip")
    with pytest.raises(UserError, match="fake.zip: not a zip or tar archive"):
        archives.extract(tmp_path / "fake.zip", tmp_path / "out")


@pytest.mark.parametrize("hostile, why", [
    (("/tmp/chromalab-evil.txt", b"x"), "has an absolute path"),
    (("photos/../../evil.txt", b"x"), "climbs out of the folder with '..'"),
    (link("photos/passwd", "/etc/passwd"), "is a link to the absolute path '/etc/passwd'"),
    (link("photos/up", "../../evil.txt"), "is a link pointing outside the folder"),
    (link("photos/hard", "../evil.txt", tarfile.LNKTYPE), "is a link pointing outside the folder"),
    (device("photos/null"), "is a device file or fifo"),
])
def test_hostile_tar_is_refused_and_leaves_nothing_behind(tmp_path, hostile, why):
    # The hostile member comes last: nothing before it may have been written either.
    archive = make_tar(tmp_path / "hostile.tar.gz", [*GOOD, hostile])
    dest = tmp_path / "work" / "unpacked"
    with pytest.raises(UserError) as err:
        archives.extract(archive, dest)
    message = str(err.value)
    assert why in message and "hostile.tar.gz: member" in message and "\n" not in message
    assert list((tmp_path / "work").iterdir()) == []  # no output, no temporary folder
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/chromalab-evil.txt").exists()


@pytest.mark.parametrize("hostile, why", [
    (("../evil.txt", b"x"), "climbs out of the folder"),
    (("/abs.txt", b"x"), "has an absolute path"),
    (("C:\\Windows\\evil.txt", b"x"), "has an absolute path"),
    (zip_link("photos/up", "../../../evil.txt"), "is a link pointing outside the folder"),
])
def test_hostile_zip_is_refused_and_leaves_nothing_behind(tmp_path, hostile, why):
    archive = make_zip(tmp_path / "hostile.zip", [*GOOD, hostile])
    with pytest.raises(UserError, match=why):
        archives.extract(archive, tmp_path / "work" / "unpacked")
    assert list((tmp_path / "work").iterdir()) == []


def test_link_inside_the_folder_is_allowed(tmp_path):
    archive = make_tar(tmp_path / "ok.tar", [*GOOD, link("photos/again.txt", "a.txt")], mode="w")
    archives.extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "photos" / "again.txt").read_bytes() == b"a"


def test_truncated_archive_is_a_user_error(tmp_path):
    archive = make_tar(tmp_path / "a.tar.gz", [("big.bin", bytes(range(256)) * 4000)])
    archive.write_bytes(archive.read_bytes()[:2000])
    with pytest.raises(UserError, match="a.tar.gz: corrupt or truncated tar archive"):
        archives.extract(archive, tmp_path / "work" / "out")
    assert list((tmp_path / "work").iterdir()) == []


def test_macos_resource_forks_are_left_out(tmp_path):
    archive = make_zip(tmp_path / "mac.zip", [*GOOD, ("__MACOSX/photos/._a.txt", b"\x00\x05")])
    archives.extract(archive, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["photos"]


def test_unpack_selects_members_and_reuses_the_cached_copy(tmp_path, cache):
    archive = make_zip(tmp_path / "a.zip", GOOD)
    first = archives.unpack(archive, "ab" * 32, select=lambda n: n.endswith("b.txt"), variant="b")
    assert [p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file()] == ["photos/sub/b.txt"]
    assert first.parent == cache / "unpacked"
    archive.unlink()  # a second call must not need the archive again
    assert archives.unpack(archive, "ab" * 32, variant="b") == first
