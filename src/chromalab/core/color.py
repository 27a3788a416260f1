"""Colour conversion and the normalisation constants every model shares, in one place.

CIE Lab with a D65 white point (scikit-image's convention). Networks see L centred at 50 and
scaled by 100, and ab scaled by 110 (richzhang/colorization's constants), so every model and every
representation agree on what a number means.

The numpy functions follow scikit-image (rgb_to_lab with exact operations only, see there); the
torch functions (for losses and decoding on the training device) reimplement its formulas so that
both agree to float32 precision. torch is
imported inside them: the metrics and report code import this module and must not pull in torch.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from skimage import color as skcolor

if TYPE_CHECKING:
    import torch

L_CENTER = 50.0
L_SCALE = 100.0
AB_SCALE = 110.0


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 or [0, 1] float RGB (..., 3) -> float32 Lab (..., 3), scikit-image's rgb2lab (D65).

    Computed in float64 with + - * / only, which IEEE 754 rounds the same way on every x86-64 CPU,
    so `prepare` writes the same bytes everywhere: np.power and np.cbrt run AVX-512 kernels on an
    AVX-512 CPU (numpy's X86_V4 dispatch) and other kernels elsewhere, which round differently,
    and rgb2lab's matrix product goes to a BLAS that picks its kernels by CPU too."""
    rgb = np.asarray(rgb)
    if rgb.shape[-1:] != (3,):
        raise ValueError(f"expected RGB (..., 3), got shape {rgb.shape}")
    flat = rgb.reshape(-1, 3)
    out = np.empty(flat.shape, np.float32)
    for start in range(0, len(flat), _LAB_BLOCK):  # bounded float64 temporaries
        block = flat[start : start + _LAB_BLOCK]
        linear = _LINEAR_LUT64[block] if block.dtype == np.uint8 else _srgb_to_linear(block.astype(np.float64))
        out[start : start + len(block)] = _linear_to_lab(linear)
    return out.reshape(rgb.shape)


_LAB_BLOCK = 1 << 20  # pixels converted at a time


def _cbrt(x: np.ndarray) -> np.ndarray:
    """Cube root of positive float64 values by Halley's method from a start made of exact
    operations (frexp/ldexp), so the result is the same on every CPU, unlike np.cbrt."""
    mantissa, exponent = np.frexp(x)  # x = m 2^e, m in [0.5, 1)
    k = np.floor_divide(exponent, 3)
    m = np.ldexp(mantissa, exponent - 3 * k)  # in [0.5, 4); cbrt(x) = cbrt(m) 2^k
    y = 0.6 + 0.26 * m  # within 26 % of cbrt(m) on [0.5, 4)
    for _ in range(4):  # cubic convergence: 26 % -> 2 % -> 1e-5 -> 1e-15 -> exact to rounding
        y3 = y * y * y
        y = y * (y3 + 2.0 * m) / (2.0 * y3 + m)
    return np.ldexp(y, k)


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """sRGB companding undone: ((v + 0.055) / 1.055) ** 2.4 above 0.04045, v / 12.92 below, the
    power taken as x^2 (x^2)^(1/5) with the fifth root by Newton's method (exact operations only)."""
    x = (np.maximum(v, 0.04045) + 0.055) / 1.055
    x2 = x * x
    y = np.ones_like(x2)  # (x^2)^(1/5) in (0.38, 1]: Newton from above converges monotonically
    for _ in range(12):
        y4 = (y * y) * (y * y)
        y = y - (y4 * y - x2) / (5.0 * y4)
    return np.where(v > 0.04045, x2 * y, v / 12.92)


_LINEAR_LUT64 = _srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0)


def _linear_to_lab(linear: np.ndarray) -> np.ndarray:
    """Linear sRGB (N, 3) float64 -> Lab (N, 3): the 3x3 product written out term by term (a
    fixed order of roundings), then Lab's f(t)."""
    r, g, b = linear[:, 0], linear[:, 1], linear[:, 2]
    m = XYZ_FROM_RGB
    f = []
    for row, white in zip(m, D65):
        t = (row[0] * r + row[1] * g + row[2] * b) / white
        f.append(np.where(t > 0.008856, _cbrt(np.maximum(t, 0.008856)), 7.787 * t + 16.0 / 116.0))
    fx, fy, fz = f
    return np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


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


