"""The real pipeline, end to end: `dvc repro` on a tiny params profile in a fresh git repository,
with the real builtin photos, a real SQLite MLflow store, then the commands a user runs next."""

import json
import sqlite3

import pytest

from helpers import copy_repo, run


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_baseline):
    root = copy_repo(tiny_baseline, tmp_path_factory.mktemp("pipeline") / "repo")
    return root, tiny_baseline[1], tiny_baseline[2]


def test_dvc_repro_runs_every_stage_and_writes_the_declared_outputs(pipeline):
    root, _, first = pipeline
    for stage in ("download", "prepare", "palette", "train@unet", "evaluate@unet", "evaluate_grey", "neutral@unet",
                  "neutral_released", "video", "report"):
        assert f"Running stage '{stage}'" in first.stdout
    assert (root / "data/raw/manifest.csv").read_text().count("\n") == 9  # header + 8 builtin photos
    for split in ("train", "val", "test"):
        assert (root / f"data/prepared/{split}_L.npy").is_file()
    assert (root / "data/palette/kmeans.json").is_file() and (root / "reports/palette.png").is_file()
    assert (root / "data/models/unet/best.pt").is_file()
    metrics = json.loads((root / "reports/metrics.json").read_text())
    assert set(metrics) == {"unet", "grey", "recommended"}
    assert metrics.pop("recommended") == "unet"
    for name, scores in metrics.items():
        assert {"psnr", "ssim", "auc", "auc_rebalanced", "colorfulness", "colorfulness_gt",
                "delta_colorfulness", "psnr_ci", "semantic_agreement", "fd", "neutral_chroma", "b_bias"} <= set(scores)
        if name != "grey":  # the grey-scene check colorizes with each trained model (grey paints nothing)
            assert {"neutral_scene_mean_chroma", "neutral_scene_p99_chroma"} <= set(scores)
    released = json.loads((root / "reports/neutral/released/metrics.json").read_text())
    assert released["model"] == "released" and released["mean_chroma"] >= 0  # the packaged model's check
    video = json.loads((root / "reports/video/metrics.json").read_text())  # the stabiliser on the made clip
    assert video["frames"] == 6 + 4 and video["cut_at"] == 6 and video["carried_across_cut"] == 0.0
    assert (root / "reports/video/strip.jpg").is_file() and (root / "data/video/stabilised.mp4").is_file()
    html = (root / "reports/index.html").read_text()
    assert "unet" in html and "eval/unet/gallery/00.png" in html
    assert 'id="films"' in html and "video/strip.jpg" in html  # the video stage's figures in the report
    assert (root / "reports/train/unet/history.csv").read_text().count("\n") == 3
    assert (root / "reports/hero.png").is_file() and (root / "reports/curves/training_unet.svg").is_file()


def test_mlflow_store_is_sqlite_at_the_pipeline_root_with_test_metrics(pipeline):
    root, _, _ = pipeline
    db = root / "mlflow.db"
    assert db.is_file() and not (root / "mlruns").exists()
    with sqlite3.connect(db) as con:
        keys = {k for (k,) in con.execute("select key from metrics")}
        tags = dict(con.execute("select key, value from tags"))
    assert {"val_loss", "test_psnr", "test_auc"} <= keys
    assert tags["dvc_stage"] == "train@unet"
    with sqlite3.connect(db) as con:  # the report stage registered the recommended model
        aliases = list(con.execute("select name, alias from registered_model_aliases"))
    assert aliases == [("chromalab", "champion")]


def test_dvc_plots_show_renders_the_training_curves_and_the_error_cdf(pipeline):
    root, env, _ = pipeline
    shown = json.loads(run(["dvc", "plots", "show", "--json"], root, env).stdout)
    assert not shown.get("errors")
    assert {"reports/train/unet/history.csv", "val_psnr", "error_cdf", "error_cdf_rebalanced"} <= set(shown["data"])
    cdf = shown["data"]["error_cdf"][0]["content"]
    assert {row["model"] for row in cdf["data"]["values"]} == {"unet", "grey"}
    assert cdf["encoding"]["color"]["field"] == "model"  # the by_model template, copied from .dvc/plots
    page = root.parent / "dvc_plots"  # outside the repository, which a later test commits
    run(["dvc", "plots", "show", "-o", str(page)], root, env)
    assert "error_cdf" in (page / "index.html").read_text()


def test_second_repro_is_a_no_op_and_metrics_show_reads_the_results(pipeline):
    root, env, _ = pipeline
    again = run(["dvc", "repro"], root, env)
    assert "Running stage" not in again.stdout
    assert "up to date" in again.stdout
    shown = run(["dvc", "metrics", "show", "--json"], root, env).stdout
    assert "psnr" in shown and "unet" in shown


def test_an_experiment_with_other_params_reruns_training_and_diffs(pipeline):
    root, env, _ = pipeline
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "results", "--allow-empty"], root, env)
    exp = run(["dvc", "exp", "run", "-S", "train.epochs=1"], root, env)
    assert "Running stage 'train@unet'" in exp.stdout and "Running stage 'download'" not in exp.stdout
    history = (root / "reports/train/unet/history.csv").read_text()
    assert history.count("\n") == 2  # one epoch now
    diff = run(["dvc", "params", "diff", "--json"], root, env).stdout
    change = json.loads(diff)["params.yaml"]["train.epochs"]
    assert (change["old"], change["new"]) == (2, 1)
    metrics_diff = json.loads(run(["dvc", "metrics", "diff", "--json"], root, env).stdout)
    assert "unet.psnr" in metrics_diff["reports/metrics.json"]  # the retrained model scores differently
    table = run(["dvc", "exp", "show", "--csv"], root, env).stdout
    assert "train.epochs" in table
    # The experiment's curves against the commit's, as pictures: one line per model and revision.
    plots = json.loads(run(["dvc", "plots", "diff", "--json", "--targets", "val_psnr"], root, env).stdout)
    points = plots["data"]["val_psnr"][0]["content"]["data"]["values"]
    assert {(p["rev"], p["model"]) for p in points} == {("HEAD", "unet"), ("workspace", "unet")}
    assert sum(p["rev"] == "workspace" for p in points) == 1 and sum(p["rev"] == "HEAD" for p in points) == 2
