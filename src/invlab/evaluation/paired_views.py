"""Paired views for measuring what an encoder does with one transformation ``T``.

For a data set and ``T`` a :class:`PairedViews` gives, index by index, the same content
(object and background, or the same real image) under two independent draws of ``T``
(twins, for invariance) and under the identity (for equivariance), with ``T``'s
parameters known. ``T`` alone acts, as in the paper's single-transformation sets.

Data may be a :class:`~invlab.data.controlled.ControlledImages` (``T`` acts on the object
before pasting), a :class:`~invlab.data.controlled.TransformedImages`, an
:class:`~invlab.data.arrays.ImageArray` or a float tensor ``(N, C, H, W)`` in ``[0, 1]``
(``T`` acts on the whole image), or a batch of series ``(N, C, T)`` with a time-series
transformation (``ts_jitter``, ``time_warp``, ...; see :func:`series_transform_names`).
Video: a :class:`~invlab.data.video.arrays.VideoArray` or a clip tensor
``(N, C, T, H, W)``; ``T`` is a video transform (a temporal name such as
``temporal_crop``, an image transform name or spec applied per clip through
:class:`~invlab.transforms.video.Spatial`, or a clip Transform instance).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from invlab.data.arrays import ImageArray
from invlab.data.controlled import ControlledImages, TransformedImages
from invlab.data.video.arrays import VideoArray
from invlab.errors import ConfigError
from invlab.transforms.base import Compose, Params, Transform, select_params
from invlab.transforms.transforms2d import transform_spec_name

__all__ = ["PairedViews", "series_transform_names"]


def series_transform_names() -> list[str]:
    """The registered time-series transformations (canonical names, no aliases)."""
    from invlab.transforms.registry import TRANSFORM_KINDS, TRANSFORMS

    return sorted({TRANSFORMS[k].name for k, kind in TRANSFORM_KINDS.items() if kind == "series"})


def _series_transform(transform: str | dict | Transform) -> Transform:
    from invlab.transforms.registry import TRANSFORM_KINDS, build_transform

    if isinstance(transform, Transform):
        return transform
    name = transform.get("name") if isinstance(transform, dict) else transform
    if TRANSFORM_KINDS.get(name) != "series":
        raise ConfigError(f"{name!r} is not a time-series transformation; series take: "
                          f"{', '.join(series_transform_names())}")
    return build_transform(transform)


def _seed(base: int, tag: int) -> int:
    return (base * 1_000_003 + tag) % (2**62)


class PairedViews:
    """``T``-views of ``num_samples`` items of ``data``.

    ``render(index, view)``: ``view`` 0 and 1 are twins (independent draws of ``T``),
    ``"identity"`` the untransformed item. ``params[view]`` are the parameters of views 0
    and 1 (keys ``"<name>.<param>"``); ``transform`` is the one-step Compose they belong to.
    """

    def __init__(self, data: Any, transform: str | dict | Transform, num_samples: int | None = 1000, seed: int = 0):
        self.name = transform.name if isinstance(transform, Transform) else transform_spec_name(transform)
        if isinstance(data, VideoArray) or (isinstance(data, Tensor) and data.dim() == 5):
            n = len(data) if num_samples is None else min(num_samples, len(data))
            self._sets = [_VideoTwin(data, transform, n, _seed(seed, i + 1)) for i in range(2)]
            self.n = n
            self.transform = self._sets[0].pipeline
            self.params = [st.params for st in self._sets]
            self.labels = self._sets[0].labels
            return
        if isinstance(data, Tensor) and data.dim() == 3:
            self._series(data, _series_transform(transform), num_samples, seed)
            return
        if isinstance(data, Tensor):
            if data.dim() != 4:
                raise ValueError(
                    "tensors must be images (N, C, H, W), series (N, C, T) or clips (N, C, T, H, W), "
                    f"got {tuple(data.shape)}"
                )
            x = data.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
            data = ImageArray(x, np.full(len(x), -1, dtype=np.int64), [], "tensor")
        if isinstance(data, ImageArray):
            n = len(data) if num_samples is None else min(num_samples, len(data))
            data = data.subset(n, seed)
            data = TransformedImages(data, [], 0)
        if isinstance(transform, Transform):
            if not isinstance(data, TransformedImages):
                raise ConfigError(
                    "a controlled set takes transformation names or specs (its transformations act on the object); "
                    f"got a {type(transform).__name__} instance"
                )
            self._sets = [_FixedTransform(data, transform, _seed(seed, i + 1)) for i in range(2)]
            self.n = len(data)
        elif isinstance(data, (ControlledImages, TransformedImages)):
            n = len(data) if num_samples is None else min(num_samples, len(data))
            rows = np.arange(n)
            if isinstance(data, TransformedImages) and n < len(data):
                # a real data set is often stored class by class: its first n items would be a few classes
                rows = np.sort(np.random.default_rng(seed).choice(len(data), n, replace=False))
            sets = []
            for i in range(2):
                v = data.variant(transforms=[transform], transform_seed=_seed(seed, i + 1))
                sets.append(_Rows(v, rows))
            self._sets = sets
            self.n = n
        else:
            raise TypeError(
                "data must be ControlledImages, TransformedImages, an ImageArray or an image tensor, "
                f"got {type(data).__name__}"
            )
        self.transform: Compose = self._sets[0].pipeline
        self.params: list[Params] = [s.params for s in self._sets]
        self.labels = self._sets[0].labels

    def _series(self, x: Tensor, transform: Transform, num_samples: int | None, seed: int) -> None:
        x = x.detach().float().cpu()
        n = len(x) if num_samples is None else min(num_samples, len(x))
        rows = np.arange(n) if n == len(x) else np.sort(np.random.default_rng(seed).choice(len(x), n, replace=False))
        series = _SeriesSet(x[torch.from_numpy(rows)])
        self._sets = [_FixedTransform(series, transform, _seed(seed, i + 1), clamp=False) for i in range(2)]
        self.n = n
        self.transform = self._sets[0].pipeline
        self.params = [s.params for s in self._sets]
        self.labels = self._sets[0].labels

    def render(self, index, view: int | str = 0) -> Tensor:
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        if view == "identity":
            return self._sets[0].render(index, self.transform.identity_params(len(index)))
        return self._sets[int(view)].render(index)


class _Rows:
    """The samples ``rows`` of a factor set, re-indexed ``0..len(rows)-1``. A controlled
    set's items are independent draws, so its first ``n`` serve; a real data set gets a
    seeded random subset."""

    def __init__(self, data, rows: np.ndarray):
        self.data, self.rows = data, torch.as_tensor(rows, dtype=torch.long)
        self.n = len(rows)
        self.pipeline = data.pipeline
        self.params = select_params(data.params, self.rows)
        self.labels = np.asarray(data.labels)[rows]

    def render(self, index: Tensor, params: Params | None = None) -> Tensor:
        return self.data.render(self.rows[index], params)


class _SeriesSet:
    """Series ``(N, C, T)`` rendered by index (no labels)."""

    def __init__(self, x: Tensor):
        self.x = x
        self.size = (int(x.shape[1]), int(x.shape[2]))
        self.labels = np.full(len(x), -1, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.x)

    def render(self, index: Tensor) -> Tensor:
        return self.x[index]


class _FixedTransform:
    """A Transform instance on whole images (or series), its parameters drawn once."""

    def __init__(self, data, transform: Transform, seed: int, clamp: bool = True):
        self.data, self.clamp = data, clamp
        self.pipeline = Compose([transform])
        self.labels = np.asarray(data.labels)
        g = torch.Generator().manual_seed(seed)
        self.params = self.pipeline.sample(len(data), g, size=data.size)

    def render(self, index: Tensor, params: Params | None = None) -> Tensor:
        x = self.data.render(index)
        y = self.pipeline.apply(x, select_params(self.params, index) if params is None else params)
        return y.clamp(0, 1) if self.clamp else y


class _VideoTwin:
    """The first ``n`` clips under one draw of a video transform (parameters per clip)."""

    def __init__(self, data, transform, n: int, seed: int):
        from invlab.transforms.video import build_video_transform

        if isinstance(data, VideoArray):
            self.clips = torch.from_numpy(np.ascontiguousarray(data.videos[:n]))
            self.labels = np.asarray(data.labels)[:n]
        else:
            self.clips = data[:n].detach().cpu()
            self.labels = np.full(n, -1, dtype=np.int64)
        self.pipeline = Compose([build_video_transform(transform)])
        g = torch.Generator().manual_seed(seed)
        self.params = self.pipeline.sample(n, g, size=tuple(self.clips.shape[-2:]))

    def render(self, index: Tensor, params: Params | None = None) -> Tensor:
        x = self.clips[index]
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        return self.pipeline.apply(x, select_params(self.params, index) if params is None else params).clamp(0, 1)
