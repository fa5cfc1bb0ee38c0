"""Controlled videos: glyph objects on crops of real photographs, with an **appearance
class** and a **motion class** drawn as independent labels and every factor recorded,
per video and per frame.

A video is ``T`` frames of ``background(motion_t(appearance(object)))``:

- **appearance**: one foreground prototype (:mod:`invlab.data.assets`: ``glyphs`` by
  default) whose fill is tinted with one of ``num_colours`` well-spread colours and
  modulated by one of ``num_textures`` patterns (plain, horizontal stripes, vertical
  stripes, checker, diagonal stripes, dots), all in the object's own coordinates (the
  pattern rotates and scales with it). The *appearance class* is the combination of the
  factors named in ``appearance`` (default ``("object",)``: the glyph); the other
  factors are drawn at random per video (nuisances, still recorded).
- **motion**: one entry of :data:`MOTIONS` per video: a per-frame trajectory of the
  object's centre ``(x, y)`` (pixels), rotation angle (degrees, counter-clockwise on
  screen), scale (relative to ``object_scale``) and the frame's lighting (a brightness
  factor on the whole frame). Each trajectory is centred on the middle frame: a
  mid-clip state is drawn (position where the whole path stays in view, angle within
  ``start_rotation``, scale and brightness near 1) and the motion runs through it at a
  per-video ``speed`` drawn from ``speed``. At speed 1 a translation covers
  ``0.5 x image_size`` over the video, a rotation 180 degrees, a scale change a factor
  2, a lighting change 0.8. ``"track"`` is the object-track family (issue 14): rotation,
  scaling and lighting change together with random signs and rates, plus a small drift.
- **background**: one crop of the photo bank per video (:func:`~invlab.data.assets.background_bank`),
  static.

Labels: appearance and motion classes are two independent balanced draws (each a
shuffled ``arange(n) % k``), so neither predicts the other beyond chance.

Seeds: ``structure_seed`` picks the glyph classes; ``content_seed`` the appearance,
motion class, colour, texture and background of each video; ``motion_seed`` the
continuous motion parameters (speed, mid-clip state, track signs). Two sets differing
only in ``motion_seed`` are twins: the same objects on the same backgrounds moving with
the same motion classes along new trajectories (:meth:`ControlledVideos.variant`).

Instances: ``tracks_per_instance`` consecutive videos share one instance (object,
colour, texture, background: the same physical object) and differ in trajectory; the
``instance`` factor numbers instances within a set (sets of different splits are drawn
from independent streams and share none).

Layout: :meth:`ControlledVideos.render` gives float ``(B, C, T, H, W)`` in ``[0, 1]``,
:meth:`~ControlledVideos.videos` uint8 of the same shape; :meth:`~ControlledVideos.to_video_array`
the whole set as a :class:`~invlab.data.video.arrays.VideoArray` labelled by appearance,
motion or their joint class. :func:`write_ucf101` / :func:`write_hmdb51` write sets as real
video files in those data sets' folder layouts, split files included.

>>> train = ControlledVideos(512, num_frames=16, image_size=32)
>>> x = train.render(range(8))                    # (8, 3, 16, 32, 32) float
>>> train.appearance_labels[:8], train.motion_labels[:8]
>>> train.factors["frame.angle"].shape            # (512, 16): per-frame rotation
>>> tracks = ControlledVideos(1000, motions=["track"], num_classes=10, tracks_per_instance=2)
"""

from __future__ import annotations

import colorsys
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from invlab.data.assets import background_bank, load_foregrounds
from invlab.data.controlled import _class_block, _stream_seed
from invlab.data.video.arrays import VideoArray
from invlab.errors import ConfigError
from invlab.transforms.base import warp_affine
from invlab.transforms.image import rgb_to_gray

__all__ = [
    "MOTIONS", "TEXTURES", "APPEARANCE_FACTORS", "VIDEO_FACTORS", "FRAME_FACTORS", "ControlledVideoSpec",
    "ControlledVideos", "write_ucf101", "write_hmdb51",
]

_SPLIT_TAGS = {"train": 0, "test": 1, "val": 2}

