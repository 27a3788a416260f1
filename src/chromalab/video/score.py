"""How steady a colorized film is, and how close to the colour original when there is one.

- Warped temporal error (Lai et al. 2018's E_warp, on ab): the ab of frame t-1 carried along the
  motion to frame t, against frame t's ab, mean Euclidean distance over the pixels the motion
  explains (|ΔL| ≤ `explained`), over consecutive pairs within a shot. Flow on the grey frames
  (the colorized film's own L, which is the input's), so no colour is needed to measure it.
- Flicker: the frame-to-frame change of the mean ab over the pixels that stay put once the
  motion is followed (|ΔL| ≤ `explained` after warping: the static regions of a panning shot),
  |mean(ab_t - warp(ab_{t-1}))|: the whole picture pulsing, which per-pixel errors average away.
- With the original: each frame's PSNR (RGB) and colourfulness difference, and their means; the
  original's own temporal error is the floor a faithful film reaches (real colour moves too).

Pairs across a cut (stabilise's detector on the grey frames) are left out of the first two.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chromalab.core import color
from chromalab.core.config import VideoParams
from chromalab.scoring import metrics
from chromalab.video.flow import Flow, warp

EXPLAINED = 4.0    # L units: a pixel's motion-compensated change below this is explained by the motion
SCORE_SIZE = 256   # frames scored with their shorter side at this size (flow and ab are smooth)


@dataclass
class FilmScore:
    frames: int = 0
    cuts: list[int] = field(default_factory=list)
    warp_error: list[float] = field(default_factory=list)      # one per pair within a shot
    flicker: list[float] = field(default_factory=list)
    truth_warp_error: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)            # one per frame, with an original
    delta_colorfulness: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        def mean(values):
            return float(np.mean(values)) if values else None

        out = {"frames": self.frames, "cuts": self.cuts, "warp_error": mean(self.warp_error),
               "flicker": mean(self.flicker)}
        if self.psnr:
            out.update(truth_warp_error=mean(self.truth_warp_error), psnr=mean(self.psnr),
                       delta_colorfulness=mean(self.delta_colorfulness))
        return out


def _small(rgb: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    height, width = rgb.shape[:2]
    scale = min(1.0, size / min(height, width))
    if scale == 1.0:
        return rgb
    shape = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(shape, Image.BILINEAR))


class FilmScorer:
    """Feed frames in order (colorized, and the original's when known); read `score`."""

    def __init__(self, size: int = SCORE_SIZE, cut: VideoParams = VideoParams()):
        self.size, self.cut, self.flow = size, cut, Flow()
        self.score = FilmScore()
        self._previous = None

    def add(self, rgb: np.ndarray, truth: np.ndarray | None = None) -> None:
        if truth is not None:
            if truth.shape != rgb.shape:
                raise ValueError(f"frame {self.score.frames}: original {truth.shape} and colorized {rgb.shape} differ")
            self.score.psnr.append(metrics.psnr(rgb, truth))
            # As evaluate's ΔCF: the original's colourfulness minus the film's (> 0: less colourful).
            self.score.delta_colorfulness.append(metrics.colorfulness(truth) - metrics.colorfulness(rgb))
        lab = color.rgb_to_lab(_small(rgb, self.size)).astype(np.float32)
        true_ab = None if truth is None else color.rgb_to_lab(_small(truth, self.size))[..., 1:].astype(np.float32)
        L, ab = lab[..., 0], lab[..., 1:]
        if self._previous is not None:
            L_prev, ab_prev, true_prev = self._previous
            motion = self.flow(L, L_prev)
            unexplained = np.abs(L - warp(L_prev, motion))
            if float(np.mean(unexplained > self.cut.cut_lightness)) > self.cut.cut_fraction:
                self.score.cuts.append(self.score.frames)
            else:
                explained = unexplained <= EXPLAINED
                if explained.sum() >= 16:
                    carried = warp(ab_prev, motion)
                    self.score.warp_error.append(_masked_distance(ab, carried, explained))
                    self.score.flicker.append(float(np.linalg.norm((ab[explained] - carried[explained]).mean(0))))
                    if true_ab is not None and true_prev is not None:
                        self.score.truth_warp_error.append(
                            _masked_distance(true_ab, warp(true_prev, motion), explained))
        self._previous = (L, ab, true_ab)
        self.score.frames += 1


def _masked_distance(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    return float(np.sqrt(np.square(a[mask] - b[mask]).sum(-1)).mean())


def score_films(colorized, original=None, size: int = SCORE_SIZE) -> FilmScore:
    """Score a colorized film (a path) against its colour original (a path, optional)."""
    from chromalab.core.errors import UserError
    from chromalab.video.container import read_frames

    scorer = FilmScorer(size)
    truth_frames = read_frames(original, films_only=True) if original is not None else None
    for rgb, _, _ in read_frames(colorized, films_only=True):
        truth = None
        if truth_frames is not None:
            item = next(truth_frames, None)
            if item is None:
                raise UserError(f"{original}: has fewer frames than {colorized}")
            truth = item[0]
            if truth.shape != rgb.shape:
                raise UserError(f"{original}: its frames are {truth.shape[1]} x {truth.shape[0]}, "
                                f"{colorized}'s {rgb.shape[1]} x {rgb.shape[0]}")
        scorer.add(rgb, truth)
    if truth_frames is not None and next(truth_frames, None) is not None:
        raise UserError(f"{original}: has more frames than {colorized}")
    return scorer.score
