"""Colour representations (rgb, palette, bins) and the torch Lab <-> RGB conversion they use.

Real data throughout: crops of the real photos that tests/helpers.py ships, run through the real
download, prepare and palette stages (k = 8 from 5000 pixels, 10-unit ab grid, as conftest's
`palette_dir`). Most tests share one module-scoped copy of that data to stay fast; the checkpoint
test uses conftest's own `palette_dir` fixture.

Round-trip bounds, measured on the fixture's test split (4 crops of 32x32 px) and asserted with
some headroom:
- torch vs scikit-image: RGB within 1e-6 (asserted 1e-3), Lab within 6e-5 (asserted 0.05).
- rgb: logit(target) decodes to ab with mean error 0.001, max 0.06 ab units (asserted 0.05 / 0.5).
- palette: argmax of one-hot logits gives exactly each pixel's k-means colour, so the round trip
  error is the k-means quantization error: mean 10.1 ab units in ab space, 17.9 when fitted in RGB
  (asserted < 13 / < 22, and equal to an independent numpy / scikit-image computation).
- bins: the log soft target decoded with the annealed mean (T = 0.38) is off by 2.0 ab units on
  average (asserted < 3), better than snapping to the nearest bin (3.9); T = 1 gives 0.5.
"""

from __future__ import annotations

import functools
import json
import warnings

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from chromalab.colorizing import checkpoint
from chromalab.colorizing.colorizer import Colorizer
from chromalab.colorizing.representations import create_representation, representation_args
from chromalab.core import color
from chromalab.core.config import DataParams, PaletteParams
from chromalab.core.errors import UserError
from chromalab.data.lab_arrays import load_split

from helpers import TINY_PREPARE, real_photos, write_photo_folder

REPS = ("rgb", "palette", "bins")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """conftest's prepared_dir and palette_dir, built once for this module, plus an RGB palette."""
    from chromalab.data.download import download
    from chromalab.data.palette import build_palette
    from chromalab.data.prepare import prepare

    root = tmp_path_factory.mktemp("reps")
    download(DataParams(source="folder", path=str(write_photo_folder(root / "photos"))), root / "raw")
    prepare(TINY_PREPARE, root / "raw", root / "prepared")
    build_palette(PaletteParams(k=8, sample_pixels=5000), root / "prepared", root / "palette", root / "p.png")
    build_palette(PaletteParams(k=8, sample_pixels=5000, space="rgb"), root / "prepared", root / "palette_rgb",
                  root / "p_rgb.png")
    L, ab = (torch.from_numpy(np.asarray(x, np.float32)) for x in load_split(root / "prepared", "test"))
    return {"prepared": root / "prepared", "palette": root / "palette", "palette_rgb": root / "palette_rgb",
            "L": L, "ab": ab}


def make(name, data, palette="palette", **knobs):
    return create_representation(name, **representation_args(name, knobs, data[palette]))


def encode_truth(rep, L, ab):
    """The network output that represents the ground truth exactly (or as near as it can)."""
    target = rep.target(L, ab)
    if rep.name == "rgb":
        return torch.logit(target.clamp(1e-4, 1 - 1e-4))
    if rep.name == "palette":
        return 20.0 * torch.nn.functional.one_hot(target, rep.channels).permute(0, 3, 1, 2).float()
    return torch.log(target.dense(rep.channels).clamp_min(1e-12))


def ab_error(pred, ab):
    return (pred - ab).norm(dim=1)


# --- torch Lab <-> RGB ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _photo_pixels():
    """Every 8th pixel of each real photo, as one (N, 1, 3) uint8 strip."""
    return np.concatenate([p[::8, ::8].reshape(-1, 3) for p in real_photos().values()])[:, None]


def _random_in_gamut(n=20000):
    return np.random.default_rng(0).integers(0, 256, (n, 1, 3), dtype=np.uint8)


def _planes(hwc):  # (H, W, 3) numpy -> (1, 3, H, W) float32 tensor
    return torch.tensor(np.ascontiguousarray(hwc.transpose(2, 0, 1))[None], dtype=torch.float32)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pixels", [_photo_pixels, _random_in_gamut], ids=["photos", "random"])
