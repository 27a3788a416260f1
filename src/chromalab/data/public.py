"""The public datasets the seed reports trained on: where each official file lives, its size and
sha256, and the terms it is published under.

Why a table: the download stage verifies every byte against the published size and checksum, so
a mirror (`data.url`) or a cached copy can stand in for the official server without changing the
data. Sizes and sha256 are those recorded by tensorflow_datasets' url_checksums (cifar10.csv,
places365_small.txt, coco2017.txt, ade20k.txt); the CIFAR-10 sha256 is also the one Keras pins,
and its md5 (c58f30108f718f92721af3b95e74349a) the one on its home page and in torchvision.

ImageNet and the Kaggle landscape set have no anonymous download: the user fetches a copy, and
`instructions` says exactly what to download and where to point `data.path`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    name: str  # the official file name; a mirror serves the same name
    url: str
    size: int  # bytes
    sha256: str


@dataclass(frozen=True)
class Dataset:
    title: str
    homepage: str
    terms: str  # the licence or terms of use, as the homepage publishes them
    files: tuple[RemoteFile, ...] = ()  # empty: no anonymous download exists
    instructions: str = ""  # for a user's own copy: what to download and where data.path points


CIFAR10 = Dataset(
    title="CIFAR-10",
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    terms="no licence stated; the home page asks users to cite Krizhevsky, Learning Multiple "
          "Layers of Features from Tiny Images, 2009",
    files=(RemoteFile(
        "cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        170_498_071, "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"),),
)

PLACES365 = Dataset(
    title="Places365-Standard validation set, 256x256",
    homepage="http://places2.csail.mit.edu/download.html",
    terms="MIT CSAIL terms: non-commercial research and educational use only, images not to be "
          "redistributed",
    files=(
        RemoteFile("val_256.tar", "http://data.csail.mit.edu/places/places365/val_256.tar",
                   525_158_400, "24b4e639ef12a0012af525bc4cb443e4ab4aaea8369a1fb009b70e4a4aad5d48"),
        RemoteFile("filelist_places365-standard.tar",
                   "http://data.csail.mit.edu/places/places365/filelist_places365-standard.tar",
                   67_498_496, "520699e00d69b63ddc29fac54645aa00ce1c10ca42e288960aa1cf791d6e9aa9"),
    ),
)

COCO = Dataset(
    title="COCO 2017 validation images",
    homepage="https://cocodataset.org/#termsofuse",
    terms="images: the COCO Consortium does not own their copyright, use must abide by the Flickr "
          "Terms of Use; annotations: CC BY 4.0",
    files=(RemoteFile(
        "val2017.zip", "http://images.cocodataset.org/zips/val2017.zip",
        815_585_330, "4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05"),),
)

ADE20K = Dataset(
    title="ADE20K scene-parsing release (ADEChallengeData2016)",
    homepage="https://groups.csail.mit.edu/vision/datasets/ADE20K/",
    terms="images: MIT CSAIL does not own their copyright, non-commercial research and "
          "educational use only; the release's devkit code: BSD-style licence",
    files=(RemoteFile(
        "ADEChallengeData2016.zip",
        "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",
        967_382_037, "7ff1be44964418441f542a7cc1e1a650e7dc0fc275f5d23252bc9bbdbc977b29"),),
)

IMAGENET = Dataset(
    title="ImageNet (ILSVRC2012)",
    homepage="https://image-net.org/download-images.php",
    terms="non-commercial research and educational use only, after accepting ImageNet's terms "
          "of access",
    instructions="log in at https://image-net.org/download-images.php (free account, "
                 "non-commercial terms), download ILSVRC2012_img_train.tar and "
                 "ILSVRC2012_img_val.tar, unpack them as DIR/train/<wnid>/*.JPEG and "
                 "DIR/val/<wnid>/*.JPEG (val sorted into class folders, as torchvision's "
                 "ImageNet does), then set data.path=DIR",
)

KAGGLE_LANDSCAPE = Dataset(
    title="Landscape color and grayscale images (Kaggle, B. Mamba, 2020; seed 002's data)",
    homepage="https://www.kaggle.com/datasets/theblackmamba31/landscape-image-colorization",
    terms="as stated on its Kaggle page; downloading needs a Kaggle account",
    instructions="log in to Kaggle, download archive.zip from "
                 "https://www.kaggle.com/datasets/theblackmamba31/landscape-image-colorization "
                 "and set data.path to that zip or to the folder it was unzipped into (its "
                 "'landscape Images/color' photos are used, the grey copies are not)",
)

# Every named source that is not a folder, a URL or the builtin photos.
DATASETS: dict[str, Dataset] = {
    "cifar10": CIFAR10,
    "places365": PLACES365,
    "coco": COCO,
    "ade20k": ADE20K,
    "imagenet": IMAGENET,
    "kaggle-landscape": KAGGLE_LANDSCAPE,
}
