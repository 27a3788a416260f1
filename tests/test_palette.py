"""The palette stage on real prepared photos: k-means colours, Zhang's ab gamut, the swatch."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chromalab.core.config import DataParams, PaletteParams
from chromalab.core.errors import UserError
from chromalab.data.download import download
from chromalab.data.lab_arrays import load_split
from chromalab.data.palette import AB_RANGE, Gamut, build_palette, fit_gamut, sample_pixels
from chromalab.data.prepare import prepare

from helpers import TINY_PREPARE, write_photo_folder

FIXTURE_PALETTE = PaletteParams(k=8, sample_pixels=5000)  # what conftest's palette_dir builds


# conftest's photo_folder -> raw_dir -> prepared_dir -> palette_dir chain, built once for this
# module (same helpers, same parameters): rebuilding it for each test would cost ~1.3 s a test.
# No test writes into these folders.


@pytest.fixture(scope="module")
def module_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("palette_module")
    photos = write_photo_folder(root / "photos")
    download(DataParams(source="folder", path=str(photos)), root / "data" / "raw")
    prepare(TINY_PREPARE, root / "data" / "raw", root / "data" / "prepared")
    build_palette(FIXTURE_PALETTE, root / "data" / "prepared", root / "data" / "palette",
                  root / "reports" / "palette.png")
    return root


@pytest.fixture
def prepared_dir(module_root):
    return module_root / "data" / "prepared"


@pytest.fixture
def palette_dir(module_root):
    return module_root / "data" / "palette"


def load_kmeans(palette_dir: Path) -> dict:
    return json.loads((palette_dir / "kmeans.json").read_text())


def train_ab_pixels(prepared_dir) -> np.ndarray:
    """Every training pixel's ab, (P, 2) float32, as the palette stage reads them."""
    _, ab = load_split(prepared_dir, "train")
    return np.asarray(ab, np.float32).transpose(0, 2, 3, 1).reshape(-1, 2)


# --- k-means palette ----------------------------------------------------------------------------


def test_kmeans_json_holds_k_colours_sorted_by_frequency(palette_dir):
    km = load_kmeans(palette_dir)
    k = FIXTURE_PALETTE.k
    assert km["k"] == k and km["space"] == "ab"
    centers, lab, freq = np.asarray(km["centers"]), np.asarray(km["centers_lab"]), np.asarray(km["frequency"])
    assert centers.shape == (k, 2) and lab.shape == (k, 3) and freq.shape == (k,)
    assert freq.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.all(freq > 0)
    assert np.all(np.diff(freq) <= 0), "most frequent colour first"
    assert np.all((lab[:, 0] >= 0) & (lab[:, 0] <= 100))
    assert np.all(np.abs(lab[:, 1:]) <= AB_RANGE)
    np.testing.assert_allclose(lab[:, 1:], centers, atol=1e-3)  # ab space: the centres are the ab
    assert len(np.unique(centers.round(2), axis=0)) == k
    assert km["inertia_per_pixel"] > 0


def test_kmeans_frequencies_are_the_shares_of_sampled_pixels_nearest_each_colour(prepared_dir, palette_dir):
    km = load_kmeans(palette_dir)
    pixels = sample_pixels(prepared_dir, FIXTURE_PALETTE.sample_pixels, FIXTURE_PALETTE.seed)
    assert pixels.shape == (5000, 3)
    centers = np.asarray(km["centers"])
    nearest = ((pixels[:, None, 1:] - centers[None]) ** 2).sum(-1).argmin(1)
    shares = np.bincount(nearest, minlength=len(centers)) / len(pixels)
    np.testing.assert_allclose(shares, km["frequency"], atol=2e-3)
    # The stored L of each colour is the mean L of its pixels.
    for i, center_lab in enumerate(km["centers_lab"]):
        assert center_lab[0] == pytest.approx(pixels[nearest == i, 0].mean(), abs=0.5)


