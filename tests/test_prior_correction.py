"""The prior correction of the bins representation: decoding from z − c·log w divides Zhang et al.'s
class rebalancing back out, which otherwise paints a warm cast where the model is unsure; and the
val sweep that chooses c with the temperature."""

import csv

import pytest
import torch

from chromalab.colorizing import checkpoint
from chromalab.colorizing.representations import create_representation
from chromalab.core.errors import UserError

from helpers import train_tiny


def gamut(lam: float = 0.25):
    """A small ab gamut shaped like a photo set's: most mass on the neutral bin, the rest over a
    gamut whose centroid is warm (+a, +b), weights by Zhang's eq. 4 (normalised to mean 1 under p)."""
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [20.0, 30.0], [30.0, 20.0], [-10.0, -10.0]])
    prior = torch.tensor([0.7, 0.05, 0.05, 0.05, 0.05, 0.1])
    weights = 1.0 / ((1 - lam) * prior + lam / len(prior))
    weights = weights / (weights * prior).sum()
    return centers, prior, weights


def bins(c: float, temperature: float = 1.0):
    centers, _, weights = gamut()
    return create_representation("bins", centers=centers.tolist(), weights=weights.tolist(),
                                 temperature=temperature, prior_correction=c)


def logits(p: torch.Tensor) -> torch.Tensor:
    """A (1, Q, 1, 1) output whose softmax is p."""
    return torch.log(p).view(1, -1, 1, 1)


def test_without_correction_the_decoding_is_zhangs_annealed_mean():
    centers, prior, _ = gamut()
    out = logits(prior) + 0.3 * torch.randn(1, len(prior), 2, 2)
    for t in (0.38, 1.0):
        expected = torch.einsum("bqhw,qc->bchw", torch.softmax(out / t, dim=1), centers)
        assert torch.allclose(bins(0.0, t).decode(out, None), expected, atol=1e-6)


def test_an_unsure_rebalanced_prediction_is_warm_and_the_correction_makes_it_neutral():
    """What the rebalanced loss teaches an unsure pixel: p ∝ w·prior. Decoded as it is, its mean
    sits toward the warm, rare bins; with c = 1 it is the data's own mean, near neutral."""
    centers, prior, weights = gamut()
    rebalanced = weights * prior / (weights * prior).sum()
    out = logits(rebalanced)
    warm = bins(0.0).decode(out, None)[0, :, 0, 0]
    neutral = bins(1.0).decode(out, None)[0, :, 0, 0]
    truth_mean = (prior[:, None] * centers).sum(0)
    assert warm[0] > 3 and warm[1] > 3  # +a, +b: the orange/sepia cast
    assert torch.allclose(neutral, truth_mean, atol=1e-5)  # exactly the prior's mean
    assert torch.linalg.norm(neutral) < torch.linalg.norm(warm) / 2
    half = bins(0.5).decode(out, None)[0, :, 0, 0]  # c between: chroma between
    assert torch.linalg.norm(neutral) < torch.linalg.norm(half) < torch.linalg.norm(warm)


def test_a_sure_prediction_keeps_its_colour_under_the_correction():
    """A peaked distribution (the model knows the colour) moves little: the correction matters
    where the distribution is spread."""
    _, prior, _ = gamut()
    sure = torch.full_like(prior, 1e-4)
    sure[3] = 1.0
    out = logits(sure / sure.sum())
    a = bins(0.0, 0.38).decode(out, None)[0, :, 0, 0]
    b = bins(1.0, 0.38).decode(out, None)[0, :, 0, 0]
    assert torch.linalg.norm(a - b) < 1.0 and torch.linalg.norm(b) > 30


def test_the_confidence_reads_the_distribution_with_the_rebalancing_divided_out_whatever_the_decoding():
    centers, prior, weights = gamut()
    out = logits(weights * prior / (weights * prior).sum())
    # divided back out (confidence_correction 1, the default), the unsure pixel's distribution is
    # the (peaked) prior: more certain than the rebalanced one; the decoding's c does not move it
    assert torch.allclose(bins(1.0).confidence(out), bins(0.0).confidence(out))
    rebalanced = create_representation("bins", centers=centers.tolist(), weights=weights.tolist(), confidence_correction=0.0)
    assert bins(0.0).confidence(out) > rebalanced.confidence(out)


@pytest.mark.parametrize("bad", [-0.1, 1.5, True, "one"])
def test_a_prior_correction_outside_0_1_is_one_line(bad):
    with pytest.raises(UserError, match=r"representation_args.prior_correction: expected a number in \[0, 1\]"):
        bins(bad)


def test_the_val_sweep_chooses_the_correction_with_the_temperature(tmp_path, prepared_dir, palette_dir, mlflow_uri):
    from chromalab.core.config import TrainParams, parse_section

    with pytest.raises(UserError, match="train.prior_corrections: swept with the temperatures"):
        parse_section("train", {"prior_corrections": [0, 1]}, TrainParams)
    with pytest.raises(UserError, match=r"train.prior_corrections: expected a non-empty list of numbers in \[0, 1\]"):
        parse_section("train", {"prior_corrections": [2], "temperatures": [1]}, TrainParams)
    model = dict(network="unet", representation="bins", network_args={"base_channels": 8})
    out = train_tiny(tmp_path, prepared_dir, name="bins", epochs=1, palette_dir=palette_dir, model=model,
                     temperatures=[0.2, 1.0], prior_corrections=[0.0, 1.0], max_delta_colorfulness=1000.0)
    config = checkpoint.read(out / "best.pt")["config"]
    sweep = config["temperature_sweep"]
    assert sorted((s["temperature"], s["prior_correction"]) for s in sweep) == [(0.2, 0.0), (0.2, 1.0), (1.0, 0.0),
                                                                                (1.0, 1.0)]
    best = max(sweep, key=lambda s: s["val_psnr"])  # every candidate is within the (wide) ΔCF limit
    assert (config["representation_args"]["temperature"], config["representation_args"]["prior_correction"]) == (
        best["temperature"], best["prior_correction"])
    with open(tmp_path / "reports" / "train" / "bins" / "history.csv") as f:
        assert float(next(csv.DictReader(f))["prior_correction"]) == best["prior_correction"]
    # the checkpoint decodes with what was chosen
    colorizer, _ = checkpoint.load(out / "best.pt")
    assert colorizer.representation.prior_correction == best["prior_correction"]
    # on val, the corrected decoding paints less colour where the truth is grey than the plain one
    corrected = [s for s in sweep if s["prior_correction"] == 1.0 and s["temperature"] == 1.0][0]
    plain = [s for s in sweep if s["prior_correction"] == 0.0 and s["temperature"] == 1.0][0]
    assert 0 <= corrected["val_neutral_chroma"] < plain["val_neutral_chroma"]
