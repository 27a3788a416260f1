"""The seed-000/002 networks and Zhang et al.'s ECCV16 network: the network contract (same H, W as
the input, the asked channels, size_multiple), their sizes, that they learn colour from real
photos, determinism in eval mode and knob errors."""

import numpy as np
import pytest
import torch
from skimage import data
from skimage.transform import resize
from torch import nn

from chromalab.colorizing.colorizer import Colorizer, count_parameters
from chromalab.core import color
from chromalab.core.errors import UserError
from chromalab.models import create_model, list_models, registry
from chromalab.models.autoencoder import Autoencoder
from chromalab.models.kmeans_cnn import KMeansCNN
from chromalab.models.zhang import Zhang

# Small knobs for each network: the CPU-sized versions.
SMALL = {
    "kmeans_cnn": {"channels": 16, "dense_channels": 16},
    "autoencoder": {"base_channels": 8},
    "zhang": {"width": 0.125},
}
CLASSES = {"kmeans_cnn": KMeansCNN, "autoencoder": Autoencoder, "zhang": Zhang}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def real_batch(size=32):
    """Two real photos at size x size: normalised L (2, 1, s, s) and normalised ab (2, 2, s, s)."""
    photos = [data.astronaut(), data.coffee()]
    lab = np.stack([color.rgb_to_lab(resize(p, (size, size), anti_aliasing=True).astype(np.float32))
                    for p in photos]).transpose(0, 3, 1, 2)
    lab = torch.from_numpy(np.ascontiguousarray(lab))
    return color.normalize_l(lab[:, :1]), color.normalize_ab(lab[:, 1:])


def test_the_three_networks_are_registered():
    assert {"kmeans_cnn", "autoencoder", "zhang"} <= set(list_models())
    assert registry.knobs("kmeans_cnn") == ["channels", "dense_channels", "kernel_size"]
    assert registry.knobs("autoencoder") == ["base_channels", "depth"]
    assert registry.knobs("zhang") == ["width"]


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("channels", [2, 13])
@pytest.mark.parametrize("h, w", [(32, 32), (48, 64)])
def test_output_has_the_input_size_and_the_asked_channels(name, channels, h, w):
    torch.manual_seed(0)
    net = create_model(name, out_channels=channels, **SMALL[name]).eval()
    assert isinstance(net, CLASSES[name])
    assert h % net.size_multiple == 0 and w % net.size_multiple == 0
    x = torch.randn(3, 1, h, w)
    with torch.no_grad():
        out = net(x)
    assert out.shape == (3, channels, h, w)
    assert torch.isfinite(out).all()
    assert out.std() > 0
    with torch.no_grad():
        assert not torch.allclose(net(x.flip(-1)), out)  # the output depends on the input


def test_size_multiples():
    assert create_model("kmeans_cnn", 2, **SMALL["kmeans_cnn"]).size_multiple == 1
    assert create_model("zhang", 2, **SMALL["zhang"]).size_multiple == 8
    for depth in (1, 2, 3, 4):
        net = create_model("autoencoder", 2, base_channels=4, depth=depth).eval()
        assert net.size_multiple == 2**depth
        with torch.no_grad():
            assert net(torch.randn(1, 1, 2**depth * 3, 2**depth * 2)).shape == (1, 2, 2**depth * 3, 2**depth * 2)


