"""The download stage on public datasets and URLs: archives the tests build from real photos,
served by a real HTTP server on 127.0.0.1, through the real fetch, unpack and download code.

The official files are hundreds of megabytes, so each test serves a small file in the official
format from a mirror folder (`data.url`) and puts that file's size and sha256 in the table of
published checksums; everything else runs as it would against the official servers."""

import csv
import dataclasses
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import typing
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chromalab.core.config import DataParams, section
from chromalab.core.errors import UserError
from chromalab.data import fetch
from chromalab.data import public, sources
from chromalab.data.download import download
from chromalab.data.manifest import read_manifest
from helpers import real_photos
from local_server import DROP, UNAVAILABLE, FileServer

SCRIPT = Path(__file__).resolve().parents[1] / "pipeline" / "download.py"
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(fetch.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(fetch, "BACKOFF_SECONDS", 0.01)
    return tmp_path / "cache"


@pytest.fixture
def server():
    with FileServer() as s:
        yield s


@pytest.fixture(scope="module")
def photos():
    return real_photos()


def publish(monkeypatch, name: str, served: dict[str, bytes]) -> None:
    """Record the size and sha256 of the files a test serves as the published ones."""
    dataset = public.DATASETS[name]
    files = tuple(dataclasses.replace(f, size=len(served[f.name]), sha256=hashlib.sha256(served[f.name]).hexdigest())
                  for f in dataset.files)
    monkeypatch.setitem(public.DATASETS, name, dataclasses.replace(dataset, files=files))


def encode(rgb: np.ndarray, side: int = 64, fmt: str = "JPEG") -> bytes:
    img = Image.fromarray(rgb)
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def tar_bytes(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def read_rejected(out: Path) -> dict:
    with open(out / "rejected.csv", newline="") as f:
        return {row["path"]: row["reason"] for row in csv.DictReader(f)}


# --- CIFAR-10 --------------------------------------------------------------------------------


class Py2Pickler(pickle._Pickler):
    """Writes a batch as Python 2's cPickle wrote the published ones: str as BINSTRING (Python 3
    would use `_codecs.encode` for bytes at protocol 2) and numpy's core module as numpy.core."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        module = {"numpy._core.multiarray": "numpy.core.multiarray"}.get(obj.__module__, obj.__module__)
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def tiny(rgb: np.ndarray) -> np.ndarray:
    """A real photo as CIFAR-10 stores one: its centre square at 32×32."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    square = Image.fromarray(rgb[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s])
    return np.asarray(square.resize((32, 32), Image.Resampling.LANCZOS))


@pytest.fixture(scope="module")
def cifar(photos):
    """(tarball bytes, the 12 images in batch order, their labels): 5 training batches of two
    images and a test batch of two, made from the six real photos and their mirror images."""
    base = [tiny(p) for p in photos.values()]
    images = base + [np.ascontiguousarray(b[:, ::-1]) for b in base]
    labels = [3, 0, 8, 9, 2, 6, 3, 0, 8, 9, 2, 6]

    def batch(i, name):
        chunk = images[i:i + 2]
        return py2_pickle({
            "batch_label": name,
            "labels": labels[i:i + 2],
            "data": np.stack([im.transpose(2, 0, 1).reshape(-1) for im in chunk]),
            "filenames": [f"photo_{i + j}.png" for j in range(len(chunk))],
        })

    members = {"cifar-10-batches-py/batches.meta": py2_pickle(
        {"num_cases_per_batch": 2, "label_names": CIFAR_CLASSES, "num_vis": 3072})}
    for k in range(5):
        members[f"cifar-10-batches-py/data_batch_{k + 1}"] = batch(2 * k, f"training batch {k + 1} of 5")
    members["cifar-10-batches-py/test_batch"] = batch(10, "testing batch 1 of 1")
    members["cifar-10-batches-py/readme.html"] = b"<html>CIFAR-10</html>"
    return tar_bytes(members), images, labels


def test_cifar10_is_decoded_into_lossless_pngs_with_labels_and_published_splits(server, cifar, tmp_path, monkeypatch):
    data, images, labels = cifar
    server.add("mirror/cifar-10-python.tar.gz", data, faults=[DROP])
    publish(monkeypatch, "cifar10", {"cifar-10-python.tar.gz": data})
    out = tmp_path / "raw"

    summary = download(DataParams(source="cifar10", url=f"{server.base}/mirror/"), out)

    first, second = server.requests_for("mirror/cifar-10-python.tar.gz")
    assert (first.range, second.range) == (None, f"bytes={len(data) // 2}-")  # resumed mid-file
    assert summary == {"source": "cifar10", "images": 12, "skipped": 0, "rejected": 0, "duplicates": 0}
    rows = read_manifest(out / "manifest.csv")
    assert [r["source_id"] for r in rows[:3]] == [
        "train__data_batch_1__00000", "train__data_batch_1__00001", "train__data_batch_2__00000"]
    assert rows[-1]["source_id"] == "test__test_batch__00001"
    assert [r["split"] for r in rows] == ["train"] * 10 + ["test"] * 2
    assert [r["label"] for r in rows] == [CIFAR_CLASSES[i] for i in labels]
    for row, image in zip(rows, images):
        assert row["path"] == f"images/{row['source_id']}.png" and (row["width"], row["height"]) == (32, 32)
        with Image.open(out / row["path"]) as stored:
            assert np.array_equal(np.asarray(stored), image)  # every pixel as published


def test_cifar10_classes_and_limit_take_the_same_subset_every_time(server, cifar, tmp_path, monkeypatch):
    data = cifar[0]
    server.add("m/cifar-10-python.tar.gz", data)
    publish(monkeypatch, "cifar10", {"cifar-10-python.tar.gz": data})
    params = DataParams(source="cifar10", url=f"{server.base}/m", classes=["cat", "ship"], limit=3, seed=1)
    picks = []
    for run in range(2):
        download(params, tmp_path / f"raw{run}")
        picks.append([(r["source_id"], r["label"]) for r in read_manifest(tmp_path / f"raw{run}" / "manifest.csv")])
        assert len(list((tmp_path / f"raw{run}" / "images").iterdir())) == 3  # only the subset is written
    assert picks[0] == picks[1] and len(picks[0]) == 3
    assert {label for _, label in picks[0]} <= {"cat", "ship"}
    assert len(server.requests_for("m/cifar-10-python.tar.gz")) == 1  # the second run used the cache


def test_cifar10_mirror_with_other_bytes_fails_on_the_published_checksum(server, cifar, tmp_path):
    server.add("m/cifar-10-python.tar.gz", cifar[0])
    with pytest.raises(UserError) as err:
        download(DataParams(source="cifar10", url=f"{server.base}/m"), tmp_path / "raw")
    assert f"size mismatch: expected 170498071 bytes, got {len(cifar[0])}" in str(err.value)
    assert not (tmp_path / "raw").exists()


def test_cifar10_batch_naming_any_other_global_is_refused_unrun(cifar, tmp_path, monkeypatch):
    sentinel = tmp_path / "must_survive.txt"
    sentinel.write_text("still here")

    class Payload:
        def __reduce__(self):
            return os.remove, (str(sentinel),)

    with tarfile.open(fileobj=io.BytesIO(cifar[0])) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    members["cifar-10-batches-py/data_batch_3"] = pickle.dumps({"data": Payload()}, protocol=2)
    tampered = tar_bytes(members)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "cifar-10-python.tar.gz").write_bytes(tampered)
    publish(monkeypatch, "cifar10", {"cifar-10-python.tar.gz": tampered})

    with pytest.raises(UserError) as err:
        download(DataParams(source="cifar10", url=mirror.as_uri()), tmp_path / "raw")
    assert str(err.value) == ("cifar-10-python.tar.gz: data_batch_3: refused to unpickle "
                              "(global posix.remove is not part of the CIFAR-10 format)")
    assert sentinel.read_text() == "still here" and not (tmp_path / "raw").exists()


# --- Places365, COCO, ADE20K ---------------------------------------------------------------------


def test_places365_labels_each_image_with_its_scene_from_the_official_list(server, photos, tmp_path, monkeypatch):
    names = list(photos)[:4]
    images = tar_bytes({f"val_256/Places365_val_{i + 1:08d}.jpg": encode(photos[n], 256)
                        for i, n in enumerate(names)}, mode="w")
    filelist = tar_bytes({
        "categories_places365.txt": b"/a/abbey 0\n/b/beach 1\n/s/swimming_pool/outdoor 2\n",
        "places365_val.txt": b"Places365_val_00000001.jpg 2\nPlaces365_val_00000002.jpg 0\n"
                             b"Places365_val_00000003.jpg 1\nPlaces365_val_00000004.jpg 2\n",
        "places365_train_standard.txt": b"/a/abbey/00000001.jpg 0\n",
    }, mode="w")
    served = {"val_256.tar": images, "filelist_places365-standard.tar": filelist}
    for name, data in served.items():
        server.add(f"places/{name}", data)
    publish(monkeypatch, "places365", served)

    download(DataParams(source="places365", url=f"{server.base}/places"), tmp_path / "raw")

    rows = read_manifest(tmp_path / "raw" / "manifest.csv")
    assert [(r["source_id"], r["label"], r["split"]) for r in rows] == [
        ("Places365_val_00000001", "swimming_pool/outdoor", ""),
        ("Places365_val_00000002", "abbey", ""),
        ("Places365_val_00000003", "beach", ""),
        ("Places365_val_00000004", "swimming_pool/outdoor", ""),
    ]


def test_coco_retries_a_503_rejects_corrupt_images_and_subsets_reproducibly(server, photos, tmp_path, monkeypatch):
    members = {f"val2017/{i:012d}.jpg": encode(rgb) for i, rgb in enumerate(photos.values())}
    members["val2017/000000000999.jpg"] = encode(photos["coffee"])[:600]  # truncated
    archive = zip_bytes(members)
    server.add("coco/val2017.zip", archive, faults=[UNAVAILABLE])
    publish(monkeypatch, "coco", {"val2017.zip": archive})

    summary = download(DataParams(source="coco", url=f"{server.base}/coco"), tmp_path / "raw")

    assert len(server.requests_for("coco/val2017.zip")) == 2
    assert (summary["images"], summary["rejected"]) == (6, 1)
    rejected = read_rejected(tmp_path / "raw")
    assert list(rejected) == ["val2017.zip/val2017/000000000999.jpg"]  # named inside the archive
    assert "truncated" in rejected["val2017.zip/val2017/000000000999.jpg"].lower()
    rows = read_manifest(tmp_path / "raw" / "manifest.csv")
    assert rows[0]["source_id"] == "000000000000" and {r["label"] for r in rows} == {""}

    subsets = []
    for run in range(2):
        out = tmp_path / f"s{run}"
        download(DataParams(source="coco", url=f"{server.base}/coco", limit=3, seed=7), out)
        subsets.append(([r["source_id"] for r in read_manifest(out / "manifest.csv")], list(read_rejected(out))))
    assert subsets[0] == subsets[1]
    assert len(subsets[0][0]) + len(subsets[0][1]) == 3  # limit draws files; a corrupt one is then rejected


def test_ade20k_keeps_photos_not_annotation_masks_and_its_validation_set_is_the_test_split(
        server, photos, tmp_path, monkeypatch, cache):
    mask = encode(np.zeros((64, 64, 3), np.uint8), fmt="PNG")
    rgb = list(photos.values())
    archive = zip_bytes({
        "ADEChallengeData2016/images/training/ADE_train_00000001.jpg": encode(rgb[0]),
        "ADEChallengeData2016/images/training/ADE_train_00000002.jpg": encode(rgb[1]),
        "ADEChallengeData2016/images/validation/ADE_val_00000001.jpg": encode(rgb[2]),
        "ADEChallengeData2016/annotations/training/ADE_train_00000001.png": mask,
        "ADEChallengeData2016/annotations/validation/ADE_val_00000001.png": mask,
        "ADEChallengeData2016/objectInfo150.txt": b"Idx\tRatio\tTrain\tVal\tName\n",
        "ADEChallengeData2016/sceneCategories.txt":
            b"ADE_train_00000001 airport_terminal\nADE_train_00000002 bathroom\nADE_val_00000001 beach\n",
    })
    server.add("ade/ADEChallengeData2016.zip", archive)
    publish(monkeypatch, "ade20k", {"ADEChallengeData2016.zip": archive})

    download(DataParams(source="ade20k", url=f"{server.base}/ade"), tmp_path / "raw")

    rows = read_manifest(tmp_path / "raw" / "manifest.csv")
    assert [(r["source_id"], r["label"], r["split"]) for r in rows] == [
        ("ADE_train_00000001", "airport_terminal", "train"),
        ("ADE_train_00000002", "bathroom", "train"),
        ("ADE_val_00000001", "beach", "test"),
    ]
    assert not list(cache.glob("unpacked/*/*/annotations"))  # the masks were never unpacked


# --- any URL, and the user's own copies ------------------------------------------------------------


@pytest.fixture
def holiday_zip(photos):
    """A zip of photos in a wrapping folder, class sub-folders, a note, a broken file and macOS junk."""
    return zip_bytes({
        "holiday/beach/a.jpg": encode(photos["astronaut"]),
        "holiday/beach/b.png": encode(photos["chelsea"], fmt="PNG"),
        "holiday/city/c.jpg": encode(photos["rocket"]),
        "holiday/city/broken.jpg": b"this is not a jpeg",
        "holiday/notes.txt": b"a note",
        "__MACOSX/holiday/beach/._a.jpg": b"\x00\x05\x16\x07",
    })


def test_url_zip_is_listed_like_a_folder(server, holiday_zip, tmp_path):
    url = server.add("photos.zip", holiday_zip)
    sha = hashlib.sha256(holiday_zip).hexdigest()

    summary = download(DataParams(source="url", url=url, sha256=sha), tmp_path / "raw")

    assert summary == {"source": "url", "images": 3, "skipped": 1, "rejected": 1, "duplicates": 0}
    rows = read_manifest(tmp_path / "raw" / "manifest.csv")
    assert [(r["source_id"], r["label"]) for r in rows] == [
        ("beach__a", "beach"), ("beach__b", "beach"), ("city__c", "city")]
    assert list(read_rejected(tmp_path / "raw")) == ["photos.zip/holiday/city/broken.jpg"]


def test_url_tar_gz_with_train_and_test_folders_publishes_its_split(server, photos, tmp_path):
    url = server.add("set.tgz", tar_bytes({
        "train/cat/1.jpg": encode(photos["chelsea"]), "train/ship/2.jpg": encode(photos["rocket"]),
        "test/cat/3.jpg": encode(photos["coffee"]),
    }))
    download(DataParams(source="url", url=url), tmp_path / "raw")
    rows = read_manifest(tmp_path / "raw" / "manifest.csv")
    assert [(r["label"], r["split"]) for r in rows] == [("cat", "test"), ("cat", "train"), ("ship", "train")]


def test_url_of_a_single_image(server, photos, tmp_path):
    url = server.add("pics/flower.jpg", encode(photos["flower"]))
    download(DataParams(source="url", url=url), tmp_path / "raw")
    assert [r["path"] for r in read_manifest(tmp_path / "raw" / "manifest.csv")] == ["images/flower.jpg"]


def test_url_of_a_hostile_archive_fails_and_writes_nothing(server, photos, tmp_path, cache):
    url = server.add("evil.tar.gz", tar_bytes({"photos/a.jpg": encode(photos["astronaut"]),
                                               "../../escaped.jpg": encode(photos["chelsea"])}))
    with pytest.raises(UserError, match=r"evil.tar.gz: member '../../escaped.jpg' climbs out"):
        download(DataParams(source="url", url=url), tmp_path / "work" / "raw")
    assert not (tmp_path / "work").exists() and not (tmp_path / "escaped.jpg").exists()
    assert list((cache / "unpacked").iterdir()) == []


def test_url_with_a_wrong_checksum_fails_naming_both_hashes(server, holiday_zip, tmp_path):
    url = server.add("photos.zip", holiday_zip)
    with pytest.raises(UserError) as err:
        download(DataParams(source="url", url=url, sha256="f" * 64), tmp_path / "raw")
    assert f"expected {'f' * 64}, got {hashlib.sha256(holiday_zip).hexdigest()}" in str(err.value)
    assert not (tmp_path / "raw").exists()


def test_folder_source_also_takes_an_archive(holiday_zip, tmp_path):
    (tmp_path / "photos.zip").write_bytes(holiday_zip)
    summary = download(DataParams(source="folder", path=str(tmp_path / "photos.zip")), tmp_path / "raw")
    assert summary["images"] == 3


def test_kaggle_landscape_uses_the_colour_photos_only(photos, tmp_path):
    rgb = list(photos.values())
    grey = np.repeat(np.asarray(Image.fromarray(rgb[0]).convert("L"))[..., None], 3, axis=2)
    (tmp_path / "archive.zip").write_bytes(zip_bytes({
        "landscape Images/color/0.jpg": encode(rgb[0]), "landscape Images/color/1.jpg": encode(rgb[1]),
        "landscape Images/gray/0.jpg": encode(grey), "landscape Images/gray/1.jpg": encode(grey[::-1]),
    }))
    download(DataParams(source="kaggle-landscape", path=str(tmp_path / "archive.zip")), tmp_path / "raw")
    assert [r["source_id"] for r in read_manifest(tmp_path / "raw" / "manifest.csv")] == ["0", "1"]


@pytest.mark.parametrize("source, says", [
    ("imagenet", "https://image-net.org/download-images.php"),
    ("kaggle-landscape", "https://www.kaggle.com/datasets/theblackmamba31/landscape-image-colorization"),
])
def test_sources_without_a_public_download_say_what_to_download_and_where(source, says, tmp_path):
    with pytest.raises(UserError) as err:
        download(DataParams(source=source), tmp_path / "raw")
    message = str(err.value)
    assert message.startswith(f"data.path: the {source} source needs your own copy: ")
    assert says in message and "set data.path" in message and "\n" not in message
    with pytest.raises(UserError, match=f"{tmp_path / 'nowhere'} not found; for the {source} source"):
        download(DataParams(source=source, path=str(tmp_path / "nowhere")), tmp_path / "raw")


def test_imagenet_folder_keeps_its_classes_and_its_val_set_becomes_test(photos, tmp_path):
    for split, wnid, name in (("train", "n01440764", "astronaut"), ("train", "n02123045", "chelsea"),
                              ("val", "n02123045", "coffee")):
        (tmp_path / "in" / split / wnid).mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / split / wnid / f"{name}.JPEG").write_bytes(encode(photos[name]))
    download(DataParams(source="imagenet", path=str(tmp_path / "in")), tmp_path / "raw")
    rows = read_manifest(tmp_path / "raw" / "manifest.csv")
    assert [(r["label"], r["split"]) for r in rows] == [
        ("n01440764", "train"), ("n02123045", "train"), ("n02123045", "test")]


