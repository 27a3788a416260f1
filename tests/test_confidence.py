"""Per-pixel confidence of the distribution representations (bins, palette), the low-confidence
shrink in their decoding, the AUROC, and scoring the shrink's parameters on val outputs.

Synthetic bin centres (a 10-unit ab grid, as the palette stage's default gamut) and hand-made
logits: each property is checked on distributions whose answer is known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from chromalab.colorizing import checkpoint, confidence
from chromalab.colorizing.colorizer import Colorizer, GreyBaseline, describe_shrink, disable_shrink
from chromalab.colorizing.representations import create_representation
from chromalab.core.errors import UserError
from chromalab.training.shrink_choice import choose_shrink, confidence_auroc, score_shrink, shrink_args

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def grid_centers(step=10.0, radius=60.0):
    axis = np.arange(-radius, radius + step, step)
    ab = np.array([(a, b) for a in axis for b in axis if np.hypot(a, b) <= radius], np.float32)
    return ab.tolist()


CENTERS = grid_centers()
Q = len(CENTERS)


def bins(**knobs):
    return create_representation("bins", centers=CENTERS, weights=[1.0] * Q, **knobs)


def palette(**knobs):
    centers = [[-40.0, 20.0], [0.0, 0.0], [30.0, 30.0], [10.0, -50.0]]
    return create_representation("palette", centers=centers, centers_ab=centers, **knobs)


def peaked_and_flat(rep, h=3, w=4):
    """Logits (2, Q, h, w): image 0 sure of one vivid bin, image 1 flat over every bin."""
    colours = rep._colours()
    vivid = int(colours.norm(dim=1).argmax())
    out = torch.zeros(2, len(colours), h, w)
    out[0, vivid] = 12.0
    return out


def mixed_logits(rep, seed=0, h=6, w=5):
    """Random distributions from nearly one-hot to nearly flat, pixel by pixel."""
    g = torch.Generator().manual_seed(seed)
    sharpness = torch.linspace(0.0, 8.0, h * w).view(1, 1, h, w)
    return torch.randn(2, len(rep._colours()), h, w, generator=g) * sharpness


# --- the measures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [bins, palette], ids=["bins", "palette"])
@pytest.mark.parametrize("measure", confidence.MEASURES)
def test_confidence_is_in_range_and_a_peaked_distribution_is_surer_than_a_flat_one(make, measure):
    rep = make()
    assert rep.has_confidence
    conf = rep.confidence(peaked_and_flat(rep), measure)
    assert conf.shape == (2, 1, 3, 4) and conf.min() >= 0 and conf.max() <= 1
    assert conf[0].min() > 0.99  # all mass on the colour painted
    assert (conf[0] > conf[1]).all()
    mixed = rep.confidence(mixed_logits(rep), measure)
    assert mixed.min() >= 0 and mixed.max() <= 1 and torch.isfinite(mixed).all()


def test_the_measures_have_their_closed_forms():
    rep = bins(temperature=1.0)
    flat = torch.zeros(1, Q, 1, 1)
    assert rep.confidence(flat, "entropy").item() == pytest.approx(0.0, abs=1e-6)
    # Two equally likely bins 20 apart: entropy log 2, the mean halfway, each 10 away from it.
    centers = torch.tensor(CENTERS)
    i, j = (int(((centers - torch.tensor(p)).norm(dim=1)).argmin()) for p in ([-10.0, 0.0], [10.0, 0.0]))
    two = torch.full((1, Q, 1, 1), -1e4)
    two[0, [i, j]] = 0.0
    assert rep.confidence(two, "entropy").item() == pytest.approx(1 - np.log(2) / np.log(Q), abs=1e-5)
    assert rep.confidence(two, "radius").item() == pytest.approx(1.0, abs=1e-5)  # both within 10 of the mean
    assert bins(temperature=1.0, confidence_radius=9.0).confidence(two, "radius").item() < 1e-3
    assert rep.confidence(two, "spread").item() == pytest.approx(10 / (10 + 10), abs=1e-4)


def test_the_knob_picks_the_default_measure_and_bad_knobs_are_user_errors():
    out = mixed_logits(bins())
    assert torch.equal(bins(confidence_measure="spread").confidence(out), bins().confidence(out, "spread"))
    assert torch.equal(bins().confidence(out), bins().confidence(out, "entropy"))
    for knobs in [{"shrink_gamma": -1}, {"shrink_gamma": True}, {"shrink_threshold": 0}, {"shrink_threshold": 1.5},
                  {"confidence_measure": "variance"}, {"confidence_radius": 0}]:
        with pytest.raises(UserError, match="representation_args"):
            bins(**knobs)


def test_bins_confidence_reads_the_distribution_with_the_rebalancing_divided_out():
    """Rebalancing weights w that favour rare (vivid) colours: the confidence at the default
    confidence_correction 1 is the measure of z - log w (the posterior the unweighted loss would
    learn), at 0 the measure of z itself; the decoding's prior_correction does not move it."""
    chroma = torch.tensor(CENTERS).norm(dim=1)
    weights = (1.0 + chroma / 10.0).tolist()  # vivid bins weigh up to 7 times the neutral one
    out = mixed_logits(bins())
    rebalanced = create_representation("bins", centers=CENTERS, weights=weights, temperature=1.0)
    plain = create_representation("bins", centers=CENTERS, weights=[1.0] * Q, temperature=1.0)
    divided_out = out - torch.log(torch.tensor(weights)).view(1, -1, 1, 1)
    for measure in confidence.MEASURES:
        ab = rebalanced._paint(out)  # the same painted colour on both sides
        expected = confidence.measure(torch.log_softmax(divided_out, 1), plain.centers, ab, measure)
        assert torch.allclose(rebalanced._confidence(out, ab, measure), expected, atol=1e-6)
        raw = create_representation("bins", centers=CENTERS, weights=weights, temperature=1.0, confidence_correction=0)
        assert torch.allclose(raw._confidence(out, ab, measure),
                              confidence.measure(torch.log_softmax(out, 1), plain.centers, ab, measure), atol=1e-6)
        assert not torch.allclose(raw._confidence(out, ab, measure), expected, atol=1e-3)
    decoded_apart = create_representation("bins", centers=CENTERS, weights=weights, temperature=1.0, prior_correction=0.3)
    ab = decoded_apart._paint(out)
    assert torch.allclose(decoded_apart._confidence(out, ab, "entropy"),
                          confidence.measure(torch.log_softmax(divided_out, 1), plain.centers, ab, "entropy"), atol=1e-6)
    # trained without rebalancing, the distribution already is the posterior: nothing divided out
    unweighted = create_representation("bins", centers=CENTERS, weights=weights, temperature=1.0, rebalance=False)
    ab = unweighted._paint(out)
    assert torch.allclose(unweighted._confidence(out, ab, "entropy"),
                          confidence.measure(torch.log_softmax(out, 1), plain.centers, ab, "entropy"), atol=1e-6)
    for bad in (-0.1, 1.5, True, "1"):
        with pytest.raises(UserError, match=r"representation_args.confidence_correction: expected a number in \[0, 1\]"):
            create_representation("bins", centers=CENTERS, weights=weights, confidence_correction=bad)


