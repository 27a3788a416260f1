"""Colour representations: what a network predicts and how that becomes ab.

A representation is separate from the network that predicts it, so any architecture pairs with
any representation. Each one owns its number of output channels, its target encoding, its loss
and its decoding back to ab in Lab units. It is an nn.Module so that what it needs at decode time
(a palette, bin centres) travels inside the model's state_dict.

- `ab`: ab regressed directly, with tanh, sigmoid or no squashing (see ABRegression);
- `rgb`: RGB regressed through a sigmoid (seed 000's autoencoder, seed 004);
- `palette`: per-pixel classification into the palette stage's k-means colours (seed 000);
- `bins`: Zhang, Isola & Efros 2016's soft-encoded, class-rebalanced ab bins, annealed-mean decoding.

The two that predict a distribution (palette, bins) also say how sure they are of each pixel
(`confidence`), and can pull colour towards neutral as part of their decoding: the shrink of unsure
pixels' chroma (`shrink_gamma` > 0) and the mean pull (`mean_pull` > 0), both off by default: see
confidence.py and DistributionRepresentation.

Networks return outputs at the input's resolution (they upsample themselves), so every target is
taken at full resolution.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from chromalab.colorizing import confidence as confidence_lib  # not `confidence`: a method's name here
from chromalab.core import color
from chromalab.core.errors import UserError

_REGISTRY: dict[str, type] = {}


def register_representation(cls):
    _REGISTRY[cls.name] = cls
    return cls


def list_representations() -> list[str]:
    return sorted(_REGISTRY)


def create_representation(name: str, **args) -> "Representation":
    if name not in _REGISTRY:
        raise UserError(f"unknown representation {name!r}; known: {', '.join(list_representations())}")
    cls = _REGISTRY[name]
    accepted = inspect.signature(cls.__init__).parameters
    for key in args:
        if key not in accepted or key == "self":
            raise UserError(f"representation_args.{key}: the {name} representation has no such knob")
    return cls(**args)


def representation_args(name: str, args: dict, palette_dir) -> dict:
    """The user's knobs plus what the representation takes from the palette stage's outputs
    (k-means colours, gamut bins), so a checkpoint's config rebuilds it without data/."""
    if name not in _REGISTRY:
        raise UserError(f"unknown representation {name!r}; known: {', '.join(list_representations())}")
    return _REGISTRY[name].with_palette(dict(args), palette_dir)


PULL_KNOBS = ("shrink_gamma", "mean_pull")  # a decoding's pulls towards neutral; 0: off


def pulls_on(rep) -> bool:
    return any(getattr(rep, knob, 0.0) > 0 for knob in PULL_KNOBS)


@contextlib.contextmanager
def pulls_off(rep):
    """Inside the block `rep` decodes the colours as painted, without its pulls towards neutral (the
    colour a confidence speaks of; the reference a pull is measured against); restored after."""
    saved = {knob: getattr(rep, knob, 0.0) for knob in PULL_KNOBS}
    for knob in PULL_KNOBS:
        setattr(rep, knob, 0.0)
    try:
        yield rep
    finally:
        for knob, value in saved.items():
            setattr(rep, knob, value)


