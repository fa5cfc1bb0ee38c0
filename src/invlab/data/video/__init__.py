"""Video data: uint8 ``(N, C, T, H, W)`` arrays, PyAV decoding and writing, and the
controlled video generator (appearance and motion as independent labels)."""

from invlab.data.video.arrays import VideoArray
from invlab.data.video.controlled import (
    MOTIONS,
    TEXTURES,
    ControlledVideos,
    ControlledVideoSpec,
    write_hmdb51,
    write_ucf101,
)
from invlab.data.video.io import VIDEO_EXTENSIONS, VideoInfo, probe_video, read_video, write_video

__all__ = [
    "VideoArray", "MOTIONS", "TEXTURES", "ControlledVideos", "ControlledVideoSpec", "write_hmdb51", "write_ucf101",
    "VIDEO_EXTENSIONS", "VideoInfo", "probe_video", "read_video", "write_video",
]
