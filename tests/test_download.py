"""The download stage: sources, manifest, rejection of bad files, atomic output, stage script."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from chromalab.core.config import DataParams
from chromalab.core.digest import sha256_file
from chromalab.core.errors import UserError
from chromalab.data import download as download_module
from chromalab.data import sources
from chromalab.data.download import download
from chromalab.data.manifest import COLUMNS, read_manifest

SCRIPT = Path(__file__).resolve().parents[1] / "pipeline" / "download.py"


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def small(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[::8, ::8])


def read_rejected(out: Path) -> dict:
    with open(out / "rejected.csv", newline="") as f:
        return {Path(row["path"]).name: row["reason"] for row in csv.DictReader(f)}


def test_builtin_source_lists_eight_real_colour_photos():
    listing = sources.builtin()
    names = sorted(c.path.name for c in listing.candidates)
    assert names == sorted([
        "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
        "china.jpg", "flower.jpg", "grace_hopper.jpg",
    ])
    assert len({c.source_id for c in listing.candidates}) == 8
    for candidate in listing.candidates:
        assert candidate.path.is_file()
        with Image.open(candidate.path) as image:
            assert image.mode == "RGB", candidate.path
            pixels = np.asarray(image, dtype=np.float32)
        # Colour, not grey stored as RGB: the channels differ noticeably.
        assert np.abs(pixels[..., 0] - pixels[..., 2]).mean() > 5, candidate.path


def test_download_builtin_writes_manifest_with_sizes_and_hashes(tmp_path):
    out = tmp_path / "raw"
    summary = download(DataParams(source="builtin"), out)
    assert summary == {"source": "builtin", "images": 8, "skipped": 0, "rejected": 0,
                       "duplicates": 0}
    rows = read_manifest(out / "manifest.csv")
    assert len(rows) == 8
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(
        Path(r["path"]).name for r in rows)
    for row in rows:
        stored = out / row["path"]
        assert row["path"].startswith("images/") and row["split"] == "" and row["label"] == ""
        assert sha256_file(stored) == row["sha256"]
        with Image.open(stored) as image:
            assert image.size == (row["width"], row["height"])
    astronaut = next(r for r in rows if r["source_id"] == "astronaut")
    assert astronaut["path"] == "images/astronaut.png"
    assert (astronaut["width"], astronaut["height"]) == (512, 512)
    assert read_rejected(out) == {}


def test_folder_source_uses_subfolders_as_labels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save(tmp_path / "photos" / "cats" / "chelsea.png", small(skdata.chelsea()))
    save(tmp_path / "photos" / "cats" / "deep" / "Coffee.JPG", small(skdata.coffee()))
    save(tmp_path / "photos" / "people" / "astronaut.png", small(skdata.astronaut()))
    save(tmp_path / "photos" / "rocket.jpg", small(skdata.rocket()))

    summary = download(DataParams(source="folder", path="photos"), Path("raw"))

    assert summary["images"] == 4
    rows = {r["source_id"]: r for r in read_manifest(tmp_path / "raw" / "manifest.csv")}
    assert {sid: r["label"] for sid, r in rows.items()} == {
        "cats__chelsea": "cats",
        "cats__deep__Coffee": "cats",
        "people__astronaut": "people",
        "rocket": "",
    }
    assert rows["cats__deep__Coffee"]["path"] == "images/cats__deep__Coffee.jpg"
    assert (rows["rocket"]["width"], rows["rocket"]["height"]) == (80, 54)


def test_folder_skips_non_images_and_rejects_corrupt_files(tmp_path):
    root = tmp_path / "photos"
    save(root / "good.png", small(skdata.astronaut()))
    (root / "notes.txt").write_text("not a photo")
    jpeg = save(root / "truncated.jpg", skdata.coffee())
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    (root / "fake.png").write_text("a text file renamed .png")
    out = tmp_path / "raw"

    summary = download(DataParams(source="folder", path=str(root)), out)

    assert summary == {"source": "folder", "images": 1, "skipped": 1, "rejected": 2,
                       "duplicates": 0}
    rejected = read_rejected(out)
    assert set(rejected) == {"truncated.jpg", "fake.png"}
    assert "truncated" in rejected["truncated.jpg"]
    assert "not an image format" in rejected["fake.png"]
    assert [p.name for p in (out / "images").iterdir()] == ["good.png"]


def test_duplicate_images_are_kept_once(tmp_path):
    root = tmp_path / "photos"
    first = save(root / "a" / "cat.png", small(skdata.chelsea()))
    (root / "b").mkdir()
    (root / "b" / "same_cat.png").write_bytes(first.read_bytes())
    save(root / "b" / "rocket.png", small(skdata.rocket()))
    out = tmp_path / "raw"

    summary = download(DataParams(source="folder", path=str(root)), out)

    assert (summary["images"], summary["duplicates"]) == (2, 1)
    ids = [r["source_id"] for r in read_manifest(out / "manifest.csv")]
    assert ids == ["a__cat", "b__rocket"]
    assert sorted(p.name for p in (out / "images").iterdir()) == ["a__cat.png", "b__rocket.png"]


def test_missing_folder_is_a_one_line_user_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as err:
        download(DataParams(source="folder", path="nowhere"), tmp_path / "raw")
    assert "nowhere" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(UserError, match="a_file"):
        download(DataParams(source="folder", path="a_file"), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_empty_folder_is_a_user_error(tmp_path):
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "readme.md").write_text("no photos here")
    with pytest.raises(UserError, match="no image files") as err:
        download(DataParams(source="folder", path=str(root)), tmp_path / "raw")
    assert str(root) in str(err.value)
    assert not (tmp_path / "raw").exists()


def test_only_undecodable_images_is_a_user_error(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    (root / "fake.jpg").write_text("not a jpeg")
    with pytest.raises(UserError, match="could be decoded"):
        download(DataParams(source="folder", path=str(root)), tmp_path / "raw")
    assert list(tmp_path.iterdir()) == [root]


def test_failed_download_leaves_no_output(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    save(root / "a.png", small(skdata.astronaut()))
    save(root / "b.png", small(skdata.chelsea()))
    calls = []

    def fail_on_second(path):
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError("interrupted")
        return (1, 1)

    monkeypatch.setattr(download_module, "image_size", fail_on_second)
    with pytest.raises(RuntimeError, match="interrupted"):
        download(DataParams(source="folder", path=str(root)), tmp_path / "raw")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def write_params(tmp_path: Path, folder: str) -> None:
    (tmp_path / "params.yaml").write_text(f"data:\n  source: folder\n  path: {folder}\n")


def run_stage(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_stage_script_writes_data_raw(tmp_path):
    save(tmp_path / "photos" / "cats" / "chelsea.png", small(skdata.chelsea()))
    save(tmp_path / "photos" / "astronaut.jpg", small(skdata.astronaut()))
    write_params(tmp_path, "photos")

    result = run_stage(tmp_path)

    assert result.returncode == 0, result.stderr
    assert "download: 2 images" in result.stderr
    rows = read_manifest(tmp_path / "data" / "raw" / "manifest.csv")
    assert [(r["source_id"], r["label"]) for r in rows] == [("astronaut", ""),
                                                          ("cats__chelsea", "cats")]
    with open(tmp_path / "data" / "raw" / "manifest.csv", newline="") as f:
        assert next(csv.reader(f)) == COLUMNS


def test_stage_script_missing_folder_exits_2_with_one_line(tmp_path):
    write_params(tmp_path, "missing_photos")

    result = run_stage(tmp_path)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "missing_photos" in lines[0]
    assert not (tmp_path / "data").exists()


def test_decompression_bomb_is_rejected(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    save(root / "big.png", skdata.astronaut())
    save(root / "small.png", small(skdata.chelsea()))
    # Anything above twice this many pixels is refused as a bomb.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
    download(DataParams(source="folder", path=str(root)), tmp_path / "raw")
    assert read_rejected(tmp_path / "raw")["big.png"].startswith("DecompressionBombError")


def test_folder_source_ids_must_be_unique(tmp_path):
    save(tmp_path / "photos" / "a" / "b.png", small(skdata.chelsea()))
    save(tmp_path / "photos" / "a__b.jpg", small(skdata.rocket()))
    with pytest.raises(UserError, match="a/b.png and a__b.jpg would share the id 'a__b'"):
        sources.folder(str(tmp_path / "photos"))


def test_read_manifest_names_the_file_when_missing_or_malformed(tmp_path):
    path = tmp_path / "manifest.csv"
    with pytest.raises(UserError, match="manifest.csv: manifest not found"):
        read_manifest(path)
    path.write_text("path,source_id\nimages/a.png,a\n")
    with pytest.raises(UserError, match="manifest.csv: not a manifest, missing column"):
        read_manifest(path)
    path.write_text(",".join(COLUMNS) + "\nimages/a.png,a,,wide,3,abc,,\n")
    with pytest.raises(UserError, match="manifest.csv, line 2: width is not an integer"):
        read_manifest(path)
    path.write_text(",".join(COLUMNS) + "\nimages/a.png,a\n")
    with pytest.raises(UserError, match="line 2: expected 8 fields"):
        read_manifest(path)
    # A manifest written before the dataset column existed reads as one unnamed dataset.
    path.write_text(",".join(c for c in COLUMNS if c != "dataset") + "\nimages/a.png,a,,4,3,abc,\n")
    assert read_manifest(path)[0]["dataset"] == ""


def test_train_and_test_folders_publish_the_split_and_the_next_level_is_the_label(tmp_path):
    root = tmp_path / "cifar"
    for split, label, image in (("train", "cat", skdata.chelsea()), ("train", "ship", skdata.rocket()),
                                ("test", "cat", skdata.astronaut()), ("test", "ship", skdata.coffee())):
        save(root / split / label / f"{label}_{split}.png", small(image))
    out = tmp_path / "raw"
    download(DataParams(source="folder", path=str(root)), out)
    rows = {r["source_id"]: r for r in read_manifest(out / "manifest.csv")}
    assert rows["test__cat__cat_test"]["split"] == "test" and rows["test__cat__cat_test"]["label"] == "cat"
    assert rows["train__ship__ship_train"]["split"] == "train"
    assert {r["label"] for r in rows.values()} == {"cat", "ship"}


def test_classes_keeps_only_the_named_classes(tmp_path):
    root = tmp_path / "photos"
    save(root / "deer" / "a.png", small(skdata.chelsea()))
    save(root / "ship" / "b.png", small(skdata.rocket()))
    out = tmp_path / "raw"
    download(DataParams(source="folder", path=str(root), classes=["deer"]), out)
    assert [r["label"] for r in read_manifest(out / "manifest.csv")] == ["deer"]
    with pytest.raises(UserError, match=r"data.classes: 'horse' not among the source's classes \(deer, ship\)"):
        download(DataParams(source="folder", path=str(root), classes=["horse"]), tmp_path / "raw2")


def test_limit_takes_the_same_seeded_subset_every_time(tmp_path):
    root = tmp_path / "photos"
    for i, image in enumerate((skdata.chelsea(), skdata.rocket(), skdata.astronaut(), skdata.coffee())):
        save(root / f"p{i}.png", small(image))
    picks = []
    for run, seed in enumerate((0, 0, 1)):
        out = tmp_path / f"raw{run}"
        download(DataParams(source="folder", path=str(root), limit=2, seed=seed), out)
        picks.append([r["source_id"] for r in read_manifest(out / "manifest.csv")])
    assert len(picks[0]) == 2 and picks[0] == picks[1]
    assert picks[2] != picks[0]  # (with these 4 photos, seed 1 happens to pick another pair)
