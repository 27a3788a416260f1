"""Colour conversion and the normalisation constants every model shares, in one place.

CIE Lab with a D65 white point (scikit-image's convention). Networks see L centred at 50 and
scaled by 100, and ab scaled by 110 (richzhang/colorization's constants), so every model and every
representation agree on what a number means.
"""

import warnings

import numpy as np
from skimage import color as skcolor

L_CENTER = 50.0
L_SCALE = 100.0
AB_SCALE = 110.0


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 or [0, 1] float RGB (..., 3) -> float32 Lab (..., 3)."""
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.float32) / 255.0
    return skcolor.rgb2lab(rgb).astype(np.float32)


def lab_to_rgb_uint8(lab: np.ndarray) -> np.ndarray:
    """float Lab (..., 3) -> uint8 RGB (..., 3); out-of-gamut colours are clipped."""
    with warnings.catch_warnings():
        # Predictions may leave the sRGB gamut; clipping them is the intended behaviour.
        warnings.simplefilter("ignore", UserWarning)
        rgb = skcolor.lab2rgb(lab.astype(np.float64))
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def lab_planes_to_rgb_uint8(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Channel-first planes L (1, H, W) and ab (2, H, W) -> uint8 RGB (H, W, 3)."""
    lab = np.concatenate([L, ab], axis=0).transpose(1, 2, 0)
    return lab_to_rgb_uint8(lab)


def normalize_l(L):
    """L in [0, 100] -> network input in [-0.5, 0.5] (numpy arrays or torch tensors)."""
    return (L - L_CENTER) / L_SCALE


def normalize_ab(ab):
    return ab / AB_SCALE


def denormalize_ab(ab):
    return ab * AB_SCALE
