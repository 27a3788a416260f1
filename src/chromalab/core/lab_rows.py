"""The full-resolution conversions of `chromalab colorize`: float32 numpy, rows of pixels at a time.

A photo's own L joined to the model's upsampled ab and turned into uint8 sRGB touches every pixel
several times. These do it in float32, with tables where a power would be slow (the output's sRGB
curve is a table of 65,536 uint8 values: no 2.4 power per pixel), on rows of pixels at a time with
scratch buffers allocated once (fresh arrays per step cost page faults that took longer than the
arithmetic). scikit-image's lab2rgb in float64 is the reference: they agree to one uint8 level,
exactly on about 99 % of the pixels (tests/test_colorize_speed.py). Kept apart from color.py, which
training imports: speeding these up retrains nothing.
"""

from __future__ import annotations

import numpy as np

from chromalab.core import color

_Y_THRESHOLD = 0.008856  # Y/Yn below which rgb2lab's f(t) is linear
_F_THRESHOLD = 0.2068966  # f above which lab2rgb cubes it (its f(0.008856))
_F_SLOPE = 7.787


def _linear_lut64() -> np.ndarray:
    v = np.arange(256, dtype=np.float64) / 255.0
    return np.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)


# Y = R' + G' + B': each channel's linearised value already weighted by its share of the luminance.
_Y_LUTS = tuple((_linear_lut64() * color.XYZ_FROM_RGB[1, c]).astype(np.float32) for c in range(3))

# Linear RGB from (X/Xn, Y, Z/Zn): the white point folded into the matrix, and the size of the
# output table (GAMMA_BINS) too, so a pixel's table index is its product, clipped and truncated.
GAMMA_BINS = 1 << 16
_RGB_FROM_XYZ_REL = (color.RGB_FROM_XYZ * np.array(color.D65)[None, :] * GAMMA_BINS).astype(np.float32)


def _srgb_uint8_table() -> np.ndarray:
    """uint8 sRGB of the linear value at the centre of each of GAMMA_BINS bins of [0, 1], then 255
    for exactly 1. A bin is 1/65,536 of the range, at most 0.025 of a uint8 level on the curve's
    steepest part: only a value that close to a rounding boundary can land one level off."""
    v = (np.arange(GAMMA_BINS, dtype=np.float64) + 0.5) / GAMMA_BINS
    srgb = np.where(v > 0.0031308, 1.055 * v ** (1 / 2.4) - 0.055, 12.92 * v)
    return np.append(np.clip(np.rint(srgb * 255.0), 0, 255), 255).astype(np.uint8)


_SRGB_UINT8 = _srgb_uint8_table()


