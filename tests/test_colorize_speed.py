"""colorize's fast full-resolution path (float32 numpy strips, tables for the sRGB curves) against
the float64 scikit-image reference; strips against one piece; the prefetching folder run against
the sequential one; and `make bench`'s quick mode."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from chromalab.colorizing import checkpoint
from chromalab.colorizing.colorize import FullResolution, colorize_files
from chromalab.core import color, lab_rows
from chromalab.serving.release import read_release

from helpers import REPO, float64_colorize, real_photos


@pytest.fixture(scope="module")
def released():
    """The released model (shipped in the package), as `chromalab colorize` runs it."""
    path, info = read_release()
    colorizer, _ = checkpoint.load(path)
    return colorizer, info["working_size"]


def levels_apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel, the largest difference of its three channels, in uint8 levels."""
    return np.abs(a.astype(int) - b.astype(int)).max(axis=-1)


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_fast_path_matches_the_float64_reference_on_a_real_photo(released, name):
    colorizer, size = released
    rgb = real_photos()[name]
    fast = FullResolution(colorizer, size, torch.device("cpu"))(rgb)
    apart = levels_apart(fast, float64_colorize(colorizer, size, rgb))
    assert fast.shape == rgb.shape and fast.dtype == np.uint8
    # Measured: every pixel within 1 level, 99.1-99.4 % equal.
    assert (apart <= 1).mean() >= 0.99 and apart.max() <= 2
    assert (apart == 0).mean() >= 0.95


def test_lab_rows_match_scikit_image_on_every_kind_of_colour():
    """The conversions alone on random Lab (dark, bright, far out of gamut) and on every grey."""
    rng = np.random.default_rng(0)
    n = 200_000
    lab = np.stack([rng.uniform(0, 100, n), rng.uniform(-110, 110, n), rng.uniform(-110, 110, n)], -1)
    lab[:2000, 0] = rng.uniform(0, 8, 2000)  # below L = 8: lab2rgb's linear branch
    fy = (lab[:, 0] + 16) / 116
    Y = np.where(fy > 0.2068966, fy**3, (fy - 16 / 116) / 7.787)  # as lab2rgb takes it from L
    out = np.empty((1, n, 3), np.uint8)
    ab_f = np.stack([lab[:, 1] / 500, -lab[:, 2] / 200]).astype(np.float32)[:, None]
    lab_rows.LabRows(1, n).to_rgb_uint8(fy.astype(np.float32)[None], Y.astype(np.float32)[None], ab_f, out)
    apart = levels_apart(out[0], color.lab_to_rgb_uint8(lab))
    assert apart.max() <= 1 and (apart == 0).mean() >= 0.99

    rgb = np.concatenate([np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1),
                          rng.integers(0, 256, (100_000, 3), dtype=np.uint8)])[None]
    Y32, fy32 = np.empty(rgb.shape[:2], np.float32), np.empty(rgb.shape[:2], np.float32)
    lab_rows.LabRows(1, rgb.shape[1]).lightness(rgb, Y32, fy32)
    assert np.abs(fy32 * 116 - 16 - color.rgb_to_lab(rgb)[..., 0]).max() < 1e-4  # float32 rounding


def test_strips_and_threads_give_the_same_picture_as_one_piece(released):
    colorizer, size = released
    rgb = np.asarray(Image.fromarray(real_photos()["rocket"]).resize((641, 427)))  # odd width, rows
    whole = FullResolution(colorizer, size, torch.device("cpu"), strip_pixels=10**9, threads=1)
    strips = FullResolution(colorizer, size, torch.device("cpu"), strip_pixels=5000, threads=2)  # 7 rows a strip
    one, cut = whole.preprocess(rgb), strips.preprocess(rgb)
    assert np.array_equal(one.Y, cut.Y) and np.array_equal(one.fy, cut.fy) and torch.equal(one.L_small, cut.L_small)
    ab = whole.predict(one.L_small)
    assert np.array_equal(whole.postprocess(one, ab), strips.postprocess(cut, ab))


def test_the_prefetching_folder_run_writes_the_same_files_as_the_sequential_one(released, tmp_path):
    colorizer, size = released
    folder = tmp_path / "album"
    folder.mkdir()
    for i, (name, rgb) in enumerate(list(real_photos().items())[:4]):
        Image.fromarray(rgb).resize((160 + 8 * i, 120)).save(folder / f"{i}_{name}.jpg")
    (folder / "2_broken.jpg").write_bytes(b"not a jpeg")
    files = sorted(folder.iterdir())
    runner = FullResolution(colorizer, 64, torch.device("cpu"))
    outcomes = {prefetch: colorize_files(runner, files, tmp_path / f"out{prefetch}", progress=False, prefetch=prefetch)
                for prefetch in (0, 2)}
    written = {prefetch: {p.name: p.read_bytes() for p in sorted((tmp_path / f"out{prefetch}").iterdir())}
               for prefetch in (0, 2)}
    assert len(written[0]) == 4 and written[0] == written[2]
    assert [p.name for p in outcomes[0].written] == [p.name for p in outcomes[2].written]
    assert outcomes[0].failed == outcomes[2].failed and len(outcomes[2].failed) == 1
    path, reason = outcomes[2].failed[0]
    assert path.name == "2_broken.jpg" and "2_broken.jpg" in reason and "\n" not in reason


def test_bench_quick_mode_writes_the_split_timings(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("coffee", "chelsea"):
        Image.fromarray(real_photos()[name]).save(photos / f"{name}.png")
    out = tmp_path / "bench.json"
    env = {**os.environ, "CHROMALAB_BENCH_PHOTOS": str(photos)}
    # --threads 1: a smoke test, and one that a busy machine does not slow tenfold (torch with 2 threads
    # on a core that another process holds waits at every operation).
    command = [sys.executable, str(REPO / "benchmarks" / "bench.py"), "--quick", "--threads", "1", "--out", str(out)]
    subprocess.run(command, cwd=tmp_path, env=env, check=True, capture_output=True, text=True, timeout=300)
    results = json.loads(out.read_text())
    for runner in ("released", "anchor"):
        figures = results[runner]
        parts = [figures[f"colorize_{p}_seconds_per_megapixel"] for p in
                 ("decode", "preprocess", "network", "postprocess", "encode")]
        assert all(p > 0 for p in parts)
        assert figures["colorize_seconds_per_megapixel"] == pytest.approx(sum(parts))
        assert 0 < figures["colorize_prepost_fraction"] < 1
    assert results["anchor"]["ratio_to_ours"] > 0 and results["split_photos"] == ["chelsea.jpg"]
    assert results["folder"]["photos"] == 2 and results["folder"]["same_outputs"] is True
    big = results["big_photo"]
    assert big["megapixels"] > 1 and big["peak_rss_mb"] > big["baseline_rss_mb"] > 0 and big["untiled_peak_rss_mb"] > 0


def test_a_runner_reused_on_photos_of_one_size_and_another_gives_what_fresh_runners_give(released):
    """The planes and scratch buffers kept from photo to photo carry nothing over."""
    colorizer, size = released
    photos = real_photos()
    same = [np.asarray(Image.fromarray(photos[name]).resize((200, 150))) for name in ("coffee", "rocket")]
    other = np.asarray(Image.fromarray(photos["chelsea"]).resize((170, 120)))
    reused = FullResolution(colorizer, 64, torch.device("cpu"))
    for rgb in same + [other] + same:
        assert np.array_equal(reused(rgb), FullResolution(colorizer, 64, torch.device("cpu"))(rgb))
