"""The Iizuka et al. network (seed 001): shapes at any multiple of 8, the optional classification
head, its size, joint colour + class training on real photos, and how training wires it up."""

import logging

import numpy as np
import pytest
import torch
from skimage import data
from skimage.transform import resize
from torch import nn

from chromalab.colorizing.colorizer import Colorizer, count_parameters
from chromalab.colorizing.colorizer import build_colorizer
from chromalab.core import color
from chromalab.core.config import ModelParams
from chromalab.core.errors import UserError
from chromalab.models import create_model, registry
from chromalab.models.iizuka import Iizuka

SMALL = {"width": 0.125}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def real_batch(size=32):
    """Four real photos at size x size: normalised L (4, 1, s, s), ab on [0, 1] as the paper's
    sigmoid output (4, 2, s, s), and labels 0, 1, 0, 1."""
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    lab = np.stack([color.rgb_to_lab(resize(p, (size, size), anti_aliasing=True).astype(np.float32))
                    for p in photos]).transpose(0, 3, 1, 2)
    lab = torch.from_numpy(np.ascontiguousarray(lab))
    x = color.normalize_l(lab[:, :1])
    target01 = (color.normalize_ab(lab[:, 1:]) + 1.0) / 2.0
    return x, target01, torch.tensor([0, 1, 0, 1])


@pytest.mark.parametrize("h, w", [(32, 32), (48, 80)])
def test_output_has_the_input_size_and_two_channels(h, w):
    torch.manual_seed(0)
    net = create_model("iizuka", out_channels=2, **SMALL).eval()
    assert isinstance(net, Iizuka) and net.size_multiple == 8
    with torch.no_grad():
        out = net(torch.randn(3, 1, h, w))
    assert out.shape == (3, 2, h, w)
    assert torch.isfinite(out).all()
    assert out.std() > 0


def test_forward_with_classes_gives_logits_per_image():
    torch.manual_seed(0)
    net = create_model("iizuka", out_channels=2, num_classes=10, **SMALL).eval()
    assert net.num_classes == 10
    with torch.no_grad():
        out, logits = net.forward_with_classes(torch.randn(3, 1, 48, 80))
        plain = net(torch.randn(3, 1, 48, 80))
    assert out.shape == plain.shape == (3, 2, 48, 80)
    assert logits.shape == (3, 10)
    assert torch.isfinite(logits).all()


def test_no_classes_builds_no_head():
    net = create_model("iizuka", out_channels=2, num_classes=0, **SMALL)
    assert net.num_classes == 0
    assert not [name for name, _ in net.named_parameters() if "class" in name]
    with pytest.raises(RuntimeError, match="num_classes=0: it has no classification head"):
        net.forward_with_classes(torch.randn(2, 1, 32, 32))
    with_head = create_model("iizuka", out_channels=2, num_classes=10, **SMALL)
    assert [name for name, _ in with_head.named_parameters() if "class" in name]


def test_parameter_count_at_paper_width_is_the_docstring_figure():
    """17,008,706 at width 1.0 without a head; the head adds 131,328 + 257 per class."""
    n = count_parameters(create_model("iizuka", out_channels=2))
    assert n == pytest.approx(17_008_706, rel=0.01)
    head = count_parameters(create_model("iizuka", out_channels=2, num_classes=10)) - n
    assert head == 131_328 + 257 * 10
    quarter = count_parameters(create_model("iizuka", out_channels=2, width=0.25))
    assert quarter == pytest.approx(1_065_362, rel=0.01)


def test_bad_knobs_are_user_errors():
    assert registry.knobs("iizuka") == ["num_classes", "width"]
    with pytest.raises(UserError, match="network_args of iizuka"):
        create_model("iizuka", out_channels=2, width=0)
    with pytest.raises(UserError, match="network_args of iizuka"):
        create_model("iizuka", out_channels=2, width="wide")
    with pytest.raises(UserError, match=r"network_args\.depth"):
        create_model("iizuka", out_channels=2, depth=3)


def test_a_training_batch_of_one_small_image_works():
    """At 32 px the last global convolutions are 1x1: one value per channel in a batch of one."""
    torch.manual_seed(0)
    net = create_model("iizuka", out_channels=2, num_classes=2, **SMALL).train()
    out, logits = net.forward_with_classes(torch.randn(1, 1, 32, 32))
    (out.pow(2).mean() + logits.sum()).backward()
    assert out.shape == (1, 2, 32, 32) and logits.shape == (1, 2)


def test_joint_training_lowers_colour_and_class_loss():
    """The paper's loss, MSE(sigmoid(out), ab on [0, 1]) + α·CE with α = 1/300, on real photos."""
    x, target01, labels = real_batch(32)
    torch.manual_seed(0)
    net = create_model("iizuka", out_channels=2, num_classes=2, width=0.25).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    alpha = 1 / 300
    colour_losses, class_losses = [], []
    for _ in range(40):
        out, logits = net.forward_with_classes(x)
        colour = nn.functional.mse_loss(torch.sigmoid(out), target01)
        cls = nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        (colour + alpha * cls).backward()
        opt.step()
        colour_losses.append(colour.item())
        class_losses.append(cls.item())
    assert np.mean(colour_losses[-5:]) < 0.3 * colour_losses[0]
    assert np.mean(class_losses[-5:]) < 0.1 * class_losses[0]


def _model(**changes):
    return ModelParams(**{"network": "iizuka", "representation": "ab",
                          "representation_args": {"activation": "sigmoid"}, "network_args": SMALL,
                          "class_loss_weight": 1 / 300, **changes})


def test_build_colorizer_sizes_the_head_from_the_data_labels():
    colorizer, network_args, _ = build_colorizer(_model(), {"labels": ["a", "b"]}, None)
    assert isinstance(colorizer, Colorizer)
    assert colorizer.num_classes == 2 and network_args == {"width": 0.125, "num_classes": 2}
    assert colorizer.size_multiple == 8
    L = torch.rand(2, 1, 37, 53) * 100.0  # not a multiple of 8: padded and cropped back
    colorizer.eval()
    with torch.no_grad():
        out, logits = colorizer.outputs_and_classes(L[..., :32, :48])
        ab = colorizer(L)
    assert out.shape == (2, 2, 32, 48) and logits.shape == (2, 2)
    assert ab.shape == (2, 2, 37, 53) and ab.abs().max() <= 110.0


def test_build_colorizer_without_labels_disables_the_head(caplog):
    caplog.set_level(logging.INFO, logger="chromalab.colorizing.colorizer")
    colorizer, network_args, _ = build_colorizer(_model(), {"labels": []}, None)
    assert colorizer.num_classes == 0 and network_args["num_classes"] == 0
    assert not [name for name, _ in colorizer.named_parameters() if "class" in name]
    assert "iizuka: the data has no class labels, so the classification head is disabled" in caplog.text
    out, logits = colorizer.outputs_and_classes(torch.rand(2, 1, 32, 32) * 100.0)
    assert out.shape == (2, 2, 32, 32) and logits is None
