"""`chromalab compare A B`: two commits, an experiment or a reports folder, compared model by model
by a paired bootstrap over the same test images (real git, the real CLI entry point)."""

import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO

PSNR = np.random.default_rng(0).normal(22, 3, 24)  # the images differ a lot from one another


def _write(root, name, psnr, images=24):
    folder = root / "reports" / "eval" / name
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["image,psnr,ssim,colorfulness,colorfulness_gt,semantic_agreement"]
    rows += [f"{i},{psnr[i]:.6f},0.9,{30 + i % 5},{33 + i % 3},{i % 2}" for i in range(images)]
    (folder / "per_image.csv").write_text("\n".join(rows) + "\n")


def _git(root, *args):
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
           "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True).stdout.strip()


def _chromalab(root, *args):
    return subprocess.run([sys.executable, "-m", "chromalab.cli", *args], cwd=root, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "src")})


def _history(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "dvc.yaml").write_text("stages: {}\n")
    _git(root, "init", "-q", "-b", "main")
    _write(root, "unet", PSNR)
    _write(root, "zhang", PSNR)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "a")
    first = _git(root, "rev-parse", "HEAD")
    _write(root, "unet", PSNR + 0.3)  # better by 0.3 dB on every image
    _write(root, "zhang", PSNR + np.random.default_rng(1).normal(0, 0.01, 24))  # noise
    _git(root, "commit", "-qam", "b")
    return root, first


def test_a_lead_on_every_image_is_significant_between_two_commits(tmp_path):
    root, first = _history(tmp_path)
    done = _chromalab(root, "compare", first, "HEAD")
    assert done.returncode == 0, done.stderr
    unet = next(line for line in done.stdout.splitlines() if line.startswith("unet"))
    zhang = next(line for line in done.stdout.splitlines() if line.startswith("zhang"))
    assert "+0.300 [+0.300, +0.300]*" in unet
    assert "]*" not in zhang.split("  ")[2]  # PSNR noise of 0.01 dB: not significant
    assert done.stdout.splitlines()[0].startswith("HEAD minus")


def test_a_folder_and_a_dvc_experiment_compare_the_same_way(tmp_path):
    root, first = _history(tmp_path)
    _git(root, "update-ref", "refs/exps/ab/cdef/bigger-lr", first)  # where `dvc exp` keeps an experiment
    done = _chromalab(root, "compare", "bigger-lr", "reports", "--model", "unet")
    assert done.returncode == 0, done.stderr
    assert "+0.300 [+0.300, +0.300]*" in done.stdout and "zhang" not in done.stdout


def test_different_test_images_or_unknown_runs_are_one_line_errors(tmp_path):
    root, first = _history(tmp_path)
    _write(root, "unet", PSNR[:20], images=20)
    done = _chromalab(root, "compare", first, "reports", "--model", "unet")
    assert done.returncode != 0 and "unet: " in done.stderr and "scored 24 test images, reports 20" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = _chromalab(root, "compare", first, "no-such-run")
    assert done.returncode != 0 and "'no-such-run' is neither a folder" in done.stderr


def test_the_colour_cast_is_compared_where_both_per_image_files_carry_it():
    import io

    from chromalab.report.compare import render, versus
    from chromalab.report.records import read_per_image

    def per_image(neutral_chroma, b_bias):
        rows = ["image,psnr,colorfulness,colorfulness_gt,neutral_chroma,neutral_pixels,a_bias,b_bias,pixels"]
        rows += [f"{i},{PSNR[i]:.6f},30,33,{'' if i == 0 else neutral_chroma + i % 3},{0 if i == 0 else 50},0.1,"
                 f"{b_bias + i % 2},256" for i in range(24)]  # image 0 has no neutral pixel: an empty cell
        return read_per_image(io.StringIO("\n".join(rows) + "\n"), "per_image.csv")

    cast, clean = per_image(4.0, 3.0), per_image(1.0, 0.5)
    assert np.isnan(cast["neutral_chroma"][0]) and cast["neutral_pixels"][0] == 0
    found = versus(clean, cast)
    assert found["neutral_chroma"]["difference"] == pytest.approx(-3.0) and found["neutral_chroma"]["significant"]
    assert found["b_bias"]["ci"] == pytest.approx([-2.5, -2.5])
    table = render([{"model": "unet", "images": 24, **found}], "main", "fix")
    assert "neutral chroma" in table.splitlines()[1] and "-3.000 [-3.000, -3.000]*" in table
    old = read_per_image(io.StringIO("image,psnr\n0,20\n1,21\n"), "old.csv")  # from before the colour cast
    assert set(versus(old, old)) == {"psnr"}
