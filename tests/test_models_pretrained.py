"""Networks on timm's ImageNet models (seed 003's Deep Koalarization, seed 004's DenseNet and
MobileNet): shapes, the grey -> ImageNet input, weights from a local file (the offline way), the
hub's offline error, the frozen, precomputed embedder, and training on real photos. No network
access: every model starts from random weights or a file written here."""

import logging
import os

import numpy as np
import pytest
import timm
import torch
from skimage import data
from skimage.transform import resize
from torch import nn

from chromalab.colorizing.colorizer import count_parameters
from chromalab.core import color
from chromalab.core.errors import UserError
from chromalab.models import create_model, registry
from chromalab.models.pretrained import create_timm, freeze, grey_to_imagenet

SMALL_ENCODER = "mobilenetv3_small_050"
SMALL = {
    "densenet": {"decoder_channels": 32},  # densenet121 is timm's smallest densenet
    "mobilenet": {"encoder": SMALL_ENCODER, "decoder_channels": 32, "pretrained": False},
    "koalarization": {"width": 0.125, "embedder": SMALL_ENCODER, "embed_size": 64},
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory):
    """A random mobilenetv3_small_050 classifier's state_dict saved as a file, as timm publishes
    weights (BatchNorm statistics made non-trivial so that loading them shows)."""
    torch.manual_seed(1)
    model = timm.create_model(SMALL_ENCODER, pretrained=False)
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith("running_mean"):
            value.normal_()
    path = tmp_path_factory.mktemp("weights") / f"{SMALL_ENCODER}.pth"
    torch.save(state, path)
    return path, state


def real_batch(size=32):
    """Two real photos: normalised L (2, 1, s, s) and ab / 110 in about [-1, 1] (2, 2, s, s)."""
    photos = [data.astronaut(), data.coffee()]
    lab = np.stack([color.rgb_to_lab(resize(p, (size, size), anti_aliasing=True).astype(np.float32))
                    for p in photos]).transpose(0, 3, 1, 2)
    lab = torch.from_numpy(np.ascontiguousarray(lab))
    return color.normalize_l(lab[:, :1]), color.normalize_ab(lab[:, 1:])


@pytest.mark.parametrize("name", ["densenet", "mobilenet", "koalarization"])
@pytest.mark.parametrize("h, w", [(32, 32), (64, 96)])
def test_output_has_the_input_size_and_the_representation_channels(name, h, w):
    torch.manual_seed(0)
    net = create_model(name, out_channels=3, **SMALL[name]).eval()
    assert net.size_multiple == (8 if name == "koalarization" else 32)
    with torch.no_grad():
        out = net(torch.rand(2, 1, h, w) - 0.5)
    assert out.shape == (2, 3, h, w)
    assert torch.isfinite(out).all() and out.std() > 0


def test_the_default_encoders_build_and_run(caplog):
    """densenet121 and the paper's Inception-ResNet-v2 embedder at random init; the embedder's
    input is raised to the 75 px it needs."""
    caplog.set_level(logging.INFO)
    torch.manual_seed(0)
    x = torch.rand(1, 1, 32, 32) - 0.5
    dense = create_model("densenet", out_channels=2).eval()
    assert count_parameters(dense) == 9_702_242 and count_parameters(dense.encoder) == 6_953_856
    assert registry.knobs("koalarization") == ["width", "embedder", "embed_size", "pretrained"]
    koala = create_model("koalarization", out_channels=2, width=0.125, embed_size=32).eval()
    assert koala.embed_size == 75 and "embed_size 32 raised to 75" in caplog.text
    assert count_parameters(koala.embedder) == 55_843_464
    assert "embedder inception_resnet_v2 at 75 px (random init), trained with the rest" in caplog.text
    assert koala.mean == koala.std == (0.5, 0.5, 0.5)  # the TensorFlow Inception normalisation
    with torch.no_grad():
        assert dense(x).shape == (1, 2, 32, 32)
        assert koala(x).shape == (1, 2, 32, 32)
        assert koala.embed(x).sum().item() == pytest.approx(1.0, abs=1e-4)  # a softmax