# scikit-image's constants: the sRGB primaries, the D65 2° white, and the piecewise thresholds of
# the sRGB companding and of the Lab f(t) (7.787 and 0.008856 are its rounded (29/6)²/3 and (6/29)³).
XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                          [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]])
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
D65 = (0.95047, 1.0, 1.08883)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float16/bfloat16 are computed in float32 (the cube and 2.4 powers lose too much in half);
    float64 stays float64."""
    import torch

    return torch.promote_types(x.dtype, torch.float32)


def _mix(matrix: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    """3x3 matrix applied along the channel axis (-3). Broadcast sums rather than a matmul, so
    that autocast never lowers it to half precision."""
    import torch

    m = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)
    c0, c1, c2 = x.unbind(-3)
    return torch.stack([m[i, 0] * c0 + m[i, 1] * c1 + m[i, 2] * c2 for i in range(3)], dim=-3)


def lab_to_rgb_torch(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Lab in Lab units (..., 3, H, W) -> sRGB in [0, 1], as skimage.color.lab2rgb (D65).

    Differentiable (every fractional power sees its input clamped into its own branch, so no NaN
    gradients leak through the branch that torch.where discards). `clip=False` leaves
    out-of-gamut colours outside [0, 1] instead of clipping them as scikit-image does.
    """
    import torch

    x_in = lab.to(_compute_dtype(lab))
    L, a, b = x_in.unbind(-3)
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = (fy - b / 200.0).clamp(min=0.0)  # scikit-image clips negative z the same way
    f = torch.stack([fx, fy, fz], dim=-3)
    xyz = torch.where(f > 0.2068966, f.clamp(min=0.2068966) ** 3, (f - 16.0 / 116.0) / 7.787)
    white = torch.tensor(D65, dtype=xyz.dtype, device=xyz.device).view(3, 1, 1)
    linear = _mix(RGB_FROM_XYZ, xyz * white)
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp(min=0.0031308) ** (1 / 2.4) - 0.055,
                      12.92 * linear)
    if clip:
        rgb = rgb.clamp(0.0, 1.0)
    return rgb.to(lab.dtype)


def rgb_to_lab_torch(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (..., 3, H, W) -> Lab in Lab units, as skimage.color.rgb2lab (D65);
    differentiable."""
    import torch

    x_in = rgb.to(_compute_dtype(rgb))
    linear = torch.where(x_in > 0.04045, ((x_in.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, x_in / 12.92)
    white = torch.tensor(D65, dtype=linear.dtype, device=linear.device).view(3, 1, 1)
    xyz = _mix(XYZ_FROM_RGB, linear) / white
    f = torch.where(xyz > 0.008856, xyz.clamp(min=0.008856) ** (1 / 3), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f.unbind(-3)
    lab = torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)
    return lab.to(rgb.dtype)


def _srgb_to_linear_lut() -> np.ndarray:
    v = np.arange(256, dtype=np.float64) / 255.0
    return np.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92).astype(np.float32)


_LINEAR_LUT = _srgb_to_linear_lut()


def lightness_from_rgb_uint8(rgb: np.ndarray) -> torch.Tensor:
    """uint8 RGB (H, W, 3) -> Lab L (H, W) as a float32 tensor, as rgb_to_lab computes it.

    Colorizing needs only the input's L, so this skips a and b: a 256-entry table linearises
    sRGB, a dot product gives Y, and f(Y) gives L; vectorised torch, no per-pixel Python."""
    import torch

    linear = torch.from_numpy(_LINEAR_LUT)[torch.from_numpy(rgb).long()]
    y = linear @ torch.from_numpy(XYZ_FROM_RGB[1].astype(np.float32))
    f = torch.where(y > 0.008856, y.clamp(min=0.008856) ** (1 / 3), 7.787 * y + 16.0 / 116.0)
    return 116.0 * f - 16.0


def lab_to_rgb_uint8_torch(lab: torch.Tensor) -> np.ndarray:
    """Lab (3, H, W) tensor -> uint8 RGB (H, W, 3) array, as lab_to_rgb_uint8 (clipped gamut)."""
    import torch

    rgb = lab_to_rgb_torch(lab.float())
    return (rgb * 255.0).round_().to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()


def clamp_to_gamut(L, ab, steps: int = 6):
    """ab (B, 2, H, W) scaled towards grey, pixel by pixel, until (L, ab) is an sRGB colour: hue and
    lightness kept, only the excess chroma dropped (clipping RGB channels instead shifts the hue).
    A bisection over the scale, `steps` halvings (1/64 of the chroma at most is given up)."""
    import torch

    def inside(scale):
        rgb = lab_to_rgb_torch(torch.cat([L, ab * scale], dim=1), clip=False)
        return ((rgb >= -1e-3) & (rgb <= 1 + 1e-3)).all(dim=1, keepdim=True)

    ok = inside(1.0)
    if bool(ok.all()):
        return ab
    low, high = torch.zeros_like(L), torch.ones_like(L)
    for _ in range(steps):
        mid = (low + high) / 2
        good = inside(mid)
        low, high = torch.where(good, mid, low), torch.where(good, high, mid)
    return torch.where(ok, ab, ab * low)


def mean_chroma(rgb: np.ndarray) -> float:
    """Mean Lab chroma sqrt(a² + b²) of a thumbnail: near 0 for a photo that is already grey."""
    from PIL import Image

    img = Image.fromarray(rgb)
    img.thumbnail((128, 128))
    lab = rgb_to_lab(np.asarray(img))
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())