@pytest.mark.parametrize("name, args", [("ab", {}), ("rgb", {})])
def test_regression_representations_have_no_confidence(name, args):
    rep = create_representation(name, **args)
    assert not rep.has_confidence and rep.confidence(torch.zeros(1, rep.channels, 2, 2)) is None
    with pytest.raises(UserError, match="shrink_gamma"):  # not a knob of theirs
        create_representation(name, shrink_gamma=1.0)
    colorizer = Colorizer("kmeans_cnn", name, {"channels": 4})
    assert not colorizer.has_confidence and not GreyBaseline().has_confidence
    with pytest.raises(UserError, match=f"the {name} representation gives no per-pixel confidence"):
        colorizer.confidence(torch.zeros(1, rep.channels, 2, 2), torch.zeros(1, 1, 2, 2))


# --- the shrink -----------------------------------------------------------------------------------


def test_shrink_factor_is_monotone_and_off_at_gamma_zero():
    c = torch.linspace(0, 1, 101)
    assert torch.equal(confidence.shrink_factor(c, 0.0, 0.5), torch.ones_like(c))
    for gamma, threshold in itertools.product([0.5, 1.0, 3.0], [0.3, 1.0]):
        g = confidence.shrink_factor(c, gamma, threshold)
        assert g[0] == 0 and (g.diff() >= 0).all() and (g[c >= threshold] == 1).all() and (g[c < threshold] < 1).all()
    assert torch.allclose(confidence.shrink_factor(c, 2.0, 1.0), c**2)


