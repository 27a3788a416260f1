"""Networks, the model registry, the ab representation, the Colorizer and its checkpoints."""

import numpy as np
import pytest
import torch
from torch import nn

from chromalab.colorizing import checkpoint
from chromalab.colorizing.colorizer import Colorizer, count_parameters
from chromalab.colorizing.representations import ABRegression, create_representation, list_representations
from chromalab.core.errors import UserError
from chromalab.data.lab_arrays import load_split
from chromalab.models import create_model, list_models, registry
from chromalab.models.unet import UNet

SMALL = {"base_channels": 8}


pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = {"network": "unet", "representation": "ab", "network_args": SMALL,
          "representation_args": {"activation": "tanh"}}


def real_L(prepared_dir, split="test", n=2) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n images of a prepared split as float32 tensors (L, ab) in Lab units."""
    L, ab = load_split(prepared_dir, split)
    return (torch.from_numpy(np.asarray(L[:n], np.float32)),
            torch.from_numpy(np.asarray(ab[:n], np.float32)))


def trained_a_little(colorizer: Colorizer, L: torch.Tensor, ab: torch.Tensor, steps: int = 3) -> Colorizer:
    """A few optimiser steps, so weights and BatchNorm statistics differ from a fresh model."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(colorizer.parameters(), lr=1e-2)
    rep = colorizer.representation
    colorizer.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = rep.loss(colorizer.outputs(L), rep.target(L, ab))
        loss.backward()
        opt.step()
    return colorizer.eval()


# --- the U-Net ----------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [2, 5])
@pytest.mark.parametrize("h, w", [(32, 32), (48, 80)])
def test_unet_output_has_the_input_size_and_the_asked_channels(channels, h, w):
    torch.manual_seed(0)
    net = create_model("unet", out_channels=channels, **SMALL).eval()
    assert isinstance(net, UNet) and net.size_multiple == 16
    with torch.no_grad():
        out = net(torch.randn(3, 1, h, w))
    assert out.shape == (3, channels, h, w)
    assert torch.isfinite(out).all()


def test_unet_width_follows_base_channels():
    small = count_parameters(create_model("unet", 2, base_channels=8))
    large = count_parameters(create_model("unet", 2, base_channels=16))
    assert 3 * small < large < 5 * small  # conv weights scale with width squared


def test_unet_out_kernel_1_keeps_the_shape_and_costs_a_ninth_of_the_last_layer():
    torch.manual_seed(0)
    wide, narrow = (create_model("unet", out_channels=313, out_kernel=k, **SMALL).eval() for k in (3, 1))
    assert wide.out.weight.shape[-2:] == (3, 3) and narrow.out.weight.shape[-2:] == (1, 1)
    assert narrow.out.weight.numel() * 9 == wide.out.weight.numel()
    with torch.no_grad():
        out = narrow(torch.randn(2, 1, 48, 32))
    assert out.shape == (2, 313, 48, 32)


def test_unet_out_kernel_other_than_1_or_3_is_a_user_error():
    with pytest.raises(UserError, match="out_kernel must be 1 or 3"):
        create_model("unet", out_channels=2, out_kernel=5)


def test_unet_output_depends_on_the_input():
    torch.manual_seed(0)
    net = create_model("unet", 2, **SMALL).eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(net(x), net(x.flip(-1)))


def test_colorizer_at_an_odd_size_returns_ab_of_that_size_in_range(prepared_dir):
    torch.manual_seed(0)
    colorizer = Colorizer("unet", "ab", SMALL).eval()
    L, _ = real_L(prepared_dir, n=1)
    L = torch.nn.functional.interpolate(L, size=(37, 53), mode="bilinear", align_corners=False)
    with torch.no_grad():
        ab = colorizer(L)
    assert ab.shape == (1, 2, 37, 53)
    assert torch.isfinite(ab).all()
    assert ab.abs().max() <= 110.0
    assert ab.std() > 0


def test_colorizer_pads_inputs_smaller_than_the_padding():
    torch.manual_seed(0)
    colorizer = Colorizer("unet", "ab", SMALL).eval()
    with torch.no_grad():
        ab = colorizer(torch.full((2, 1, 5, 7), 50.0))  # pads of 11 and 9 exceed the image: replicate
    assert ab.shape == (2, 2, 5, 7) and torch.isfinite(ab).all()


