"""Reading and writing films with PyAV (FFmpeg's libraries, shipped inside its wheel).

PyAV over imageio-ffmpeg: frames come as numpy arrays in this process, so the audio's packets are
copied into the output unchanged (no second ffmpeg run to mux them, no re-encoding) and each
frame keeps its own timestamp (variable frame rates survive). docs/video.md has the measurement.

A damaged, truncated or empty file, one without a video stream or with a codec FFmpeg cannot
decode is a UserError naming the file. A film is written to a temporary file beside its target
and moved into place only when complete.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from chromalab.core.atomic import atomic_path
from chromalab.core.errors import UserError
from chromalab.video import VIDEO_EXTENSIONS

# FFmpeg's muxer for each extension (the temporary file's own name ends in .tmp).
MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".webm": "matroska"}
DEFAULT_CRF = 18  # x264's quality: 18 is about visually lossless; lower is larger and closer


def is_video_file(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass
class FilmInfo:
    width: int
    height: int
    fps: Fraction
    frames: int  # as the container says (0 when it does not say: counted while decoding)
    has_audio: bool
    codec: str


def _av():
    import av  # imported here: `chromalab --help` must not wait for FFmpeg's libraries

    return av


@contextlib.contextmanager
def _opened(path: Path):
    av = _av()
    try:
        container = av.open(str(path), "r")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (av.FFmpegError, ValueError) as err:
        raise UserError(f"{path}: not a readable video file: damaged, truncated or not a video ({_reason(err)})") from None
    try:
        yield container
    finally:
        container.close()


def _reason(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return text.split(": '")[0].strip() or type(err).__name__


def _video_stream(container, path: Path):
    if not container.streams.video:
        raise UserError(f"{path}: has no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None or not stream.codec_context.name:
        raise UserError(f"{path}: its video codec is not one FFmpeg can decode")
    stream.thread_type = "AUTO"  # frame threads: decoding overlaps itself
    return stream


def probe(path) -> FilmInfo:
    path = Path(path)
    with _opened(path) as container:
        stream = _video_stream(container, path)
        rate = stream.average_rate or stream.guessed_rate or Fraction(24)
        return FilmInfo(stream.width, stream.height, Fraction(rate), int(stream.frames or 0),
                        bool(container.streams.audio), stream.codec_context.name)


def _is_still(container) -> bool:
    """FFmpeg opens a photo as a one-frame film (its image demuxers: png_pipe, jpeg_pipe, image2, ...)."""
    return any(name.endswith("_pipe") or name.startswith("image2") for name in container.format.name.split(","))


def read_frames(path, films_only: bool = False):
    """Every frame of the film's first video stream: (uint8 RGB (H, W, 3), pts, time_base).
    films_only: a still image is a UserError rather than a film of one frame."""
    av = _av()
    path = Path(path)
    with _opened(path) as container:
        if films_only and _is_still(container):
            raise UserError(f"{path}: a still image, not a film (colorize it with `chromalab colorize`; "
                            "video-score reads films)")
        stream = _video_stream(container, path)
        count, end = 0, 0.0
        try:
            for frame in container.decode(stream):
                count += 1
                if frame.pts is not None:
                    end = float(frame.pts * frame.time_base)
                yield frame.to_ndarray(format="rgb24"), frame.pts, frame.time_base
        except av.FFmpegError as err:
            raise UserError(f"{path}: damaged after frame {count} ({_reason(err)})") from None
        if count == 0:
            raise UserError(f"{path}: has no frames")
        said = _declared_seconds(container, stream)
        rate = float(stream.average_rate or stream.guessed_rate or 24)
        if said is not None and end + 2.0 / rate < said - float(stream.start_time or 0) * float(stream.time_base or 0):
            raise UserError(f"{path}: truncated: its frames stop at {end:.2f} s of the {said:.2f} s its header says")


def _declared_seconds(container, stream) -> float | None:
    """The film's length as its header says (the stream's, else the container's), if it says."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # AV_TIME_BASE


class FilmWriter:
    """Writes frames (uint8 RGB) as H.264 at a frame rate or with their own timestamps, and copies
    the audio packets of a source film unchanged. Use as a context manager: the file appears at
    `path` only when the block ends without an error."""

    def __init__(self, path, width: int, height: int, fps: Fraction, time_base: Fraction | None = None,
                 crf: int = DEFAULT_CRF, audio_from=None):
        self.path, self.width, self.height = Path(path), width, height
        self.fps, self.time_base, self.crf, self.audio_from = Fraction(fps), time_base, crf, audio_from
        self.frames = 0

    def __enter__(self):
        av = _av()
        suffix = self.path.suffix.lower()
        if suffix not in MUXERS:
            raise UserError(f"{self.path}: cannot write a film with this extension (use {', '.join(VIDEO_EXTENSIONS)})")
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            self._out = av.open(str(tmp), "w", format=MUXERS[suffix])
            video = self._out.add_stream("libx264", rate=self.fps)
            video.width, video.height = self.width, self.height
            # 4:2:0 halves the colour planes and needs an even size; odd sizes keep full colour.
            video.pix_fmt = "yuv420p" if self.width % 2 == 0 and self.height % 2 == 0 else "yuv444p"
            video.options = {"crf": str(self.crf), "preset": "veryfast"}
            if self.time_base is not None:
                video.time_base = self.time_base
            self._video = video
            self._audio_in = self._audio_out = None
            if self.audio_from is not None:
                self._source = av.open(str(self.audio_from), "r")
                if self._source.streams.audio:
                    self._audio_in = self._source.streams.audio[0]
                    self._audio_out = self._out.add_stream_from_template(self._audio_in)
                    self._audio_packets = (p for p in self._source.demux(self._audio_in) if p.dts is not None)
                    self._next_audio = next(self._audio_packets, None)
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        frame = _av().VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        if pts is not None and self.time_base is not None:
            frame.pts, frame.time_base = pts, self.time_base
        else:
            frame.pts, frame.time_base = self.frames, 1 / self.fps
        for packet in self._video.encode(frame):
            self._out.mux(packet)
        self.frames += 1
        self._copy_audio(until=float(frame.pts * frame.time_base) + 1.0)

    def _copy_audio(self, until: float | None = None) -> None:
        """The source's audio packets up to `until` seconds (all: None), unchanged: copied as the
        video advances, so the file is interleaved and nothing waits in memory."""
        while self._audio_in is not None and self._next_audio is not None:
            packet = self._next_audio
            if until is not None and packet.dts * packet.time_base > until:
                return
            packet.stream = self._audio_out
            self._out.mux(packet)
            self._next_audio = next(self._audio_packets, None)

    def __exit__(self, kind, err, tb):
        try:
            if kind is None:
                for packet in self._video.encode():
                    self._out.mux(packet)
                self._copy_audio()
        except BaseException as failure:  # the file is incomplete: it must not appear
            kind, err, tb = type(failure), failure, failure.__traceback__
        finally:
            self._out.close()
            if self.audio_from is not None:
                self._source.close()
        if self._atomic.__exit__(kind, err, tb) is not True and kind is not None:
            raise err
        return False
