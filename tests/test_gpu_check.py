"""benchmarks/gpu_check.py (`make gpu-check`): without CUDA it says so and exits 0; its CPU dry run
trains lite_bins, compares the first steps with a float32 reference, runs the pipeline's train(),
colorizes a photo and writes gpu_check.json; a loss that does not fall fails the check."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from helpers import REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.py"
# The dry run the tests make: small enough for a few seconds on 2 CPU cores, through every step.
# lr 0.002: in 30 steps of 4 images the loss then falls to 0.75 x (0.88 at params.yaml's 0.0005,
# too near the check's 0.90 for a test).
DRY_RUN = ["--device", "cpu", "--steps", "30", "--size", "64", "--batch-size", "4", "--crops", "4",
           "--data", "photos", "--lr", "0.002"]


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def run_script(*args, timeout=300):
    # No CUDA device, whatever the machine has: the no-CUDA test means it, the dry runs ask for the CPU.
    # One thread: on a busy 2-core machine a second one mostly waits for its core (a dry run took
    # 7 s with one thread and 26 s with two here).
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_without_cuda_it_says_so_in_one_line_and_exits_0(tmp_path):
    result = run_script("--reports", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert "no CUDA device" in lines[0] and "lite_bins" in lines[0] and "--device cpu" in lines[0]
    assert not any(tmp_path.iterdir())  # nothing checked, nothing written


def test_cpu_dry_run_trains_compares_runs_the_pipeline_colorizes_and_writes_the_record(tmp_path):
    # --amp bf16: the comparison then has both parts, CPU bf16 autocast (the check path) and a
    # second float32 run, which must equal the reference exactly.
    result = run_script(*DRY_RUN, "--amp", "bf16", "--reports", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    assert {"device", "device_name", "dry_run", "torch", "cuda", "steps", "batch_size", "lr", "amp", "channels_last",
            "model_info", "data", "losses", "checks", "timings", "passed", "failures"} <= set(record)
    assert record["device"] == "cpu" and record["dry_run"] and record["passed"] and not record["failures"]
    assert record["model_info"]["network"] == "encoder_unet" and record["model_info"]["representation"] == "bins"
    assert record["data"] == {**record["data"], "size": 64, "train_images": 32}  # 8 builtin photos x 4 crops
    assert len(record["losses"]) == 30 and record["amp"] == "bfloat16" and not record["channels_last"]

    checks = record["checks"]
    assert {"matches_cpu", "loss_falls", "pipeline_train", "colorize"} == set(checks)
    assert all(c["passed"] for c in checks.values())
    cmp = checks["matches_cpu"]
    assert cmp["steps"] == 5 and len(cmp["reference_losses"]) == 5
    assert cmp["float32"]["max_relative_difference"] == 0.0  # the same run twice on the CPU
    assert 0 < cmp["amp"]["max_relative_difference"] <= cmp["amp"]["tolerance"]  # bf16 differs, a little
    assert checks["loss_falls"]["ratio"] < checks["loss_falls"]["must_be_below"]
    col = checks["colorize"]
    assert (tmp_path / "gpu_check" / "astronaut.png").is_file() and col["output"].endswith("astronaut.png")
    assert col["not_grey"] and col["mean_chroma"] > col["grey_below"] and col["cpu_mean_abs_diff"] == 0
    assert (col["height"], col["width"]) == (512, 512)

    timings = record["timings"]
    assert set(timings["train_img_per_s"]) == {"bfloat16", "float32"}
    assert timings["precompute_img_per_s"] > 0 and timings["colorize_s_per_mp"] > 0
    assert "speed: train" in result.stdout and "wrote" in result.stdout


def test_a_loss_that_cannot_fall_fails_the_check_with_one_line(tmp_path):
    result = run_script(*DRY_RUN, "--lr", "0", "--no-pipeline", "--reports", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("gpu-check: FAILED: the loss did not fall")
    record = json.loads((tmp_path / "gpu_check.json").read_text())  # written before it fails
    assert not record["passed"] and not record["checks"]["loss_falls"]["passed"]
    assert record["checks"]["matches_cpu"]["passed"] and record["checks"]["colorize"]["passed"]
    assert len(record["failures"]) == 1


# --- the pieces, in process --------------------------------------------------------------------


def test_loss_falls_compares_the_first_and_last_fifth_with_the_margin():
    gpu_check = load_script()
    falling = gpu_check.loss_falls([5.0] * 4 + [4.0] * 12 + [3.0] * 4)
    assert falling["passed"] and falling["steps_averaged"] == 4 and falling["ratio"] == pytest.approx(0.6)
    flat = gpu_check.loss_falls([5.0, 4.8, 5.1, 4.9, 5.0, 4.7, 5.0, 4.9, 4.8, 4.75])
    assert not flat["passed"]  # 4.775 / 4.9: fell 2.6 %, within the margin of what batches do
    assert not gpu_check.loss_falls([5.0, 4.0, 3.0, 2.0, float("nan")])["passed"]


def test_losses_match_takes_the_largest_relative_difference():
    gpu_check = load_script()
    ok = gpu_check.losses_match([4.01, 3.0, 2.0], [4.0, 3.0, 2.0], rtol=0.005)
    assert ok["passed"] and ok["max_relative_difference"] == pytest.approx(0.0025)
    assert not gpu_check.losses_match([4.0, 3.03, 2.0], [4.0, 3.0, 2.0], rtol=0.005)["passed"]
    assert not gpu_check.losses_match([4.0, float("nan")], [4.0, 3.0], rtol=0.5)["passed"]


def test_seeded_dropout_draws_the_same_masks_in_two_copies_and_keeps_the_expectation():
    gpu_check = load_script()

    def make():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(2, 8, 1), torch.nn.Dropout2d(0.5), torch.nn.Dropout(0.25))

    a, b = gpu_check.seed_dropout(make(), 7), gpu_check.seed_dropout(make(), 7)
    assert [type(m).__name__ for m in a] == ["Conv2d", "SeededDropout", "SeededDropout"]
    x = torch.ones(4, 2, 5, 5)
    assert torch.equal(a(x), b(x)) and torch.equal(a(x), b(x))  # call after call
    assert not torch.equal(a(x), a(x))  # yet a new mask each call
    masks = a[1](torch.ones(64, 8, 3, 3))
    assert set(masks.unique().tolist()) == {0.0, 2.0}  # whole channels dropped, the rest scaled by 1/(1-p)
    assert torch.equal(masks.amin(dim=(2, 3)), masks.amax(dim=(2, 3)))
    assert a.eval()(x).equal(a[0](x))  # nothing dropped in eval mode


def test_usage_errors_exit_2():
    gpu_check = load_script()
    for bad in (["--size", "48"], ["--steps", "3"], ["--device", "tpu"], ["--device", "cpu", "--amp", "fp16"],
                ["--compare-steps", "400"]):
        with pytest.raises(SystemExit) as exit_info:
            gpu_check.parse_args(bad)
        assert exit_info.value.code == 2