@pytest.mark.parametrize("make", [bins, palette], ids=["bins", "palette"])
def test_shrink_off_decodes_exactly_as_before(make):
    out = mixed_logits(make())
    plain = make()._paint(out)  # the decoding as it was before the shrink existed
    assert torch.equal(make().decode(out, None), plain)
    assert torch.equal(make(shrink_gamma=0, shrink_threshold=0.2, confidence_measure="radius").decode(out, None), plain)


@pytest.mark.parametrize("make", [bins, palette], ids=["bins", "palette"])
def test_shrink_reduces_chroma_only_where_confidence_is_low_and_keeps_the_hue(make):
    out = mixed_logits(make(), h=8, w=8)
    threshold = float(make().confidence(out).median())
    plain, shrunk = make().decode(out, None), make(shrink_gamma=2.0, shrink_threshold=threshold).decode(out, None)
    conf = make().confidence(out)[:, 0]
    sure = conf >= threshold
    chroma_plain, chroma_shrunk = plain.norm(dim=1), shrunk.norm(dim=1)
    assert sure.any() and (~sure).any()
    assert torch.equal(shrunk.permute(0, 2, 3, 1)[sure], plain.permute(0, 2, 3, 1)[sure])
    coloured = ~sure & (chroma_plain > 1)
    assert coloured.any() and (chroma_shrunk[coloured] < chroma_plain[coloured]).all()
    ratio = chroma_shrunk[coloured] / chroma_plain[coloured]
    assert torch.allclose(ratio, (conf[coloured] / threshold) ** 2, atol=1e-4)
    # ab only scaled: the hue angle stays wherever some colour is left
    kept = coloured & (chroma_shrunk > 1e-3)
    cross = plain[:, 0] * shrunk[:, 1] - plain[:, 1] * shrunk[:, 0]
    assert (cross[kept].abs() < 1e-3 * chroma_plain[kept] * chroma_shrunk[kept]).all()


def test_colorizer_takes_confidence_and_shrink_at_the_output_resolution_and_upsamples_them():
    torch.manual_seed(0)
    colorizer = Colorizer("kmeans_cnn", "bins", {"channels": 4},
                          {"centers": CENTERS, "weights": [1.0] * Q, "shrink_gamma": 1.0, "shrink_threshold": 0.5})
    out = mixed_logits(colorizer.representation, h=4, w=6)  # at 1/4 of L, as a stride-4 network's
    L = torch.full((2, 1, 16, 24), 50.0)
    rep = colorizer.representation
    conf = colorizer.confidence(out, L)
    expected = torch.nn.functional.interpolate(rep.confidence(out), size=(16, 24), mode="bilinear", align_corners=False)
    assert conf.shape == (2, 1, 16, 24) and torch.allclose(conf, expected)
    small = rep._paint(out) * confidence.shrink_factor(rep.confidence(out), 1.0, 0.5)  # shrunk before upsampling
    assert torch.allclose(colorizer.decode(out, L),
                          torch.nn.functional.interpolate(small, size=(16, 24), mode="bilinear", align_corners=False))
    # forward_with_confidence: the forward's ab, and a confidence of L's size (odd: padded, cropped)
    L_odd = torch.linspace(10, 90, 13 * 17).view(1, 1, 13, 17)
    with torch.no_grad():
        ab, conf = colorizer.eval().forward_with_confidence(L_odd)
        assert torch.equal(ab, colorizer(L_odd))
    assert conf.shape == (1, 1, 13, 17) and conf.min() >= 0 and conf.max() <= 1