def test_parameter_counts_are_the_docstring_figures():
    small = create_model("mobilenet", out_channels=2, encoder=SMALL_ENCODER, decoder_channels=64, pretrained=False)
    assert count_parameters(small) == 466_258 and count_parameters(small.encoder) == 272_288
    koala = create_model("koalarization", out_channels=2, width=0.25, embedder=SMALL_ENCODER, embed_size=96)
    assert count_parameters(koala.embedder) == 1_593_224
    assert count_parameters(koala) - count_parameters(koala.embedder) == 459_578
    paper = create_model("koalarization", out_channels=2, embedder=SMALL_ENCODER)  # paper widths
    assert count_parameters(paper) - count_parameters(paper.embedder) == 6_573_794


def test_grey_to_imagenet_is_three_equal_channels_with_imagenet_normalisation():
    L = torch.tensor([0.0, 50.0, 100.0]).view(1, 1, 1, 3)
    out = grey_to_imagenet(color.normalize_l(L))
    assert out.shape == (1, 3, 1, 3)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    for c in range(3):
        expected = [(v - mean[c]) / std[c] for v in (0.0, 0.5, 1.0)]
        assert out[0, c, 0].tolist() == pytest.approx(expected, abs=1e-5)
    grey = out * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-6) and torch.allclose(grey[:, 1], grey[:, 2], atol=1e-6)


def test_a_local_weights_file_loads_into_the_encoder(small_weights, caplog):
    path, state = small_weights
    caplog.set_level(logging.INFO, logger="chromalab.models.pretrained")
    net = create_model("mobilenet", out_channels=2, encoder=SMALL_ENCODER, pretrained=str(path))
    loaded = net.encoder.net.state_dict()
    for key in ("conv_stem.weight", "blocks.0.0.conv_dw.weight", "blocks.4.2.conv_pw.weight", "bn1.running_mean"):
        assert torch.equal(loaded[key], state[key]), key
    assert f"{SMALL_ENCODER}: loaded 244/244 tensors from {path}; 0 missing keys, 0 unexpected keys" in caplog.text
    assert any(p.requires_grad for p in net.encoder.parameters())  # fine-tuned unless freeze_encoder


def test_missing_and_unexpected_keys_are_logged(small_weights, tmp_path, caplog):
    _, state = small_weights
    state = dict(state)
    del state["conv_stem.weight"]
    state["extra_head.weight"] = torch.zeros(3)
    state["classifier.weight"] = torch.zeros(10, 1024)  # a 10-class fine-tune: another shape
    path = tmp_path / "partial.pth"
    torch.save({"state_dict": state, "epoch": 3}, path)  # a training checkpoint's layout
    caplog.set_level(logging.INFO, logger="chromalab.models.pretrained")
    net = create_model("mobilenet", out_channels=2, encoder=SMALL_ENCODER, pretrained=str(path))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2 missing keys (classifier.weight, conv_stem.weight)" in warnings[0]
    assert "1 unexpected keys (extra_head.weight)" in warnings[0]
    assert "1 of another shape, left at random init (classifier.weight)" in warnings[0]
    assert torch.equal(net.encoder.net.state_dict()["blocks.0.0.conv_dw.weight"], state["blocks.0.0.conv_dw.weight"])


def test_a_classifier_state_dict_loads_into_densenets_renamed_feature_extractor(tmp_path):
    """timm's densenet feature extractor calls features.conv0 features_conv0: still loaded, all of it."""
    torch.manual_seed(2)
    state = timm.create_model("densenet121", pretrained=False).state_dict()
    path = tmp_path / "densenet121.pth"
    torch.save(state, path)
    encoder = create_timm("densenet121", str(path), features_only=True, out_indices=(-1,))
    loaded = encoder.state_dict()
    assert torch.equal(loaded["features_conv0.weight"], state["features.conv0.weight"])
    assert torch.equal(loaded["features_denseblock4.denselayer16.conv2.weight"],
                       state["features.denseblock4.denselayer16.conv2.weight"])
    assert torch.equal(loaded["features_norm5.weight"], state["features.norm5.weight"])
    assert "state_dict" not in encoder.pretrained_cfg  # no second copy of the weights kept


