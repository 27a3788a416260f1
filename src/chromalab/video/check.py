"""The `video` stage: the stabiliser measured on the made clip (clip.py) with the released model,
against per-frame colorization, so that a change to either re-measures it.

Both runs colorize the clip's grey frames as `chromalab colorize --frames` would, and are scored
frame by frame against the colour frames before encoding (score.FilmScorer: the encoder's output
differs between machines; the frames do not). Writes reports/video/metrics.json and strip.jpg:
rows grey | per frame | stabilised | original at five moments, the cut among them.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from chromalab.core import paths
from chromalab.core.atomic import atomic_path, write_json
from chromalab.core.config import VideoParams
from chromalab.core.images import load_rgb
from chromalab.video import clip
from chromalab.video.film import colorize_film
from chromalab.video.score import FilmScorer

VIDEO = paths.REPORTS / "video"
CLIP = Path("data/video")


def _run(runner, grey_dir: Path, truth: list[np.ndarray], target: Path, params: VideoParams | None, fps: int):
    scorer, shown, frames = FilmScorer(cut=params or VideoParams()), {}, {}

    def hook(index, rgb, L_small, ab_small):
        scorer.add(rgb, truth[index])
        shown[index] = ab_small
        frames[index] = rgb

    outcome = colorize_film(runner, grey_dir, target, params, fps=Fraction(fps), progress=False, frame_hook=hook)
    return outcome, scorer.score, shown, frames


def video_check(params: VideoParams, runner, out_dir: Path = VIDEO, clip_dir: Path = CLIP) -> dict:
    truth = clip.views(params.clip_width, params.clip_height, params.clip_frames)
    cut = params.clip_frames
    grey_dir = clip_dir / "grey"
    with atomic_path(grey_dir, is_dir=True) as tmp:
        clip.write_frames([clip.grey(frame) for frame in truth], tmp)
    per_frame, plain, plain_ab, plain_rgb = _run(runner, grey_dir, truth, clip_dir / "per_frame.mp4", None,
                                                 params.clip_fps)
    stable, steady, steady_ab, steady_rgb = _run(runner, grey_dir, truth, clip_dir / "stabilised.mp4", params,
                                                 params.clip_fps)
    a, b = plain.summary(), steady.summary()
    result = {
        "frames": len(truth), "cut_at": cut, "cuts_found": stable.cuts,
        "per_frame": {k: a[k] for k in ("warp_error", "flicker", "psnr", "delta_colorfulness")},
        "stabilised": {k: b[k] for k in ("warp_error", "flicker", "psnr", "delta_colorfulness")},
        "original_warp_error": a["truth_warp_error"],
        "warp_error_cut": 1 - b["warp_error"] / a["warp_error"],
        "flicker_cut": 1 - b["flicker"] / a["flicker"],
        "psnr_cost": a["psnr"] - b["psnr"],
        # 0 when the stabiliser starts afresh at the cut: the first frame after it is the network's own.
        "carried_across_cut": float(np.abs(steady_ab[cut] - plain_ab[cut]).max()),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "metrics.json", result)
    moments = [0, cut // 2, cut - 1, cut, len(truth) - 1]
    rows = [[load_rgb(grey_dir / f"{i:06d}.png") for i in moments], [plain_rgb[i] for i in moments],
            [steady_rgb[i] for i in moments], [truth[i] for i in moments]]
    _save_strip(rows, out_dir / "strip.jpg")
    return result


def _save_strip(rows: list[list[np.ndarray]], path: Path, gap: int = 4) -> None:
    from PIL import Image

    height, width = rows[0][0].shape[:2]
    sheet = np.full((len(rows) * (height + gap) - gap, len(rows[0]) * (width + gap) - gap, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, frame in enumerate(row):
            sheet[r * (height + gap): r * (height + gap) + height, c * (width + gap): c * (width + gap) + width] = frame
    with atomic_path(path) as tmp:
        Image.fromarray(sheet).save(tmp, format="JPEG", quality=88)