def test_the_shrink_knobs_travel_in_the_checkpoint_and_old_checkpoints_have_it_off(tmp_path):
    args = {"centers": CENTERS, "weights": [1.0] * Q}
    config = {"network": "kmeans_cnn", "representation": "bins", "network_args": {"channels": 4}}
    torch.manual_seed(0)
    on = Colorizer("kmeans_cnn", "bins", {"channels": 4},
                   {**args, "shrink_gamma": 1.5, "shrink_threshold": 0.4, "confidence_measure": "spread"})
    checkpoint.save(tmp_path / "on.pt", on, {**config, "representation_args": {
        **args, "shrink_gamma": 1.5, "shrink_threshold": 0.4, "confidence_measure": "spread"}})
    checkpoint.save(tmp_path / "old.pt", on, {**config, "representation_args": args})  # before the knobs
    loaded_on, _ = checkpoint.load(tmp_path / "on.pt")
    loaded_old, _ = checkpoint.load(tmp_path / "old.pt")
    rep = loaded_on.representation
    assert (rep.shrink_gamma, rep.shrink_threshold, rep.confidence_measure) == (1.5, 0.4, "spread")
    assert loaded_old.representation.shrink_gamma == 0 and describe_shrink(loaded_old) is None
    assert describe_shrink(loaded_on) == "low-confidence shrink γ=1.5 below spread confidence 0.4"
    L = torch.linspace(5, 95, 16 * 16).view(1, 1, 16, 16)
    with torch.no_grad():
        shrunk, plain = loaded_on(L), loaded_old(L)
        assert shrunk.norm(dim=1).sum() < plain.norm(dim=1).sum()
        assert disable_shrink(loaded_on) and not disable_shrink(loaded_old)
        assert torch.equal(loaded_on(L), plain)


# --- AUROC ----------------------------------------------------------------------------------------


def brute_force_auroc(conf, error, wrong_above=10.0):
    """Every (wrong, right) pair: 1 when the wrong pixel is less confident, 1/2 for a tie."""
    conf, error = np.ravel(conf), np.ravel(error)
    wrong, right = conf[error > wrong_above], conf[error <= wrong_above]
    pairs = (wrong[:, None] < right[None, :]) + 0.5 * (wrong[:, None] == right[None, :])
    return pairs.mean()


@pytest.mark.parametrize("seed", range(4))
def test_auroc_matches_a_brute_force_pairwise_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 300
    conf = rng.integers(0, 12, n) / 11.0  # few distinct values: many ties
    error = rng.uniform(0, 30, n) * (1.5 - conf)  # less sure, more often wrong
    assert confidence.auroc(conf, error) == pytest.approx(brute_force_auroc(conf, error), abs=1e-12)
    conf = rng.uniform(0, 1, (10, 12))
    error = rng.uniform(0, 20, (10, 12))
    assert confidence.auroc(conf, error) == pytest.approx(brute_force_auroc(conf, error), abs=1e-12)


def test_auroc_extremes():
    conf = np.array([0.1, 0.2, 0.8, 0.9])
    assert confidence.auroc(conf, [20, 15, 1, 2]) == 1.0  # the wrong ones are the least sure
    assert confidence.auroc(conf, [1, 2, 20, 15]) == 0.0
    assert confidence.auroc(np.full(4, 0.5), [1, 2, 20, 15]) == 0.5  # all tied: chance
    assert np.isnan(confidence.auroc(conf, [1, 2, 3, 4]))  # nothing wrong: undefined
    with pytest.raises(ValueError, match="differ in size"):
        confidence.auroc(conf, [1, 2, 3])


# --- choosing the shrink on val ----------------------------------------------------------------


def val_batches(colorizer, n=2):
    """(L, truth, outputs): truth near grey where the model is unsure, vivid where it is sure."""
    batches = []
    for seed in range(n):
        out = mixed_logits(colorizer.representation, seed=seed, h=8, w=8)
        conf = colorizer.representation.confidence(out)
        painted = colorizer.representation._paint(out)
        truth = painted * (conf > conf.median()).float()  # unsure pixels are really grey
        batches.append((torch.full((2, 1, 8, 8), 60.0), truth, out))
    return batches


