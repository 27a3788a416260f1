"""Every model of the default league, as params.yaml configures it, on tiny real photos: a few
training steps lower its loss, it predicts at two input sizes, and colorize works with it."""

from pathlib import Path

import numpy as np
import pytest
import torch

from chromalab.colorizing.colorize import FullResolution
from chromalab.colorizing.colorizer import batch_loss, build_colorizer
from chromalab.core import config
from chromalab.data.lab_arrays import LabBatches, load_summary
from chromalab.training.feature_cache import precompute

from helpers import real_photos

PARAMS = config.load_params(Path(__file__).resolve().parents[1] / "params.yaml")
LEAGUE = config.league(PARAMS)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_league_has_every_seed_model_zhang_and_chromalabs_own():
    assert set(LEAGUE) == {"kmeans_cnn", "autoencoder", "iizuka", "koalarization", "unet", "densenet",
                           "mobilenet", "zhang", "lite_bins"}


@pytest.mark.parametrize("name", LEAGUE)
def test_model_trains_predicts_at_two_sizes_and_colorizes(name, prepared_dir, palette_dir):
    torch.manual_seed(0)
    model = config.model_params(PARAMS, name)
    summary = load_summary(prepared_dir)
    colorizer, _, _ = build_colorizer(model, summary, palette_dir)
    data = LabBatches(prepared_dir, "train")
    batch = data[np.arange(min(8, len(data)))]
    cache = precompute(colorizer, data, 8, "cpu")
    extra = {"precomputed": cache.take(batch["rows"])} if cache is not None else {}
    optimizer = torch.optim.Adam([p for p in colorizer.parameters() if p.requires_grad], lr=1e-3)

    colorizer.train()
    losses = []
    for _ in range(12):
        loss, _ = batch_loss(colorizer, batch, model.class_loss_weight, extra)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert min(losses[-3:]) < losses[0], f"{name}: loss did not fall: {losses}"

    colorizer.eval()
    with torch.no_grad():
        for h, w in ((32, 32), (48, 80)):
            ab = colorizer(torch.full((2, 1, h, w), 55.0))
            assert ab.shape == (2, 2, h, w)
            assert ab.abs().max() <= 110.0 + 1e-3

    photo = real_photos()["coffee"][:77, :101]  # odd-sized
    rgb = FullResolution(colorizer, size=summary["size"], device=torch.device("cpu"))(photo)
    assert rgb.shape == photo.shape and rgb.dtype == np.uint8