def test_rgb_space_gives_centres_in_0_to_255(tmp_path, prepared_dir):
    out = tmp_path / "palette_rgb"
    params = PaletteParams(k=6, space="rgb", sample_pixels=3000)
    build_palette(params, prepared_dir, out, tmp_path / "rgb.png")
    km = load_kmeans(out)
    centers = np.asarray(km["centers"])
    assert km["space"] == "rgb" and centers.shape == (6, 3)
    assert np.all((centers >= 0) & (centers <= 255))
    assert centers.max() > 50, "real photos: not every centre is near black"
    lab = np.asarray(km["centers_lab"])
    assert np.all((lab[:, 0] >= 0) & (lab[:, 0] <= 100)) and np.all(np.abs(lab[:, 1:]) <= AB_RANGE)
    assert sum(km["frequency"]) == pytest.approx(1.0, abs=1e-5)


def test_the_same_seed_gives_an_identical_palette(tmp_path, prepared_dir, palette_dir):
    again = tmp_path / "again"
    build_palette(FIXTURE_PALETTE, prepared_dir, again, tmp_path / "again.png")
    assert (again / "kmeans.json").read_bytes() == (palette_dir / "kmeans.json").read_bytes()
    assert (again / "gamut.json").read_bytes() == (palette_dir / "gamut.json").read_bytes()


def test_a_different_seed_samples_different_pixels(prepared_dir):
    a = sample_pixels(prepared_dir, 2000, seed=0)
    b = sample_pixels(prepared_dir, 2000, seed=1)
    assert a.shape == b.shape == (2000, 3)
    assert not np.array_equal(a, b)


def test_more_colours_than_the_training_pixels_hold_is_a_user_error(tmp_path):
    """Four photos of one flat colour each: the train split holds exactly 2 distinct colours."""
    photos = tmp_path / "flat"
    photos.mkdir()
    for name, rgb in {"red": (200, 30, 30), "green": (30, 160, 40), "blue": (30, 40, 200),
                      "yellow": (220, 200, 20)}.items():
        Image.new("RGB", (32, 32), rgb).save(photos / f"{name}.png")
    raw = tmp_path / "raw"
    download(DataParams(source="folder", path=str(photos)), raw)
    prepared = tmp_path / "prepared"
    summary = prepare(dataclasses.replace(TINY_PREPARE, crops_per_image=0), raw, prepared)
    assert summary["source_photos"]["train"] == 2
    assert len(np.unique(train_ab_pixels(prepared), axis=0)) == 2

    for space in ("ab", "rgb"):
        out = tmp_path / f"palette_{space}"
        with pytest.raises(UserError, match=r"^palette\.k: 3 colours asked"):
            build_palette(PaletteParams(k=3, space=space, sample_pixels=500), prepared, out, tmp_path / "p.png")
        assert not out.exists()
    # Exactly as many colours as there are is fine.
    build_palette(PaletteParams(k=2, sample_pixels=500), prepared, tmp_path / "ok", tmp_path / "ok.png")
    km = load_kmeans(tmp_path / "ok")
    assert sum(km["frequency"]) == pytest.approx(1.0) and min(km["frequency"]) > 0.4
    assert len(np.unique(np.asarray(km["centers"]).round(2), axis=0)) == 2


def test_missing_prepared_data_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="train_L.npy: missing"):
        build_palette(FIXTURE_PALETTE, tmp_path / "nothing", tmp_path / "out", tmp_path / "p.png")


# --- Zhang's gamut ------------------------------------------------------------------------------


@pytest.fixture
def gamut(palette_dir) -> Gamut:
    return Gamut.load(palette_dir)


def test_gamut_json_round_trips(palette_dir, gamut):
    obj = json.loads((palette_dir / "gamut.json").read_text())
    assert obj["bins"] == len(gamut.centers) == len(gamut.prior) == len(gamut.weights)
    assert gamut.bin_size == FIXTURE_PALETTE.bin_size
    assert Gamut.from_json(gamut.to_json()).to_json() == gamut.to_json()


def test_gamut_prior_is_a_probability_distribution(gamut):
    assert gamut.prior.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.all(gamut.prior > 0)
    assert 10 < len(gamut.centers) <= gamut.grid_cells ** 2


def test_gamut_bin_centres_are_multiples_of_the_bin_size_within_range(gamut):
    steps = gamut.centers / gamut.bin_size
    np.testing.assert_array_equal(steps, np.rint(steps))
    assert np.all(np.abs(gamut.centers) <= AB_RANGE)
    assert len(np.unique(gamut.centers, axis=0)) == len(gamut.centers)


