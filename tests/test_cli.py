"""The `chromalab` command line: help, `models`, `info`, one-line errors, a fast start."""

import argparse
import json
import shutil
import subprocess
import sys

import pytest
import yaml

from chromalab import cli

PARAMS = {
    "league": ["tiny", "wide"],
    "models": {
        "tiny": {"network": "unet", "representation": "ab", "network_args": {"base_channels": 8}},
        "wide": {"network": "zhang", "representation": "bins", "network_args": {"width": 0.5},
                 "representation_args": {"temperature": 0.38}},
    },
    "train": {"seed": 7},
}
SCORES = {"psnr": 22.345, "ssim": 0.9, "auc": 0.88, "auc_rebalanced": 0.7, "colorfulness": 20.0,
          "colorfulness_gt": 30.0, "delta_colorfulness": 10.0}


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    """A pipeline folder after a run: params.yaml, reports/metrics.json, one evaluation folder."""
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    (tmp_path / "reports" / "eval" / "tiny").mkdir(parents=True)
    (tmp_path / "reports" / "eval" / "tiny" / "metrics.json").write_text(json.dumps({"parameters": 45_600}))
    (tmp_path / "reports" / "eval" / "tiny" / "timings.json").write_text(json.dumps({"images_per_second": 50.0}))
    (tmp_path / "reports" / "metrics.json").write_text(json.dumps({
        "tiny": SCORES, "wide": {**SCORES, "psnr": 21.0, "delta_colorfulness": 2.5},
        "grey": {**SCORES, "psnr": 25.0, "delta_colorfulness": 30.0}, "recommended": "wide"}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _subparsers(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_command_and_option_has_help():
    parser = cli.build_parser()
    assert set(_subparsers(parser)) == {"colorize", "models", "info", "release", "relog", "export", "compare",
                                          "video-score"}
    for name, sub in [("chromalab", parser), *_subparsers(parser).items()]:
        assert sub.description, name
        for action in sub._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)


@pytest.mark.parametrize("command", [[], ["colorize"], ["models"], ["info"], ["release"], ["relog"], ["export"],
                                     ["video-score"]])
def test_help_prints_and_exits_0(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: chromalab") and "--quiet" in out and "--debug" in out
    if command == ["colorize"]:
        for option in ("--out", "--model", "--size", "--device", "--suffix", "--overwrite", "--compare",
                       "models:/chromalab@champion", "Exit code", "--frames", "--fps", "--no-stabilise",
                       "--strength", "--cut-fraction", "--crf", ".mkv"):
            assert option in out


def test_models_lists_the_league_with_seed_params_and_last_scores(pipeline, capsys):
    assert cli.main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # run inside the pipeline's folder: the path is shown relative to it, no machine's absolute path
    assert lines[0].startswith("league of params.yaml (test scores from reports/metrics.json")
    header, tiny, tiny_knobs, wide, wide_knobs, grey = lines[1:]
    assert header.split() == ["model", "network", "->", "representation", "seed", "params", "PSNR", "SSIM",
                              "AuC", "ΔCF", "img/s", "train", "(s)"]
    # Speeds from the timings.json beside the outputs (none for tiny's model folder here).
    assert tiny.split() == ["tiny", "unet", "->", "ab", "7", "45.6k", "22.34", "0.9000", "0.8800", "10.00", "50", "—"]
    assert tiny_knobs.strip() == "base_channels=8"
    assert wide.split()[:7] == ["*", "wide", "zhang", "->", "bins", "7", "—"]  # not evaluated: no count
    assert wide_knobs.strip() == "width=0.5, temperature=0.38"
    assert grey.split()[:3] == ["grey", "(baseline)", "—"] and "25.00" in grey


def test_models_before_any_run_says_how_to_get_scores(pipeline, capsys):
    (pipeline / "reports" / "metrics.json").unlink()
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "no test scores yet (reports/metrics.json is missing: run `dvc repro`)" in out
    assert not any(line.startswith("*") for line in out.splitlines())


def test_models_starts_without_torch_or_mlflow(pipeline):
    code = ("import sys; from chromalab import cli; assert cli.main(['models']) == 0; "
            "loaded = {'torch', 'mlflow', 'matplotlib'} & set(sys.modules); assert not loaded, loaded")
    result = subprocess.run([sys.executable, "-c", code], cwd=pipeline, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_info_prints_what_a_checkpoint_is(tmp_path, shared_model_dir, capsys, monkeypatch):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    shutil.copytree(shared_model_dir, tmp_path / "data" / "models" / "tiny")
    monkeypatch.chdir(tmp_path)
    run = json.loads((tmp_path / "data" / "models" / "tiny" / "run.json").read_text())

    assert cli.main(["info", "tiny"]) == 0
    out = "\n".join(" ".join(line.split()) for line in capsys.readouterr().out.splitlines())
    assert "checkpoint data/models/tiny/best.pt" in out  # relative to the folder it runs in
    assert "model tiny: network unet, representation ab" in out
    assert "base_channels=8" in out and "32 px images, best epoch" in out and "epochs=2" in out
    assert f"MLflow run {run['run_id']} in {run['tracking_uri']}" in out
    assert run["model_uri"] in out
    assert "prepared manifest sha256 " in out


def test_a_user_error_is_one_line_with_exit_code_2_and_a_traceback_under_debug(pipeline, capsys):
    assert cli.main(["info", "missing.pt"]) == 2
    err = capsys.readouterr().err
    assert err == "error: missing.pt: no such checkpoint\n"
    with pytest.raises(Exception, match="no such checkpoint"):
        cli.main(["info", "missing.pt", "--debug"])


def test_an_unexpected_error_is_one_line_unless_debug(pipeline, capsys, monkeypatch):
    def broken(args):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(cli, "_models", broken)
    assert cli.main(["models"]) == 1
    assert capsys.readouterr().err == (
        "error: unexpected RuntimeError: disk on fire (rerun with --debug for the traceback)\n")
    with pytest.raises(RuntimeError):
        cli.main(["--debug", "models"])


def test_a_broken_params_file_is_a_one_line_error(pipeline, capsys):
    (pipeline / "params.yaml").write_text("league: [tiny]\nmodels: {}\n")
    assert cli.main(["models"]) == 2
    assert capsys.readouterr().err == "error: league: 'tiny' has no entry under models\n"


@pytest.mark.parametrize("command, expected", [
    (["info", "nosuch"], "error: CHECKPOINT nosuch: no checkpoint at data/models/nosuch/best.pt; train it with "
                         "`dvc repro train@nosuch` (or give a checkpoint's path)"),
    (["release", "nosuch"], "error: data/models/nosuch/best.pt: no such checkpoint; train it first "
                            "(dvc repro train@nosuch)"),
    (["relog", "nosuch"], "error: data/models/nosuch/best.pt: no checkpoint to log; train it first "
                          "(dvc repro train@nosuch)"),
    (["export", "nosuch"], "error: MODEL nosuch: no checkpoint at data/models/nosuch/best.pt; train it with "
                           "`dvc repro train@nosuch` (or give a checkpoint's path)"),
    (["compare", "nosuch", "other"], "error: compare: 'nosuch' is neither a folder holding eval/, a git revision, "
                                     "nor one DVC experiment's name"),
])
def test_a_missing_model_names_the_argument_and_a_path_relative_to_the_pipeline(tmp_path, monkeypatch, capsys,
                                                                              command, expected):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(command) == 2
    assert capsys.readouterr().err.strip() == expected