class Representation(nn.Module):
    name: str
    channels: int

    @classmethod
    def with_palette(cls, args: dict, palette_dir) -> dict:
        """Add palette-derived constructor arguments to `args` (nothing, unless overridden)."""
        return args

    def target(self, L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Ground truth (Lab units, (B,1,H,W) and (B,2,H,W)) -> what the network is trained to output:
        a tensor, or any structure this representation's own loss() understands."""
        raise NotImplementedError

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, output: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
        """Network output -> ab in Lab units, (B, 2, H, W)."""
        raise NotImplementedError

    # Per-pixel confidence: only a representation that predicts a distribution has one.
    has_confidence = False
    shrink_gamma = 0.0
    mean_pull = 0.0

    def confidence(self, output: torch.Tensor, measure: str | None = None) -> torch.Tensor | None:
        """How sure the model is of each pixel's colour: (B, 1, h, w) in [0, 1] at the output's
        resolution, 1 = sure; None where the representation has no distribution to tell it."""
        return None


class DistributionRepresentation(Representation):
    """A representation that predicts a distribution over ab colours (`_colours`, (Q, 2)) and
    paints one colour from it (`_paint`). Its knobs, beside the subclass's own:

    - `confidence_measure`: entropy (default), radius or spread (confidence.py), what `confidence`
      and the shrink use; `confidence_radius`: the radius and spread measures' r, in ab units (10);
    - `shrink_gamma` γ (default 0: off) and `shrink_threshold` c0 (default 1): decoding paints
      ab · min(c / c0, 1) ** γ, so where the model is unsure its chroma falls towards neutral;
    - `mean_pull` β (default 0: off): then ab − β · mean(ab), the mean over each image: part of a
      photo's overall cast, where the model's guesses add up to one, goes (grey world).
    The confidence and the shrink are computed at the network's output resolution (the Colorizer
    upsamples them with the ab); they are knobs, so a checkpoint's config carries them."""

    has_confidence = True

    def _init_confidence(self, shrink_gamma, shrink_threshold, confidence_measure, confidence_radius,
                         mean_pull=0.0) -> None:
        if isinstance(shrink_gamma, bool) or not isinstance(shrink_gamma, (int, float)) or not shrink_gamma >= 0:
            raise UserError(f"representation_args.shrink_gamma: expected a number >= 0 (0: no shrink), "
                            f"got {shrink_gamma!r}")
        if isinstance(shrink_threshold, bool) or not isinstance(shrink_threshold, (int, float)) \
                or not 0 < shrink_threshold <= 1:
            raise UserError(f"representation_args.shrink_threshold: expected a number in (0, 1], got {shrink_threshold!r}")
        if confidence_measure not in confidence_lib.MEASURES:
            raise UserError(f"representation_args.confidence_measure: expected one of "
                            f"{', '.join(confidence_lib.MEASURES)}, got {confidence_measure!r}")
        if isinstance(mean_pull, bool) or not isinstance(mean_pull, (int, float)) or not 0 <= mean_pull < 1:
            raise UserError(f"representation_args.mean_pull: expected a number in [0, 1) (0: off), got {mean_pull!r}")
        self.shrink_gamma = float(shrink_gamma)
        self.shrink_threshold = float(shrink_threshold)
        self.mean_pull = float(mean_pull)
        self.confidence_measure = confidence_measure
        self.confidence_radius = _positive("confidence_radius", confidence_radius)

    def _colours(self) -> torch.Tensor:
        raise NotImplementedError

    def _paint(self, output: torch.Tensor) -> torch.Tensor:
        """Network output -> ab (B, 2, h, w), before any shrink."""
        raise NotImplementedError

    def _confidence(self, output, ab, measure=None):
        # The model's own distribution, at temperature 1 (log_softmax: no log of 0).
        return confidence_lib.measure(torch.log_softmax(output.float(), dim=1), self._colours(), ab,
                                  measure or self.confidence_measure, self.confidence_radius)

    def confidence(self, output, measure=None):
        return self._confidence(output, self._paint(output), measure)

    def decode(self, output, L):
        ab = self._paint(output)
        if self.shrink_gamma > 0:
            ab = ab * confidence_lib.shrink_factor(self._confidence(output, ab), self.shrink_gamma, self.shrink_threshold)
        if self.mean_pull > 0:  # over the decoded area; a padded border is reflected image, the same colours
            ab = ab - self.mean_pull * ab.mean(dim=(2, 3), keepdim=True)
        return ab


@register_representation
class ABRegression(Representation):
    """ab regressed directly, scaled by 110 to [-1, 1], with MSE.

    `activation` squashes the output into range: tanh (Deep Koalarization; seed 004's sigmoid on
    a symmetric range is the same curve), sigmoid (Iizuka et al.: ab mapped to [0, 1]), or none
    (plain linear output, clipped at decode time).
    """

    name = "ab"
    channels = 2

    def __init__(self, activation: str = "tanh"):
        super().__init__()
        if activation not in ("tanh", "sigmoid", "none"):
            raise UserError(f"representation_args.activation: expected tanh, sigmoid or none, got {activation!r}")
        self.activation = activation

    def _squash(self, output):
        """Network output -> normalised ab in [-1, 1]."""
        if self.activation == "tanh":
            return torch.tanh(output)
        if self.activation == "sigmoid":
            return 2.0 * torch.sigmoid(output) - 1.0
        return output

    def target(self, L, ab):
        return color.normalize_ab(ab)

    def loss(self, output, target):
        scale = 0.25 if self.activation == "sigmoid" else 1.0  # MSE measured on [0, 1] as Iizuka et al.
        return scale * nn.functional.mse_loss(self._squash(output), target)

    def decode(self, output, L):
        return color.denormalize_ab(self._squash(output).clamp(-1.0, 1.0))


def _sq_distances(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Squared distance of every pixel of x (B, D, H, W) to every centre (K, D) -> (B, K, H, W).

    Accumulated one colour channel at a time, so memory stays at one (B, K, H, W) tensor."""
    dist = None
    for d in range(centers.shape[1]):
        term = (x[:, d : d + 1] - centers[:, d].view(1, -1, 1, 1)) ** 2
        dist = term if dist is None else dist + term
    return dist


def _expectation(probs: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Probabilities (B, K, H, W) over centres (K, 2) -> their mean ab (B, 2, H, W)."""
    return torch.einsum("bkhw,kc->bchw", probs, centers.to(probs.dtype))


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise UserError(f"representation_args.{name}: expected a number > 0, got {value!r}")
    return float(value)


@register_representation
class RGBRegression(Representation):
    """RGB in [0, 1] through a sigmoid, with MSE on RGB: seed 000's autoencoder (and seed 004)
    predicted the three RGB channels of the colour image.

    Adapted: the network sees L (not the seed's greyscale RGB), and decoding converts the predicted
    RGB to Lab and keeps only its ab; the input's L replaces the predicted lightness, as the seed's
    own conversion to Lab did. The target is the ground truth's sRGB, clipped to [0, 1].
    """

    name = "rgb"
    channels = 3

    def target(self, L, ab):
        return color.lab_to_rgb_torch(torch.cat([L, ab], dim=1)).clamp(0.0, 1.0)

    def loss(self, output, target):
        return nn.functional.mse_loss(torch.sigmoid(output), target)

    def decode(self, output, L):
        lab = color.rgb_to_lab_torch(torch.sigmoid(output.float()))
        return lab[:, 1:].clamp(-color.AB_SCALE, color.AB_SCALE)


def _reject_palette_keys(args: dict, keys: tuple, source: str) -> None:
    """What the palette stage decides is not a user knob (it would be overwritten silently)."""
    for key in keys:
        if key in args:
            raise UserError(f"representation_args.{key}: comes from the palette stage's {source}, not from params")


def _read_kmeans(palette_dir) -> dict:
    path = Path(palette_dir) / "kmeans.json"
    if not path.is_file():
        raise UserError(f"{path}: missing; run the palette stage first (dvc repro palette)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None


@register_representation
class PaletteClassification(DistributionRepresentation):
    """Each pixel classified into the k-means colours of the palette stage (seed 000, Ye & Liu).

    The seed clustered training colours with k-means (k = 4 .. 32, in RGB), trained a CNN with
    softmax + cross-entropy to pick each pixel's colour, and painted each pixel with the most
    likely one (argmax). Kept: the k-means palette, per-pixel cross-entropy, argmax decoding
    (`decode: argmax`, the default). Adapted:
    - the palette may be fitted in ab (the palette stage's default) or in RGB as the seed did
      (0..255 centres); the target is the nearest centre in that space;
    - decoding paints ab only (each colour's mean ab), the input's L gives the lightness; in RGB
      space a colour's ab is the mean ab of the training pixels assigned to it;
    - `decode: annealed_mean` is Zhang et al.'s annealed mean (temperature T) over the palette,
      a chromalab extension that softens the seed's hard k-colour look.
    The centres are registered buffers: they follow .to(device) and live in the state_dict.
    """

    name = "palette"

    def __init__(self, centers, centers_ab, space: str = "ab", decode: str = "argmax", temperature: float = 0.38,
                 shrink_gamma: float = 0.0, shrink_threshold: float = 1.0,
                 confidence_measure: str = confidence_lib.DEFAULT_MEASURE,
                 confidence_radius: float = confidence_lib.DEFAULT_RADIUS, mean_pull: float = 0.0):
        super().__init__()
        self._init_confidence(shrink_gamma, shrink_threshold, confidence_measure, confidence_radius, mean_pull)
        if space not in ("ab", "rgb"):
            raise UserError(f"representation_args.space: expected ab or rgb, got {space!r}")
        if decode not in ("argmax", "annealed_mean"):
            raise UserError(f"representation_args.decode: expected argmax or annealed_mean, got {decode!r}")
        centers = torch.as_tensor(centers, dtype=torch.float32)
        centers_ab = torch.as_tensor(centers_ab, dtype=torch.float32)
        dim = 2 if space == "ab" else 3
        if centers.ndim != 2 or centers.shape[1] != dim or centers.shape[0] < 2:
            raise UserError(f"representation_args.centers: expected k >= 2 rows of {dim} values "
                            f"(space {space}), got shape {tuple(centers.shape)}")
        if centers_ab.shape != (centers.shape[0], 2):
            raise UserError(f"representation_args.centers_ab: expected {centers.shape[0]} rows of 2 values, "
                            f"got shape {tuple(centers_ab.shape)}")
        self.space, self.decode_mode = space, decode
        self.temperature = _positive("temperature", temperature)
        self.channels = centers.shape[0]
        self.register_buffer("centers", centers)
        self.register_buffer("centers_ab", centers_ab)

    @classmethod
    def with_palette(cls, args, palette_dir):
        _reject_palette_keys(args, ("centers", "centers_ab", "space"), "kmeans.json (set palette.space there)")
        km = _read_kmeans(palette_dir)
        try:
            args.update(centers=km["centers"], centers_ab=[row[1:] for row in km["centers_lab"]], space=km["space"])
        except (KeyError, TypeError, IndexError) as err:
            raise UserError(f"{palette_dir}/kmeans.json: malformed ({err!r}); rerun the palette stage") from None
        return args

    @torch.no_grad()
    def target(self, L, ab):
        if self.space == "rgb":
            # The palette stage fitted on uint8 RGB (lab_to_rgb_uint8), so match it: 0..255, rounded.
            features = torch.round(color.lab_to_rgb_torch(torch.cat([L, ab], dim=1)) * 255.0)
        else:
            features = ab.float()
        return _sq_distances(features.float(), self.centers).argmin(dim=1)

    def loss(self, output, target):
        return nn.functional.cross_entropy(output, target)

    def _colours(self):
        return self.centers_ab

    def _paint(self, output):
        if self.decode_mode == "argmax":
            return self.centers_ab[output.argmax(dim=1)].permute(0, 3, 1, 2)
        # softmax(log softmax(z) / T) == softmax(z / T): Zhang's f_T applied to the logits directly.
        return _expectation(torch.softmax(output.float() / self.temperature, dim=1), self.centers_ab)


class SoftTarget(NamedTuple):
    """What BinClassification.target returns and its loss unpacks: the soft-encoded ground truth
    as its few non-zero entries (a dense (B, Q, H, W) copy would cost more than the network)."""

    neighbours: torch.Tensor  # (B, K, H, W) long: each pixel's K nearest bins
    kernel: torch.Tensor  # (B, K, H, W): their Gaussian weights, summing to 1 per pixel
    weight: torch.Tensor  # (B, H, W): class-rebalancing weight w of each pixel's nearest bin
    ab: torch.Tensor  # (B, 2, H, W): the ground truth itself, for the regression term

    def dense(self, bins: int) -> torch.Tensor:
        """The soft encoding as a (B, Q, H, W) distribution."""
        b, _, h, w = self.kernel.shape
        return self.kernel.new_zeros(b, bins, h, w).scatter_(1, self.neighbours, self.kernel)


# The nearest-bins lookup table covers ab in [-AB_GRID, AB_GRID) at one ab unit per cell.
AB_GRID = 128


@register_representation
class BinClassification(DistributionRepresentation):
    """Zhang, Isola & Efros 2016 ("Colorful Image Colorization"): ab quantized into the Q in-gamut
    bins of the palette stage's gamut (313 on ImageNet), predicted as a distribution per pixel.

    As in the paper: the target is the soft encoding of the ground truth (its `soft_neighbours` = 5
    nearest bin centres, weighted by a Gaussian of sigma `soft_sigma` = 5 on their distance,
    normalised); the loss is the class-rebalanced multinomial cross-entropy of eq. 2, each pixel
    weighted by w of its nearest bin (`rebalance`, the palette stage's eq. 4 weights); decoding is
    the annealed mean (eq. 5) with temperature `temperature` = 0.38. Adapted: the gamut and its
    weights come from this project's training pixels, not ImageNet, and the loss is averaged over
    pixels rather than summed. The K nearest bins come from a table over a 1-ab-unit grid (a
    gather instead of distances to every bin and a top-k per pixel, which dominated training);
    the Gaussian weights use the exact distances to those bins.

    chromalab extension, `regression_weight` β (default 0, the paper): adds β times the squared
    error of the distribution's mean (T = 1) against the truth, in the ab representation's units
    ((ab / 110)², so β = 1 weighs it like the ab models' MSE). The cross-entropy keeps the
    distribution's modes, the regression term anchors its mean; a lower decoding temperature then
    trades between the two (train.temperatures chooses it on val).

    chromalab extension, `prior_correction` c (default 0, the paper): decodes from z − c·log w.
    The rebalanced loss is minimised by a distribution proportional to w·P(colour | photo), so the
    network learns to take mass off the common (near-neutral, w small) bins; where it is unsure
    that spreads the distribution over the gamut, whose centroid is warm (+a, +b), and the annealed
    mean paints orange/sepia on grey things. c = 1 divides the rebalancing back out (the posterior
    the unweighted loss would learn), c in between keeps part of rebalancing's colour; decoding uses
    the corrected distribution (docs/experiments/2026-12-06-colour.md measures it;
    train.prior_corrections chooses c on val with the temperature), the confidence its own (below).

    `confidence_correction` c_conf (default 1): the confidence (and so the shrink) reads the
    distribution z − c_conf·log w, apart from the decoding's c. At 1 it is the model's belief with
    the rebalancing divided out; rebalancing flattens the distribution wherever the truth is common,
    so a confidence taken from the rebalanced one measures the rebalancing rather than doubt. On the
    released model's 456 val photos, the AUROC of the confidence against ab error > 10 rose from
    0.64 to 0.77 (entropy 0.64 → 0.77, spread 0.63 → 0.77) from c_conf = 0.1 to 1
    (docs/confidence.md, "Which distribution"). A model trained without rebalancing (`rebalance:
    false`) already learned the posterior: nothing is divided out of its confidence.
    """

    name = "bins"

    def __init__(self, centers, weights, temperature: float = 0.38, soft_neighbours: int = 5,
                 soft_sigma: float = 5.0, rebalance: bool = True, regression_weight: float = 0.0,
                 prior_correction: float = 0.0, confidence_correction: float = 1.0,
                 shrink_gamma: float = 0.0, shrink_threshold: float = 1.0,
                 confidence_measure: str = confidence_lib.DEFAULT_MEASURE,
                 confidence_radius: float = confidence_lib.DEFAULT_RADIUS, mean_pull: float = 0.0):
        super().__init__()
        self._init_confidence(shrink_gamma, shrink_threshold, confidence_measure, confidence_radius, mean_pull)
        if isinstance(prior_correction, bool) or not isinstance(prior_correction, (int, float)) \
                or not 0 <= prior_correction <= 1:
            raise UserError(f"representation_args.prior_correction: expected a number in [0, 1] (0: Zhang's "
                            f"decoding, 1: the rebalancing divided out), got {prior_correction!r}")
        self.prior_correction = float(prior_correction)
        if isinstance(confidence_correction, bool) or not isinstance(confidence_correction, (int, float)) \
                or not 0 <= confidence_correction <= 1:
            raise UserError(f"representation_args.confidence_correction: expected a number in [0, 1] (1: the "
                            f"confidence reads the distribution with the rebalancing divided out), "
                            f"got {confidence_correction!r}")
        self.confidence_correction = float(confidence_correction)
        centers = torch.as_tensor(centers, dtype=torch.float32)
        weights = torch.as_tensor(weights, dtype=torch.float32)
        if centers.ndim != 2 or centers.shape[1] != 2 or centers.shape[0] < 2:
            raise UserError(f"representation_args.centers: expected Q >= 2 rows of 2 ab values, "
                            f"got shape {tuple(centers.shape)}")
        if weights.shape != (centers.shape[0],):
            raise UserError(f"representation_args.weights: expected {centers.shape[0]} values, got shape "
                            f"{tuple(weights.shape)}")
        if isinstance(soft_neighbours, bool) or not isinstance(soft_neighbours, int) or soft_neighbours < 1:
            raise UserError(f"representation_args.soft_neighbours: expected a whole number >= 1, got {soft_neighbours!r}")
        if not isinstance(rebalance, bool):
            raise UserError(f"representation_args.rebalance: expected true or false, got {rebalance!r}")
        if isinstance(regression_weight, bool) or not isinstance(regression_weight, (int, float)) \
                or not regression_weight >= 0:
            raise UserError(f"representation_args.regression_weight: expected a number >= 0, got {regression_weight!r}")
        self.temperature = _positive("temperature", temperature)
        self.soft_sigma = _positive("soft_sigma", soft_sigma)
        self.soft_neighbours = min(soft_neighbours, centers.shape[0])
        self.rebalance = rebalance
        self.regression_weight = float(regression_weight)
        self.channels = centers.shape[0]
        self.register_buffer("centers", centers)
        self.register_buffer("weights", weights)
        self._table = None  # built on first use; derived from centers, so not in the state_dict

    @classmethod
    def with_palette(cls, args, palette_dir):
        from chromalab.data.palette import Gamut

        _reject_palette_keys(args, ("centers", "weights"), "gamut.json")
        gamut = Gamut.load(palette_dir)
        args.update(centers=gamut.centers.tolist(), weights=gamut.weights.tolist())
        return args

    def _nearest_table(self) -> torch.Tensor:
        """(2·AB_GRID)² x K: the K nearest bins of each 1-unit ab cell's centre, nearest first."""
        if self._table is None or self._table.device != self.centers.device:
            grid = torch.arange(-AB_GRID, AB_GRID, dtype=torch.float32, device=self.centers.device)
            cells = torch.cartesian_prod(grid, grid)  # (a, b) row-major: index (a + G) * 2G + (b + G)
            d2 = torch.cdist(cells, self.centers).square()
            self._table = torch.topk(d2, self.soft_neighbours, dim=1, largest=False).indices
        return self._table

    @torch.no_grad()
    def target(self, L, ab):
        ab = ab.float()
        cell = (ab.round() + AB_GRID).clamp(0, 2 * AB_GRID - 1).long()
        near = self._nearest_table()[cell[:, 0] * (2 * AB_GRID) + cell[:, 1]].permute(0, 3, 1, 2)  # (B,K,H,W)
        chosen = self.centers[near]  # (B, K, H, W, 2)
        d2 = (chosen - ab.permute(0, 2, 3, 1)[:, None]).square().sum(dim=-1)
        # exp(-d²/2σ²), shifted by the nearest distance so far-from-gamut pixels do not underflow.
        kernel = torch.exp(-(d2 - d2.min(dim=1, keepdim=True).values) / (2.0 * self.soft_sigma**2))
        nearest = near.gather(1, d2.argmin(dim=1, keepdim=True))[:, 0]
        return SoftTarget(near, kernel / kernel.sum(dim=1, keepdim=True), self.weights[nearest], ab)

    def loss(self, output, target):
        log_probs = torch.log_softmax(output, dim=1)
        ce = -(target.kernel * log_probs.gather(1, target.neighbours)).sum(dim=1)
        if self.rebalance:
            ce = ce * target.weight
        loss = ce.mean()  # over pixels, as train.py averages every loss (not by the weight sum)
        if self.regression_weight > 0:
            mean = _expectation(log_probs.exp(), self.centers)
            loss = loss + self.regression_weight * nn.functional.mse_loss(
                color.normalize_ab(mean), color.normalize_ab(target.ab))
        return loss

    def _colours(self):
        return self.centers

    def _corrected(self, output, correction=None):
        """The logits decoding uses: z − c·log w (c = prior_correction, or `correction`; z itself at 0)."""
        c = self.prior_correction if correction is None else correction
        if not c:
            return output.float()
        return output.float() - c * torch.log(self.weights).view(1, -1, 1, 1)

    def _paint(self, output):
        # Annealed mean: softmax(log softmax(z) / T) == softmax(z / T).
        return _expectation(torch.softmax(self._corrected(output) / self.temperature, dim=1), self.centers)

    def _confidence(self, output, ab, measure=None):
        divided_out = self.confidence_correction if self.rebalance else 0.0  # no rebalancing: nothing to undo
        return super()._confidence(self._corrected(output, divided_out), ab, measure)