def test_colorizer_crop_is_consistent_with_the_padded_prediction():
    """Padding is only on the bottom and right, so the top-left of the output is unshifted."""
    torch.manual_seed(0)
    colorizer = Colorizer("unet", "ab", SMALL).eval()
    L = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        full = colorizer(L)
        cropped = colorizer(L[..., :30, :30])
    assert cropped.shape == (1, 2, 30, 30)
    # The top-left corner's receptive field does not reach the 2 px reflected border, so it sees
    # the same pixels either way; padding on the left or top would shift it (error ~5 ab units).
    torch.testing.assert_close(cropped[..., :4, :4], full[..., :4, :4], atol=1e-4, rtol=0)
    assert (cropped - full[..., :30, :30]).abs().max() > 1e-2  # ...while the border does differ


# --- the registry -------------------------------------------------------------------------------


def test_list_models_contains_unet():
    assert "unet" in list_models()
    assert list_models() == sorted(list_models())


def test_unknown_model_name_is_a_user_error_listing_the_known_ones():
    with pytest.raises(UserError) as err:
        create_model("resnet9000", out_channels=2)
    assert "'resnet9000'" in str(err.value)
    assert "known: " + ", ".join(list_models()) in str(err.value)


def test_unknown_knob_is_a_user_error_naming_it():
    with pytest.raises(UserError) as err:
        create_model("unet", out_channels=2, base_channel=8)
    message = str(err.value)
    assert message.startswith("network_args.base_channel:")
    assert "base_channels" in message and "dropout" in message  # what it does take


def test_in_channels_as_a_knob_is_a_user_error():
    with pytest.raises(UserError, match=r"network_args\.in_channels"):
        create_model("unet", out_channels=2, in_channels=3)


def test_a_mistyped_knob_is_a_user_error():
    with pytest.raises(UserError, match="network_args of unet"):
        create_model("unet", out_channels=2, base_channels="wide")


def test_registering_a_name_twice_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    def unet(in_channels=1, out_channels=2):
        return nn.Conv2d(in_channels, out_channels, 1)

    with pytest.raises(ValueError, match="'unet' registered twice"):
        registry.register_model(unet)


# --- the ab representation ----------------------------------------------------------------------


def test_ab_representation_round_trips_real_ab(prepared_dir):
    """decode(atanh(target(ab))) gives back ab within 1e-3 ab units wherever |ab| < 109.

    Beyond 109 (|ab| / 110 > 0.991) atanh is steep enough that float32 rounding of the target
    alone moves the decoded ab by more than 1e-3; real photos' test crops hardly reach there.
    """
    L, ab = real_L(prepared_dir, "test", n=4)
    rep = create_representation("ab")
    assert rep.channels == 2
    target = rep.target(L, ab)
    assert target.shape == ab.shape and target.abs().max() <= 1.0
    decoded = rep.decode(torch.atanh(target), L)
    assert decoded.shape == ab.shape
    inside = ab.abs() < 109
    assert inside.float().mean() > 0.99
    assert (decoded - ab)[inside].abs().max() < 1e-3


def test_ab_loss_is_zero_for_perfect_output_and_positive_otherwise(prepared_dir):
    L, ab = real_L(prepared_dir, "test", n=2)
    rep = ABRegression()
    target = rep.target(L, ab)
    perfect = torch.atanh(target.clamp(-0.999999, 0.999999))
    assert rep.loss(perfect, target).item() < 1e-10
    assert rep.loss(perfect + 0.1, target).item() > 1e-4
    assert rep.loss(torch.zeros_like(target), target).item() == pytest.approx(target.pow(2).mean().item(), rel=1e-5)

    linear = ABRegression(activation="none")
    assert linear.loss(target, target).item() == 0.0
    assert linear.loss(target + 0.1, target).item() == pytest.approx(0.01, rel=1e-4)


def test_linear_ab_output_is_clipped_to_the_ab_range():
    rep = ABRegression(activation="none")
    out = torch.tensor([-3.0, -0.5, 0.0, 0.5, 3.0]).reshape(1, 1, 1, 5).expand(1, 2, 1, 5)
    ab = rep.decode(out, torch.zeros(1, 1, 1, 5))
    torch.testing.assert_close(ab[0, 0, 0], torch.tensor([-110.0, -55.0, 0.0, 55.0, 110.0]))


def test_unknown_representation_or_knob_is_a_user_error():
    assert "ab" in list_representations()
    with pytest.raises(UserError, match=r"unknown representation 'hsv'; known: .*ab"):
        create_representation("hsv")
    with pytest.raises(UserError, match=r"^representation_args\.activaton:"):
        create_representation("ab", activaton="tanh")
    with pytest.raises(UserError, match=r"^representation_args\.activation: expected tanh, sigmoid or none"):
        create_representation("ab", activation="relu")


