"""Video transforms on clips ``(B, C, T, H, W)`` with recorded parameters.

- :class:`Spatial` wraps any image transform (or a :class:`~invlab.transforms.base.Compose`
  of them) so it acts on clips with **one parameter draw per clip**, applied identically
  to every frame (the image kernels run on the ``B * T`` frames with each clip's
  parameters repeated ``T`` times).
- Temporal transforms pick, reorder or reverse frames: :class:`TemporalCrop` (offset and
  stride / playback speed; ``T`` frames out of a longer window), :class:`Reverse`,
  :class:`FrameShuffle`.
- :class:`ClipPairs` draws two views of each clip (temporal steps, then spatial steps)
  whose parameters are shared for chosen steps or families, the pair construction of
  HDC's spatial contrast (share the spatial augmentation, differ in time) and temporal
  contrast (share the frames, differ in spatial augmentation).

Temporal transforms are registered in :data:`VIDEO_TRANSFORMS`; :func:`build_video_pipeline`
builds ``(temporal, spatial)`` from recipe specs (spatial specs are ordinary image
transform specs).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from invlab.errors import ConfigError
from invlab.transforms.base import (
    Compose,
    Params,
    ParamSpec,
    Transform,
    _bernoulli,
    _check_probability,
)
from invlab.transforms.registry import build_pipeline, build_transform

__all__ = [
    "Spatial", "TemporalCrop", "Reverse", "FrameShuffle", "ClipPairs", "VIDEO_TRANSFORMS", "build_temporal",
    "build_video_pipeline", "build_video_transform", "frames_of", "clips_of",
]


def frames_of(x: Tensor) -> Tensor:
    """``(B, C, T, H, W) -> (B * T, C, H, W)`` (frame-major within each clip)."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w)