def test_score_shrink_scores_every_grid_point_and_restores_the_knobs():
    colorizer = Colorizer("kmeans_cnn", "bins", {"channels": 4}, {"centers": CENTERS, "weights": [1.0] * Q})
    batches = val_batches(colorizer)
    rows = score_shrink(colorizer, batches, gammas=[0.0, 1.0, 4.0], thresholds=[0.5, 1.0],
                        measures=["entropy", "radius"])
    assert len(rows) == 1 + 2 * 2 * 2 and rows[0]["gamma"] == 0.0  # the reference, then the grid
    assert {(r["measure"], r["gamma"], r["threshold"]) for r in rows[1:]} == set(
        itertools.product(["entropy", "radius"], [1.0, 4.0], [0.5, 1.0]))
    assert all(r["images"] == 4 and np.isfinite(r["psnr"]) for r in rows)
    by = {(r["measure"], r["gamma"], r["threshold"]): r for r in rows}
    # More shrink, less colour; here the unsure pixels are grey in truth, so it also scores better.
    assert by["entropy", 4.0, 1.0]["mean_chroma"] < by["entropy", 1.0, 1.0]["mean_chroma"] < rows[0]["mean_chroma"]
    assert by["entropy", 1.0, 1.0]["psnr"] > rows[0]["psnr"]
    assert colorizer.representation.shrink_gamma == 0.0 and colorizer.representation.confidence_measure == "entropy"
    chosen = choose_shrink(rows, max_delta_colorfulness=1e9)
    assert chosen["psnr"] == max(r["psnr"] for r in rows) and chosen["gamma"] > 0
    assert choose_shrink(rows, max_delta_colorfulness=-1) == min(rows, key=lambda r: r["delta_colorfulness"])
    args = shrink_args(chosen)
    assert Colorizer("kmeans_cnn", "bins", {"channels": 4},
                     {"centers": CENTERS, "weights": [1.0] * Q, **args}).representation.shrink_gamma == chosen["gamma"]
    with pytest.raises(ValueError, match="no confidence"):
        score_shrink(Colorizer("kmeans_cnn", "ab", {"channels": 4}), batches, gammas=[1.0])


def test_confidence_auroc_ranks_the_wrong_pixels():
    colorizer = Colorizer("kmeans_cnn", "bins", {"channels": 4}, {"centers": CENTERS, "weights": [1.0] * Q})
    scores = confidence_auroc(colorizer, val_batches(colorizer))
    assert set(scores) == set(confidence.MEASURES)
    # The truth is grey exactly where entropy says unsure (some unsure pixels are painted near grey
    # anyway, so not wrong): measured 0.82.
    assert scores["entropy"] > 0.75 and all(0 <= s <= 1 for s in scores.values())


