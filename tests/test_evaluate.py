import json

import mlflow
import numpy as np
import pytest
import torch
from PIL import Image

from chromalab.core import timings, tracking
from chromalab.core.config import EvaluateParams
from chromalab.core.errors import UserError
from chromalab.data.lab_arrays import load_split
from chromalab.scoring.evaluate import evaluate, gallery_rows
from helpers import real_photos, train_tiny

PARAMS = EvaluateParams(batch_size=3, gallery=3, seed=0)
KEYS = {"psnr", "ssim", "auc", "auc_rebalanced", "colorfulness", "colorfulness_gt", "delta_colorfulness",
        "psnr_ci", "delta_colorfulness_ci", "auc_ci", "semantic_agreement", "semantic_agreement_ci", "fd",
        "fd_mobilenetv2", "fd_lite0", "judge", "semantic_agreement_lite0_ci",
        "neutral_chroma", "neutral_chroma_ci", "neutral_fraction", "a_bias", "a_bias_ci", "b_bias", "b_bias_ci"}


def _run(tmp_path, name, prepared_dir, palette_dir):
    out = tmp_path / "reports" / "eval" / name
    result = evaluate(name, PARAMS, prepared_dir, palette_dir, tmp_path / "data" / "models", out)
    return out, result


def test_grey_baseline_has_no_colour_and_writes_truth(tmp_path, prepared_dir, palette_dir):
    out, result = _run(tmp_path, "grey", prepared_dir, palette_dir)
    assert KEYS <= set(result)
    assert result["colorfulness"] < 1.0
    assert result["delta_colorfulness"] == pytest.approx(result["colorfulness_gt"] - result["colorfulness"])
    summary = json.loads((prepared_dir / "summary.json").read_text())
    assert result["images"] == summary["images"]["test"]  # scored on the test split, all of it
    assert json.loads((out / "metrics.json").read_text())["psnr"] == pytest.approx(result["psnr"])
    gallery = sorted(p.name for p in (out / "gallery").iterdir())
    assert gallery == sorted(p.name for p in (out / "truth").iterdir()) == ["00.png", "01.png", "02.png"]
    grey = np.asarray(Image.open(out / "gallery" / "00.png")).astype(int)
    truth = np.asarray(Image.open(out / "truth" / "00.png")).astype(int)
    assert np.abs(grey[..., 0] - grey[..., 2]).max() <= 2  # grey: R = G = B
    assert np.abs(truth[..., 0] - truth[..., 2]).mean() > 3  # the truth is in colour
    # No colour, so no cast on the neutral pixels, and a bias of minus the truth's mean a* and b*.
    _, ab = load_split(prepared_dir, "test")
    ab = np.asarray(ab, np.float64)
    assert result["neutral_chroma"] == 0.0 and result["neutral_chroma_ci"] == {"low": 0.0, "high": 0.0}
    assert result["a_bias"] == pytest.approx(-ab[:, 0].mean()) and result["b_bias"] == pytest.approx(-ab[:, 1].mean())
    assert result["b_bias_ci"]["low"] <= result["b_bias"] <= result["b_bias_ci"]["high"]
    assert 0 < result["neutral_fraction"] < 1


def test_model_evaluation_writes_metrics_curve_and_the_same_gallery(tmp_path, prepared_dir, palette_dir,
                                                                    trained_model, mlflow_uri):
    _run(tmp_path, "grey", prepared_dir, palette_dir)
    out, result = _run(tmp_path, "tiny", prepared_dir, palette_dir)
    assert KEYS <= set(result) and result["network"] == "unet" and result["parameters"] > 0
    assert "images_per_second" not in result  # a speed changes on every rerun: beside the outputs
    assert timings.read(out)["images_per_second"] > 0
    assert (out / "timings.json").is_file()
    for key in ("psnr", "ssim", "auc", "delta_colorfulness", "semantic_agreement", "neutral_chroma", "b_bias"):
        ci = result[f"{key}_ci"]
        assert ci["low"] <= result[key] <= ci["high"], key
    per_image = (out / "per_image.csv").read_text().splitlines()
    assert per_image[0] == ("image,psnr,ssim,colorfulness,colorfulness_gt,semantic_agreement,"
                            "neutral_chroma,neutral_pixels,a_bias,b_bias,pixels")
    assert len(per_image) == result["images"] + 1
    assert sorted(p.name for p in (out / "gallery").iterdir()) == ["00.png", "01.png", "02.png"]
    # A regression model has no confidence: no such keys (absent, not null), no reliability table.
    assert not {"confidence_auroc", "confidence_auroc_ci", "uniform_factor", "shrink_vs_uniform_psnr"} & set(result)
    assert not (out / "reliability.csv").exists()
    lines = (out / "auc_curve.csv").read_text().splitlines()
    assert lines[0] == "threshold,cdf,cdf_rebalanced" and len(lines) == 152
    # The scores join the MLflow run that trained the model.
    run_id = tracking.read_run_file(trained_model / "run.json")["run_id"]
    mlflow.set_tracking_uri(mlflow_uri)
    assert mlflow.get_run(run_id).data.metrics["test_psnr"] == pytest.approx(result["psnr"])


