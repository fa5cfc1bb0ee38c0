"""Views: transformed copies of a batch together with the parameters that made them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from invlab.transforms.base import Params, Transform

__all__ = ["View", "Views", "MultiViewSampler"]


@dataclass
class View:
    """One view of a batch: ``x`` and the parameters ``params`` of ``transform``."""

    x: Tensor
    params: Params
    transform: Transform


@dataclass
class Views:
    """``V`` views of one batch. ``index`` identifies the source samples (``(B,)``),
    ``label`` holds their labels when known. Views may differ in size (e.g. E-SSL's small
    rotation view)."""

    views: list[View]
    index: Tensor | None = None
    label: Tensor | None = None
    stacked: Tensor | None = None  # all views concatenated, when made in one pass
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, i: int) -> View:
        return self.views[i]

    def __iter__(self):
        return iter(self.views)

    @property
    def tensors(self) -> list[Tensor]:
        return [v.x for v in self.views]

    def cat(self) -> Tensor:
        """All views along the batch dim, ``(V * B, ...)`` (no copy when made in one pass)."""
        return self.stacked if self.stacked is not None else torch.cat(self.tensors)


class MultiViewSampler:
    """Draw ``num_views`` independent views of a batch.

    ``transforms`` is one transform (used for every view) or one per view. Parameters are
    drawn on the CPU from ``generator`` so a seeded run gives the same views on any
    device; the images are transformed on the batch's own device.

    >>> sampler = MultiViewSampler(pipeline, num_views=2)
    >>> views = sampler(images, generator=g)     # views[0].x, views[0].params, ...

    ``shard=(rank, world)``: ``x`` is block ``rank`` of a global batch of ``world * B``
    samples split over ``world`` processes. The parameters are drawn for the whole global
    batch (exactly the draws one process would make) and this block's rows are kept, so
    the views of a sample depend on its place in the global batch, not on the process
    count. Drawing costs ``world`` times the (small) parameter draw; the images are only
    transformed for the local block.
    """

    def __init__(self, transforms: Transform | Sequence[Transform], num_views: int | None = None):
        if isinstance(transforms, Transform):
            if num_views is None:
                num_views = 2
            transforms = [transforms] * num_views
        transforms = list(transforms)
        if num_views is not None and num_views != len(transforms):
            raise ValueError(f"got {len(transforms)} transforms for {num_views} views")
        if not transforms:
            raise ValueError("a multi-view sampler needs at least one view")
        self.transforms = transforms

    @property
    def num_views(self) -> int:
        return len(self.transforms)

    def __call__(
        self,
        x: Tensor,
        generator: torch.Generator | None = None,
        index: Tensor | None = None,
        label: Tensor | None = None,
        shard: tuple[int, int] | None = None,
    ) -> Views:
        n, v = x.shape[0], self.num_views
        size = tuple(x.shape[-2:])
        rank, world = shard if shard is not None else (0, 1)
        if not 0 <= rank < world:
            raise ValueError(f"shard {shard}: rank must lie in [0, world)")

        def draw(t: Transform, copies: int) -> Params:
            if world == 1:
                return t.sample(n * copies, generator, device=x.device, size=size)
            full = t.sample(n * world * copies, generator, device=x.device, size=size)
            rows = torch.cat([torch.arange(c * n * world + rank * n, c * n * world + (rank + 1) * n)
                              for c in range(copies)]).to(x.device)
            return {k: p[rows] for k, p in full.items()}

        if v > 1 and all(t is self.transforms[0] for t in self.transforms):
            # one transform for every view: apply it once to the repeated batch (half the
            # kernel launches, and the concatenation methods want comes for free)
            t = self.transforms[0]
            params = draw(t, v)
            out = t.apply(x.repeat(v, *([1] * (x.dim() - 1))), params)
            views = [
                View(out[i * n : (i + 1) * n], {k: p[i * n : (i + 1) * n] for k, p in params.items()}, t)
                for i in range(v)
            ]
            return Views(views, index=index, label=label, stacked=out)
        views = []
        for t in self.transforms:
            params = draw(t, 1)
            views.append(View(t.apply(x, params), params, t))
        return Views(views, index=index, label=label)

    def __repr__(self) -> str:
        return f"MultiViewSampler({self.transforms!r})"
