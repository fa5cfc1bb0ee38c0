"""Reading and writing video files with PyAV.

:func:`read_video` decodes a whole file (optionally resized) to uint8 ``(C, T, H, W)``;
:func:`probe_video` reads the frame count and rate without decoding; :func:`write_video`
encodes uint8 frames to a real file (H.264 in ``.mp4`` by default). Every decoding
failure, a missing, empty, truncated or non-video file, raises a
:class:`~invlab.errors.DataError` naming the file and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from invlab.errors import DataError

__all__ = ["VIDEO_EXTENSIONS", "VideoInfo", "probe_video", "read_video", "write_video"]

# containers may count a frame or two that never decode (e.g. an edit list's priming
# frames); a larger shortfall is a truncated file
_COUNT_SLACK = 2

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a file's first video stream."""

    path: str
    frames: int  # 0 when the container does not say
    fps: float
    height: int
    width: int


def _open(path: Path):
    import av

    if not path.exists():
        raise DataError(f"{path}: video file does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: video file is empty (0 bytes); remove or replace it")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as err:
        raise DataError(f"{path}: cannot open as a video ({err}); remove or replace the file") from None
    if not container.streams.video:
        container.close()
        raise DataError(f"{path}: contains no video stream (not a video, or truncated before its stream headers)")
    return container


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count, rate and size of ``path`` from its container (no decoding)."""
    path = Path(path)
    with _open(path) as container:
        s = container.streams.video[0]
        fps = float(s.average_rate) if s.average_rate else 0.0
        return VideoInfo(str(path), int(s.frames or 0), fps, int(s.codec_context.height), int(s.codec_context.width))


def read_video(path: str | Path, size: tuple[int, int] | int | None = None, max_frames: int | None = None,
               channels: int = 3) -> np.ndarray:
    """Decode ``path`` to uint8 ``(C, T, H, W)``.

    ``size``: ``(H, W)`` or the shorter side (aspect kept), frames resized by the decoder's
    scaler (area filter) while decoding, so a long or large file never holds more than one
    full-resolution frame; ``None`` keeps the file's size. ``max_frames`` stops early.
    ``channels``: 3 (RGB) or 1 (grey).

    Raises :class:`DataError` naming the file if it cannot be opened, holds no video
    stream, fails to decode part-way (truncated or corrupt), yields no frame, or yields
    more than two frames fewer than its container announces (truncated).
    """
    import av

    path = Path(path)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    fmt = "rgb24" if channels == 3 else "gray"
    frames: list[np.ndarray] = []
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        announced = int(stream.frames or 0)
        h0, w0 = stream.codec_context.height, stream.codec_context.width
        if size is None:
            oh, ow = h0, w0
        elif isinstance(size, int):
            s = size / max(1, min(h0, w0))
            oh, ow = max(1, round(h0 * s)), max(1, round(w0 * s))
        else:
            oh, ow = int(size[0]), int(size[1])
        try:
            for frame in container.decode(stream):
                if oh != frame.height or ow != frame.width:
                    img = frame.to_ndarray(format=fmt, width=ow, height=oh, interpolation="AREA")
                else:
                    img = frame.to_ndarray(format=fmt)
                frames.append(img.reshape(oh, ow, channels))
                if max_frames is not None and len(frames) >= max_frames:
                    break
        except (av.FFmpegError, OSError, ValueError) as err:
            raise DataError(f"{path}: decoding failed after {len(frames)} frames ({err}); the file is truncated or "
                            "corrupt: re-encode or remove it") from None
    if not frames:
        raise DataError(f"{path}: no frame could be decoded (truncated or corrupt file); re-encode or remove it")
    if max_frames is None and announced and len(frames) < announced - _COUNT_SLACK:
        raise DataError(f"{path}: the container announces {announced} frames but only {len(frames)} decode "
                        "(truncated file); re-encode or remove it")
    return np.ascontiguousarray(np.stack(frames).transpose(3, 0, 1, 2))


def write_video(path: str | Path, video: np.ndarray, fps: float = 8.0, codec: str = "libx264", crf: int = 12) -> Path:
    """Encode uint8 ``video`` ``(C, T, H, W)`` (C = 3 or 1) to ``path`` (a real file any
    player opens; H.264 / yuv420p by default, so H and W must be even). ``crf``: x264
    quality (lower is closer to the input). Written to a temporary name, then renamed."""
    import av

    path = Path(path)
    video = np.asarray(video)
    if video.ndim != 4 or video.dtype != np.uint8 or video.shape[0] not in (1, 3):
        raise ValueError(f"write_video expects uint8 (C, T, H, W) with C in (1, 3), got {video.dtype} {video.shape}")
    _, t, h, w = video.shape
    if codec in ("libx264", "h264", "mpeg4") and (h % 2 or w % 2):
        raise ValueError(f"{codec} with yuv420p needs even frame sides, got {h}x{w}")
    if video.shape[0] == 1:
        video = np.repeat(video, 3, axis=0)
    frames = video.transpose(1, 2, 3, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    from fractions import Fraction

    with av.open(str(tmp), mode="w") as out:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec in ("libx264", "h264"):
            stream.options = {"crf": str(crf), "preset": "medium"}
        for i in range(t):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(path)
    return path
