"""Object-level transforms for compositing an RGBA object onto a background:
:class:`PlaceObject` (the Transforms-2D translation) and :class:`ColourChannels` (a colour
transform on the colour channels only, alpha untouched)."""

from __future__ import annotations

import torch
from torch import Tensor

from invlab.transforms.base import (
    ParamSpec,
    Transform,
)
from invlab.transforms.image.kernels import alpha_channel

__all__ = ["PlaceObject", "ColourChannels"]


class PlaceObject(Transform):
    """Move the object so its bounding box lands uniformly anywhere it fits (the
    Transforms-2D translation), by whole pixels (no resampling).

    The object is where the alpha channel (last of 2 or 4 channels) exceeds
    ``threshold``; 1- and 3-channel images are one full-size box and do not move.
    Parameter ``position (n, 2)``: ``(u, v)`` in ``[0, 1]``, where the box lands within the
    free horizontal / vertical range (0 = left/top edge, 0.5 = centred, 1 = right/bottom).
    ``identity_params`` centres the box, which leaves a centred object in place.
    """

    name = "translate"

    def __init__(self, threshold: float = 0.02):
        self.threshold = float(threshold)

    def param_specs(self):
        return {"position": ParamSpec("continuous", 0.0, 1.0, shape=(2,))}

    def _sample(self, n, generator, size=None):
        return {"position": torch.rand(n, 2, generator=generator)}

    def identity_params(self, n, device=None):
        return {"position": torch.full((n, 2), 0.5, device=device)}

    @staticmethod
    def _span(occupied: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """First and last occupied index along the last dim, and whether any is."""
        length = occupied.shape[-1]
        any_ = occupied.any(-1)
        first = occupied.float().argmax(-1)
        last = length - 1 - occupied.flip(-1).float().argmax(-1)
        return first, last, any_

    def shifts(self, x: Tensor, position: Tensor) -> tuple[Tensor, Tensor]:
        """Integer pixel shifts ``(dx, dy)``, each ``(n,)``, that place the object."""
        n, _, h, w = x.shape
        alpha = alpha_channel(x)
        position = position.to(device=x.device, dtype=torch.float64)
        if alpha is None:
            zero = torch.zeros(n, dtype=torch.long, device=x.device)
            return zero, zero
        occupied = alpha[:, 0].detach() > self.threshold  # (n, h, w)
        c0, c1, any_c = self._span(occupied.any(1))
        r0, r1, _ = self._span(occupied.any(2))
        lo_x, hi_x = -c0.double(), (w - 1 - c1).double()
        lo_y, hi_y = -r0.double(), (h - 1 - r1).double()
        dx = torch.round(lo_x + position[:, 0] * (hi_x - lo_x)).long()
        dy = torch.round(lo_y + position[:, 1] * (hi_y - lo_y)).long()
        return torch.where(any_c, dx, 0), torch.where(any_c, dy, 0)

    def apply(self, x, params):
        self.check_params(x, params)
        n, _, h, w = x.shape
        dx, dy = self.shifts(x, params["position"])
        src_r = torch.arange(h, device=x.device).view(1, h) - dy.view(n, 1)  # (n, h)
        src_c = torch.arange(w, device=x.device).view(1, w) - dx.view(n, 1)  # (n, w)
        valid = ((src_r >= 0) & (src_r < h)).unsqueeze(2) & ((src_c >= 0) & (src_c < w)).unsqueeze(1)
        b = torch.arange(n, device=x.device).view(n, 1, 1)
        out = x[b, :, src_r.clamp(0, h - 1).unsqueeze(2), src_c.clamp(0, w - 1).unsqueeze(1)]  # (n, h, w, c)
        out = out.permute(0, 3, 1, 2)
        return out * valid.unsqueeze(1).to(x.dtype)

    def __repr__(self):
        return f"PlaceObject(threshold={self.threshold})"


class ColourChannels(Transform):
    """Apply ``transform`` to the colour channels only; an alpha channel (the last of 2
    or 4 channels) passes through unchanged. Same name, parameters and specs as
    ``transform``, so it can replace it inside a :class:`~invlab.transforms.base.Compose`."""

    def __init__(self, transform: Transform):
        if not isinstance(transform, Transform):
            raise TypeError(f"ColourChannels expects an invlab Transform, got {type(transform).__name__}")
        if transform.output_size((8, 8)) != (8, 8):
            raise ValueError(f"ColourChannels cannot wrap {transform.name}: it changes the image size")
        self.transform = transform
        self.name = transform.name

    def param_specs(self):
        return self.transform.param_specs()

    def _sample(self, n, generator, size=None):
        return self.transform.sample(n, generator, size=size)

    def identity_params(self, n, device=None):
        return self.transform.identity_params(n, device)

    def apply(self, x, params):
        if alpha_channel(x) is None:
            return self.transform.apply(x, params)
        colour = self.transform.apply(x[:, :-1], params)
        return torch.cat([colour, x[:, -1:]], 1)

    def __repr__(self):
        return f"ColourChannels({self.transform!r})"