class LabRows:
    """The full-resolution conversions of `chromalab colorize` for rows of pixels, at most `rows`
    rows of `width` pixels at a time, with scratch buffers of that size allocated once (one
    LabRows per thread).

    - `lightness(rgb, Y, fy)`: uint8 RGB (n, W, 3) -> its luminance Y and f(Y) = (L + 16) / 116,
      as rgb_to_lab computes them (three 256-entry tables summed; a cube root).
    - `to_rgb_uint8(fy, Y, ab_f, out)`: Lab -> uint8 sRGB (clipped gamut), as lab_to_rgb_uint8, for
      pixels given as fy, Y and ab_f = (a / 500, -b / 200) (2, n, W); writes out (n, W, 3).
    """

    def __init__(self, rows: int, width: int):
        self.rows, self.width = rows, width
        self.xyz = np.empty((3, rows, width), np.float32)
        self.low = np.empty((rows, width), np.float32)
        self.square = np.empty((rows, width), np.float32)
        self.linear = np.empty((3, rows * width), np.float32)
        self.index = np.empty((rows * width, 3), np.intp)
        self.channel = np.empty(rows * width, np.uint8)
        self._ab = np.empty((2, 2 * rows * width), np.float32)

    def ab_buffers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Two contiguous float32 (2, n, width) scratch arrays for the caller's ab of n rows."""
        self._check(n, self.width)
        size = 2 * n * self.width
        return self._ab[0, :size].reshape(2, n, self.width), self._ab[1, :size].reshape(2, n, self.width)

    def _check(self, n: int, width: int) -> None:
        if n > self.rows or width != self.width:
            raise ValueError(f"{n} rows of {width} pixels: this LabRows holds {self.rows} of {self.width}")

    def lightness(self, rgb: np.ndarray, Y: np.ndarray, fy: np.ndarray) -> None:
        n, width = rgb.shape[:2]
        self._check(n, width)
        index = self.index.reshape(-1)[: 3 * n * width].reshape(3, n, width)
        index[...] = rgb.transpose(2, 0, 1)  # np.take wants contiguous indices (else it copies them)
        part = self.low[:n]
        np.take(_Y_LUTS[0], index[0], out=Y, mode="clip")  # clip: unbuffered
        for c in (1, 2):
            np.take(_Y_LUTS[c], index[c], out=part, mode="clip")
            Y += part
        if Y.min() > _Y_THRESHOLD:
            np.cbrt(Y, out=fy)
            return
        # Near black f is linear: fy = cbrt(max(Y, T)) + 7.787 (min(Y, T) - T), without branches
        # (a masked copy took 25 times as long as an add; fixing the dark pixels by index was
        # slower too). scikit-image's rounded constants leave its two pieces 3e-7 apart at T, 4e-5
        # of an L unit.
        np.cbrt(np.maximum(Y, _Y_THRESHOLD, out=part), out=fy)
        np.minimum(Y, _Y_THRESHOLD, out=part)
        part -= _Y_THRESHOLD
        part *= _F_SLOPE
        fy += part

    def _f_inverse(self, f: np.ndarray) -> None:
        """f -> f³ in place (linear near black): lab2rgb's inverse of Lab's f, as
        max(f, F)³ + (min(f, F) - F) / 7.787 where any pixel is that dark (its two pieces 5e-8
        apart at F)."""
        n = f.shape[0]
        if f.min() > _F_THRESHOLD:
            f *= np.multiply(f, f, out=self.square[:n])
            return
        low = np.minimum(f, _F_THRESHOLD, out=self.low[:n])
        low -= _F_THRESHOLD
        low /= _F_SLOPE
        np.maximum(f, _F_THRESHOLD, out=f)
        f *= np.multiply(f, f, out=self.square[:n])
        f += low

    def to_rgb_uint8(self, fy: np.ndarray, Y: np.ndarray, ab_f: np.ndarray, out: np.ndarray) -> None:
        n, width = fy.shape
        self._check(n, width)
        if not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous")
        xyz = self.xyz[:, :n]
        np.add(fy, ab_f[0], out=xyz[0])
        np.add(fy, ab_f[1], out=xyz[2])
        np.maximum(xyz[2], 0.0, out=xyz[2])  # scikit-image clips negative z the same way
        self._f_inverse(xyz[0])
        self._f_inverse(xyz[2])
        xyz[1] = Y
        size = n * width
        linear = self.linear[:, :size]
        # einsum, not matmul: a 3x3 product that needs no BLAS (nor its threads). Channel-first
        # throughout (einsum into (pixels, 3) took ten times as long); the channels are interleaved
        # last, as uint8.
        np.einsum("ij,jn->in", _RGB_FROM_XYZ_REL, xyz.reshape(3, -1), out=linear)
        index = self.index.reshape(-1)[: 3 * size].reshape(3, size)
        index[...] = linear  # truncated: each value's bin of the table
        pixels, channel = out.reshape(-1, 3), self.channel[:size]
        for c in range(3):
            # mode="clip" (also unbuffered) clips the gamut: below 0 -> bin 0, above 1 -> 255.
            np.take(_SRGB_UINT8, index[c], out=channel, mode="clip")
            pixels[:, c] = channel