def test_every_training_pixel_falls_in_its_own_gamut_bin(prepared_dir, gamut):
    ab = train_ab_pixels(prepared_dir)
    index = gamut.bin_index(ab)
    assert index.shape == (len(ab),)
    assert index.min() >= 0 and index.max() < len(gamut.centers)
    own_cell = np.clip(np.rint(ab / gamut.bin_size), -11, 11) * gamut.bin_size
    np.testing.assert_array_equal(gamut.centers[index], own_cell)
    # Every bin of the gamut was seen in training.
    assert set(np.unique(index)) == set(range(len(gamut.centers)))


def test_unsmoothed_prior_is_the_empirical_bin_frequency(prepared_dir):
    gamut = fit_gamut(prepared_dir, PaletteParams(rebalance_sigma=0.0))
    ab = train_ab_pixels(prepared_dir)
    # Count pixels per bin by comparing ab with each bin centre directly (no grid indexing),
    # so swapped a/b axes or an off-by-one cell would show.
    own_cell = np.rint(ab / gamut.bin_size) * gamut.bin_size
    cells, counts = np.unique(own_cell, axis=0, return_counts=True)
    empirical = dict(zip(map(tuple, cells), counts / counts.sum()))
    assert len(empirical) == len(gamut.centers)
    for center, p in zip(gamut.centers, gamut.prior):
        assert p == pytest.approx(empirical[tuple(center)], rel=1e-12)


def test_rebalancing_weights_have_unit_expectation_under_the_prior(gamut):
    assert float((gamut.prior * gamut.weights).sum()) == pytest.approx(1.0, abs=1e-9)
    assert np.all(gamut.weights > 0)


def test_rarer_bins_get_larger_weights(gamut):
    order = np.argsort(gamut.prior, kind="stable")
    prior, weights = gamut.prior[order], gamut.weights[order]
    rarer = np.diff(prior) > 1e-15
    assert rarer.any()
    assert np.all(np.diff(weights)[rarer] < 0), "weights strictly decreasing in prior"
    np.testing.assert_allclose(np.diff(weights)[~rarer], 0, atol=1e-9)


def test_rebalancing_weights_follow_zhang_eq_4(gamut):
    lam, q = FIXTURE_PALETTE.rebalance_lambda, len(gamut.prior)
    expected = 1.0 / ((1 - lam) * gamut.prior + lam / q)
    expected /= (gamut.prior * expected).sum()
    np.testing.assert_allclose(gamut.weights, expected, rtol=1e-9)


def test_lambda_one_gives_uniform_weights(prepared_dir):
    gamut = fit_gamut(prepared_dir, PaletteParams(rebalance_lambda=1.0))
    np.testing.assert_allclose(gamut.weights, 1.0, rtol=1e-9)


def test_pixel_weights_are_the_inverse_prior_of_each_pixels_bin(prepared_dir, gamut):
    ab = train_ab_pixels(prepared_dir)[:500].reshape(10, 50, 2)
    weights = gamut.pixel_weights(ab)
    assert weights.shape == (10, 50)
    np.testing.assert_allclose(weights, 1.0 / gamut.prior[gamut.bin_index(ab)])


def test_ab_far_outside_the_gamut_maps_to_the_nearest_bin(gamut):
    far = np.array([[500.0, -500.0], [-1e6, 1e6], [111.0, 0.0], [0.0, -300.0]])
    index = gamut.bin_index(far)
    assert index.shape == (4,) and index.min() >= 0 and index.max() < len(gamut.centers)
    edge = np.clip(far, -AB_RANGE, AB_RANGE)
    nearest = ((edge[:, None] - gamut.centers[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(gamut.centers[index], gamut.centers[nearest])
    weights = gamut.pixel_weights(far)
    assert np.all(np.isfinite(weights)) and np.all(weights >= 1.0)


def test_missing_gamut_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"gamut\.json: missing"):
        Gamut.load(tmp_path)


# --- the swatch ---------------------------------------------------------------------------------


def test_palette_swatch_is_a_valid_png(module_root):
    path = module_root / "reports" / "palette.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.width >= 300 and img.height >= 100
        pixels = np.asarray(img.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > FIXTURE_PALETTE.k  # bars, not a blank
    assert not list(path.parent.glob(".*tmp"))  # written atomically