def test_bad_weights_files_are_user_errors(tmp_path, small_weights):
    missing = tmp_path / "nowhere" / "weights.pth"
    with pytest.raises(UserError, match=f"{missing}: no such weights file"):
        create_model("mobilenet", out_channels=2, encoder=SMALL_ENCODER, pretrained=str(missing))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(os.urandom(2048))
    with pytest.raises(UserError, match=f"{garbage}: not a loadable weights file"):
        create_model("mobilenet", out_channels=2, encoder=SMALL_ENCODER, pretrained=str(garbage))
    wrong = tmp_path / "densenet.pth"
    torch.save({"features.conv0.weight": torch.zeros(64, 3, 7, 7)}, wrong)
    with pytest.raises(UserError, match=f"{wrong}: none of its 1 tensors fits {SMALL_ENCODER}"):
        create_model("mobilenet", out_channels=2, encoder=SMALL_ENCODER, pretrained=str(wrong))


class _RunsCode:
    """Unpickling this calls a function: what weights_only=True refuses to do."""

    def __reduce__(self):
        return (os.getcwd, ())


def test_a_weights_file_holding_code_is_refused_not_run(tmp_path, small_weights):
    _, state = small_weights
    path = tmp_path / "code.pth"
    torch.save({"state_dict": state, "hook": _RunsCode(), "fn": os.getcwd}, path)
    with pytest.raises(UserError, match=f"{path}: not a loadable weights file"):
        create_model("mobilenet", out_channels=2, encoder=SMALL_ENCODER, pretrained=str(path))