# --- params and the stage script -------------------------------------------------------------


def test_every_source_name_in_params_has_a_lister():
    hints = typing.get_type_hints(DataParams)
    assert set(typing.get_args(hints["source"])) == set(sources.SOURCES)


@pytest.mark.parametrize("data, error", [
    ({"source": "cifar"}, r"^data\.source: expected one of 'builtin', .*'kaggle-landscape', got 'cifar' \(did you mean 'cifar10'\?\)$"),
    ({"source": "url"}, r"^data\.url: the url source needs the URL"),
    ({"source": "url", "url": "ftp://x/a.zip"}, r"^data\.url: expected an http://, https:// or file:// URL"),
    ({"source": "url", "url": "http://x/a.zip", "sha256": "abc"}, r"^data\.sha256: expected 64 hexadecimal digits"),
    ({"source": "cifar10", "sha256": "a" * 64}, r"^data\.sha256: not used by the cifar10 source \(only by url\)"),
    ({"source": "coco", "path": "/photos"}, r"^data\.path: not used by the coco source"),
])
def test_data_params_name_the_key_and_what_is_wrong(data, error):
    with pytest.raises(UserError, match=error):
        section({"data": data}, "data")


def test_stage_script_downloads_once_and_then_runs_from_the_cache(holiday_zip, tmp_path):
    env = {**os.environ, fetch.CACHE_ENV: str(tmp_path / "cache")}
    with FileServer() as server:
        url = server.add("photos.zip", holiday_zip)
        (tmp_path / "params.yaml").write_text(
            f"data:\n  source: url\n  url: {url}\n  sha256: {hashlib.sha256(holiday_zip).hexdigest()}\n")
        first = subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "download: 3 images, 1 skipped non-image files, 1 rejected" in first.stderr
    manifest = (tmp_path / "data" / "raw" / "manifest.csv").read_bytes()
    # The server is gone (a machine offline, a fresh checkout): the verified cache is enough.
    again = subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "verified copy in the cache" in again.stderr
    assert (tmp_path / "data" / "raw" / "manifest.csv").read_bytes() == manifest