# per-video rates: (dx, dy) direction of travel, rotation sign, log-scale sign, lighting sign
MOTIONS: dict[str, tuple[float, float, float, float, float]] = {
    "static": (0, 0, 0, 0, 0),
    "right": (1, 0, 0, 0, 0),
    "left": (-1, 0, 0, 0, 0),
    "down": (0, 1, 0, 0, 0),
    "up": (0, -1, 0, 0, 0),
    "rotate_ccw": (0, 0, 1, 0, 0),
    "rotate_cw": (0, 0, -1, 0, 0),
    "grow": (0, 0, 0, 1, 0),
    "shrink": (0, 0, 0, -1, 0),
    "brighten": (0, 0, 0, 0, 1),
    "darken": (0, 0, 0, 0, -1),
    "track": (0, 0, 0, 0, 0),  # rotation + scale + lighting with random signs, small drift
}
DEFAULT_MOTIONS = ("right", "left", "up", "down", "rotate_ccw", "rotate_cw", "grow", "shrink")
TEXTURES = ("plain", "hstripes", "vstripes", "checker", "diagonal", "dots")
APPEARANCE_FACTORS = ("object", "colour", "texture")
VIDEO_FACTORS = ("appearance", "motion", "object", "colour", "texture", "background", "instance", "speed")
FRAME_FACTORS = ("x", "y", "angle", "scale", "brightness")

# total change over the video at speed 1
_TRAVEL, _TURN, _ZOOM, _LIGHT = 0.5, 180.0, math.log(2.0), 0.8


@dataclass
class ControlledVideoSpec:
    """Recipe form of a controlled video set (section ``data.controlled_video``)."""

    appearance: list[str] = field(default_factory=lambda: ["object"])
    motions: list[str] = field(default_factory=lambda: list(DEFAULT_MOTIONS))
    foregrounds: str = "glyphs"
    backgrounds: str = "photos"
    num_classes: int | None = 8  # glyph classes (None: all of the foreground set)
    num_colours: int = 6
    num_textures: int = 4
    train_samples: int = 1024
    test_samples: int = 512
    num_frames: int = 16
    image_size: int = 32
    object_scale: float = 0.5
    speed: list[float] = field(default_factory=lambda: [0.6, 1.0])
    start_rotation: float = 30.0
    num_backgrounds: int = 867
    tracks_per_instance: int = 1
    structure_seed: int = 0
    content_seed: int = 0
    motion_seed: int = 0


def _palette(k: int) -> Tensor:
    """``k`` well-spread saturated colours ``(k, 3)``."""
    cols = [colorsys.hsv_to_rgb((i / k + 0.03) % 1.0, 0.8, 1.0) for i in range(k)]
    return torch.tensor(cols, dtype=torch.float32)


_COLOUR_NAMES = ("red", "orange", "yellow", "lime", "green", "teal", "cyan", "blue", "violet", "magenta", "pink", "rose")


def _colour_names(k: int) -> list[str]:
    return [_COLOUR_NAMES[round(i * 12 / k) % 12] if k <= 12 else f"colour{i}" for i in range(k)]


def _texture(name: str, size: int) -> Tensor:
    """A ``(size, size)`` multiplicative pattern in ``[0.45, 1]`` (period ~ size/8)."""
    period = max(2.0, size / 8.0)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32) + 0.5,
                            torch.arange(size, dtype=torch.float32) + 0.5, indexing="ij")
    wave = lambda u: 0.5 + 0.5 * torch.cos(2 * math.pi * u / period)  # noqa: E731
    if name == "plain":
        p = torch.ones(size, size)
    elif name == "hstripes":
        p = wave(yy)
    elif name == "vstripes":
        p = wave(xx)
    elif name == "checker":
        p = ((torch.floor(xx / period * 2) + torch.floor(yy / period * 2)) % 2)
    elif name == "diagonal":
        p = wave((xx + yy) / math.sqrt(2))
    elif name == "dots":
        p = wave(xx) * wave(yy)
    else:
        raise KeyError(name)
    return 0.45 + 0.55 * p