def test_kmeans_cnn_works_at_any_size_without_downsampling():
    torch.manual_seed(0)
    net = create_model("kmeans_cnn", 5, **SMALL["kmeans_cnn"]).eval()
    assert not [m for m in net.modules() if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    assert all(m.stride == (1, 1) for m in net.modules() if isinstance(m, nn.Conv2d))
    with torch.no_grad():
        assert net(torch.randn(2, 1, 17, 23)).shape == (2, 5, 17, 23)


def test_colorizer_pads_and_crops_for_each_network():
    torch.manual_seed(0)
    for name, knobs in SMALL.items():
        colorizer = Colorizer(name, "ab", knobs).eval()
        with torch.no_grad():
            ab = colorizer(torch.rand(1, 1, 37, 53) * 100.0)
        assert ab.shape == (1, 2, 37, 53) and torch.isfinite(ab).all(), name
        assert ab.abs().max() <= 110.0


# --- sizes --------------------------------------------------------------------------------------


def test_kmeans_cnn_at_the_seeds_size_has_the_seeds_parameter_count():
    """The seed's figure 13: 5 convolutions, 3 Dense layers, k = 32 colours, 450,752 parameters."""
    assert count_parameters(create_model("kmeans_cnn", out_channels=32)) == 450_752
    assert count_parameters(create_model("kmeans_cnn", 32, channels=16)) == 32_144


def test_zhang_at_width_one_has_the_papers_32_million_parameters():
    with torch.device("meta"):  # the shapes without the memory or the initialisation
        n = count_parameters(create_model("zhang", out_channels=313))
        small = count_parameters(create_model("zhang", out_channels=313, width=0.125))
    assert 30_000_000 < n < 35_000_000
    assert n == 32_235_385  # the docstring's figure
    assert small == 514_241
    assert 50 < n / small < 70  # conv weights scale with width squared (64 at width 1/8)


def test_autoencoder_grows_with_base_channels_and_depth():
    small = count_parameters(create_model("autoencoder", 2))
    assert small == 536_338  # the docstring's figure
    wide = count_parameters(create_model("autoencoder", 2, base_channels=32))
    deep = count_parameters(create_model("autoencoder", 2, depth=4))
    assert 3.5 * small < wide < 4.5 * small
    assert 3 * small < deep < 5 * small  # a level deeper: the widest convolutions double again


# --- learning -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, lr, steps", [("kmeans_cnn", 3e-3, 60), ("autoencoder", 3e-3, 30),
                                             ("zhang", 1e-3, 30)])
def test_a_few_adam_steps_learn_colour_from_real_photos(name, lr, steps):
    """MSE between the raw outputs and the real ab, on one fixed batch of two photos.

    The bar is the best constant prediction (each channel's mean ab): a network that ignores its
    input, or does not train, cannot beat it (fed a blank image instead of the photos, each network
    stayed at 1.0 or above). Over 10 seeds these settings ended at 0.25-0.40 (kmeans_cnn),
    0.15-0.18 (autoencoder) and 0.17-0.21 (zhang) of it.
    """
    x, target = real_batch(32)
    mean_colour = (target - target.mean(dim=(0, 2, 3), keepdim=True)).pow(2).mean().item()
    torch.manual_seed(0)
    net = create_model(name, out_channels=2, **SMALL[name]).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = nn.functional.mse_loss(net(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.6 * mean_colour, (losses[0], losses[-5:], mean_colour)
    assert np.mean(losses[-5:]) < 0.5 * losses[0]


# --- determinism and knobs ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SMALL))
def test_eval_forward_is_deterministic(name):
    torch.manual_seed(0)
    net = create_model(name, out_channels=2, **SMALL[name])
    x = torch.randn(2, 1, 32, 32)
    net.train()
    net(x)  # moves the BatchNorm running statistics away from their initial values
    net.eval()
    with torch.no_grad():
        first = net(x)
        second = net(x)
        alone = net(x[:1])  # eval mode: no statistics shared across the batch
    assert torch.equal(first, second)
    torch.testing.assert_close(alone, first[:1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name, bad", [("kmeans_cnn", "base_channels"), ("autoencoder", "width"),
                                       ("zhang", "depth")])
def test_unknown_knob_is_a_user_error_naming_it(name, bad):
    with pytest.raises(UserError, match=rf"^network_args\.{bad}: {name} has no such knob") as err:
        create_model(name, out_channels=2, **{bad: 3})
    for knob in registry.knobs(name):
        assert knob in str(err.value)


@pytest.mark.parametrize("name, knobs", [
    ("kmeans_cnn", {"channels": 0}), ("kmeans_cnn", {"kernel_size": 4}), ("kmeans_cnn", {"dense_channels": "wide"}),
    ("autoencoder", {"depth": 0}), ("autoencoder", {"base_channels": 8.5}), ("autoencoder", {"depth": True}),
    ("zhang", {"width": 0}), ("zhang", {"width": "wide"}), ("zhang", {"width": -1.0}),
])
def test_bad_knob_values_are_user_errors(name, knobs):
    with pytest.raises(UserError, match=f"network_args of {name}"):
        create_model(name, out_channels=2, **knobs)
