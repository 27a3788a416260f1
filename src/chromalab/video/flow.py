"""Motion between two frames: dense optical flow on their lightness (OpenCV's DIS, Kroeger et al.
2016), and warping a plane of the previous frame onto the current one along it."""

from __future__ import annotations

import numpy as np


def _cv2():
    import cv2  # imported here: only films need it

    return cv2


def to_uint8(L: np.ndarray) -> np.ndarray:
    """Lab lightness 0..100 (float) -> uint8 0..255, the flow's input."""
    return np.clip(np.asarray(L, np.float32) * 2.55 + 0.5, 0, 255).astype(np.uint8)


class Flow:
    """flow(current, previous): for each pixel of `current` (H, W) the offset (dx, dy) of the same
    point in `previous`, (H, W, 2) float32, from the L planes (0..100). DIS's MEDIUM preset: at 256 px
    it costs a few ms, small beside the network."""

    def __init__(self, preset: str = "medium"):
        cv2 = _cv2()
        presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                   "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
        self._dis = cv2.DISOpticalFlow_create(presets[preset])

    def __call__(self, current: np.ndarray, previous: np.ndarray) -> np.ndarray:
        return self._dis.calc(to_uint8(current), to_uint8(previous), None)


def warp(plane: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """A (H, W) or (H, W, C) float32 plane of the previous frame, sampled where `flow` says each
    pixel of the current frame was (bilinear; outside the frame: the nearest edge)."""
    cv2 = _cv2()
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(np.ascontiguousarray(plane, np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1],
                     interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