class ControlledVideos:
    """A controlled video set (see the module docstring).

    Args:
        num_videos: size of the set.
        num_frames: frames per video ``T``.
        image_size: frame side in pixels (even, so the set can be written as H.264).
        appearance: which of ``object``, ``colour``, ``texture`` make the appearance class
            (the class is their combination; the rest are nuisances).
        motions: motion classes, names from :data:`MOTIONS`.
        foregrounds, backgrounds, num_backgrounds: assets (:mod:`invlab.data.assets`).
        num_classes: how many glyph classes (a structure-seeded block; ``None``: all).
        num_colours, num_textures: sizes of the colour palette and the texture set.
        object_scale: the object's side as a fraction of the frame at scale 1.
        speed: ``(low, high)`` of the per-video speed (1 = the reference change above).
        start_rotation: mid-clip angles are drawn in ``[-start_rotation, start_rotation]``.
        tracks_per_instance: consecutive videos sharing one object instance.
        channels: 3 (RGB) or 1 (grey).
        structure_seed, content_seed, motion_seed: see the module docstring.
        split: ``train``, ``test`` or ``val`` (independent content and motion).

    Fields: ``appearance_labels``, ``motion_labels`` (int64 ``(N,)``),
    ``appearance_classes``, ``motion_classes`` (names), ``factors`` (dict of arrays: video
    factors ``(N,)`` keyed by :data:`VIDEO_FACTORS`, frame factors ``(N, T)`` keyed
    ``"frame.<name>"`` for :data:`FRAME_FACTORS`).
    """

    batch_size = 64

    def __init__(
        self,
        num_videos: int = 512,
        *,
        num_frames: int = 16,
        image_size: int = 32,
        appearance: Sequence[str] = ("object",),
        motions: Sequence[str] = DEFAULT_MOTIONS,
        foregrounds: str = "glyphs",
        backgrounds: str = "photos",
        num_classes: int | None = 8,
        num_colours: int = 6,
        num_textures: int = 4,
        object_scale: float = 0.5,
        speed: Sequence[float] = (0.6, 1.0),
        start_rotation: float = 30.0,
        num_backgrounds: int = 867,
        tracks_per_instance: int = 1,
        channels: int = 3,
        structure_seed: int = 0,
        content_seed: int = 0,
        motion_seed: int = 0,
        split: str = "train",
    ):
        appearance, motions = list(appearance), list(motions)
        if num_videos < 1:
            raise ConfigError(f"a controlled video set needs num_videos >= 1, got {num_videos}")
        if num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {num_frames}")
        if image_size < 4:
            raise ConfigError(f"image_size must be >= 4 pixels, got {image_size}")
        if split not in _SPLIT_TAGS:
            raise ConfigError(f"split must be one of {sorted(_SPLIT_TAGS)}, got {split!r}")
        bad = [a for a in appearance if a not in APPEARANCE_FACTORS]
        if bad or len(set(appearance)) != len(appearance):
            raise ConfigError(f"appearance must be distinct names from {APPEARANCE_FACTORS}, got {appearance}")
        bad = [m for m in motions if m not in MOTIONS]
        if bad or not motions or len(set(motions)) != len(motions):
            raise ConfigError(f"motions must be distinct names from {sorted(MOTIONS)}, got {motions}")
        if not 1 <= num_colours <= 12:
            raise ConfigError(f"num_colours must lie within [1, 12], got {num_colours}")
        if not 1 <= num_textures <= len(TEXTURES):
            raise ConfigError(f"num_textures must lie within [1, {len(TEXTURES)}], got {num_textures}")
        if not 0.05 <= object_scale <= 1.0:
            raise ConfigError(f"object_scale must lie within [0.05, 1], got {object_scale}")
        speed = tuple(float(s) for s in speed)
        if len(speed) != 2 or not 0 <= speed[0] <= speed[1]:
            raise ConfigError(f"speed must be a pair 0 <= low <= high, got {speed}")
        if tracks_per_instance < 1:
            raise ConfigError(f"tracks_per_instance must be >= 1, got {tracks_per_instance}")
        if channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {channels}")
        self.options = dict(
            num_frames=num_frames, image_size=image_size, appearance=appearance, motions=motions,
            foregrounds=foregrounds, backgrounds=backgrounds, num_classes=num_classes, num_colours=num_colours,
            num_textures=num_textures, object_scale=object_scale, speed=speed, start_rotation=float(start_rotation),
            num_backgrounds=num_backgrounds, tracks_per_instance=tracks_per_instance, channels=channels,
            structure_seed=structure_seed, content_seed=content_seed,
        )
        self.n, self.num_frames, self.split = int(num_videos), int(num_frames), split
        self.size = (image_size, image_size)
        self.channels = channels
        self.motion_seed = motion_seed

        fg = load_foregrounds(foregrounds)
        self.objects = _class_block(len(fg), num_classes, 0, structure_seed, f"foreground set {fg.source}")
        self.object_names = [fg.names[i] for i in self.objects]
        self._cells = fg.at_size(image_size, object_scale)[torch.from_numpy(self.objects)]  # (K, 4, S, S)
        self._luma = rgb_to_gray(self._cells[:, :3])  # (K, 1, S, S): the glyph's shading (outline dark)
        self._palette = _palette(num_colours)
        self.colour_names = _colour_names(num_colours)
        self.texture_names = list(TEXTURES[:num_textures])
        self._textures = torch.stack([_texture(t, image_size) for t in self.texture_names])  # (X, S, S)
        self._backgrounds = background_bank(backgrounds, image_size, num_backgrounds)

        # appearance classes: the product of the chosen factors, in order
        sizes = {"object": len(self.objects), "colour": num_colours, "texture": num_textures}
        names = {"object": self.object_names, "colour": self.colour_names, "texture": self.texture_names}
        self.appearance_factors = appearance
        self.appearance_classes = ["-".join(parts) for parts in _product([names[a] for a in appearance])] or ["any"]
        self.motion_classes = motions

        rng = np.random.default_rng(_stream_seed("video-content", content_seed, split))
        n_inst = -(-self.n // tracks_per_instance)
        k_app, k_mot = len(self.appearance_classes), len(motions)
        app = rng.permutation(np.arange(n_inst) % k_app)
        inst_factor = {}
        rest = app.copy()
        for a in reversed(appearance):  # decode the combined class into its factors
            inst_factor[a] = rest % sizes[a]
            rest = rest // sizes[a]
        for a in APPEARANCE_FACTORS:
            if a not in inst_factor:
                inst_factor[a] = rng.integers(0, sizes[a], n_inst)
        inst_bg = rng.integers(0, num_backgrounds, n_inst)
        self.instance_ids = np.arange(self.n, dtype=np.int64) // tracks_per_instance
        self.appearance_labels = app[self.instance_ids].astype(np.int64)
        self.motion_labels = rng.permutation(np.arange(self.n) % k_mot).astype(np.int64)  # independent draw
        self.object_ids = inst_factor["object"][self.instance_ids].astype(np.int64)  # index into self.objects
        self.colour_ids = inst_factor["colour"][self.instance_ids].astype(np.int64)
        self.texture_ids = inst_factor["texture"][self.instance_ids].astype(np.int64)
        self.background_ids = inst_bg[self.instance_ids].astype(np.int64)
        self._frames = self._trajectories()

    # -- motion ----------------------------------------------------------------------------
    def _trajectories(self) -> dict[str, np.ndarray]:
        o = self.options
        n, t, s = self.n, self.num_frames, o["image_size"]
        rng = np.random.default_rng(_stream_seed("video-motion", self.motion_seed, o["content_seed"], self.split))
        speed = rng.uniform(*o["speed"], n)
        signs = rng.choice([-1.0, 1.0], (n, 3))  # track: rotation, scale, lighting
        drift_dir = rng.uniform(0, 2 * math.pi, n)
        u_pos = rng.uniform(0, 1, (n, 2))
        angle0 = rng.uniform(-o["start_rotation"], o["start_rotation"], n)
        scale0 = np.exp(rng.uniform(math.log(0.85), math.log(1.15), n))
        light0 = rng.uniform(0.9, 1.1, n)
        rates = np.array([MOTIONS[m] for m in self.motion_classes], dtype=np.float64)[self.motion_labels]  # (n, 5)
        track = np.array([m == "track" for m in self.motion_classes])[self.motion_labels]
        rates[track, 0], rates[track, 1] = 0.3 * np.cos(drift_dir[track]), 0.3 * np.sin(drift_dir[track])
        rates[track, 2:] = signs[track] * np.array([1.0, 0.7, 0.75])
        tau = (np.arange(t) - (t - 1) / 2) / max(1, t - 1)  # -0.5 .. 0.5 over the video
        k = speed[:, None] * tau[None, :]  # (n, t)
        angle = angle0[:, None] + rates[:, 2:3] * _TURN * k
        scale = scale0[:, None] * np.exp(rates[:, 3:4] * _ZOOM * k)
        light = light0[:, None] + rates[:, 4:5] * _LIGHT * k
        # centre path: mid position drawn where the whole path keeps the object's centre
        # within the middle of the frame (margin half the largest object side)
        dx, dy = rates[:, 0:1] * _TRAVEL * s * k, rates[:, 1:2] * _TRAVEL * s * k
        half = 0.5 * o["object_scale"] * s * scale.max(1, keepdims=True)
        margin = np.minimum(half, s / 2 - 1)
        pos = []
        for d, u in ((dx, u_pos[:, 0:1]), (dy, u_pos[:, 1:2])):
            lo = margin - d.min(1, keepdims=True)
            hi = s - margin - d.max(1, keepdims=True)
            mid = np.where(hi >= lo, lo + u * (hi - lo), (lo + hi) / 2)
            pos.append(mid + d)
        return {"x": pos[0].astype(np.float32), "y": pos[1].astype(np.float32),
                "angle": angle.astype(np.float32), "scale": scale.astype(np.float32),
                "brightness": light.astype(np.float32), "speed": speed.astype(np.float32)}

    # -- fields ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.n

    @property
    def labels(self) -> dict[str, np.ndarray]:
        """``{"appearance": (N,), "motion": (N,), "joint": (N,)}`` (joint = appearance x motion)."""
        return {"appearance": self.appearance_labels, "motion": self.motion_labels,
                "joint": self.appearance_labels * len(self.motion_classes) + self.motion_labels}

    def classes(self, label: str) -> list[str]:
        """Class names for ``label`` (``appearance``, ``motion`` or ``joint``)."""
        if label == "appearance":
            return list(self.appearance_classes)
        if label == "motion":
            return list(self.motion_classes)
        if label == "joint":
            return [f"{a}_{m}" for a in self.appearance_classes for m in self.motion_classes]
        raise KeyError(f"label must be 'appearance', 'motion' or 'joint', got {label!r}")

    @property
    def factors(self) -> dict[str, np.ndarray]:
        """Video factors ``(N,)`` and frame factors ``(N, T)`` (``frame.x``, ``frame.y``:
        object centre in pixels; ``frame.angle``: degrees; ``frame.scale``: relative to
        ``object_scale``; ``frame.brightness``: the frame's lighting factor)."""
        out = {
            "appearance": self.appearance_labels, "motion": self.motion_labels,
            "object": self.objects[self.object_ids], "colour": self.colour_ids, "texture": self.texture_ids,
            "background": self.background_ids, "instance": self.instance_ids, "speed": self._frames["speed"],
        }
        out.update({f"frame.{k}": self._frames[k] for k in FRAME_FACTORS})
        return out

    # -- rendering ---------------------------------------------------------------------------
    def _layers(self, idx: np.ndarray) -> Tensor:
        """The RGBA object layers ``(B, 4, S, S)`` of videos ``idx`` at scale 1, centred."""
        cells = self._cells[torch.from_numpy(self.object_ids[idx])]
        luma = self._luma[torch.from_numpy(self.object_ids[idx])]
        tex = self._textures[torch.from_numpy(self.texture_ids[idx])].unsqueeze(1)
        colour = self._palette[torch.from_numpy(self.colour_ids[idx])].view(-1, 3, 1, 1)
        rgb = (0.2 + 0.8 * luma) * tex * colour
        return torch.cat([rgb, cells[:, 3:]], 1)

    def _matrices(self, idx: np.ndarray) -> Tensor:
        """Forward pixel maps ``(B*T, 3, 3)``: scale and rotate about the frame centre,
        then move the centre to ``(x, y)``."""
        s = self.size[0]
        f = {k: torch.from_numpy(self._frames[k][idx]).reshape(-1).double() for k in ("x", "y", "angle", "scale")}
        a = torch.deg2rad(f["angle"])
        c, si = torch.cos(a) * f["scale"], torch.sin(a) * f["scale"]
        m = torch.zeros(len(c), 3, 3, dtype=torch.float64)
        m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, si, -si, c
        centre = s / 2.0
        m[:, 0, 2] = f["x"] - (c * centre + si * centre)
        m[:, 1, 2] = f["y"] - (-si * centre + c * centre)
        m[:, 2, 2] = 1.0
        return m.float()

    @torch.no_grad()
    def render(self, index: Iterable[int] | Tensor | np.ndarray | slice) -> Tensor:
        """Float videos ``(B, C, T, H, W)`` in ``[0, 1]`` for ``index``."""
        idx = self._index(index)
        t, (h, w) = self.num_frames, self.size
        out = torch.empty(len(idx), self.channels, t, h, w)
        for s in range(0, len(idx), self.batch_size):
            b = idx[s : s + self.batch_size]
            layers = self._layers(b).repeat_interleave(t, 0)  # (B*T, 4, S, S)
            obj = warp_affine(layers, self._matrices(b), (h, w))
            bg = self._backgrounds[torch.from_numpy(self.background_ids[b])].float().div_(255.0)
            bg = bg.repeat_interleave(t, 0)
            alpha = obj[:, 3:].clamp(0.0, 1.0)
            frame = bg * (1 - alpha) + obj[:, :3].clamp(0.0, 1.0) * alpha
            light = torch.from_numpy(self._frames["brightness"][b]).reshape(-1, 1, 1, 1)
            frame = (frame * light).clamp_(0.0, 1.0)
            if self.channels == 1:
                frame = rgb_to_gray(frame)
            out[s : s + len(b)] = frame.view(len(b), t, self.channels, h, w).transpose(1, 2)
        return out

    def videos(self, index) -> Tensor:
        """uint8 videos ``(B, C, T, H, W)`` for ``index``."""
        return self.render(index).mul_(255.0).round_().to(torch.uint8)

    def to_video_array(self, label: str = "motion") -> VideoArray:
        """Every video rendered once into a uint8 :class:`VideoArray` labelled by
        ``label`` (``appearance``, ``motion`` or ``joint``); ``groups`` = instance ids."""
        arr = np.empty((self.n, self.channels, self.num_frames, *self.size), dtype=np.uint8)
        for s in range(0, self.n, self.batch_size):
            arr[s : s + self.batch_size] = self.videos(range(s, min(self.n, s + self.batch_size))).numpy()
        return VideoArray(arr, self.labels[label], self.classes(label), f"{self.source} by {label}", self.instance_ids)

    def _index(self, index) -> np.ndarray:
        if isinstance(index, slice):
            index = range(*index.indices(self.n))
        if isinstance(index, Tensor):
            index = index.cpu().numpy()
        idx = np.asarray(list(index) if not isinstance(index, np.ndarray) else index, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            raise IndexError(f"index out of range for a set of {self.n} videos")
        return idx

    def variant(self, motion_seed: int) -> ControlledVideos:
        """The same objects, backgrounds and motion classes along new trajectories."""
        return ControlledVideos(self.n, **self.options, motion_seed=motion_seed, split=self.split)

    @classmethod
    def from_spec(cls, spec: ControlledVideoSpec, split: str = "train", channels: int = 3) -> ControlledVideos:
        n = spec.train_samples if split == "train" else spec.test_samples
        return cls(n, num_frames=spec.num_frames, image_size=spec.image_size, appearance=spec.appearance,
                   motions=spec.motions, foregrounds=spec.foregrounds, backgrounds=spec.backgrounds,
                   num_classes=spec.num_classes, num_colours=spec.num_colours, num_textures=spec.num_textures,
                   object_scale=spec.object_scale, speed=spec.speed, start_rotation=spec.start_rotation,
                   num_backgrounds=spec.num_backgrounds, tracks_per_instance=spec.tracks_per_instance,
                   channels=channels, structure_seed=spec.structure_seed, content_seed=spec.content_seed,
                   motion_seed=spec.motion_seed, split=split)

    @property
    def source(self) -> str:
        o = self.options
        return (f"controlled-video[{o['foregrounds']} x {o['backgrounds']}; appearance {'+'.join(o['appearance'])} "
                f"({len(self.appearance_classes)}); motions {len(self.motion_classes)}; {self.num_frames}x"
                f"{o['image_size']}px; seeds {o['structure_seed']}/{o['content_seed']}/{self.motion_seed}; {self.split}]")


def _product(lists: list[list[str]]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for names in lists:
        out = [p + [n] for p in out for n in names]
    return out if lists else []


def _camel(name: str) -> str:
    """A UCF101-style class name: letters and digits only, CamelCase."""
    parts = re.split(r"[^0-9A-Za-z]+", name)
    out = "".join(p[:1].upper() + p[1:] for p in parts if p)
    return out or "Class"


def _snake(name: str) -> str:
    """An HMDB51-style class name: lower case words joined by underscores."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _class_folder_names(classes: list[str]) -> list[str]:
    names, seen = [], {}
    for c in classes:
        base = _camel(c)
        # glyph classes differ only in case ('a' vs 'A'): keep them distinct on
        # case-insensitive file systems
        key = base.lower()
        seen[key] = seen.get(key, 0) + 1
        names.append(base if seen[key] == 1 else f"{base}{seen[key]}")
    return names


def write_ucf101(root: str | Path, train: ControlledVideos, test: ControlledVideos, label: str = "motion",
                 fps: float = 8.0, ext: str = ".mp4", split: int = 1) -> Path:
    """Write ``train`` and ``test`` as real video files in UCF101's layout under ``root``:
    ``<Class>/v_<Class>_g<GG>_c<CC><ext>``, ``classInd.txt`` (``"1 Class"``),
    ``trainlist0<split>.txt`` (``"<Class>/<file> <label+1>"``) and ``testlist0<split>.txt``
    (``"<Class>/<file>"``). As in UCF101, groups 1-7 are the test groups and 8-25 the
    training groups (a video's group is its instance modulo those ranges). Returns ``root``."""
    from invlab.data.video.io import write_video

    root = Path(root)
    names = _class_folder_names(train.classes(label))
    if names != _class_folder_names(test.classes(label)):
        raise ConfigError("write_ucf101: train and test sets must have the same classes")
    root.mkdir(parents=True, exist_ok=True)
    (root / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(names)))
    for data, listname, groups, with_label in ((train, f"trainlist{split:02d}.txt", range(8, 26), True),
                                               (test, f"testlist{split:02d}.txt", range(1, 8), False)):
        labels, counters, lines = data.labels[label], {}, []
        for s in range(0, len(data), data.batch_size):
            batch = data.videos(range(s, min(len(data), s + data.batch_size))).numpy()
            for j, video in enumerate(batch):
                i = s + j
                c = names[labels[i]]
                g = groups[int(data.instance_ids[i]) % len(groups)]
                counters[(c, g)] = counters.get((c, g), 0) + 1
                rel = f"{c}/v_{c}_g{g:02d}_c{counters[(c, g)]:02d}{ext}"
                write_video(root / rel, video, fps=fps)
                lines.append(f"{rel} {labels[i] + 1}\n" if with_label else f"{rel}\n")
        (root / listname).write_text("".join(lines))
    return root


def write_hmdb51(root: str | Path, train: ControlledVideos, test: ControlledVideos, label: str = "motion",
                 fps: float = 8.0, ext: str = ".avi", split: int = 1, unused: int = 0) -> Path:
    """Write ``train`` and ``test`` in HMDB51's layout under ``root``: videos in
    ``videos/<class>/<class>_<i><ext>`` and per-class split files
    ``splits/<class>_test_split<split>.txt`` with lines ``"<file> <tag>"`` (1 = training,
    2 = testing, 0 = unused; the last ``unused`` training videos of each class are
    tagged 0, as HMDB51 leaves some out of each split). Returns ``root``."""
    from invlab.data.video.io import write_video

    root = Path(root)
    names = [_snake(n) for n in _class_folder_names(train.classes(label))]
    if names != [_snake(n) for n in _class_folder_names(test.classes(label))]:
        raise ConfigError("write_hmdb51: train and test sets must have the same classes")
    per_class: dict[str, list[str]] = {c: [] for c in names}
    for data, tag in ((train, 1), (test, 2)):
        labels = data.labels[label]
        for s in range(0, len(data), data.batch_size):
            batch = data.videos(range(s, min(len(data), s + data.batch_size))).numpy()
            for j, video in enumerate(batch):
                c = names[labels[s + j]]
                fname = f"{c}_{tag}_{s + j:05d}{ext}"
                write_video(root / "videos" / c / fname, video, fps=fps, codec="libx264")
                per_class[c].append(f"{fname} {tag}")
    (root / "splits").mkdir(parents=True, exist_ok=True)
    for c, lines in per_class.items():
        if unused:
            train_lines = [i for i, line in enumerate(lines) if line.endswith(" 1")]
            for i in train_lines[-unused:]:
                lines[i] = lines[i][:-1] + "0"
        (root / "splits" / f"{c}_test_split{split}.txt").write_text("".join(f"{line} \n" for line in lines))
    return root