def test_gallery_rows_are_seeded_and_within_the_test_split():
    a, b = gallery_rows(40, PARAMS), gallery_rows(40, PARAMS)
    assert list(a) == list(b) and len(set(a)) == 3 and max(a) < 40
    assert list(gallery_rows(2, PARAMS)) == [0, 1]


def test_missing_checkpoint_is_a_user_error_and_writes_nothing(tmp_path, prepared_dir, palette_dir):
    with pytest.raises(UserError, match="best.pt: no such checkpoint"):
        _run(tmp_path, "never_trained", prepared_dir, palette_dir)
    assert not (tmp_path / "reports" / "eval" / "never_trained").exists()


def test_metrics_say_which_knobs_the_model_used(tmp_path, prepared_dir, palette_dir, trained_model, mlflow_uri):
    _, result = _run(tmp_path, "tiny", prepared_dir, palette_dir)
    assert "base_channels=8" in result["setup"]


def _photo_folder(tmp_path, grey=False):
    """Two real colour photos at their own (non-square, larger than training) size; with `grey`,
    also an already-grey photo (as Set14 has two)."""
    folder = tmp_path / "fullres"
    folder.mkdir()
    for name in ("chelsea", "coffee"):
        Image.fromarray(real_photos()[name]).save(folder / f"{name}.jpg", quality=95)
    if grey:
        Image.fromarray(real_photos()["coffee"]).convert("L").convert("RGB").save(folder / "already_grey.png")
    return folder


def test_full_resolution_photos_are_colorized_and_scored_beside_the_grey_baseline(
        tmp_path, prepared_dir, palette_dir, trained_model, mlflow_uri):
    params = EvaluateParams(batch_size=3, gallery=2, photos=str(_photo_folder(tmp_path)), photo_size=64,
                            photos_shown=1)
    grey = evaluate("grey", params, prepared_dir, palette_dir, tmp_path / "data" / "models", tmp_path / "g")
    model = evaluate("tiny", params, prepared_dir, palette_dir, tmp_path / "data" / "models", tmp_path / "m")
    for result in (grey, model):
        assert result["photos_count"] == 2 and result["photos_skipped_grey"] == 0
        assert {"photos_psnr", "photos_auc", "photos_delta_colorfulness", "photos_neutral_chroma", "photos_a_bias",
                "photos_b_bias_ci"} <= set(result)
    assert grey["photos_neutral_chroma"] < 0.5 < model["photos_neutral_chroma"]  # grey photos: (almost) no chroma
    assert grey["photos_colorfulness"] < 1.0 < model["photos_colorfulness"]
    assert grey["photos_colorfulness_gt"] == pytest.approx(model["photos_colorfulness_gt"])
    assert timings.read(tmp_path / "m")["photos_seconds_per_megapixel"] > 0
    assert "photos_seconds_per_megapixel" not in model
    assert model["photos_psnr_ci"]["low"] <= model["photos_psnr"] <= model["photos_psnr_ci"]["high"]
    assert (tmp_path / "m" / "photos_per_image.csv").read_text().splitlines()[1].startswith("chelsea.jpg,")
    assert [p.name for p in (tmp_path / "m" / "photos").iterdir()] == ["00.png"]
    assert (tmp_path / "g" / "photos_truth" / "00.png").is_file()


