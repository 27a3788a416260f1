"""palette stage: seed 000's k-means colour palette and Zhang et al.'s quantized ab gamut.

- The k-means palette (Ye & Liu, seed 000): MiniBatchKMeans over a seeded sample of training
  pixels, in ab (default) or in RGB as the seed did. Each colour is stored with its Lab value (L =
  the mean L of its pixels) and its frequency; the `palette` representation classifies into it.
- Zhang, Isola & Efros 2016: ab quantized on a grid of `bin_size` (10) units; the bins that occur in
  the training data form the gamut (313 in ImageNet). The empirical prior p is smoothed with a
  Gaussian of sigma 5 ab units, and the class-rebalancing weights are w ∝ ((1-λ) p̃ + λ/Q)^-1 with
  λ = 0.5, normalised so that E_p̃[w] = 1 (their eq. 4). The `bins` representation and the
  rebalanced AuC metric use them.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chromalab.core import atomic, color
from chromalab.core.config import PaletteParams
from chromalab.core.errors import UserError
from chromalab.data.lab_arrays import load_split

log = logging.getLogger(__name__)

AB_RANGE = 110.0  # the sRGB gamut lies within |a|, |b| <= 110 (Zhang's grid spans the same)


def sample_pixels(prepared_dir, n: int, seed: int) -> np.ndarray:
    """A seeded uniform sample of n training pixels as Lab (n, 3), read from the memory maps."""
    L, ab = load_split(prepared_dir, "train")
    count, _, h, w = L.shape
    if count == 0:
        raise UserError(f"{prepared_dir}: the train split is empty")
    rng = np.random.default_rng(seed)
    flat = np.sort(rng.choice(count * h * w, size=min(n, count * h * w), replace=False))
    img, rest = np.divmod(flat, h * w)
    y, x = np.divmod(rest, w)
    return np.stack([L[img, 0, y, x], ab[img, 0, y, x], ab[img, 1, y, x]], axis=1).astype(np.float32)


def fit_kmeans(pixels_lab: np.ndarray, params: PaletteParams) -> dict:
    from sklearn.cluster import MiniBatchKMeans

    if params.space == "rgb":
        features = color.lab_to_rgb_uint8(pixels_lab[:, None, :])[:, 0].astype(np.float32)
    else:
        features = pixels_lab[:, 1:]
    if len(np.unique(features, axis=0)) < params.k:
        raise UserError(f"palette.k: {params.k} colours asked, but the training pixels hold fewer distinct colours")
    km = MiniBatchKMeans(n_clusters=params.k, random_state=params.seed, batch_size=4096, n_init=3)
    assign = km.fit_predict(features)
    counts = np.bincount(assign, minlength=params.k)
    order = np.argsort(-counts, kind="stable")  # most frequent colour first
    lab = np.stack([pixels_lab[assign == i].mean(axis=0) for i in order])
    if params.space == "ab":
        lab[:, 1:] = km.cluster_centers_[order]
    return {
        "space": params.space,
        "k": params.k,
        "centers": km.cluster_centers_[order].round(4).tolist(),  # in `space` units
        "centers_lab": lab.round(4).tolist(),
        "frequency": (counts[order] / counts.sum()).round(6).tolist(),
        "inertia_per_pixel": float(km.inertia_ / len(features)),
    }


@dataclass
class Gamut:
    """Zhang's quantized ab gamut: the grid bins seen in training, their prior and weights."""

    bin_size: float
    centers: np.ndarray  # (Q, 2) ab of each bin
    prior: np.ndarray  # (Q,) smoothed empirical probability
    weights: np.ndarray  # (Q,) class-rebalancing weights, E_prior[w] = 1

    @property
    def grid_cells(self) -> int:
        return 2 * int(round(AB_RANGE / self.bin_size)) + 1

    def _cell(self, ab: np.ndarray) -> np.ndarray:
        half = self.grid_cells // 2
        idx = np.clip(np.rint(ab / self.bin_size).astype(np.int64) + half, 0, self.grid_cells - 1)
        return idx[..., 0] * self.grid_cells + idx[..., 1]

    @functools.cached_property
    def _nearest_bin_of_cell(self) -> np.ndarray:
        # Every grid cell, seen in training or not, maps to its nearest gamut bin.
        g = self.grid_cells
        cells = (np.stack(np.meshgrid(np.arange(g), np.arange(g), indexing="ij"), -1) - g // 2) * self.bin_size
        return ((cells.reshape(-1, 1, 2) - self.centers[None]) ** 2).sum(-1).argmin(axis=1)

    def bin_index(self, ab: np.ndarray) -> np.ndarray:
        """Nearest gamut bin of each ab value (..., 2) -> (...)."""
        return self._nearest_bin_of_cell[self._cell(ab)]

    def pixel_weights(self, ab: np.ndarray) -> np.ndarray:
        """Inverse prior probability of each pixel's bin (rebalanced AuC, Zhang et al. sec. 3.1)."""
        return 1.0 / self.prior[self.bin_index(ab)]

    def to_json(self) -> dict:
        return {"bin_size": self.bin_size, "bins": len(self.centers), "centers": self.centers.tolist(),
                "prior": self.prior.tolist(), "weights": self.weights.tolist()}

    @classmethod
    def from_json(cls, obj: dict) -> "Gamut":
        return cls(float(obj["bin_size"]), np.asarray(obj["centers"], np.float64),
                   np.asarray(obj["prior"], np.float64), np.asarray(obj["weights"], np.float64))

    @classmethod
    def load(cls, palette_dir) -> "Gamut":
        path = Path(palette_dir) / "gamut.json"
        if not path.is_file():
            raise UserError(f"{path}: missing; run the palette stage first (dvc repro palette)")
        return cls.from_json(json.loads(path.read_text()))


def fit_gamut(prepared_dir, params: PaletteParams) -> Gamut:
    """Count every training pixel into the ab grid (chunked over the memory map), then rebalance."""
    from scipy.ndimage import gaussian_filter

    _, ab = load_split(prepared_dir, "train")
    cells = 2 * int(round(AB_RANGE / params.bin_size)) + 1
    half = cells // 2
    hist = np.zeros(cells * cells, np.int64)
    for start in range(0, len(ab), 1024):
        chunk = np.asarray(ab[start : start + 1024], np.float32)
        idx = np.clip(np.rint(chunk / params.bin_size).astype(np.int64) + half, 0, cells - 1)
        hist += np.bincount((idx[:, 0] * cells + idx[:, 1]).ravel(), minlength=cells * cells)
    seen = np.flatnonzero(hist)
    p = hist / hist.sum()
    smoothed = gaussian_filter(p.reshape(cells, cells), sigma=params.rebalance_sigma / params.bin_size,
                               mode="constant").ravel()[seen]
    smoothed /= smoothed.sum()
    q = len(seen)
    weights = 1.0 / ((1 - params.rebalance_lambda) * smoothed + params.rebalance_lambda / q)
    weights /= (smoothed * weights).sum()
    centers = (np.stack(np.divmod(seen, cells), axis=1) - half) * params.bin_size
    return Gamut(params.bin_size, centers.astype(np.float64), smoothed, weights)


def save_swatch(kmeans: dict, path) -> None:
    """reports/palette.png: the k colours, most frequent first, each bar as wide as its share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rgb = color.lab_to_rgb_uint8(np.asarray(kmeans["centers_lab"])[:, None, :])[:, 0] / 255.0
    freq = np.asarray(kmeans["frequency"])
    k = len(freq)
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * k), 2.4), dpi=100)
    ax.bar(np.arange(k), freq * 100, color=rgb, edgecolor="0.3", linewidth=0.5, width=0.9)
    ax.set_xticks(np.arange(k))
    ax.set_xticklabels([str(i) for i in range(k)], fontsize=7)
    ax.set_ylabel("% of pixels")
    ax.set_title(f"k-means palette (k = {k}, fitted in {kmeans['space']})", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def build_palette(params: PaletteParams, prepared_dir, out_dir, swatch_path) -> dict:
    pixels = sample_pixels(prepared_dir, params.sample_pixels, params.seed)
    kmeans = fit_kmeans(pixels, params)
    gamut = fit_gamut(prepared_dir, params)
    with atomic.atomic_path(out_dir, is_dir=True) as tmp:
        (tmp / "kmeans.json").write_text(json.dumps(kmeans, indent=1) + "\n")
        (tmp / "gamut.json").write_text(json.dumps(gamut.to_json()) + "\n")
    save_swatch(kmeans, swatch_path)
    log.info("palette: k = %d in %s from %d pixels; gamut: %d bins of %g ab units",
             params.k, params.space, len(pixels), len(gamut.centers), params.bin_size)
    return {"kmeans": kmeans, "gamut_bins": len(gamut.centers)}