def test_the_hub_offline_is_a_user_error_naming_the_weights_file_way(monkeypatch):
    """A real attempt here retries for ~50 s before failing: timm.create_model fails at once instead."""
    real = timm.create_model

    def offline(name, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("[Errno -2] Name or service not known: huggingface.co")
        return real(name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(UserError, match="cannot reach the weights hub.*pass a local weights file") as err:
        create_model("mobilenet", out_channels=2, encoder=SMALL_ENCODER, pretrained="hub")
    assert "Name or service not known" in str(err.value) and "torch.save" in str(err.value)
    with pytest.raises(UserError, match="cannot reach the weights hub"):
        create_model("koalarization", out_channels=2, width=0.125, embedder=SMALL_ENCODER, pretrained="hub")


def test_bad_knobs_are_user_errors():
    with pytest.raises(UserError, match="unknown timm network 'mobilenetv9'"):
        create_model("mobilenet", out_channels=2, encoder="mobilenetv9")
    with pytest.raises(UserError, match="network_args of densenet"):
        create_model("densenet", out_channels=2, decoder_channels="wide")
    with pytest.raises(UserError, match="network_args of mobilenet"):
        create_model("mobilenet", out_channels=2, encoder=SMALL_ENCODER, pretrained=3)
    with pytest.raises(UserError, match="network_args of koalarization"):
        create_model("koalarization", out_channels=2, width=0)
    with pytest.raises(UserError, match=r"network_args\.depth"):
        create_model("densenet", out_channels=2, depth=3)


def test_koalarization_with_pretrained_weights_freezes_and_precomputes_the_embedder(small_weights, caplog):
    path, state = small_weights
    caplog.set_level(logging.INFO)
    torch.manual_seed(0)
    net = create_model("koalarization", out_channels=2, **{**SMALL["koalarization"], "pretrained": str(path)})
    assert net.precomputable is True
    assert not any(p.requires_grad for p in net.embedder.parameters())
    assert all(p.requires_grad for name, p in net.named_parameters() if not name.startswith("embedder."))
    assert torch.equal(net.embedder.state_dict()["conv_stem.weight"], state["conv_stem.weight"])
    assert f"embedder {SMALL_ENCODER} at 64 px (weights from {path}), frozen" in caplog.text
    x = torch.rand(3, 1, 32, 48) - 0.5
    net.train()  # as training does every epoch: the frozen embedder stays in eval mode
    assert not net.embedder.training and net.encoder.training
    stats = net.embedder.state_dict()["bn1.running_mean"].clone()
    net(x).pow(2).mean().backward()
    assert torch.equal(net.embedder.state_dict()["bn1.running_mean"], stats)
    assert all(p.grad is None for p in net.embedder.parameters())
    net.eval()
    emb = net.precompute(x)
    assert emb.shape == (3, 1000) and not emb.requires_grad
    with torch.no_grad():
        assert torch.allclose(net(x, precomputed=emb), net(x), atol=1e-6)
    with pytest.raises(ValueError, match="precomputed embeddings of shape"):
        net(x, precomputed=emb[:2])


def test_koalarization_without_pretrained_weights_trains_its_embedder(caplog):
    caplog.set_level(logging.INFO)
    net = create_model("koalarization", out_channels=2, **SMALL["koalarization"]).train()
    assert net.precomputable is False
    assert all(p.requires_grad for p in net.parameters())
    assert "trained with the rest" in caplog.text
    net(torch.rand(2, 1, 32, 32) - 0.5).pow(2).mean().backward()
    assert net.embedder.conv_stem.weight.grad.abs().sum() > 0


def test_freeze_encoder_keeps_weights_and_batchnorm_statistics(small_weights):
    path, _ = small_weights
    net = create_model("mobilenet", out_channels=2, encoder=SMALL_ENCODER, pretrained=str(path),
                       freeze_encoder=True).train()
    assert not any(p.requires_grad for p in net.encoder.parameters())
    assert any(p.requires_grad for p in net.decoder.parameters())
    assert not net.encoder.training and net.decoder.training
    before = {k: v.clone() for k, v in net.encoder.state_dict().items()}
    net(torch.rand(2, 1, 32, 32) - 0.5).mean().backward()
    assert all(torch.equal(v, before[k]) for k, v in net.encoder.state_dict().items())
    module = freeze(nn.BatchNorm2d(4))
    assert not module.training and not module.weight.requires_grad


def test_a_training_batch_of_one_small_image_works():
    """At 32 px a timm encoder's last maps are 1x1: one value per channel in a batch of one."""
    torch.manual_seed(0)
    for name in ("mobilenet", "koalarization"):
        net = create_model(name, out_channels=2, **SMALL[name]).train()
        out = net(torch.rand(1, 1, 32, 32) - 0.5)
        out.pow(2).mean().backward()
        assert out.shape == (1, 2, 32, 32)
        assert all(m.training for m in net.modules() if isinstance(m, nn.BatchNorm2d))  # restored


def test_a_few_adam_steps_on_real_photos_lower_the_loss():
    """MSE of tanh(outputs) against ab / 110 (the ab representation) on two real photos."""
    x, target = real_batch(32)
    torch.manual_seed(0)
    net = create_model("mobilenet", out_channels=2, **SMALL["mobilenet"]).train()
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(25):
        loss = nn.functional.mse_loss(torch.tanh(net(x)), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.5 * losses[0]


def test_training_precomputes_the_frozen_embedding_and_the_checkpoint_reloads(tmp_path, prepared_dir, mlflow_uri,
                                                                                small_weights, monkeypatch):
    """The real training loop with a pre-trained (file) embedder: embeddings computed once per split,
    only the trainable parameters optimised, the best checkpoint rebuilt and colorizing."""
    from chromalab.colorizing import checkpoint
    from chromalab.training import train as train_module
    from helpers import train_tiny

    path = tmp_path / "embedder.pth"
    path.write_bytes(small_weights[0].read_bytes())
    calls = []
    real_precompute = train_module.precompute

    def counting(colorizer, dataset, *args, **kwargs):
        feats = real_precompute(colorizer, dataset, *args, **kwargs)
        calls.append(None if feats is None else tuple(feats.plain[0].shape))
        return feats

    monkeypatch.setattr(train_module, "precompute", counting)
    args = {**SMALL["koalarization"], "embed_size": 32, "pretrained": str(path)}
    out = train_tiny(tmp_path, prepared_dir, name="koala", epochs=2, hflip=False,
                     model={"network": "koalarization", "representation": "ab", "network_args": args})
    assert len(calls) == 2 and all(c is not None and c[1] == 1000 for c in calls)  # train and val, once each
    path.unlink()  # the checkpoint holds every weight: the original file is no longer needed
    colorizer, config = checkpoint.load(out / "best.pt")
    assert config["network_args"]["pretrained"] == str(path)
    weights = checkpoint.read(out / "best.pt")["state_dict"]
    stem = "network.embedder.conv_stem.weight"
    assert torch.equal(weights[stem], small_weights[1]["conv_stem.weight"])  # frozen through training
    with torch.no_grad():
        ab = colorizer(torch.rand(1, 1, 40, 56) * 100.0)
    assert ab.shape == (1, 2, 40, 56) and torch.isfinite(ab).all()