def test_already_grey_photos_are_skipped_not_scored(tmp_path, prepared_dir, palette_dir, caplog):
    """An already-grey photo is identical to the grey baseline's output (PSNR capped at 100 dB),
    so it would decide the mean PSNR alone: it is skipped, named in the log, counted."""
    caplog.set_level("INFO", logger="chromalab.scoring.evaluate")
    params = EvaluateParams(photos=str(_photo_folder(tmp_path, grey=True)), photo_size=64, photos_shown=3)
    with_grey = evaluate("grey", params, prepared_dir, palette_dir, tmp_path / "data" / "models", tmp_path / "g")
    assert with_grey["photos_count"] == 2 and with_grey["photos_skipped_grey"] == 1
    assert "already_grey.png" in caplog.text
    assert with_grey["photos_psnr"] < 40  # the colour photos' own score, not pulled towards 100 dB
    assert len(list((tmp_path / "g" / "photos").iterdir())) == 2

    (tmp_path / "fullres" / "already_grey.png").unlink()
    without = evaluate("grey", params, prepared_dir, palette_dir, tmp_path / "data" / "models", tmp_path / "g2")
    assert without["photos_psnr"] == pytest.approx(with_grey["photos_psnr"])


def test_a_folder_of_grey_photos_only_is_a_user_error(tmp_path, prepared_dir, palette_dir):
    folder = tmp_path / "greys"
    folder.mkdir()
    Image.new("RGB", (40, 30), (90, 90, 90)).save(folder / "flat.png")
    params = EvaluateParams(photos=str(folder))
    with pytest.raises(UserError, match=r"evaluate.photos: .*greys: every photo is already grey"):
        evaluate("grey", params, prepared_dir, palette_dir, tmp_path / "data" / "models", tmp_path / "g")
    assert not (tmp_path / "g").exists()


def test_missing_photos_folder_is_a_user_error_naming_the_key(tmp_path, prepared_dir, palette_dir):
    params = EvaluateParams(photos=str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="evaluate.photos: .*nowhere: folder not found"):
        evaluate("grey", params, prepared_dir, palette_dir, tmp_path / "data" / "models", tmp_path / "g")
    assert not (tmp_path / "g").exists()


def test_palette_models_report_seed_000s_palette_index_accuracy(tmp_path, prepared_dir, palette_dir, mlflow_uri):
    train_tiny(tmp_path, prepared_dir, name="pal", palette_dir=palette_dir,
               model=dict(network="kmeans_cnn", representation="palette", network_args={"channels": 8}))
    _, result = _run(tmp_path, "pal", prepared_dir, palette_dir)
    assert 0.0 < result["palette_accuracy"] <= 1.0
    _, grey = _run(tmp_path, "grey", prepared_dir, palette_dir)
    assert "palette_accuracy" not in grey