def clips_of(frames: Tensor, t: int) -> Tensor:
    """Inverse of :func:`frames_of`: ``(B * T, C, H, W) -> (B, C, T, H, W)``."""
    bt, c, h, w = frames.shape
    return frames.reshape(bt // t, t, c, h, w).transpose(1, 2)


def _check_clip(x: Tensor, who: str) -> None:
    if x.dim() != 5:
        raise ValueError(f"{who} expects clips (B, C, T, H, W), got shape {tuple(x.shape)}")


class Spatial(Transform):
    """An image ``transform`` applied to every frame of a clip with the clip's one draw.

    Same parameters and specs as the wrapped transform (one row per clip), so spatial
    equivariance targets and controlled factors carry over unchanged.
    """

    def __init__(self, transform: Transform):
        if not isinstance(transform, Transform):
            raise TypeError(f"Spatial expects an invlab Transform, got {type(transform).__name__}")
        self.transform = transform
        self.name = transform.name

    def param_specs(self) -> dict[str, ParamSpec]:
        return self.transform.param_specs()

    def _sample(self, n, generator, size=None) -> Params:
        return self.transform.sample(n, generator, size=size)

    def identity_params(self, n, device=None) -> Params:
        return self.transform.identity_params(n, device)

    def output_size(self, size):
        return self.transform.output_size(size)

    def apply(self, x: Tensor, params: Params) -> Tensor:
        _check_clip(x, "Spatial")
        t = x.shape[2]
        per_frame = {k: v.repeat_interleave(t, 0) for k, v in params.items()}
        return clips_of(self.transform.apply(frames_of(x), per_frame), t)

    def steps(self) -> list[tuple[str, Transform]]:
        return self.transform.steps() if isinstance(self.transform, Compose) else [(self.name, self.transform)]

    def __repr__(self) -> str:
        return f"Spatial({self.transform!r})"


def _gather_frames(x: Tensor, index: Tensor) -> Tensor:
    """``x (B, C, L, H, W)``, ``index (B, T)`` -> ``(B, C, T, H, W)``."""
    b = torch.arange(x.shape[0], device=x.device).view(-1, 1)
    return x.transpose(1, 2)[b, index.to(x.device)].transpose(1, 2)


class TemporalCrop(Transform):
    """``length`` frames every ``stride`` frames from a window of ``L >= length`` frames
    (``length=None``: half the window, at least one frame).

    Parameters: ``start`` in ``[0, 1]`` (where the clip starts within the free range
    ``L - span``; 0 = first frame, 1 = as late as possible) and ``speed`` (index into
    ``strides``: the playback speed). A window shorter than the span repeats its last
    frame. ``identity_params``: the centred clip at the first stride.
    """

    name = "temporal_crop"

    def __init__(self, length: int | None = None, strides: Sequence[int] = (1,)):
        strides = [int(s) for s in strides]
        if (length is not None and length < 1) or not strides or min(strides) < 1:
            raise ValueError(f"temporal_crop needs length >= 1 and strides >= 1, got {length}, {strides}")
        self.length, self.strides = (None if length is None else int(length)), strides

    def param_specs(self):
        specs = {"start": ParamSpec("continuous", 0.0, 1.0)}
        if len(self.strides) > 1:
            specs["speed"] = ParamSpec("discrete", num_classes=len(self.strides))
        return specs

    def _sample(self, n, generator, size=None):
        return {"start": torch.rand(n, generator=generator),
                "speed": torch.randint(0, len(self.strides), (n,), generator=generator)}

    def identity_params(self, n, device=None):
        return {"start": torch.full((n,), 0.5, device=device), "speed": torch.zeros(n, dtype=torch.long, device=device)}

    def indices(self, window: int, params: Params) -> Tensor:
        """Frame indices ``(B, length)`` within a window of ``window`` frames."""
        length = self.length if self.length is not None else max(1, window // 2)
        stride = torch.tensor(self.strides)[params["speed"].long().cpu()]
        free = (window - ((length - 1) * stride + 1)).clamp_min(0)
        start = torch.round(params["start"].cpu().double() * free).long()
        idx = start.view(-1, 1) + stride.view(-1, 1) * torch.arange(length).view(1, -1)
        return idx.clamp_max(window - 1)

    def apply(self, x, params):
        _check_clip(x, "TemporalCrop")
        self.check_params(x, params)
        return _gather_frames(x, self.indices(x.shape[2], params))

    def __repr__(self):
        return f"TemporalCrop(length={self.length}, strides={self.strides})"


class Reverse(Transform):
    """Play the clip backwards with probability ``p``. Parameter ``reverse`` (bool)."""

    name = "reverse"

    def __init__(self, p: float = 0.5):
        self.p = _check_probability(p)

    def param_specs(self):
        return {"reverse": ParamSpec("binary")}

    def _sample(self, n, generator, size=None):
        return {"reverse": _bernoulli(n, self.p, generator)}

    def identity_params(self, n, device=None):
        return {"reverse": torch.zeros(n, dtype=torch.bool, device=device)}

    def apply(self, x, params):
        _check_clip(x, "Reverse")
        self.check_params(x, params)
        on = params["reverse"].to(x.device).view(-1, 1, 1, 1, 1)
        return torch.where(on, x.flip(2), x)

    def __repr__(self):
        return f"Reverse(p={self.p})"


class FrameShuffle(Transform):
    """Shuffle the frames with probability ``p``. Parameters ``shuffle`` (bool) and
    ``key`` (int64: the permutation is a pure function of it and ``T``, so a draw can be
    replayed on clips of any length)."""

    name = "shuffle"

    def __init__(self, p: float = 0.5):
        self.p = _check_probability(p)

    def param_specs(self):
        return {"shuffle": ParamSpec("binary")}

    def _sample(self, n, generator, size=None):
        return {"shuffle": _bernoulli(n, self.p, generator),
                "key": torch.randint(0, 2**62, (n,), generator=generator)}

    def identity_params(self, n, device=None):
        return {"shuffle": torch.zeros(n, dtype=torch.bool, device=device),
                "key": torch.zeros(n, dtype=torch.long, device=device)}

    @staticmethod
    def permutation(key: int, t: int) -> Tensor:
        return torch.randperm(t, generator=torch.Generator().manual_seed(int(key)))

    def apply(self, x, params):
        _check_clip(x, "FrameShuffle")
        self.check_params(x, params)
        t = x.shape[2]
        keys = params.get("key", torch.zeros(x.shape[0], dtype=torch.long)).cpu().tolist()
        on = params["shuffle"].cpu().tolist()
        idx = torch.stack([self.permutation(k, t) if s else torch.arange(t) for k, s in zip(keys, on)])
        return _gather_frames(x, idx)

    def __repr__(self):
        return f"FrameShuffle(p={self.p})"


VIDEO_TRANSFORMS: dict[str, type[Transform]] = {
    "temporal_crop": TemporalCrop, "reverse": Reverse, "shuffle": FrameShuffle, "frame_shuffle": FrameShuffle,
}


def build_temporal(specs: Sequence[Mapping[str, Any] | str], where: str = "temporal") -> Compose:
    """A :class:`Compose` of temporal transforms from recipe specs."""
    if isinstance(specs, (str, Mapping)):
        raise ConfigError(f"{where}: expected a list of transform specs, got {specs!r}")
    out = []
    for i, spec in enumerate(specs):
        spec = {"name": spec} if isinstance(spec, str) else dict(spec)
        name = spec.pop("name", None)
        if name not in VIDEO_TRANSFORMS:
            raise ConfigError(f"{where}[{i}]: unknown temporal transform {name!r}; known: "
                              f"{', '.join(sorted(VIDEO_TRANSFORMS))}")
        cls = VIDEO_TRANSFORMS[name]
        accepted = set(inspect.signature(cls).parameters)
        unknown = [k for k in spec if k not in accepted]
        if unknown:
            raise ConfigError(f"{where}[{i}]: unknown option {unknown[0]!r} for {name!r}; options: "
                              f"{', '.join(sorted(accepted))}")
        try:
            out.append(cls(**spec))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}[{i}]: {name}: {err}") from None
    return Compose(out, name="temporal")


def build_video_transform(spec: Mapping[str, Any] | str | Transform, where: str = "transform") -> Transform:
    """One clip transform: a Transform instance as is, a temporal name or spec
    (:data:`VIDEO_TRANSFORMS`), or an image transform name or spec wrapped in
    :class:`Spatial` (one draw per clip)."""
    if isinstance(spec, Transform):
        return spec
    name = spec if isinstance(spec, str) else dict(spec).get("name")
    if name in VIDEO_TRANSFORMS:
        return build_temporal([spec], where).transforms[0]
    return Spatial(build_transform(spec, where))


def build_video_pipeline(temporal: Sequence[Any], spatial: Sequence[Any], where: str = "augment") -> ClipPairs:
    """Temporal and spatial steps from recipe specs (spatial: image transform specs)."""
    return ClipPairs(build_temporal(temporal, f"{where}.temporal"),
                     Spatial(build_pipeline(spatial, f"{where}.spatial")))


class ClipPairs:
    """Views of clips: ``temporal`` steps (on the loaded window), then ``spatial`` steps
    (one draw per clip), parameters keyed ``"temporal.<step>.<key>"`` and
    ``"spatial.<step>.<key>"``.

    :meth:`sample_pair` draws two parameter sets and copies the ``shared`` ones from the
    first to the second. ``shared`` names families (``"temporal"``, ``"spatial"``) or
    single steps (``"crop"``, ``"hflip"``, ``"jitter"``, ``"temporal_crop"``, ...).
    """

    def __init__(self, temporal: Compose, spatial: Spatial):
        self.temporal, self.spatial = temporal, spatial
        self.step_names = {"temporal": [n for n, _ in temporal.steps()],
                           "spatial": [n for n, _ in spatial.steps()]}

    def _keys_for(self, shared: Sequence[str], params: Params) -> list[str]:
        keys = []
        for s in shared:
            if s in ("temporal", "spatial"):
                keys += [k for k in params if k.startswith(s + ".")]
                continue
            fam = [f for f, names in self.step_names.items() if s in names]
            if not fam:
                raise ConfigError(f"cannot share {s!r}: not a family (temporal, spatial) nor a step "
                                  f"({', '.join(self.step_names['temporal'] + self.step_names['spatial'])})")
            keys += [k for k in params if k.startswith(f"{fam[0]}.{s}.")]
        return keys

    def sample(self, n: int, generator: torch.Generator | None, size: tuple[int, int]) -> Params:
        p = {f"temporal.{k}": v for k, v in self.temporal.sample(n, generator).items()}
        p.update({f"spatial.{k}": v for k, v in self.spatial.sample(n, generator, size=size).items()})
        return p

    def sample_pair(self, n: int, generator: torch.Generator | None, size: tuple[int, int],
                    shared: Sequence[str]) -> tuple[Params, Params]:
        a, b = self.sample(n, generator, size), self.sample(n, generator, size)
        for k in self._keys_for(shared, a):
            b[k] = a[k].clone()
        return a, b

    def apply(self, x: Tensor, params: Params) -> Tensor:
        """``x`` float ``(B, C, L, H, W)`` -> the views ``(B, C, T, H', W')``."""
        t = {k[len("temporal."):]: v for k, v in params.items() if k.startswith("temporal.")}
        s = {k[len("spatial."):]: v for k, v in params.items() if k.startswith("spatial.")}
        return self.spatial.apply(self.temporal.apply(x, t), s)
