"""MP4 video for datasets: camera frames in, frames out, with PyAV (FFmpeg's libraries in-process).

Frames are encoded with H.264 (libx264) at ``crf 0`` in ``yuv444p``: lossless in YUV, so the only
loss is the 8-bit RGB -> YUV -> RGB conversion, measured at most 2 levels per channel (mean about
0.5) on the tabletop renders; ``FRAME_TOLERANCE`` is what the round-trip test allows. H.264 with
``yuv444p`` is one of the combinations LeRobot's own encoder offers (``vcodec="h264"``), and its
decoders (torchcodec, PyAV) read it. A keyframe every ``GOP`` frames keeps a frame in the middle of
a long file quick to reach, as LeRobot's ``g=2`` does.

Frame ``i`` of a file has presentation time ``i / fps`` exactly: episodes are appended one after
another and found again by time (LeRobot's ``from_timestamp``).

A damaged file is refused when FFmpeg detects the damage: a truncated file or a broken header or
index at open, damaged frame data while decoding (with ``err_detect=explode``; in a test 36 of 40
single flipped bits were caught). MP4 has no checksum, so a few flipped bits can still decode as a
changed frame.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CODEC = "h264"  # what the stream is (and what LeRobot's info.json calls it); the encoder is libx264
ENCODER = "libx264"
PIX_FMT = "yuv444p"
CRF = 0
GOP = 2
FRAME_TOLERANCE = 3  # the largest per-channel difference a decoded frame may have from its source
TIMESTAMP_TOLERANCE_S = 1e-4  # how far a frame's time may be from the one asked for (LeRobot's default)


class VideoError(ValueError):
    """A video that cannot be written or read: the message names the file and the problem."""


def _av():
    try:
        import av
    except ImportError as e:  # a dependency of rill; missing only in a broken install
        raise VideoError("video needs PyAV: pip install av") from e
    return av


class VideoWriter:
    """Appends RGB frames (``H x W x 3`` uint8) to one MP4 file at ``fps`` frames per second."""

    def __init__(self, path: str | Path, fps: int, height: int, width: int) -> None:
        av = _av()
        self.path, self.fps, self.shape = Path(path), int(fps), (height, width, 3)
        self.frames = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._container = av.open(str(self.path), "w", format="mp4")
            self._stream = self._container.add_stream(ENCODER, rate=Fraction(self.fps),
                                                      options={"crf": str(CRF), "g": str(GOP)})
        except av.error.FFmpegError as e:
            raise VideoError(f"{self.path}: cannot start an {ENCODER} video ({e})") from e
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = PIX_FMT
        self._stream.time_base = Fraction(1, self.fps)

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps

    def write(self, frame: np.ndarray) -> None:
        av = _av()
        frame = np.asarray(frame)
        if frame.shape != self.shape or frame.dtype != np.uint8:
            raise VideoError(f"{self.path}: frame {self.frames} is {frame.dtype} {frame.shape}, "
                             f"expected uint8 {self.shape}")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts, vf.time_base = self.frames, Fraction(1, self.fps)
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file (an MP4 is unreadable until its index is written)."""
        if self._container is None:
            return
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def video_info(path: str | Path) -> dict[str, object]:
    """What LeRobot's ``info.json`` says of a video feature, read from the file itself."""
    av = _av()
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return {"video.height": stream.height, "video.width": stream.width,
                    "video.codec": stream.codec_context.name, "video.pix_fmt": stream.pix_fmt,
                    "video.is_depth_map": False, "video.fps": int(stream.base_rate or stream.average_rate),
                    "video.channels": 3, "has_audio": bool(container.streams.audio)}
    except (av.error.FFmpegError, IndexError) as e:
        raise VideoError(f"{path}: not a readable video ({e})") from e


class FrameReader:
    """Frames of one video file by presentation time, decoded front to back.

    ``at(times)`` returns the frame shown at each time (seconds, non-decreasing across calls; an
    earlier time reopens the file). A time with no frame within ``TIMESTAMP_TOLERANCE_S``, a file
    that ends first, or data FFmpeg cannot decode raises ``VideoError`` naming the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._frames: Iterator[tuple[float, np.ndarray]] | None = None
        self._current: tuple[float, np.ndarray] | None = None
        self._container = None

    def _open(self) -> None:
        av = _av()
        self.close()
        if not self.path.is_file():
            raise VideoError(f"{self.path}: no such video file")
        try:
            self._container = av.open(str(self.path))
            stream = self._container.streams.video[0]
        except (av.error.FFmpegError, IndexError) as e:
            raise VideoError(f"{self.path}: not a readable video ({e})") from e
        # FFmpeg conceals damaged frames by default; "explode" makes a detected error an error.
        stream.codec_context.options = {"err_detect": "explode"}
        self._frames = self._decode(stream)
        self._current = None

    def _decode(self, stream) -> Iterator[tuple[float, np.ndarray]]:
        av = _av()
        try:
            for frame in self._container.decode(stream):
                if frame.pts is None:
                    raise VideoError(f"{self.path}: a frame without a presentation time")
                yield float(frame.pts * stream.time_base), frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as e:
            raise VideoError(f"{self.path}: corrupt video data ({e})") from e

    def at(self, times: list[float] | np.ndarray) -> np.ndarray:
        """``[len(times), H, W, 3]`` uint8: the frame at each of ``times``."""
        out = []
        for t in times:
            t = float(t)
            behind = self._current is not None and t < self._current[0] - TIMESTAMP_TOLERANCE_S
            if self._frames is None or behind:  # frames are decoded forwards only: start again
                self._open()
            while self._current is None or self._current[0] < t - TIMESTAMP_TOLERANCE_S:
                nxt = next(self._frames, None)
                if nxt is None:
                    last = f"its last frame is at {self._current[0]:.4f} s" if self._current \
                        else "it has no frame"
                    raise VideoError(f"{self.path}: the video ends before {t:.4f} s ({last}): truncated?")
                self._current = nxt
            if abs(self._current[0] - t) > TIMESTAMP_TOLERANCE_S:
                raise VideoError(f"{self.path}: no frame at {t:.4f} s (the nearest is at "
                                 f"{self._current[0]:.4f} s): the video and the data disagree on fps")
            out.append(self._current[1])
        return np.stack(out) if out else np.zeros((0, 0, 0, 3), np.uint8)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container, self._frames, self._current = None, None, None