def test_a_tracking_server_that_is_down_does_not_fail_the_evaluation(tmp_path, prepared_dir, palette_dir,
                                                                     trained_model, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens on the discard port
    out, result = _run(tmp_path, "tiny", prepared_dir, palette_dir)
    assert json.loads((out / "metrics.json").read_text())["psnr"] == pytest.approx(result["psnr"])
    assert "could not add test metrics" in caplog.text and "chromalab relog" in caplog.text


def test_a_confident_model_gets_its_auroc_reliability_and_maps_and_its_shrink_faces_uniform_desaturation(
        tmp_path, prepared_dir, palette_dir):
    """A bins model (a small network whose sharpened outputs give confidences across [0.2, 0.8]),
    evaluated with its shrink off and on (the same weights)."""
    import csv

    from chromalab.colorizing import checkpoint, confidence
    from chromalab.colorizing.colorizer import Colorizer
    from chromalab.colorizing.representations import representation_args
    from chromalab.core import color
    from chromalab.scoring import metrics

    models = tmp_path / "data" / "models"
    args = representation_args("bins", {}, palette_dir)
    torch.manual_seed(0)
    colorizer = Colorizer("kmeans_cnn", "bins", {"channels": 4}, args)
    with torch.no_grad():
        colorizer.network.layers[-1].weight.mul_(1000.0)
        colorizer.network.layers[-1].bias.copy_(torch.randn(len(args["weights"])) * 2)
    config = {"network": "kmeans_cnn", "representation": "bins", "network_args": {"channels": 4}, "image_size": 32}
    checkpoint.save(models / "bins" / "best.pt", colorizer, {**config, "representation_args": args})
    shrink = {"shrink_gamma": 2.0, "shrink_threshold": 1.0}
    checkpoint.save(models / "shrunk" / "best.pt", colorizer, {**config, "representation_args": {**args, **shrink}})
    params = EvaluateParams(batch_size=3, gallery=3, seed=0, judge=False)  # the judges are not what is tested
    plain, shrunk, grey = (evaluate(name, params, prepared_dir, palette_dir, models, tmp_path / "reports" / "eval" / name)
                           for name in ("bins", "shrunk", "grey"))
    out = tmp_path / "reports" / "eval" / "shrunk"

    L, ab = load_split(prepared_dir, "test")
    for result in (plain, shrunk):
        assert result["confidence_measure"] == "entropy" and 0 <= result["confidence_auroc"] <= 1
        ci = result["confidence_auroc_ci"]
        assert ci["low"] <= result["confidence_auroc"] <= ci["high"] and ci["low"] < ci["high"]
    # The AUROC is about the colour the confidence speaks of, before any shrink: the same for both.
    assert shrunk["confidence_auroc"] == plain["confidence_auroc"]
    # ... and it is the pooled AUROC of the test pixels' confidences, binned.
    model, _ = checkpoint.load(models / "bins" / "best.pt")
    with torch.no_grad():
        ab_pred, conf = model.forward_with_confidence(torch.from_numpy(np.asarray(L, np.float32)))
    error = np.linalg.norm(ab_pred.numpy() - np.asarray(ab, np.float32), axis=1)
    assert plain["confidence_auroc"] == pytest.approx(confidence.auroc(conf.numpy(), error), abs=0.01)
    with open(out / "reliability.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["low"]) for r in rows] == pytest.approx(np.arange(10) / 10)
    assert sum(int(r["pixels"]) for r in rows) == error.size
    right = sum(int(r["pixels"]) * float(r["share_right"]) for r in rows if r["share_right"])
    assert right == pytest.approx((error <= 10).sum(), abs=0.01)
    # The confidence map beside each gallery picture: greyscale, the picture's size, bright = sure.
    names = sorted(p.name for p in (out / "gallery").iterdir())
    assert names == ["00.confidence.png", "00.png", "01.confidence.png", "01.png", "02.confidence.png", "02.png"]
    with Image.open(out / "gallery" / "00.confidence.png") as m, Image.open(out / "gallery" / "00.png") as pic:
        assert m.mode == "L" and m.size == pic.size and np.asarray(m).std() > 0
    assert not any("confidence" in p.name for p in (tmp_path / "reports" / "eval" / "grey" / "gallery").iterdir())
    assert "confidence_auroc" not in grey

    # Only the shrinking model faces the uniform desaturation of its own unshrunk colours.
    assert "uniform_factor" not in plain and "shrink_vs_uniform_psnr" not in plain
    s = shrunk["uniform_factor"]
    assert 0 < s < 1 and shrunk["colorfulness"] < plain["colorfulness"]
    assert shrunk["uniform_colorfulness"] == pytest.approx(shrunk["colorfulness"], abs=0.05)  # equal colour
    versus = shrunk["shrink_vs_uniform_psnr"]
    assert versus["difference"] == pytest.approx(shrunk["psnr"] - shrunk["uniform_psnr"], abs=1e-9)
    assert versus["ci"][0] <= versus["difference"] <= versus["ci"][1]
    assert versus["significant"] == (versus["ci"][0] > 0 or versus["ci"][1] < 0)
    with open(out / "uniform_per_image.csv") as f:
        uniform = list(csv.DictReader(f))
    assert len(uniform) == shrunk["images"]
    # The uniform decoding of image 0, recomputed: the unshrunk model's ab times s.
    L0, ab0 = np.asarray(L[:1], np.float32), np.asarray(ab[:1], np.float32)
    rgb = color.lab_planes_to_rgb_uint8(L0[0], ab_pred.numpy()[0] * np.float32(s))
    assert float(uniform[0]["psnr"]) == pytest.approx(metrics.psnr(rgb, color.lab_planes_to_rgb_uint8(L0[0], ab0[0])),
                                                      abs=1e-5)
    assert np.mean([float(r["psnr"]) for r in uniform]) == pytest.approx(shrunk["uniform_psnr"], abs=1e-5)
    # A mean pull alone faces the same comparison, and its confidence speaks of the colour before it.
    checkpoint.save(models / "pulled" / "best.pt", colorizer, {**config, "representation_args": {**args, "mean_pull": 0.5}})
    pulled = evaluate("pulled", params, prepared_dir, palette_dir, models, tmp_path / "reports" / "eval" / "pulled")
    assert pulled["confidence_auroc"] == plain["confidence_auroc"]
    assert 0 < pulled["uniform_factor"] < 1 and pulled["colorfulness"] < plain["colorfulness"]
    assert pulled["shrink_vs_uniform_psnr"]["difference"] == pytest.approx(pulled["psnr"] - pulled["uniform_psnr"], abs=1e-9)
