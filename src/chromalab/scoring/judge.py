"""An ImageNet classifier as a judge of colorized images.

- Semantic interpretability (Zhang, Isola, Efros 2016, §3.1): does the classifier see the same
  thing in the colorized image as in the original? Top-1 agreement between its predictions on the
  two (1 for the truth by definition), and, where the photos carry ImageNet labels (wnids in their
  file names, as the imagenet-sample photos do), top-1 accuracy against the label.
- A Fréchet distance (FID's formula, Heusel et al. 2017) between the classifier's pooled features
  of the colorized images and of the originals. Named by its network (`fd_mobilenetv2`): FID proper
  uses Inception-v3 features, which cannot be fetched here, so these values compare the models of
  one run with each other, never with published FIDs.

Two ImageNet networks install offline from pinned wheels (models/packaged.py). A model is judged by
one that is not its own encoder when the other is available: MobileNetV2, or Lite0 for a model
built on MobileNetV2; the report says which judged each model.
"""

from __future__ import annotations

import functools
import re

import numpy as np

JUDGES = {"mobilenetv2": "mobilenetv2_100", "lite0": "tf_efficientnet_lite0"}
TITLES = {"mobilenetv2": "MobileNetV2", "lite0": "EfficientNet-Lite0"}
DEFAULT = "mobilenetv2"
INPUT_SIZE = 224
WNID = re.compile(r"(?<![0-9a-z])(n\d{8})(?![0-9])")


def judges_for(network_args: dict | None) -> list[str]:
    """The judges of a model: those that are not its own encoder or embedder, MobileNetV2 first
    (the first is the model's own judge: `semantic_agreement`, `fd`)."""
    args = network_args or {}
    parts = {args.get("encoder"), args.get("embedder")}
    return [name for name in sorted(JUDGES, key=lambda n: n != DEFAULT) if JUDGES[name] not in parts]


class Judge:
    """One packaged ImageNet classifier: predictions and pooled features of uint8 RGB images."""

    def __init__(self, name: str):
        import torch

        from chromalab.models.pretrained import create_timm, imagenet_stats

        self.name = name
        self.model = create_timm(JUDGES[name], "package").eval()
        mean, std = imagenet_stats(self.model)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def look(self, rgb: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """uint8 RGB (N, H, W, 3) -> top-1 ImageNet class (N,) and pooled features (N, D)."""
        import torch
        import torch.nn.functional as F

        classes, features = [], []
        with torch.no_grad():
            for start in range(0, len(rgb), batch_size):
                x = torch.from_numpy(np.array(rgb[start : start + batch_size], dtype=np.uint8)).permute(0, 3, 1, 2)
                x = F.interpolate(x.float() / 255.0, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                                  antialias=True, align_corners=False)
                pooled = self.model.forward_head(self.model.forward_features((x - self.mean) / self.std),
                                                 pre_logits=True)
                classes.append(self.model.get_classifier()(pooled).argmax(dim=1).numpy())
                features.append(pooled.double().numpy())
        return np.concatenate(classes), np.concatenate(features)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """||mu_a - mu_b||² + tr(Σa) + tr(Σb) - 2 tr((Σa Σb)^½) between two sets of feature vectors
    (rows); None for fewer than two of either.

    With X the centred rows over sqrt(n - 1), Σ = XᵀX, and tr((Σa Σb)^½) is the sum of the
    singular values of Xa Xbᵀ (its square is Xa Σb Xaᵀ, which has Σa Σb's eigenvalues): exact,
    small when there are fewer images than features, stable where few images make the covariances
    singular, and 0 apart from rounding for identical sets. Many images: the same through Σa^½."""
    if len(a) < 2 or len(b) < 2:
        return None
    xa = (a - a.mean(axis=0)) / np.sqrt(len(a) - 1)
    xb = (b - b.mean(axis=0)) / np.sqrt(len(b) - 1)
    if len(a) * len(b) <= a.shape[1] ** 2:
        cross = np.linalg.svd(xa @ xb.T, compute_uv=False).sum()
    else:
        values, vectors = np.linalg.eigh(xa.T @ xa)
        root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
        cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ (xb.T @ xb) @ root_a), 0.0, None)).sum()
    mean_gap = np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2)
    return max(float(mean_gap + np.sum(xa * xa) + np.sum(xb * xb) - 2.0 * cross), 0.0)


def imagenet_labels(names: list[str]) -> np.ndarray:
    """The ImageNet class index of each file name that carries a wnid (n01440764_tench.JPEG), else -1."""
    from timm.data import ImageNetInfo

    index = {wnid: i for i, wnid in enumerate(ImageNetInfo().label_names())}
    found = [WNID.search(str(name).rsplit("/", 1)[-1]) for name in names]
    return np.array([index.get(m.group(1), -1) if m else -1 for m in found], dtype=np.int64)


def judge_sets(judge: Judge, predicted: np.ndarray, truth_classes: np.ndarray, truth_features: np.ndarray,
               labels: np.ndarray | None) -> tuple[dict, dict]:
    """Scores of colorized images against the originals' predictions and features: (summary,
    per-image columns). `labels`: ImageNet class per image or -1; accuracy only where labelled."""
    classes, features = judge.look(predicted)
    agree = (classes == truth_classes).astype(np.float64)
    summary = {f"semantic_agreement_{judge.name}": float(agree.mean()),
               f"fd_{judge.name}": frechet_distance(features, truth_features)}
    per_image = {f"semantic_agreement_{judge.name}": agree}
    if labels is not None and (labels >= 0).any():
        known = labels >= 0
        correct = (classes == labels).astype(np.float64)
        summary[f"label_top1_{judge.name}"] = float(correct[known].mean())
        summary[f"label_top1_truth_{judge.name}"] = float((truth_classes == labels)[known].mean())
        summary["labelled_images"] = int(known.sum())
    return summary, per_image


@functools.lru_cache(maxsize=None)
def _loaded(name: str) -> Judge:
    """One judge per process: the league's evaluations in one process load each network once."""
    return Judge(name)


@functools.lru_cache(maxsize=8)
def _look_at_truth(name: str, pixels: bytes, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The originals as a judge sees them, once per process: every model is scored against the
    same test images (the grey baseline and the league in one `dvc repro` worker, or one test run)."""
    return _loaded(name).look(np.frombuffer(pixels, np.uint8).reshape(shape).copy())


def judge_all(predicted: np.ndarray, truth: np.ndarray, labels: np.ndarray | None,
              judges: list[str]) -> tuple[dict, dict]:
    """The `judges` (judges_for) on colorized images (uint8 RGB, N x H x W x 3) against the
    originals: every judge's figures under its name (`fd_lite0`), and the first judge's also as
    `semantic_agreement`, `fd` and `label_top1`, with `judge` naming it. Returns the summary and
    the per-image agreements (the first judge's also as `semantic_agreement`)."""
    own = judges[0]
    summary, agreements = {"judge": own, "judge_title": TITLES[own]}, {}
    for name in judges:
        truth_classes, truth_features = _look_at_truth(name, truth.tobytes(), truth.shape)
        scores, per_image = judge_sets(_loaded(name), predicted, truth_classes, truth_features, labels)
        summary.update(scores)
        agreements.update(per_image)
    for key in ("semantic_agreement", "fd", "label_top1", "label_top1_truth"):
        if f"{key}_{own}" in summary:
            summary[key] = summary[f"{key}_{own}"]
    agreements["semantic_agreement"] = agreements[f"semantic_agreement_{own}"]
    return summary, agreements