def test_torch_conversion_matches_skimage(pixels, device):
    rgb = pixels() / 255.0
    lab = skcolor.rgb2lab(rgb)
    got_lab = color.rgb_to_lab_torch(_planes(rgb).to(device))[0].cpu().numpy().transpose(1, 2, 0)
    got_rgb = color.lab_to_rgb_torch(_planes(lab).to(device))[0].cpu().numpy().transpose(1, 2, 0)
    assert np.abs(got_lab - lab).max() < 0.05
    assert np.abs(got_rgb - skcolor.lab2rgb(lab)).max() < 1e-3


def test_torch_conversion_clips_like_skimage_out_of_gamut():
    rng = np.random.default_rng(1)
    lab = np.stack([rng.uniform(0, 100, (64, 64)), rng.uniform(-128, 128, (64, 64)),
                    rng.uniform(-128, 128, (64, 64))], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scikit-image warns about clipped z
        expected = skcolor.lab2rgb(lab)
    assert np.abs(color.lab_to_rgb_torch(_planes(lab))[0].numpy().transpose(1, 2, 0) - expected).max() < 1e-3


def test_torch_conversion_keeps_dtype_and_gradients():
    rgb = torch.tensor(_photo_pixels().transpose(2, 0, 1)[None] / 255.0, dtype=torch.float32)
    rgb = torch.cat([rgb, torch.zeros_like(rgb[..., :1]), torch.ones_like(rgb[..., :1])], dim=-1)  # black, white
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        assert color.rgb_to_lab_torch(rgb.to(dtype)).dtype == dtype
    x = rgb.clone().requires_grad_()
    color.rgb_to_lab_torch(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    lab = color.rgb_to_lab_torch(rgb).detach().requires_grad_()
    color.lab_to_rgb_torch(lab, clip=False).sum().backward()
    assert torch.isfinite(lab.grad).all() and lab.grad.abs().sum() > 0


# --- round trips -----------------------------------------------------------------------------------


def test_rgb_round_trip(data):
    rep = make("rgb", data)
    L, ab = data["L"], data["ab"]
    target = rep.target(L, ab)
    assert target.shape == (len(L), 3, 32, 32) and target.min() >= 0 and target.max() <= 1
    err = ab_error(rep.decode(encode_truth(rep, L, ab), L), ab)
    assert err.mean() < 0.05 and err.max() < 0.5  # measured 0.001 / 0.06


@pytest.mark.parametrize("palette, bound", [("palette", 13.0), ("palette_rgb", 22.0)])
def test_palette_round_trip_is_the_kmeans_quantization_error(data, palette, bound):
    rep = make("palette", data, palette)
    km = json.loads((data[palette] / "kmeans.json").read_text())
    assert rep.space == km["space"] and rep.channels == 8
    L, ab = data["L"], data["ab"]
    decoded = rep.decode(encode_truth(rep, L, ab), L)
    centers_ab = rep.centers_ab[None, :, :, None, None]
    assert ((decoded[:, None] - centers_ab).abs().sum(dim=2).min(dim=1).values == 0).all()  # exactly a centre

    # The quantization error, independently: nearest centre by numpy, RGB via scikit-image.
    lab = np.concatenate([L.numpy(), ab.numpy()], axis=1).transpose(0, 2, 3, 1).reshape(-1, 3)
    if km["space"] == "rgb":
        features = color.lab_to_rgb_uint8(lab[:, None])[:, 0].astype(np.float64)
    else:
        features = lab[:, 1:]
    nearest = ((features[:, None] - np.asarray(km["centers"])[None]) ** 2).sum(-1).argmin(1)
    quantization = np.linalg.norm(lab[:, 1:] - np.asarray(km["centers_lab"])[nearest, 1:], axis=1).mean()
    measured = ab_error(decoded, ab).mean().item()
    assert measured == pytest.approx(quantization, abs=0.05)
    assert measured < bound


def test_bins_round_trip_and_soft_encoding(data):
    rep = make("bins", data)
    L, ab = data["L"], data["ab"]
    target = rep.target(L, ab)
    dist = target.dense(rep.channels)
    assert dist.shape == (len(L), rep.channels, 32, 32)
    assert torch.allclose(dist.sum(dim=1), torch.ones(()), atol=1e-5)
    assert ((dist > 0).sum(dim=1) == 5).all()
    d2 = ((ab[:, None] - rep.centers[None, :, :, None, None]) ** 2).sum(dim=2)
    nearest = d2.argmin(dim=1)
    # Fixture pixels can sit exactly between two bins (float16 storage): any nearest bin will do.
    at_min = d2 <= d2.min(dim=1, keepdim=True).values + 1e-4
    assert at_min.gather(1, dist.argmax(dim=1, keepdim=True)).all()
    assert ((rep.weights.view(1, -1, 1, 1) == target.weight[:, None]) & at_min).any(dim=1).all()

    err = ab_error(rep.decode(encode_truth(rep, L, ab), L), ab).mean()
    snapped = ab_error(rep.centers[nearest].permute(0, 3, 1, 2), ab).mean()
    assert err < 3.0 and err < snapped  # measured 2.0 vs 3.9 for the 10-unit grid


def test_bins_lookup_table_matches_the_exact_soft_encoding(data):
    """The nearest-bins table (1-unit ab cells) gives the paper's encoding: the 5 nearest bins of
    the pixel's exact ab, Gaussian-weighted by exact distances, wherever the 5th neighbour is not
    tied to within a rounding of the 6th."""
    rep = make("bins", data)
    L, ab = data["L"], data["ab"].float()
    ab = torch.cat([ab, ab.flip(1) * 1.3 + 7.3], dim=0)  # off-grid values, saturated ones too
    L = torch.cat([L, L], dim=0)
    d2 = ((ab[:, None] - rep.centers[None, :, :, None, None]) ** 2).sum(dim=2)
    near2, near = torch.topk(d2, 6, dim=1, largest=False)
    kernel = torch.exp(-(near2[:, :5] - near2[:, :1]) / (2.0 * rep.soft_sigma**2))
    exact = torch.zeros_like(d2).scatter_(1, near[:, :5], kernel / kernel.sum(dim=1, keepdim=True))
    got = rep.target(L, ab).dense(rep.channels)
    # Rounding to the cell moves a pixel by at most 0.71, so only a 5th and 6th neighbour closer
    # than 1.42 in distance can swap (on the square bin grid that is common, and both weigh little).
    clear = (near2[:, 5].sqrt() - near2[:, 4].sqrt()) > 1.42
    diff = (got - exact).abs().sum(dim=1)
    assert clear.any() and diff[clear].max() < 1e-5
    assert diff.mean() < 0.05
    decoded = [torch.einsum("bqhw,qc->bchw", d, rep.centers) for d in (got, exact)]
    assert (decoded[0] - decoded[1]).norm(dim=1).mean() < 0.2


def test_bins_regression_weight_adds_the_mean_squared_error(data):
    L, ab = data["L"][:2], data["ab"][:2]
    plain, mixed = make("bins", data), make("bins", data, regression_weight=2.0)
    out = torch.randn(2, plain.channels, 32, 32, generator=torch.Generator().manual_seed(0))
    mean = torch.einsum("bqhw,qc->bchw", torch.softmax(out, dim=1), plain.centers)
    mse = (((mean - ab) / 110.0) ** 2).mean()
    got = mixed.loss(out, mixed.target(L, ab)) - plain.loss(out, plain.target(L, ab))
    assert got.item() == pytest.approx(2.0 * mse.item(), rel=1e-4)
    with pytest.raises(UserError, match="regression_weight"):
        make("bins", data, regression_weight=-1)


def test_bins_temperature_goes_from_mode_to_mean(data):
    args = representation_args("bins", {}, data["palette"])
    logits = torch.randn(2, len(args["centers"]), 5, 7, generator=torch.Generator().manual_seed(0)) * 3
    centers = torch.tensor(args["centers"], dtype=torch.float32)
    mode = centers[logits.argmax(dim=1)].permute(0, 3, 1, 2)
    cold = create_representation("bins", **{**args, "temperature": 1e-3}).decode(logits, None)
    assert torch.allclose(cold, mode, atol=1e-3)
    plain_mean = torch.einsum("bqhw,qc->bchw", torch.softmax(logits, dim=1), centers)
    assert torch.allclose(create_representation("bins", **{**args, "temperature": 1.0}).decode(logits, None),
                          plain_mean, atol=1e-4)


def test_bins_rebalancing_weights_rare_colours_more(data):
    rep = make("bins", data)
    rare, common = rep.weights.argmax(), rep.weights.argmin()
    ab = rep.centers[torch.stack([rare, common])].view(2, 2, 1, 1)
    L = torch.full((2, 1, 1, 1), 50.0)
    uniform = torch.zeros(2, rep.channels, 1, 1)  # cross-entropy log Q for every pixel
    per_pixel = [rep.loss(uniform[i : i + 1], rep.target(L[i : i + 1], ab[i : i + 1])) for i in range(2)]
    assert per_pixel[0] > per_pixel[1]
    assert (per_pixel[0] / per_pixel[1]).item() == pytest.approx((rep.weights[rare] / rep.weights[common]).item())
    flat = make("bins", data, rebalance=False)
    flat_loss = [flat.loss(uniform[i : i + 1], flat.target(L[i : i + 1], ab[i : i + 1])) for i in range(2)]
    assert flat_loss[0].item() == pytest.approx(flat_loss[1].item())
    assert flat_loss[0].item() == pytest.approx(np.log(rep.channels), rel=1e-5)


def test_palette_annealed_mean(data):
    rep = make("palette", data, decode="annealed_mean", temperature=1.0)
    logits = torch.randn(1, rep.channels, 4, 4, generator=torch.Generator().manual_seed(0))
    expected = torch.einsum("bkhw,kc->bchw", torch.softmax(logits, dim=1), rep.centers_ab)
    assert torch.allclose(rep.decode(logits, None), expected, atol=1e-4)


# --- every representation --------------------------------------------------------------------------


@pytest.mark.parametrize("name", REPS)
def test_loss_prefers_the_truth_and_decode_is_in_range(data, name):
    rep = make(name, data)
    L, ab = data["L"], data["ab"]
    target = rep.target(L, ab)
    truth = encode_truth(rep, L, ab)
    noise = 3.0 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(0))
    assert rep.loss(truth, target) < rep.loss(noise, target)
    out = rep.decode(noise, L)
    assert out.shape == (len(L), 2, 32, 32)
    assert out.min() >= -110 and out.max() <= 110


@pytest.mark.parametrize("name", REPS)
def test_loss_has_gradients(data, name):
    rep = make(name, data)
    L, ab = data["L"][:1], data["ab"][:1]
    out = torch.zeros(1, rep.channels, 32, 32, requires_grad=True)
    rep.loss(out, rep.target(L, ab)).backward()
    assert torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0


def test_colorizers_run_and_survive_a_checkpoint(tmp_path, palette_dir):
    L = torch.linspace(5, 95, 33 * 45).view(1, 1, 33, 45)  # odd size: padded to the U-Net's multiple
    for name in REPS:
        args = representation_args(name, {}, palette_dir)
        torch.manual_seed(0)
        colorizer = Colorizer("unet", name, {"base_channels": 8}, args).eval()
        with torch.no_grad():
            ab = colorizer(L)
        assert ab.shape == (1, 2, 33, 45) and ab.abs().max() <= 110
        config = {"network": "unet", "representation": name, "network_args": {"base_channels": 8},
                  "representation_args": args}
        checkpoint.save(tmp_path / f"{name}.pt", colorizer, config)
        loaded, _ = checkpoint.load(tmp_path / f"{name}.pt")
        buffers = dict(colorizer.representation.named_buffers())
        assert buffers or name == "rgb"
        for key, value in loaded.representation.named_buffers():
            assert torch.equal(value, buffers[key])
        with torch.no_grad():
            assert torch.equal(loaded(L), ab)


@pytest.mark.parametrize("name, missing", [("palette", "kmeans.json"), ("bins", "gamut.json")])
def test_missing_palette_files_are_named(tmp_path, name, missing):
    with pytest.raises(UserError, match=missing):
        representation_args(name, {}, tmp_path)


def test_bad_knobs_are_user_errors(data):
    for name, knobs in [("palette", {"decode": "mode"}), ("palette", {"temperature": 0}),
                        ("bins", {"soft_neighbours": 0}), ("bins", {"colour": 1}), ("rgb", {"activation": "tanh"}),
                        ("palette", {"space": "rgb"}), ("bins", {"weights": [1.0]})]:
        with pytest.raises(UserError, match="representation_args"):
            make(name, data, **knobs)
