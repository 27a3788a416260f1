"""How much of seed 000's palette index does lightness alone decide?

Seed 000 fits k-means on RGB pixels (k = 12 for its deer experiment) and trains a CNN to pick each
pixel's colour class from the grey image. An RGB palette mixes lightness into the classes, so a
pixel's L already narrows its class down. This script measures the best accuracy any model that
sees only the pixel's own L can reach: the most frequent class of each L value (rounded) on the
train images, scored on the test images. A colorization network, which also sees the context,
should beat it.

    python benchmarks/palette_lightness_baseline.py ~/data/cifar10 --label deer --k 12

DIR holds train/<label>/*.jpg and test/<label>/*.jpg (the CIFAR-10 archive of ../shared/datasets,
extracted).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans

from chromalab.core.color import rgb_to_lab
from chromalab.core.images import is_image_file, load_rgb


def load(folder: Path) -> np.ndarray:
    files = sorted(p for p in folder.iterdir() if is_image_file(p))
    if not files:
        raise SystemExit(f"error: {folder}: no images")
    return np.stack([load_rgb(p) for p in files])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--label", default="deer")
    parser.add_argument("--k", type=int, default=12)
    parser.add_argument("--sample-pixels", type=int, default=200_000, help="as palette.sample_pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    train, test = load(args.root / "train" / args.label), load(args.root / "test" / args.label)
    pixels = train.reshape(-1, 3).astype(np.float32)
    rng = np.random.default_rng(args.seed)
    sample = pixels[rng.choice(len(pixels), min(args.sample_pixels, len(pixels)), replace=False)]
    kmeans = KMeans(args.k, n_init=4, random_state=args.seed).fit(sample)
    y_train = kmeans.predict(pixels)
    y_test = kmeans.predict(test.reshape(-1, 3).astype(np.float32))
    L_train = np.round(rgb_to_lab(train).reshape(-1, 3)[:, 0]).astype(int)
    L_test = np.round(rgb_to_lab(test).reshape(-1, 3)[:, 0]).astype(int)
    counts = np.zeros((101, args.k))
    np.add.at(counts, (L_train, y_train), 1)
    by_lightness = counts.argmax(axis=1)
    print(f"{args.label}: {len(train)} train, {len(test)} test images; RGB k-means k = {args.k}")
    print(f"most frequent class alone: {np.bincount(y_test, minlength=args.k).max() / len(y_test):.3f} of test pixels")
    print(f"lightness alone (most frequent class of each L on train): {np.mean(by_lightness[L_test] == y_test):.3f} "
          f"of test pixels ({np.mean(by_lightness[L_train] == y_train):.3f} of train pixels)")


if __name__ == "__main__":
    main()
