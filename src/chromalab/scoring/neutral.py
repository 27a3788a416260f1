"""The neutral-scene check (DVC stage `neutral@MODEL`): how much colour a model paints on inputs
that have none.

A model that is unsure should leave grey things grey: asphalt, concrete, brushed metal, overcast
skies. This stage colorizes near-grey inputs with the model, by the same full-resolution path as
`chromalab colorize` (colorize.FullResolution, on the CPU), and measures the chroma sqrt(a² + b²)
of the output's Lab:

- synthetic grey textures made here with a fixed seed (`neutral.count` of each kind at
  `neutral.size` px, R = G = B so their chroma is 0): `fractal` (1/f noise, the power spectrum of
  natural images), `asphalt` (dark, fine speckle with bright stones and dark pores), `concrete`
  (light, soft blotches, fine grain and pores) and `brushed_metal` (long streaks along one axis
  under a smooth sheen);
- `dropped_grey`: the photos the prepare stage dropped as already grey (data/prepared/summary.json
  lists them, `dropped_grey_paths`, relative to data/raw), when there are any: at most
  `neutral.photos` of them (a seeded choice), each reduced so its shorter side is `neutral.size`.

reports/neutral/MODEL/metrics.json holds the mean and 99th-percentile chroma of the outputs over
all their pixels, the same per kind, and the inputs' own chroma (`truth_*`) beside them. `load`
reads every model's file back for a report.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from chromalab.core import atomic, color, paths
from chromalab.core.config import GREY, NeutralParams
from chromalab.core.errors import UserError

log = logging.getLogger(__name__)

NEUTRAL = paths.REPORTS / "neutral"  # neutral@MODEL: MODEL/metrics.json
KINDS = ("fractal", "asphalt", "concrete", "brushed_metal")
DROPPED = "dropped_grey"
PERCENTILE = 99.0


# --- the textures ------------------------------------------------------------------------------


def _smooth(noise: np.ndarray, sigma_y: float, sigma_x: float) -> np.ndarray:
    """A Gaussian blur (periodic edges, so the texture tiles) through the FFT."""
    fy = np.fft.fftfreq(noise.shape[0])[:, None]
    fx = np.fft.rfftfreq(noise.shape[1])[None, :]
    transfer = np.exp(-2.0 * np.pi**2 * ((sigma_y * fy) ** 2 + (sigma_x * fx) ** 2))
    return np.fft.irfft2(np.fft.rfft2(noise) * transfer, s=noise.shape)


def _unit(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation."""
    x = x - x.mean()
    return x / (x.std() + 1e-12)


def _fractal(n: int, rng: np.random.Generator) -> np.ndarray:
    # Amplitude ~ 1/f^β (power ~ 1/f^2β), β about 1: the spectrum of natural images.
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = np.inf  # no DC: the mean is set below
    spectrum = np.fft.rfft2(rng.standard_normal((n, n))) / f ** rng.uniform(0.8, 1.2)
    return rng.uniform(70, 180) + rng.uniform(20, 40) * _unit(np.fft.irfft2(spectrum, s=(n, n)))


def _asphalt(n: int, rng: np.random.Generator) -> np.ndarray:
    grey = rng.uniform(50, 100) + 10.0 * _unit(_smooth(rng.standard_normal((n, n)), 0.7, 0.7))
    grey += 8.0 * _unit(_smooth(rng.standard_normal((n, n)), n / 8, n / 8))  # wear, patches
    stones = _smooth(rng.standard_normal((n, n)), 1.5, 1.5)
    grey += np.where(stones > np.quantile(stones, 0.92), rng.uniform(30, 70), 0.0)
    pores = _smooth(rng.standard_normal((n, n)), 1.0, 1.0)
    return grey - np.where(pores > np.quantile(pores, 0.97), 30.0, 0.0)


