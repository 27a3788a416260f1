"""The prepare stage on real photos: split by source photo, drop greys, crop, convert, memory-map."""

import csv
import dataclasses
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chromalab.core.color import rgb_to_lab
from chromalab.core.config import DataParams
from chromalab.core.errors import UserError
from chromalab.core.images import load_rgb
from chromalab.data import prepare as prepare_module
from chromalab.data.download import download
from chromalab.data.manifest import COLUMNS, read_manifest, write_manifest
from chromalab.data.prepare import SPLITS, prepare

from helpers import TINY_PREPARE, real_photos, write_photo_folder


def read_prepared_manifest(prepared_dir: Path) -> list[dict]:
    with open(prepared_dir / "manifest.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_summary(prepared_dir: Path) -> dict:
    return json.loads((prepared_dir / "summary.json").read_text())


def sources_by_split(rows) -> dict[str, set[str]]:
    out = defaultdict(set)
    for row in rows:
        out[row["split"]].add(row["source_id"])
    return out


def downloaded(tmp_path: Path, photos: Path, name: str = "raw") -> Path:
    out = tmp_path / name
    download(DataParams(source="folder", path=str(photos)), out)
    return out


# --- splits -------------------------------------------------------------------------------------


def test_prepare_never_splits_crops_of_one_photo(prepared_dir):
    rows = read_prepared_manifest(prepared_dir)
    splits_of = defaultdict(set)
    for row in rows:
        splits_of[row["source_id"]].add(row["split"])
    assert len(splits_of) == 6  # six colour photos; the grey one is gone
    for source, splits in splits_of.items():
        assert len(splits) == 1, f"{source} is in {splits}"
    # Every split is used, and each photo contributes all of its crops to its split.
    assert set(sources_by_split(rows)) == set(SPLITS)
    per_source = defaultdict(int)
    for row in rows:
        per_source[row["source_id"]] += 1
    assert set(per_source.values()) == {TINY_PREPARE.crops_per_image}


def test_manifest_indices_address_rows_of_each_split_array(prepared_dir):
    rows = read_prepared_manifest(prepared_dir)
    summary = read_summary(prepared_dir)
    for split in SPLITS:
        indices = [int(r["index"]) for r in rows if r["split"] == split]
        assert indices == list(range(summary["images"][split]))


def test_prepare_drops_grey_photos_and_counts_them(prepared_dir):
    summary = read_summary(prepared_dir)
    assert summary["dropped_grey"] == 1
    assert summary["dropped_grey_paths"] == ["images/greys__grey0.png"]
    rows = read_prepared_manifest(prepared_dir)
    assert not any("grey" in r["source_id"] for r in rows)
    assert sum(summary["source_photos"].values()) == 6
    assert summary["labels"] == ["animal", "scene"]


def test_prepared_arrays_are_memory_mapped_with_expected_shapes_and_dtype(prepared_dir):
    summary = read_summary(prepared_dir)
    s = TINY_PREPARE.size
    assert summary["size"] == s and summary["dtype"] == "float16"
    for split in SPLITS:
        n = summary["images"][split]
        assert n > 0
        L = np.load(prepared_dir / f"{split}_L.npy", mmap_mode="r")
        ab = np.load(prepared_dir / f"{split}_ab.npy", mmap_mode="r")
        assert isinstance(L, np.memmap) and isinstance(ab, np.memmap)
        assert L.shape == (n, 1, s, s)
        assert ab.shape == (n, 2, s, s)
        assert L.dtype == np.float16 and ab.dtype == np.float16
        # Real Lab values, not an unwritten (all-zero) map.
        assert 0.0 <= float(L.min()) and float(L.max()) <= 100.0
        assert float(np.asarray(L, np.float32).std()) > 1.0
        assert float(np.abs(ab).max()) > 5.0
        assert float(np.abs(ab).max()) <= 128.0
    assert sum(summary["images"].values()) == 6 * TINY_PREPARE.crops_per_image


def test_prepared_lab_matches_the_photo_crop(prepared_dir, raw_dir):
    rows = read_prepared_manifest(prepared_dir)
    s = TINY_PREPARE.size
    for split in SPLITS:
        row = next(r for r in rows if r["split"] == split)
        x, y, side = int(row["x"]), int(row["y"]), int(row["side"])
        rgb = load_rgb(raw_dir / row["raw_path"])
        assert 0 <= x and x + side <= rgb.shape[1] and 0 <= y and y + side <= rgb.shape[0]
        crop = Image.fromarray(rgb[y : y + side, x : x + side])
        if side != s:
            crop = crop.resize((s, s), Image.Resampling.LANCZOS)
        expected = rgb_to_lab(np.asarray(crop)).transpose(2, 0, 1)
        index = int(row["index"])
        L = np.load(prepared_dir / f"{split}_L.npy", mmap_mode="r")[index].astype(np.float32)
        ab = np.load(prepared_dir / f"{split}_ab.npy", mmap_mode="r")[index].astype(np.float32)
        # float16 rounds to within 2**-11 of the value, relative (at most 0.031 at L near 100).
        np.testing.assert_allclose(L, expected[:1], rtol=2**-11, atol=1e-3)
        np.testing.assert_allclose(ab, expected[1:], rtol=2**-11, atol=1e-3)
        assert np.abs(L - expected[:1]).mean() < 0.02
        assert np.abs(ab - expected[1:]).mean() < 0.02
        # ...and it is not some other crop of the same photo.
        other = rgb_to_lab(np.asarray(Image.fromarray(rgb).resize((s, s)))).transpose(2, 0, 1)
        assert np.abs(ab - other[1:]).mean() > 0.5


def test_float32_dtype_stores_float32(tmp_path, raw_dir):
    out = tmp_path / "p32"
    prepare(dataclasses.replace(TINY_PREPARE, dtype="float32"), raw_dir, out)
    assert np.load(out / "train_L.npy", mmap_mode="r").dtype == np.float32
    assert read_summary(out)["dtype"] == "float32"


# --- determinism --------------------------------------------------------------------------------


def test_prepare_is_deterministic_for_a_seed(tmp_path, raw_dir):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    prepare(TINY_PREPARE, raw_dir, a)
    prepare(TINY_PREPARE, raw_dir, b)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert "manifest.csv" in names and "train_ab.npy" in names
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name

    prepare(dataclasses.replace(TINY_PREPARE, seed=1), raw_dir, c)
    assert (c / "manifest.csv").read_bytes() != (a / "manifest.csv").read_bytes()
    boxes = lambda d: {(r["source_id"], r["x"], r["y"], r["side"]) for r in read_prepared_manifest(d)}  # noqa: E731
    assert boxes(c) != boxes(a)


def test_centre_crop_when_crops_per_image_is_zero(tmp_path, raw_dir):
    out = tmp_path / "centre"
    params = dataclasses.replace(TINY_PREPARE, crops_per_image=0)
    summary = prepare(params, raw_dir, out)
    assert sum(summary["images"].values()) == 6
    raw_rows = {r["path"]: r for r in read_manifest(raw_dir / "manifest.csv")}
    rows = read_prepared_manifest(out)
    assert len(rows) == 6 and len({r["source_id"] for r in rows}) == 6
    for row in rows:
        h, w = load_rgb(raw_dir / row["raw_path"]).shape[:2]
        short = min(w, h)
        assert (int(row["x"]), int(row["y"]), int(row["side"])) == ((w - short) // 2, (h - short) // 2, short)
        assert raw_rows[row["raw_path"]]["source_id"] == row["source_id"]
    # Not every photo is square, so at least one crop is offset from the corner.
    assert any(int(r["x"]) or int(r["y"]) for r in rows)


def test_random_crops_respect_the_minimum_crop_fraction(prepared_dir, raw_dir):
    for row in read_prepared_manifest(prepared_dir):
        h, w = load_rgb(raw_dir / row["raw_path"]).shape[:2]
        side = int(row["side"])
        assert int(TINY_PREPARE.min_crop_fraction * min(w, h)) <= side <= min(w, h)


# --- bad input ----------------------------------------------------------------------------------


def test_too_few_photos_is_a_user_error(tmp_path):
    photos = tmp_path / "two"
    photos.mkdir()
    for name in ("astronaut", "chelsea"):
        img = Image.fromarray(real_photos()[name])
        img.thumbnail((96, 96))
        img.save(photos / f"{name}.png")
    raw = downloaded(tmp_path, photos)
    out = tmp_path / "prepared"
    with pytest.raises(UserError, match=r"2 colour photo\(s\) cannot fill train/val/test"):
        prepare(TINY_PREPARE, raw, out)
    assert not out.exists()


def test_only_grey_photos_is_a_user_error(tmp_path):
    photos = write_photo_folder(tmp_path / "greys", grey=0, labels=False)
    for p in photos.iterdir():
        Image.open(p).convert("L").save(p.with_suffix(".grey.png"))
        p.unlink()
    raw = downloaded(tmp_path, photos)
    with pytest.raises(UserError, match="none of the 6 photos carries colour"):
        prepare(TINY_PREPARE, raw, tmp_path / "prepared")


def test_missing_raw_manifest_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="manifest not found"):
        prepare(TINY_PREPARE, tmp_path / "no_raw", tmp_path / "prepared")


def _publish(raw_dir: Path, splits: dict[str, str]) -> None:
    rows = read_manifest(raw_dir / "manifest.csv")
    for row in rows:
        row["split"] = splits.get(row["source_id"], "")
    write_manifest(raw_dir / "manifest.csv", rows)


def test_published_test_split_is_kept(tmp_path, raw_dir):
    published = {"scene__china", "animal__chelsea"}
    _publish(raw_dir, {s: "test" for s in published})
    with open(raw_dir / "manifest.csv", newline="") as f:
        assert next(csv.reader(f)) == COLUMNS  # a real raw manifest, split column included

    for seed in (0, 1, 2):
        out = tmp_path / f"published{seed}"
        prepare(dataclasses.replace(TINY_PREPARE, seed=seed), raw_dir, out)
        by_split = sources_by_split(read_prepared_manifest(out))
        assert by_split["test"] == published
        assert by_split["val"] and by_split["train"]
        assert not (by_split["val"] | by_split["train"]) & published


def test_fully_published_train_test_split_still_prepares(tmp_path, raw_dir):
    test = {"scene__china", "animal__chelsea"}
    sources = {r["source_id"] for r in read_manifest(raw_dir / "manifest.csv")} - {"greys__grey0"}
    _publish(raw_dir, {s: ("test" if s in test else "train") for s in sources})
    out = tmp_path / "published"
    prepare(TINY_PREPARE, raw_dir, out)
    by_split = sources_by_split(read_prepared_manifest(out))
    assert by_split["test"] == test
    assert by_split["train"] and by_split["val"]  # val carved from the published train photos
    assert not by_split["val"] & test


def test_failed_prepare_leaves_no_output(tmp_path, raw_dir, monkeypatch):
    real_write = prepare_module._write_split
    calls = []

    def write_then_fail(*args, **kwargs):
        calls.append(args[2])
        if len(calls) > 1:
            raise RuntimeError("disk full")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(prepare_module, "_write_split", write_then_fail)
    out = tmp_path / "data" / "prepared"
    with pytest.raises(RuntimeError, match="disk full"):
        prepare(TINY_PREPARE, raw_dir, out)
    assert calls == ["train", "val"]
    assert not out.exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["raw"]


def test_failed_prepare_keeps_the_previous_output(tmp_path, raw_dir, prepared_dir, monkeypatch):
    before = {p.name: p.read_bytes() for p in prepared_dir.iterdir()}

    def fail(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(prepare_module, "_write_split", fail)
    with pytest.raises(RuntimeError):
        prepare(dataclasses.replace(TINY_PREPARE, seed=5), raw_dir, prepared_dir)
    assert {p.name: p.read_bytes() for p in prepared_dir.iterdir()} == before
    assert sorted(p.name for p in prepared_dir.parent.iterdir()) == ["prepared", "raw"]


# --- EXIF orientation ---------------------------------------------------------------------------


def _save_rotated(path: Path, upright: np.ndarray) -> None:
    """Store `upright` as a camera would: pixels rotated, plus EXIF orientation 6 to undo it."""
    stored = np.ascontiguousarray(np.rot90(upright, k=1))  # 90° counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=95)


def test_exif_orientation_is_honoured_when_loading(tmp_path):
    upright = np.asarray(Image.fromarray(real_photos()["rocket"]).resize((40, 72)))  # 72 high, 40 wide
    path = tmp_path / "rotated.jpg"
    _save_rotated(path, upright)
    with Image.open(path) as img:
        assert img.size == (72, 40)  # stored sideways
    loaded = load_rgb(path)
    assert loaded.shape == (72, 40, 3)
    assert np.abs(loaded.astype(int) - upright.astype(int)).mean() < 6


def test_prepare_crops_exif_rotated_photos_upright(tmp_path):
    photos = write_photo_folder(tmp_path / "photos", grey=0, labels=False)
    upright = np.asarray(Image.fromarray(real_photos()["rocket"]).resize((40, 72)))
    _save_rotated(photos / "sideways.jpg", upright)
    raw = downloaded(tmp_path, photos)
    raw_row = next(r for r in read_manifest(raw / "manifest.csv") if r["source_id"] == "sideways")
    assert (raw_row["width"], raw_row["height"]) == (72, 40)  # raw stays raw

    out = tmp_path / "prepared"
    params = dataclasses.replace(TINY_PREPARE, crops_per_image=0, size=40)
    prepare(params, raw, out)
    row = next(r for r in read_prepared_manifest(out) if r["source_id"] == "sideways")
    # Centre crop of the upright 40 x 72 photo: offset down, not across.
    assert (int(row["x"]), int(row["y"]), int(row["side"])) == (0, 16, 40)
    expected = rgb_to_lab(upright[16:56]).transpose(2, 0, 1)
    split_ab = np.load(out / f"{row['split']}_ab.npy", mmap_mode="r")
    ab = split_ab[int(row["index"])].astype(np.float32)
    sideways = rgb_to_lab(np.asarray(Image.open(photos / "sideways.jpg"))[:, 16:56]).transpose(2, 0, 1)
    assert np.abs(ab - expected[1:]).mean() < 2.0  # JPEG noise only
    assert np.abs(ab - sideways[1:]).mean() > np.abs(ab - expected[1:]).mean() + 1.0


# --- eval_size: whole photos for val and test -----------------------------------------------


def test_eval_size_gives_val_and_test_whole_photos_at_that_size(tmp_path, raw_dir):
    params = dataclasses.replace(TINY_PREPARE, eval_size=48)
    out = tmp_path / "eval_size"
    summary = prepare(params, raw_dir, out)
    assert summary["size"] == 32 and summary["eval_size"] == 48
    rows = read_prepared_manifest(out)
    for split in ("val", "test"):
        L = np.load(out / f"{split}_L.npy")
        assert L.shape[1:] == (1, 48, 48)
        split_rows = [r for r in rows if r["split"] == split]
        assert len(L) == len({r["source_id"] for r in split_rows}) == len(split_rows)  # one per photo
        assert all((r["x"], r["y"], r["side"]) == ("0", "0", "0") for r in split_rows)  # the whole photo
    assert np.load(out / "train_L.npy").shape[1:] == (1, 32, 32)
    assert summary["images"]["train"] == 4 * summary["source_photos"]["train"]
    # The whole photo, aspect ratio and all, resized: compare with PIL's own resize of the raw file.
    first = next(r for r in rows if r["split"] == "test")
    rgb = load_rgb(raw_dir / first["raw_path"])
    expected = rgb_to_lab(np.asarray(Image.fromarray(rgb).resize((48, 48), Image.Resampling.LANCZOS)))
    got = np.load(out / "test_ab.npy")[int(first["index"])].astype(np.float32)
    assert np.abs(got - expected[..., 1:].transpose(2, 0, 1)).max() < 0.1  # float16 storage
    # The same photos go to the same splits as without eval_size: only their pictures change.
    prepare(TINY_PREPARE, raw_dir, tmp_path / "plain")
    assert sources_by_split(read_prepared_manifest(tmp_path / "plain")) == sources_by_split(rows)


def test_eval_size_must_be_a_sensible_size():
    from chromalab.core.config import parse_section, PrepareParams

    with pytest.raises(UserError, match="prepare.eval_size: must be at least 8, got 4"):
        parse_section("prepare", {"eval_size": 4}, PrepareParams)
