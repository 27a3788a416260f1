"""Several photo sources at once (data.path a list): each photo keeps its dataset in the manifests,
each dataset is split on its own so val and test hold photos of every one, and crops per photo
(and the split fractions) are set per dataset."""

import csv
import json
import tarfile
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from PIL import Image

from chromalab.core.config import DataParams, PrepareParams, dataset_name, parse_section
from chromalab.core.errors import UserError
from chromalab.data.download import download
from chromalab.data.manifest import read_manifest
from chromalab.data.prepare import prepare

from helpers import real_photos


def write_source(root: Path, count: int, side: int, offset: int) -> Path:
    """`count` colour photos (crops of the real ones, each different) of `side` px under root."""
    photos = list(real_photos().values())
    root.mkdir(parents=True)
    for i in range(count):
        rgb = photos[i % len(photos)]
        y, x = (i * 7 + offset) % 40, (i * 11 + offset) % 40
        Image.fromarray(rgb[y : y + side * 2, x : x + side * 2]).resize((side, side)).save(root / f"p{i:02d}.png")
    return root


def as_tar(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w") as tar:
        tar.add(folder, arcname=folder.name)
    return archive


@pytest.fixture
def two_sources(tmp_path):
    big = write_source(tmp_path / "big-photos", 10, 96, 0)
    scenes = as_tar(write_source(tmp_path / "scenes", 30, 48, 3), tmp_path / "scenes-150.tar")
    return [str(big), str(scenes)]


def prepared_rows(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_dataset_names_strip_archive_suffixes_and_must_differ():
    assert dataset_name("../shared/datasets/intel-scenes-150.tar") == "intel-scenes-150"
    assert dataset_name("photos/") == "photos"
    assert dataset_name("a/b.tar.gz") == "b"
    with pytest.raises(UserError, match="both called 'b'"):
        parse_section("data", {"source": "folder", "path": ["x/b.tar", "y/b"]}, DataParams)
    with pytest.raises(UserError, match="data.path: a list of paths is for the folder source"):
        parse_section("data", {"source": "imagenet", "path": ["x", "y"]}, DataParams)


def test_download_keeps_each_photos_dataset_and_prefixes_ids(tmp_path, two_sources):
    download(DataParams(source="folder", path=two_sources), tmp_path / "raw")
    rows = read_manifest(tmp_path / "raw" / "manifest.csv")
    assert Counter(r["dataset"] for r in rows) == {"big-photos": 10, "scenes-150": 30}
    assert all(r["source_id"].startswith(r["dataset"] + "__") for r in rows)


def test_each_dataset_is_split_on_its_own_with_its_own_crops(tmp_path, two_sources):
    download(DataParams(source="folder", path=two_sources), tmp_path / "raw")
    params = parse_section("prepare", {
        "size": 32, "eval_size": 48, "crops_per_image": 4, "val_fraction": 0.2, "test_fraction": 0.2,
        "sources": {"scenes-150": {"crops_per_image": 1, "val_fraction": 0.1, "test_fraction": 0.1}},
    }, PrepareParams)
    summary = prepare(params, tmp_path / "raw", tmp_path / "prepared")
    rows = prepared_rows(tmp_path / "prepared")
    photos = defaultdict(set)
    crops = Counter()
    for r in rows:
        photos[r["dataset"], r["split"]].add(r["source_id"])
        crops[r["source_id"]] += 1
    # val and test hold photos of both datasets, in each one's own fractions
    assert {len(photos["big-photos", s]) for s in ("val", "test")} == {2}
    assert {len(photos["scenes-150", s]) for s in ("val", "test")} == {3}
    # crops per photo: 4 for the big photos, 1 for the scenes; val and test are whole photos
    train = [r for r in rows if r["split"] == "train"]
    assert {crops[r["source_id"]] for r in train if r["dataset"] == "big-photos"} == {4}
    assert {crops[r["source_id"]] for r in train if r["dataset"] == "scenes-150"} == {1}
    assert summary["datasets"]["scenes-150"]["train"] == {"photos": 24, "images": 24}
    assert json.loads((tmp_path / "prepared" / "summary.json").read_text())["datasets"] == summary["datasets"]


def test_a_per_source_key_for_a_dataset_that_is_not_there_is_one_line(tmp_path, two_sources):
    download(DataParams(source="folder", path=two_sources), tmp_path / "raw")
    params = PrepareParams(size=32, sources={"scenes": {"crops_per_image": 1}})
    with pytest.raises(UserError, match=r"prepare.sources: 'scenes' is not a dataset of data/raw \(datasets: "
                                        r"big-photos, scenes-150\)"):
        prepare(params, tmp_path / "raw", tmp_path / "prepared")
    assert not (tmp_path / "prepared").exists()


@pytest.mark.parametrize("sources, message", [
    ({"a": {"crops": 2}}, r"prepare.sources.a.crops: not a per-source key"),
    ({"a": {"val_fraction": 2.0}}, r"prepare.sources.a.val_fraction: must be between 0.0 and 0.9"),
    ({"a": {"crops_per_image": "two"}}, r"prepare.sources.a.crops_per_image: expected an integer"),
    ({"a": 3}, r"prepare.sources.a: expected a mapping"),
])
def test_bad_per_source_params_are_one_line_errors(sources, message):
    with pytest.raises(UserError, match=message):
        parse_section("prepare", {"sources": sources}, PrepareParams)


def test_one_source_keeps_its_split_unchanged(tmp_path):
    """A single folder is one unnamed pool: the same split as before datasets existed (the
    expected ids are what the previous split_sources, commit 9757a84, drew for these photos)."""
    folder = write_source(tmp_path / "only", 12, 64, 0)
    download(DataParams(source="folder", path=str(folder)), tmp_path / "raw")
    assert {r["dataset"] for r in read_manifest(tmp_path / "raw" / "manifest.csv")} == {""}
    summary = prepare(PrepareParams(size=32, val_fraction=0.25, test_fraction=0.25), tmp_path / "raw", tmp_path / "p")
    assert "datasets" not in summary
    rows = prepared_rows(tmp_path / "p")
    by_split = {s: sorted(r["source_id"] for r in rows if r["split"] == s) for s in ("val", "test")}
    assert by_split == {"val": ["p05", "p08"], "test": ["p02", "p07", "p09"]}


# --- evaluation read per dataset ----------------------------------------------------------------


def test_by_dataset_scores_each_dataset_on_its_own_images():
    import numpy as np

    from chromalab.scoring.per_dataset import by_dataset

    per_image = {"psnr": np.array([20.0, 22.0, 30.0, 31.0, 29.0]),
                 "colorfulness": np.array([10.0, 12.0, 5.0, 5.0, 5.0]),
                 "colorfulness_gt": np.array([20.0, 20.0, 4.0, 6.0, 5.0])}
    found = by_dataset(per_image, ["a", "a", "b", "b", "b"], seed=0, draws=200)
    assert found["a"]["images"] == 2 and found["a"]["psnr"] == pytest.approx(21.0)
    assert found["b"]["psnr"] == pytest.approx(30.0)
    assert found["a"]["delta_colorfulness"] == pytest.approx(9.0) and found["b"]["delta_colorfulness"] == pytest.approx(0.0)
    assert 20.0 <= found["a"]["psnr_ci"]["low"] <= 21.0 <= found["a"]["psnr_ci"]["high"] <= 22.0
    assert "neutral_chroma" not in found["a"]  # no per-image cast columns given: no such statistic
    # one dataset (or none named) has no breakdown: it would repeat the set's own scores
    assert by_dataset(per_image, ["a"] * 5, seed=0, draws=200) == {}
    assert by_dataset(per_image, [""] * 5, seed=0, draws=200) == {}


def test_evaluation_of_two_datasets_reports_each_one(tmp_path, two_sources):
    from chromalab.core.config import EvaluateParams, PaletteParams
    from chromalab.data.palette import build_palette
    from chromalab.scoring.evaluate import evaluate

    download(DataParams(source="folder", path=two_sources), tmp_path / "raw")
    prepare(PrepareParams(size=32, crops_per_image=2, val_fraction=0.2, test_fraction=0.2), tmp_path / "raw",
            tmp_path / "prepared")
    build_palette(PaletteParams(k=8, sample_pixels=5000), tmp_path / "prepared", tmp_path / "palette",
                  tmp_path / "palette.png")
    result = evaluate("grey", EvaluateParams(gallery=2, judge=False), tmp_path / "prepared", tmp_path / "palette",
                      tmp_path / "models", tmp_path / "eval")
    datasets = result["datasets"]
    assert sorted(datasets) == ["big-photos", "scenes-150"]
    assert datasets["big-photos"]["images"] == 4 and datasets["scenes-150"]["images"] == 12  # 2 crops a photo
    for row in datasets.values():  # the grey baseline paints nothing: no chroma where the truth has none
        assert row["neutral_chroma"] == 0.0 and row["psnr_ci"]["low"] <= row["psnr"] <= row["psnr_ci"]["high"]
    # the set's mean PSNR is the image-weighted mean of the datasets'
    assert result["psnr"] == pytest.approx((4 * datasets["big-photos"]["psnr"] + 12 * datasets["scenes-150"]["psnr"]) / 16)
    on_disk = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert on_disk["datasets"]["scenes-150"]["b_bias"] == pytest.approx(datasets["scenes-150"]["b_bias"])
