"""Colorize a film: each frame through the model at its working size, the colour carried through
time by the Stabiliser, laid over the frame's own full-resolution L (colorize.FullResolution), and
encoded with the source's frame rate, size, timestamps and audio.

Decoding runs in one thread ahead of the colorizing and encoding in another behind it (FFmpeg
releases the GIL), as a folder of photos is colorized, so a film costs about its compute time.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from chromalab.colorizing.colorize import FullResolution
from chromalab.core.config import VideoParams
from chromalab.core.errors import UserError
from chromalab.core.images import is_image_file, load_rgb
from chromalab.video import container
from chromalab.video.stabilise import Stabiliser

AHEAD = 4  # frames decoded ahead and waiting to be encoded: a few MB each at 640 x 480
_END = object()


@dataclass
class FilmOutcome:
    source: Path
    target: Path
    frames: int = 0
    cuts: list[int] = field(default_factory=list)
    seconds: float = 0.0
    has_audio: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def frame_files(folder: Path) -> list[Path]:
    """A folder of frames, in name order (frame_0001.png, ...)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
    if not files:
        raise UserError(f"{folder}: no image files in this folder to use as frames")
    return files


def output_path(source: Path, out_dir: Path, suffix: str = "") -> Path:
    """film.avi -> OUT/film<suffix>.avi (the container kept, so its audio fits); a folder of frames -> OUT/folder.mp4."""
    ext = source.suffix.lower() if source.is_file() else ".mp4"
    return out_dir / f"{source.stem if source.is_file() else source.name}{suffix}{ext}"


def _frames(source: Path, fps: Fraction, files: list[Path] | None):
    """(rgb, pts, time_base) for each frame of a film, or of a folder of frames (its `files`)."""
    if files is not None:
        for i, path in enumerate(files):
            yield load_rgb(path), i, 1 / fps
    else:
        yield from container.read_frames(source)


def _in_thread(items, size: int):
    """Iterate `items` in a thread of its own, `size` ahead; its exception re-raised here."""
    box: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()

    def run():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put((_END, None))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            box.put((_END, err))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        while True:
            item, err = box.get()
            if err is not None:
                raise err
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def colorize_film(runner: FullResolution, source: Path, target: Path, stabilise: VideoParams | None,
                  fps: Fraction = Fraction(24), crf: int = container.DEFAULT_CRF, progress: bool = True,
                  frame_hook=None) -> FilmOutcome:
    """Colorize `source` (a film, or a folder of frames shown at `fps`) into `target`; stabilise
    None: each frame on its own. frame_hook(index, rgb, L_small, ab_small) sees each frame as it is
    written and the ab at the working size it was made from."""
    from tqdm import tqdm

    source, target = Path(source), Path(target)
    files = frame_files(source) if source.is_dir() else None  # listed once: counted here, read below
    if files is not None:
        info = None
        width = height = None
        total, rate, has_audio = len(files), Fraction(fps), False
    else:
        info = container.probe(source)
        total, rate, has_audio = info.frames or None, info.fps, info.has_audio
        width, height = info.width, info.height
    outcome = FilmOutcome(source, target, has_audio=has_audio)
    stabiliser = Stabiliser(stabilise) if stabilise is not None else None
    frames = _in_thread(_frames(source, rate, files), AHEAD)
    start = time.perf_counter()
    bar = tqdm(total=total, desc=source.name, unit="frame", disable=None if progress else True)
    try:
        first = next(frames, None)
        if first is None:
            raise UserError(f"{source}: has no frames")
        rgb, pts, time_base = first
        if width is None:
            height, width = rgb.shape[:2]
        writer = container.FilmWriter(target, width, height, rate, time_base=time_base if info else None,
                                      crf=crf, audio_from=source if has_audio else None)
        # Every torch thread, unlike a folder of photos (which leaves one to PNG encoding): a frame's
        # decoding and H.264 encoding are a few ms, and the network on one thread of two ran a 640 x 480
        # film at 10.3 frames/s against 11.2 on both (docs/video.md).
        with writer, torch.inference_mode():
            encoder = _Encoder(writer)
            try:
                _colorize_frames(runner, itertools.chain([first], frames), encoder, stabiliser, frame_hook,
                                 (height, width), source, keep_pts=info is not None, outcome=outcome, bar=bar)
            finally:
                encoder.close()
    finally:
        bar.close()
        frames.close()
    outcome.seconds = time.perf_counter() - start
    outcome.cuts = stabiliser.cuts if stabiliser is not None else []
    return outcome


def _colorize_frames(runner, frames, encoder, stabiliser, frame_hook, shape, source, keep_pts, outcome, bar):
    for index, (rgb, pts, _) in enumerate(frames):
        if rgb.shape[:2] != shape:
            raise UserError(f"{source}: frame {index} is {rgb.shape[1]} x {rgb.shape[0]}, "
                            f"not {shape[1]} x {shape[0]} as the first")
        prepared = runner.preprocess(rgb)
        ab = runner.predict(prepared.L_small)
        L_small = ab_small = None
        if stabiliser is not None or frame_hook is not None:
            L_small = prepared.L_small[0, 0].float().cpu().numpy()
            ab_small = ab[0].float().cpu().numpy().transpose(1, 2, 0)
            if stabiliser is not None:
                ab_small, _ = stabiliser(L_small, ab_small)
                ab = torch.from_numpy(np.ascontiguousarray(ab_small.transpose(2, 0, 1)))[None]
        out = runner.postprocess(prepared, ab)
        if frame_hook is not None:
            frame_hook(index, out, L_small, ab_small)
        encoder.submit(out, pts if keep_pts else None)
        outcome.frames += 1
        bar.update(1)


class _Encoder:
    """Frames handed to `submit` are encoded by a thread of its own, in order; `close` waits for
    the last one and re-raises an encoding error (the first; later frames are dropped)."""

    def __init__(self, writer: container.FilmWriter):
        self.writer, self.failure = writer, None
        self.box: queue.Queue = queue.Queue(maxsize=AHEAD)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.box.get()) is not _END:
            if self.failure is None:
                try:
                    self.writer.write(*item)
                except BaseException as err:  # noqa: BLE001 - re-raised by submit/close
                    self.failure = err

    def submit(self, rgb: np.ndarray, pts) -> None:
        if self.failure is not None:
            raise self.failure
        self.box.put((rgb, pts))

    def close(self) -> None:
        self.box.put(_END)
        self.thread.join()
        if self.failure is not None:
            raise self.failure