def _concrete(n: int, rng: np.random.Generator) -> np.ndarray:
    grey = rng.uniform(130, 190) + 12.0 * _unit(_smooth(rng.standard_normal((n, n)), n / 16, n / 16))
    grey += 6.0 * _unit(_smooth(rng.standard_normal((n, n)), 3, 3)) + 4.0 * rng.standard_normal((n, n))
    pores = _smooth(rng.standard_normal((n, n)), 1.0, 1.0)
    return grey - np.where(pores > np.quantile(pores, 0.995), rng.uniform(40, 80), 0.0)


def _brushed_metal(n: int, rng: np.random.Generator) -> np.ndarray:
    streaks = 18.0 * _unit(_smooth(rng.standard_normal((n, n)), 0.6, n / 4))
    streaks += 6.0 * _unit(_smooth(rng.standard_normal((n, n)), 0.3, 8))
    sheen = 25.0 * np.cos(np.pi * np.arange(n) / n * rng.uniform(0.5, 2.0) + rng.uniform(0, np.pi))[:, None]
    grey = rng.uniform(140, 200) + streaks + sheen
    return grey.T if rng.random() < 0.5 else grey


_MAKERS = {"fractal": _fractal, "asphalt": _asphalt, "concrete": _concrete, "brushed_metal": _brushed_metal}


def texture(kind: str, index: int, size: int, seed: int) -> np.ndarray:
    """The index-th grey texture of a kind: uint8 RGB (size, size, 3) with R = G = B. Each has its
    own random stream (seed, kind, index), so changing `count` keeps the others as they were."""
    rng = np.random.default_rng([seed, KINDS.index(kind), index])
    grey = np.clip(np.rint(_MAKERS[kind](size, rng)), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def textures(params: NeutralParams):
    """(kind, uint8 RGB) for every synthetic texture, kind by kind."""
    for kind in KINDS:
        for i in range(params.count):
            yield kind, texture(kind, i, params.size, params.seed)


# --- the photos prepare dropped as grey ----------------------------------------------------------


def dropped_grey_paths(prepared_dir, raw_dir, limit: int | None, seed: int) -> list[Path]:
    """The photos the prepare stage dropped as already grey (none when its summary lists none), at
    most `limit` of them (a seeded choice, in their listed order)."""
    summary = Path(prepared_dir) / "summary.json"
    if not summary.is_file():
        return []
    try:
        listed = json.loads(summary.read_text(encoding="utf-8")).get("dropped_grey_paths") or []
    except (json.JSONDecodeError, AttributeError) as err:
        raise UserError(f"{summary}: malformed ({err}); rerun the prepare stage") from None
    if limit is not None and len(listed) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(listed), size=limit, replace=False))
        listed = [listed[i] for i in keep]
    return [Path(raw_dir) / p for p in listed]


def _reduced(rgb: np.ndarray, size: int) -> np.ndarray:
    """Shorter side reduced to `size` (never enlarged), by area averaging."""
    from PIL import Image

    from chromalab.colorizing.colorize import working_shape

    h, w = working_shape(*rgb.shape[:2], size)
    if (h, w) == rgb.shape[:2]:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BOX))


# --- measuring -----------------------------------------------------------------------------------


def chroma(rgb: np.ndarray) -> np.ndarray:
    """Lab chroma sqrt(a² + b²) of each pixel of uint8 RGB (H, W, 3), float32 (H, W); exactly 0
    where R = G = B, sRGB's own greys (the Lab conversion's rounding gives them about 0.003)."""
    lab = color.rgb_to_lab(rgb)
    grey = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])
    return np.where(grey, np.float32(0), np.hypot(lab[..., 1], lab[..., 2]))


class ChromaStats:
    """Chroma values of every pixel added (float32), for their mean and exact percentiles."""

    def __init__(self):
        self.values: list[np.ndarray] = []
        self.images = 0

    def add(self, values: np.ndarray) -> None:
        self.values.append(np.asarray(values, np.float32).ravel())
        self.images += 1

    def merge(self, other: "ChromaStats") -> None:
        self.values += other.values
        self.images += other.images

    def summary(self) -> tuple[int, float, float]:
        """(pixels, mean, PERCENTILE-th percentile); NaNs when there are none."""
        if not self.values:
            return 0, float("nan"), float("nan")
        every = np.concatenate(self.values)
        return every.size, float(every.mean(dtype=np.float64)), float(np.percentile(every, PERCENTILE))


