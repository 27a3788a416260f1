"""The ImageNet judges on real photos: agreement is 1 for the truth and drops for grey; the
Fréchet distance is 0 for identical sets and grows with a known corruption; labels from wnids."""

import numpy as np
import pytest
from PIL import Image

from chromalab.scoring import judge

from helpers import real_photos

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _crops(size=96) -> np.ndarray:
    """Twelve real colour crops: two from each of six photos (different content, same size)."""
    out = []
    for rgb in real_photos().values():
        h, w = rgb.shape[:2]
        for box in ((0, 0, min(h, w)), (h - min(h, w), w - min(h, w), min(h, w))):
            y, x, side = box
            out.append(np.asarray(Image.fromarray(rgb[y:y + side, x:x + side]).resize((size, size), Image.BICUBIC)))
    return np.stack(out)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray([np.asarray(Image.fromarray(i).convert("L")) for i in rgb])[..., None], 3, axis=-1)


@pytest.fixture(scope="module")
def truth():
    return _crops()


def test_agreement_is_one_for_the_truth_and_drops_for_grey(truth):
    summary, per_image = judge.judge_all(truth, truth, None, ["mobilenetv2", "lite0"])
    assert summary["semantic_agreement"] == 1.0 and per_image["semantic_agreement"].tolist() == [1.0] * len(truth)
    assert per_image["semantic_agreement_lite0"].tolist() == [1.0] * len(truth)
    assert summary["fd"] == pytest.approx(0.0, abs=1e-6)
    grey, _ = judge.judge_all(_grey(truth), truth, None, ["mobilenetv2", "lite0"])
    assert grey["semantic_agreement"] < 0.9
    assert grey["fd"] > 1.0
    assert {"semantic_agreement_lite0", "fd_lite0", "semantic_agreement_mobilenetv2"} <= set(grey)
    assert grey["judge"] == "mobilenetv2" and grey["judge_title"] == "MobileNetV2"


def test_the_frechet_distance_grows_with_the_corruption():
    rng = np.random.default_rng(0)
    features = rng.normal(0, 1, (200, 16))
    assert judge.frechet_distance(features, features) == pytest.approx(0.0, abs=1e-9)
    shifted = [judge.frechet_distance(features, features + shift) for shift in (0.1, 0.5, 1.0)]
    assert shifted == sorted(shifted) and shifted[0] > 0
    assert shifted[2] == pytest.approx(16 * 1.0 ** 2, rel=1e-6)  # a mean shift adds ||shift||² exactly
    scaled = judge.frechet_distance(features, features * 2.0)  # same mean; covariance 4x: tr adds ~16
    assert scaled == pytest.approx(16.0, rel=0.15)
    assert judge.frechet_distance(features[:1], features) is None


def test_fd_on_real_photos_grows_as_colour_is_drained(truth):
    judge_net = judge.Judge("lite0")
    _, reference = judge_net.look(truth)
    distances = []
    for keep in (1.0, 0.6, 0.3, 0.0):  # blend towards grey
        blended = (keep * truth + (1 - keep) * _grey(truth)).round().astype(np.uint8)
        distances.append(judge.frechet_distance(judge_net.look(blended)[1], reference))
    assert distances[0] == pytest.approx(0.0, abs=1e-6)
    assert distances == sorted(distances) and distances[-1] > distances[1] > 0


def test_a_model_is_not_judged_by_its_own_encoder():
    assert judge.judges_for({"encoder": "mobilenetv2_100"}) == ["lite0"]
    assert judge.judges_for({"encoder": "tf_efficientnet_lite0"}) == ["mobilenetv2"]
    assert judge.judges_for({"embedder": "tf_efficientnet_lite0"}) == ["mobilenetv2"]
    assert judge.judges_for(None) == judge.judges_for({"encoder": "densenet121"}) == ["mobilenetv2", "lite0"]
    only_lite0, _ = judge.judge_all(_crops()[:4], _crops()[:4], None, ["lite0"])
    assert "fd_mobilenetv2" not in only_lite0 and only_lite0["judge"] == "lite0"


def test_wnids_in_file_names_give_imagenet_labels_and_accuracy(truth):
    labels = judge.imagenet_labels(["n02123045_tabby.JPEG", "photos/n07920052_espresso.JPEG", "cat.jpg",
                                    "xn02123045.jpg"])
    assert labels.tolist() == [281, 967, -1, -1]
    chelsea = real_photos()["chelsea"]
    cat = np.asarray(Image.fromarray(chelsea).resize((224, 224), Image.BICUBIC))[None]
    summary, _ = judge.judge_all(cat, cat, np.array([judge.imagenet_labels(["n02123045"])[0]]), ["lite0"])
    assert summary["labelled_images"] == 1
    assert summary["label_top1"] == summary["label_top1_truth"]  # the truth judged against itself