def test_the_shrink_exports_to_onnx_with_the_model(tmp_path):
    """The shrink is part of the model's graph: onnxruntime gives PyTorch's shrunk ab."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from chromalab.serving.export import InferenceGraph, _trace

    torch.manual_seed(0)
    colorizer = Colorizer("kmeans_cnn", "bins", {"channels": 4},
                          {"centers": CENTERS, "weights": [1.0] * Q, "shrink_gamma": 1.5, "shrink_threshold": 0.5,
                           "confidence_measure": "spread"}).eval()
    with torch.no_grad():
        colorizer.network.layers[-1].bias.copy_(torch.randn(Q) * 3)  # some colour, some certainty
    L = torch.linspace(5, 95, 2 * 20 * 28).view(2, 1, 20, 28)
    _trace(InferenceGraph(colorizer).eval(), L[:1, :, :16, :16], tmp_path / "m.onnx", 17, "m")
    got = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(None, {"L": L.numpy()})[0]
    with torch.no_grad():
        want = colorizer(L).numpy()
        plain = Colorizer("kmeans_cnn", "bins", {"channels": 4}, {"centers": CENTERS, "weights": [1.0] * Q})
        plain.load_state_dict(colorizer.state_dict())
        assert np.abs(plain.eval()(L).numpy()).sum() > np.abs(want).sum()  # the shrink did shrink
    assert np.abs(got - want).max() < 1e-3


# --- the test set's AUROC: pooled from per-image histograms, resampled by image --------------------


def test_the_binned_auroc_is_the_exact_auroc_of_the_binned_confidences_and_close_to_the_pixels_own():
    rng = np.random.default_rng(0)
    conf = rng.beta(2, 2, 4000)
    error = rng.gamma(2, 6, 4000) * (1.6 - conf)  # less sure, more often wrong
    counts = confidence.histograms(conf, error)
    assert counts["wrong"].sum() + counts["right"].sum() == 4000
    assert counts["wrong"].sum() == (error > confidence.WRONG_ABOVE).sum()
    binned = float(confidence.auroc_from_histograms(counts["wrong"], counts["right"]))
    bin_index = np.minimum((conf * confidence.HIST_BINS).astype(int), confidence.HIST_BINS - 1)
    assert binned == pytest.approx(confidence.auroc(bin_index, error), abs=1e-12)  # same bin: a tie
    exact = confidence.auroc(conf, error)
    assert 0.6 < exact and abs(binned - exact) < 0.005  # bins of width 0.01: ties cost little
    assert np.isnan(confidence.auroc_from_histograms(counts["wrong"] * 0, counts["right"]))
    assert confidence.histograms([1.0, 0.0], [20, 0])["wrong"][-1] == 1  # a confidence of 1: the last bin


def test_a_resample_pools_the_drawn_images_pixels_not_their_aurocs():
    from chromalab.scoring import uncertainty

    rng = np.random.default_rng(1)
    images = [(rng.uniform(0, 1, 300), rng.uniform(0, 25, 300) * s) for s in (0.6, 1.0, 1.8)]
    per_image = {"confidence_wrong_hist": np.stack([confidence.histograms(c, e)["wrong"] for c, e in images]),
                 "confidence_right_hist": np.stack([confidence.histograms(c, e)["right"] for c, e in images])}
    weights = np.array([[1.0, 1.0, 1.0], [2.0, 0.0, 1.0]])  # the set itself; image 0 twice, image 1 left out
    got = uncertainty.statistic("confidence_auroc", per_image, weights)
    for row, w in zip(got, weights):
        pixels = [(c, e) for (c, e), k in zip(images, w) for _ in range(int(k))]
        conf = np.concatenate([c for c, _ in pixels])
        error = np.concatenate([e for _, e in pixels])
        index = np.minimum((conf * confidence.HIST_BINS).astype(int), confidence.HIST_BINS - 1)
        assert row == pytest.approx(confidence.auroc(index, error), abs=1e-12)
    per_image_mean = np.mean([confidence.auroc(np.minimum((c * 100).astype(int), 99), e) for c, e in images])
    assert abs(got[0] - per_image_mean) > 1e-3  # the mean of the images' AUROCs is another number
    low, high = uncertainty.intervals(per_image, ["confidence_auroc"], seed=0, draws=200)["confidence_auroc"]
    assert low <= got[0] <= high


def test_the_reliability_table_groups_the_counts_by_confidence():
    conf = np.array([0.05, 0.05, 0.12, 0.55, 0.58, 0.95, 0.99, 1.0])
    error = np.array([20, 30, 2, 15, 1, 0, 3, 40])
    counts = confidence.histograms(conf, error)
    rows = confidence.reliability(counts["wrong"], counts["right"], counts["confidence_sum"])
    assert [(r["low"], r["high"]) for r in rows[:2]] == [(0.0, 0.1), (0.1, 0.2)] and len(rows) == 10
    assert [r["pixels"] for r in rows] == [2, 1, 0, 0, 0, 2, 0, 0, 0, 3]
    assert rows[0]["share_right"] == 0 and rows[1]["share_right"] == 1 and rows[5]["share_right"] == 0.5
    assert rows[9]["share_right"] == pytest.approx(2 / 3) and rows[9]["mean_confidence"] == pytest.approx(0.98)
    assert rows[2]["share_right"] is None and rows[2]["mean_confidence"] is None


# --- the shrink chosen on val at the end of training ---------------------------------------------


def test_training_chooses_the_shrink_on_val_by_the_stated_rule_and_changes_nothing_without_it(
        tmp_path, prepared_dir, palette_dir, caplog):
    from helpers import train_tiny

    caplog.set_level("INFO", logger="chromalab.training.shrink_choice")
    model = dict(network="unet", representation="bins", network_args={"base_channels": 8})
    plain = train_tiny(tmp_path, prepared_dir, name="plain", epochs=1, palette_dir=palette_dir, model=model)
    shrunk = train_tiny(tmp_path, prepared_dir, name="shrunk", epochs=1, palette_dir=palette_dir, model=model,
                        shrink_gammas=[1.0, 3.0], shrink_thresholds=[0.5, 1.0], max_delta_colorfulness=1000.0)
    before, after = checkpoint.read(plain / "best.pt"), checkpoint.read(shrunk / "best.pt")
    assert "shrink_sweep" not in before["config"] and "shrink_gamma" not in before["config"]["representation_args"]
    assert all(torch.equal(v, after["state_dict"][k]) for k, v in before["state_dict"].items())  # the same weights
    sweep, args = after["config"]["shrink_sweep"], after["config"]["representation_args"]
    assert [(r["gamma"], r["threshold"]) for r in sweep] == [(0.0, 1.0), (1.0, 0.5), (1.0, 1.0), (3.0, 0.5), (3.0, 1.0)]
    assert all(r["measure"] == "entropy" and r["images"] > 0 and "neutral_chroma" in r for r in sweep)
    assert sweep[4]["mean_chroma"] < sweep[2]["mean_chroma"] < sweep[0]["mean_chroma"]  # more shrink, less colour
    best = max(sweep, key=lambda r: r["psnr"])  # every point is within the (wide) ΔCF limit
    assert (args["shrink_gamma"], args["shrink_threshold"], args["confidence_measure"]) == (
        best["gamma"], best["threshold"], "entropy")
    assert 0 <= after["config"]["val_confidence_auroc"] <= 1
    loaded, _ = checkpoint.load(shrunk / "best.pt")
    assert loaded.representation.shrink_gamma == best["gamma"]
    assert "low-confidence shrink chosen on val" in caplog.text
    # Rerun on the checkpoint with a ΔCF limit that only the most faithful grid point meets: it is kept.
    import shutil

    from chromalab.core.config import TrainParams
    from chromalab.data.lab_arrays import LabBatches, batch_loader
    from chromalab.training.shrink_choice import choose_on_val

    shutil.copy(plain / "best.pt", tmp_path / "again.pt")
    tight = min(r["delta_colorfulness"] for r in sweep)
    faithful = min(sweep, key=lambda r: r["delta_colorfulness"])
    params = TrainParams(shrink_gammas=[1.0, 3.0], shrink_thresholds=[0.5, 1.0], max_delta_colorfulness=tight + 1e-9)
    config = choose_on_val(tmp_path / "again.pt", params, batch_loader(LabBatches(prepared_dir, "val"), 8, False, 0),
                           torch.device("cpu"))
    assert config["representation_args"]["shrink_gamma"] == faithful["gamma"]
    assert config["representation_args"]["shrink_threshold"] == faithful["threshold"]
    assert checkpoint.read(tmp_path / "again.pt")["config"]["shrink_sweep"] == config["shrink_sweep"]


def test_the_shrink_grid_is_skipped_for_a_model_without_a_confidence(tmp_path, prepared_dir, caplog):
    from helpers import train_tiny
    from chromalab.core.config import TrainParams, parse_section

    for bad, match in [({"shrink_gammas": []}, "shrink_gammas"), ({"shrink_gammas": [-1]}, "shrink_gammas"),
                       ({"shrink_thresholds": [0]}, "shrink_thresholds"), ({"shrink_thresholds": [1.5]}, "shrink_thresholds")]:
        with pytest.raises(UserError, match=f"train.{match}"):
            parse_section("train", bad, TrainParams)
    caplog.set_level("INFO", logger="chromalab.training.shrink_choice")
    out = train_tiny(tmp_path, prepared_dir, name="ab", epochs=1, shrink_gammas=[1.0])
    assert "shrink_sweep" not in checkpoint.read(out / "best.pt")["config"]
    assert "has no per-pixel confidence; no shrink to choose" in caplog.text


# --- the mean pull: part of each image's mean colour taken away, after the shrink -----------------


@pytest.mark.parametrize("make", [bins, palette], ids=["bins", "palette"])
def test_the_mean_pull_takes_that_share_of_each_images_mean_ab_and_nothing_else(make):
    rep = make()
    out = mixed_logits(rep)
    plain = rep.decode(out, None)
    rep.mean_pull = 0.25
    pulled = rep.decode(out, None)
    mean = plain.mean(dim=(2, 3), keepdim=True)
    assert torch.allclose(pulled, plain - 0.25 * mean, atol=1e-5)  # the same shift at every pixel of an image
    assert torch.allclose(pulled.mean(dim=(2, 3)), 0.75 * mean[..., 0, 0], atol=1e-5)
    assert not torch.allclose(mean[0], mean[1])  # each image its own mean
    for bad in (1.0, -0.1, True, "0.2"):
        with pytest.raises(UserError, match="representation_args.mean_pull"):
            create_representation("bins", centers=CENTERS, weights=[1.0] * Q, mean_pull=bad)


def test_no_shrink_turns_the_mean_pull_off_too_and_the_description_names_it():
    colorizer = Colorizer("kmeans_cnn", "bins", {"channels": 4},
                          {"centers": CENTERS, "weights": [1.0] * Q, "mean_pull": 0.15})
    assert describe_shrink(colorizer) == "mean pull 0.15"
    colorizer.representation.shrink_gamma = 1.0
    assert describe_shrink(colorizer) == "low-confidence shrink γ=1 below entropy confidence 1, mean pull 0.15"
    assert disable_shrink(colorizer) and describe_shrink(colorizer) is None
    assert colorizer.representation.mean_pull == 0.0 and not disable_shrink(colorizer)


def test_score_shrink_scores_each_pull_after_each_shrink_and_the_rule_can_choose_one():
    colorizer = Colorizer("kmeans_cnn", "bins", {"channels": 4}, {"centers": CENTERS, "weights": [1.0] * Q})
    batches = val_batches(colorizer)
    rows = score_shrink(colorizer, batches, gammas=[1.0], thresholds=[1.0], pulls=[0.5, 0.9])
    assert [(r["gamma"], r["pull"]) for r in rows] == [(0.0, 0.0), (1.0, 0.0), (0.0, 0.5), (1.0, 0.5), (0.0, 0.9), (1.0, 0.9)]
    assert rows[4]["colorfulness"] != rows[0]["colorfulness"]
    assert colorizer.representation.mean_pull == 0.0  # restored
    chosen = choose_shrink(rows, max_delta_colorfulness=1e9)
    assert chosen["psnr"] == max(r["psnr"] for r in rows)
    assert shrink_args(chosen)["mean_pull"] == chosen["pull"]


def test_training_chooses_the_mean_pull_on_val_without_a_shrink_grid(tmp_path, prepared_dir, palette_dir):
    from helpers import train_tiny
    from chromalab.core.config import TrainParams, parse_section

    for bad in ([], [1.0], [-0.2], [True]):
        with pytest.raises(UserError, match="train.mean_pulls"):
            parse_section("train", {"mean_pulls": bad}, TrainParams)
    model = dict(network="unet", representation="bins", network_args={"base_channels": 8})
    out = train_tiny(tmp_path, prepared_dir, name="pulled", epochs=1, palette_dir=palette_dir, model=model,
                     mean_pulls=[0.3, 0.6], max_delta_colorfulness=1000.0)
    config = checkpoint.read(out / "best.pt")["config"]
    sweep, args = config["shrink_sweep"], config["representation_args"]
    assert [(r["gamma"], r["pull"]) for r in sweep] == [(0.0, 0.0), (0.0, 0.3), (0.0, 0.6)]
    best = max(sweep, key=lambda r: r["psnr"])
    assert (args["shrink_gamma"], args["mean_pull"]) == (0.0, best["pull"])
    assert checkpoint.load(out / "best.pt")[0].representation.mean_pull == best["pull"]


def test_pulls_off_decodes_as_painted_and_restores_the_knobs_even_on_an_error():
    from chromalab.colorizing.representations import pulls_off, pulls_on

    rep = bins(shrink_gamma=2.0, shrink_threshold=0.5, mean_pull=0.3)
    out = mixed_logits(rep)
    painted = bins().decode(out, None)
    assert pulls_on(rep) and not torch.allclose(rep.decode(out, None), painted)
    with pytest.raises(RuntimeError), pulls_off(rep):
        assert not pulls_on(rep) and torch.equal(rep.decode(out, None), painted)
        raise RuntimeError("inside")
    assert (rep.shrink_gamma, rep.shrink_threshold, rep.mean_pull) == (2.0, 0.5, 0.3)