def _summary(out: ChromaStats, truth: ChromaStats) -> dict:
    pixels, mean, p99 = out.summary()
    _, truth_mean, truth_p99 = truth.summary()
    return {"images": out.images, "pixels": pixels, "mean_chroma": round(mean, 4), "p99_chroma": round(p99, 4),
            "truth_mean_chroma": round(truth_mean, 4), "truth_p99_chroma": round(truth_p99, 4)}


def measure(colorize, params: NeutralParams, prepared_dir=None, raw_dir=None) -> dict:
    """Colorize every neutral input with `colorize` (a FullResolution: uint8 RGB -> uint8 RGB of
    the same size) and measure the outputs' chroma: over all pixels and per kind of input."""
    from chromalab.core.images import load_rgb

    def inputs():
        yield from textures(params)
        if prepared_dir is not None and raw_dir is not None:
            for path in dropped_grey_paths(prepared_dir, raw_dir, params.photos, params.seed):
                if not path.is_file():
                    log.warning("%s: listed as dropped grey in the prepared summary, but missing; skipped", path)
                    continue
                yield DROPPED, _reduced(load_rgb(path), params.size)

    kinds: dict[str, tuple[ChromaStats, ChromaStats]] = {}
    for kind, rgb in inputs():
        out, truth = kinds.setdefault(kind, (ChromaStats(), ChromaStats()))
        out.add(chroma(colorize(rgb)))
        truth.add(chroma(rgb))
    overall = ChromaStats(), ChromaStats()
    for out, truth in kinds.values():
        overall[0].merge(out)
        overall[1].merge(truth)
    return {**_summary(*overall), "kinds": {kind: _summary(*stats) for kind, stats in kinds.items()}}


def load_model(name: str, models_dir, working_size: int | None, checkpoint_path=None):
    """The model to check (the grey baseline for `grey`; models_dir/NAME/best.pt, or
    `checkpoint_path` when given: the released model's) and the working size it colorizes at:
    `working_size`, else the model's own (as `chromalab colorize`: the size it was chosen at)."""
    import torch

    from chromalab.colorizing import checkpoint
    from chromalab.colorizing.colorize import FullResolution
    from chromalab.colorizing.colorizer import GreyBaseline

    if name == GREY:
        model, size = GreyBaseline(), working_size or NeutralParams().size
    else:
        model, config = checkpoint.load(checkpoint_path or Path(models_dir) / name / "best.pt")
        size = working_size or config.get("working_size") or config["image_size"]
    return FullResolution(model, int(size), torch.device("cpu"))


def neutral(name: str, params: NeutralParams, models_dir, prepared_dir, raw_dir, out_dir,
            checkpoint_path=None) -> dict:
    """The stage: measure model `name` (from checkpoint_path when given) on the neutral inputs into
    out_dir/metrics.json."""
    import torch

    colorize = load_model(name, models_dir, params.working_size, checkpoint_path)
    with torch.inference_mode():
        result = {"model": name, "working_size": colorize.size, **measure(colorize, params, prepared_dir, raw_dir)}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out_dir / "metrics.json", result)
    log.info("%s on %d neutral inputs: mean chroma %.2f, 99th percentile %.2f (%s)", name, result["images"],
             result["mean_chroma"], result["p99_chroma"],
             ", ".join(f"{k} {v['mean_chroma']:.2f}" for k, v in result["kinds"].items()))
    return result


def load(reports_dir=paths.REPORTS) -> dict[str, dict]:
    """{model: its neutral metrics} for every reports/neutral/MODEL/metrics.json there is."""
    folder = Path(reports_dir) / "neutral"
    found = {}
    for path in sorted(folder.glob("*/metrics.json")) if folder.is_dir() else []:
        try:
            found[path.parent.name] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: not valid JSON ({err}); rerun `dvc repro neutral@{path.parent.name}`") from None
    return found