# --- checkpoints --------------------------------------------------------------------------------


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, prepared_dir):
    L, ab = real_L(prepared_dir, "train", n=4)
    torch.manual_seed(0)
    colorizer = trained_a_little(Colorizer(**CONFIG), L, ab)
    fresh = Colorizer(**CONFIG).eval()
    path = tmp_path / "ckpt" / "model.pt"
    checkpoint.save(path, colorizer, CONFIG, extra={"epoch": 3})

    loaded, config = checkpoint.load(path)
    assert config == CONFIG
    assert not loaded.training
    test_L, _ = real_L(prepared_dir, "test", n=2)
    with torch.no_grad():
        expected = colorizer(test_L)
        got = loaded(test_L)
        assert not torch.allclose(fresh(test_L), expected)  # the comparison below can fail
    assert torch.equal(got, expected)
    for name, tensor in colorizer.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert checkpoint.read(path)["epoch"] == 3


def test_checkpoint_holds_no_pickled_code(tmp_path):
    path = tmp_path / "model.pt"
    checkpoint.save(path, Colorizer(**CONFIG), CONFIG)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["format"] == checkpoint.FORMAT
    assert payload["config"] == CONFIG
    assert all(isinstance(v, torch.Tensor) for v in payload["state_dict"].values())


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "config": CONFIG, "hook": Colorizer}, path)
    with pytest.raises(UserError, match=str(path)):
        checkpoint.read(path)


def test_checkpoint_of_garbage_bytes_is_a_user_error_naming_the_file(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(UserError) as err:
        checkpoint.load(path)
    assert str(path) in str(err.value)
    assert "not a chromalab checkpoint: expected a .pt file written by the train stage" in str(err.value)


def test_truncated_checkpoint_is_a_user_error_naming_the_file(tmp_path):
    path = tmp_path / "model.pt"
    checkpoint.save(path, Colorizer(**CONFIG), CONFIG)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(UserError, match=str(path)):
        checkpoint.load(path)


def test_missing_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such checkpoint"):
        checkpoint.load(tmp_path / "none.pt")


def test_foreign_torch_file_is_not_taken_for_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(Colorizer(**CONFIG).state_dict(), path)  # a bare state_dict, no format or config
    with pytest.raises(UserError, match=rf"{path}: not a chromalab checkpoint"):
        checkpoint.load(path)


def _rewrite_config(path, **changes):
    payload = torch.load(path, map_location="cpu", weights_only=True)
    payload["config"] = {**payload["config"], **changes}
    torch.save(payload, path)


def test_checkpoint_whose_config_names_a_different_network_is_a_user_error(tmp_path, monkeypatch):
    class Tiny(nn.Module):
        def __init__(self, out_channels):
            super().__init__()
            self.conv = nn.Conv2d(1, out_channels, 3, padding=1)

        def forward(self, x):
            return self.conv(x)

    def tinynet(in_channels=1, out_channels=2):
        return Tiny(out_channels)

    monkeypatch.setitem(registry._REGISTRY, "tinynet", tinynet)
    path = tmp_path / "model.pt"
    checkpoint.save(path, Colorizer(**CONFIG), CONFIG)
    _rewrite_config(path, network="tinynet", network_args={})
    with pytest.raises(UserError) as err:
        checkpoint.load(path)
    assert str(path) in str(err.value)
    assert "do not fit tinynet/ab" in str(err.value)


def test_checkpoint_whose_config_has_a_different_width_is_a_user_error(tmp_path):
    path = tmp_path / "model.pt"
    checkpoint.save(path, Colorizer(**CONFIG), CONFIG)
    _rewrite_config(path, network_args={"base_channels": 16})
    with pytest.raises(UserError, match=rf"{path}: weights do not fit unet/ab"):
        checkpoint.load(path)


def test_checkpoint_whose_config_names_an_unregistered_network_is_a_user_error(tmp_path):
    path = tmp_path / "model.pt"
    checkpoint.save(path, Colorizer(**CONFIG), CONFIG)
    _rewrite_config(path, network="resnet9000")
    with pytest.raises(UserError, match="unknown network 'resnet9000'"):
        checkpoint.load(path)


def test_saving_over_a_checkpoint_replaces_it_atomically(tmp_path):
    path = tmp_path / "model.pt"
    torch.manual_seed(0)
    checkpoint.save(path, Colorizer(**CONFIG), CONFIG, extra={"epoch": 1})
    checkpoint.save(path, Colorizer(**CONFIG), CONFIG, extra={"epoch": 2})
    assert checkpoint.read(path)["epoch"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
