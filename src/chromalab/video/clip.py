"""A test film whose colour is known: a camera pan and zoom across one real photo, a cut, then a
pan across a second, each frame rendered from the photo (so the colour original exists), written
as a colour film with an audio track (a tone) and as its grey copy (the colour film's own L).

Used by the tests, the `video` stage and the speed benchmark; the photos are scikit-image's
(astronaut and coffee), shipped with a dependency, so nothing is downloaded.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from chromalab.core import color
from chromalab.video.container import FilmWriter, read_frames

TONE_HZ = 440.0
SAMPLE_RATE = 44100


def shipped_photos() -> tuple[np.ndarray, np.ndarray]:
    from skimage import data

    return data.astronaut(), data.coffee()


def pan(photo: np.ndarray, frames: int, width: int, height: int, zoom: float = 1.25) -> list[np.ndarray]:
    """`frames` views of `photo` at width x height: a window of the output's shape that starts at
    the left edge covering most of the photo, slides right and tightens by `zoom`."""
    from PIL import Image

    image = Image.fromarray(photo)
    ph, pw = photo.shape[:2]
    aspect = width / height
    start_h = min(ph, pw / aspect) * 0.9
    views = []
    for i in range(frames):
        t = i / max(1, frames - 1)
        win_h = start_h / (1 + (zoom - 1) * t)
        win_w = win_h * aspect
        x0 = t * (pw - win_w)
        y0 = (ph - win_h) * (0.3 + 0.4 * t)
        box = (x0, y0, x0 + win_w, y0 + win_h)
        views.append(np.asarray(image.resize((width, height), Image.BICUBIC, box=box)))
    return views


def grey(rgb: np.ndarray) -> np.ndarray:
    """The frame's own Lab lightness as a grey RGB frame (a = b = 0)."""
    L = color.rgb_to_lab(rgb)[..., :1].transpose(2, 0, 1)
    return color.lab_planes_to_rgb_uint8(L, np.zeros((2,) + rgb.shape[:2], np.float32))


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.2 * np.sin(2 * math.pi * TONE_HZ * t)).astype(np.float32)[None]


def _write_audio(path: Path, seconds: float) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=SAMPLE_RATE)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(_tone(seconds), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = SAMPLE_RATE, 0
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def views(width: int = 320, height: int = 240, frames: int = 36) -> list[np.ndarray]:
    """The clip's colour frames: `frames` over the first photo, then two thirds as many over the second."""
    first, second = shipped_photos()
    return pan(first, frames, width, height) + pan(second, max(2, frames * 2 // 3), width, height, zoom=1.15)


def write_frames(frames: list[np.ndarray], folder) -> list[Path]:
    """Frames as folder/000000.png, ... (lossless: the same bytes on every machine)."""
    from chromalab.core.images import save_png

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:06d}.png" for i in range(len(frames))]
    for path, frame in zip(paths, frames):
        save_png(path, frame, 1)
    return paths


def make_clip(out_dir, width: int = 320, height: int = 240, fps: int = 24, frames: int = 36,
              audio: bool = True, crf: int = 12) -> tuple[Path, Path, int]:
    """Write OUT/clip_colour.mp4 and OUT/clip_grey.mp4 (same frames, timing and audio); returns
    their paths and the index of the first frame after the cut."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    views_ = views(width, height, frames)
    colour, grey_path = out_dir / "clip_colour.mp4", out_dir / "clip_grey.mp4"
    sound = None
    if audio:
        sound = out_dir / "clip_tone.m4a"
        _write_audio(sound, len(views_) / fps)
    with FilmWriter(colour, width, height, Fraction(fps), crf=crf, audio_from=sound) as writer:
        for view in views_:
            writer.write(view)
    # The grey film is the colour film's lightness as decoded, so the two agree frame for frame.
    with FilmWriter(grey_path, width, height, Fraction(fps), crf=crf, audio_from=colour if audio else None) as writer:
        for rgb, _, _ in read_frames(colour):
            writer.write(grey(rgb))
    if sound is not None:
        sound.unlink()
    return colour, grey_path, frames
