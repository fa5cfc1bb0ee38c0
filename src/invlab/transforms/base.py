"""The transform contract: parameterised group actions whose parameters are kept.

A :class:`Transform` separates *drawing* a transformation from *applying* it::

    params = t.sample(n, generator)     # dict of tensors, each with leading dim n
    y = t.apply(x, params)              # batched, pure function of (x, params)

so the same object serves as augmentation, as an equivariance prediction target, as a
learned distribution's support, as a factor of variation in a controlled data set and as
a probe of a trained encoder. ``apply`` is differentiable in ``x`` and, where the
mathematics allows, in continuous parameters.

Parameters of composite transforms live in one flat dict with dotted keys
(``"crop.box"``, ``"jitter.fired"``), so they can be indexed, concatenated and saved like
any other tensors (see :func:`select_params`, :func:`cat_params`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

Params = dict[str, Tensor]

__all__ = [
    "Params",
    "ParamSpec",
    "Transform",
    "AffineTransform",
    "Identity",
    "Compose",
    "RandomApply",
    "select_params",
    "cat_params",
    "warp_affine",
]


@dataclass(frozen=True)
class ParamSpec:
    """What one parameter of a transform is, so heads and probes can predict it.

    kind:
        ``"continuous"`` (values in ``[low, high]``), ``"angle"`` (periodic with
        ``period``), ``"discrete"`` (integers ``0..num_classes-1``) or ``"binary"``.
    shape:
        per-sample shape (``()`` for scalars, ``(4,)`` for a crop box).
    """

    kind: str
    low: float = 0.0
    high: float = 1.0
    num_classes: int = 0
    shape: tuple[int, ...] = ()
    period: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("continuous", "angle", "discrete", "binary"):
            raise ValueError(f"unknown parameter kind {self.kind!r}")
        if self.kind == "discrete" and self.num_classes < 2:
            raise ValueError("a discrete parameter needs num_classes >= 2")
        if self.kind == "binary":
            object.__setattr__(self, "num_classes", 2)
        if self.kind == "angle" and self.period <= 0:
            raise ValueError("an angle parameter needs a positive period")


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


def _bernoulli(n: int, p: float, generator: torch.Generator | None) -> Tensor:
    return torch.rand(n, generator=generator) < p


def _check_range(name: str, value: Sequence[float], lo: float = -math.inf, hi: float = math.inf):
    value = tuple(float(v) for v in value)
    if len(value) != 2 or not value[0] <= value[1]:
        raise ValueError(f"{name} must be a pair (low, high) with low <= high, got {value}")
    if value[0] < lo or value[1] > hi:
        raise ValueError(f"{name} must lie within [{lo}, {hi}], got {value}")
    return value


def _check_probability(p: float, name: str = "p") -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    return p


class Transform:
    """Base class. Subclasses define :meth:`param_specs`, :meth:`sample`,
    :meth:`identity_params` and :meth:`apply`.

    Inputs are float images ``(N, C, H, W)`` in ``[0, 1]`` (images), or whatever the
    modality's docstring says. Sampling draws on the CPU from ``generator`` (so runs are
    reproducible whatever the device) and moves the result to ``device``.
    """

    name: str = "transform"
    is_affine: bool = False

    # -- to implement -------------------------------------------------------------------
    def param_specs(self) -> dict[str, ParamSpec]:
        return {}

    def _sample(self, n: int, generator: torch.Generator | None, size=None) -> Params:
        return {}

    def identity_params(self, n: int, device: torch.device | str | None = None) -> Params:
        return {}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        raise NotImplementedError

    # -- shared behaviour ---------------------------------------------------------------
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        size: tuple[int, int] | None = None,
    ) -> Params:
        """Draw parameters for ``n`` samples: a dict of tensors with leading dim ``n``.

        ``size`` is the spatial size of the inputs the parameters are for; only
        transforms whose distribution depends on it (crops of non-square images) read it.
        """
        if n < 0:
            raise ValueError(f"cannot sample a negative number of parameters ({n})")
        params = self._sample(n, generator, size)
        if device is not None:
            device = torch.device(device)
            # host-to-accelerator copies of the (small) parameters need not block the host
            # (MPS excepted: pytorch/pytorch#83015)
            non_blocking = device.type not in ("cpu", "mps")
            params = {k: v.to(device, non_blocking=non_blocking) for k, v in params.items()}
        return params

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """Spatial size of the output for an input of ``size`` (default: unchanged)."""
        return size

    def __call__(
        self, x: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Params]:
        params = self.sample(x.shape[0], generator, device=x.device, size=tuple(x.shape[-2:]))
        return self.apply(x, params), params

    def check_params(self, x: Tensor, params: Params) -> None:
        """Raise a clear error if ``params`` does not fit this transform and batch."""
        missing = [k for k in self.param_specs() if k not in params]
        if missing:
            raise KeyError(
                f"{self.name}: parameters {missing} are missing "
                f"(got {sorted(params)}); draw them with {type(self).__name__}.sample()"
            )
        for key in self.param_specs():
            if params[key].shape[:1] != x.shape[:1]:
                raise ValueError(
                    f"{self.name}: parameter {key!r} has leading dim {params[key].shape[0]} "
                    f"but the batch has {x.shape[0]} samples"
                )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class AffineTransform(Transform):
    """A spatial transform that is an affine map of the image plane.

    Subclasses give :meth:`matrix`, the forward map from input to output pixel
    coordinates in the *continuous* convention (the image spans ``[0, W] x [0, H]``,
    pixel ``i``'s centre sits at ``i + 0.5``). :class:`Compose` multiplies consecutive
    affine steps and resamples once, which is both faster and sharper than warping once
    per step.
    """

    is_affine = True
    mode: str = "bilinear"
    padding_mode: str = "zeros"
    # True when the inverse map sends the output canvas into the input canvas (crops,
    # flips, rot90, resize): fusing such a step after earlier ones cannot bring pixels
    # from outside the intermediate image into view, so fusion changes no result.
    preserves_canvas: bool = False

    def apply_exact(self, x: Tensor, params: Params) -> Tensor | None:
        """An exact, index-based implementation (flips, rot90) or ``None``."""
        return None

    def matrix(self, params: Params, size: tuple[int, int]) -> Tensor:
        """Forward affine maps ``(n, 3, 3)`` for inputs of spatial ``size`` (``(1, 3, 3)``
        for transforms without parameters; it broadcasts)."""
        raise NotImplementedError

    def apply(self, x: Tensor, params: Params) -> Tensor:
        self.check_params(x, params)
        exact = self.apply_exact(x, params)
        if exact is not None:
            return exact
        size = (x.shape[-2], x.shape[-1])
        return warp_affine(
            x, self.matrix(params, size), self.output_size(size), self.mode, self.padding_mode
        )


def warp_affine(
    x: Tensor,
    matrix: Tensor,
    out_size: tuple[int, int],
    mode: str = "bilinear",
    padding_mode: str = "zeros",
) -> Tensor:
    """Resample ``x (N, C, H, W)`` under forward pixel maps ``matrix (N, 3, 3)``.

    Matches torchvision's ``resized_crop`` / ``affine`` with ``align_corners=False``
    pixel geometry; exact (up to float rounding) for flips and 90-degree rotations.
    """
    n, _, h, w = x.shape
    oh, ow = out_size
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    matrix = matrix.to(device=x.device, dtype=dtype)
    if matrix.shape[0] != n:  # parameter-free maps come as (1, 3, 3)
        matrix = matrix.expand(n, 3, 3)
    # normalised [-1, 1] <-> continuous pixel coordinates (align_corners=False)
    to_norm_in = torch.tensor(
        [[2.0 / w, 0, -1], [0, 2.0 / h, -1], [0, 0, 1]], dtype=dtype, device=x.device
    )
    from_norm_out = torch.tensor(
        [[ow / 2.0, 0, ow / 2.0], [0, oh / 2.0, oh / 2.0], [0, 0, 1]], dtype=dtype, device=x.device
    )
    theta = to_norm_in @ torch.linalg.inv(matrix) @ from_norm_out
    grid = F.affine_grid(theta[:, :2, :], [n, x.shape[1], oh, ow], align_corners=False)
    return F.grid_sample(x, grid.to(x.dtype), mode=mode, padding_mode=padding_mode, align_corners=False)


class Identity(Transform):
    """Does nothing; has no parameters."""

    name = "identity"

    def apply(self, x: Tensor, params: Params) -> Tensor:
        return x


def _is_exact(t: Transform) -> bool:
    inner = t.transform if isinstance(t, RandomApply) else t
    method = getattr(type(inner), "apply_exact", None)
    return method is not None and method is not AffineTransform.apply_exact


def _unique_names(transforms: Iterable[Transform]) -> list[str]:
    names: list[str] = []
    for t in transforms:
        base = t.name
        name, i = base, 2
        while name in names:
            name, i = f"{base}_{i}", i + 1
        names.append(name)
    return names


def _sub(params: Params, prefix: str) -> Params:
    prefix = prefix + "."
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


class Compose(Transform):
    """Apply transforms in order; parameters are keyed ``"<step name>.<key>"``.

    Step names are the transforms' ``name`` attributes, made unique with a suffix
    (``"hflip"``, ``"hflip_2"``). Runs of consecutive affine steps are fused into one
    resampling.
    """

    name = "compose"

    def __init__(self, transforms: Sequence[Transform], name: str | None = None):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not isinstance(t, Transform):
                raise TypeError(f"Compose expects invlab Transforms, got {type(t).__name__}")
        self.names = _unique_names(self.transforms)
        if name is not None:
            self.name = name
        self.is_affine = bool(self.transforms) and all(t.is_affine for t in self.transforms)
        self.preserves_canvas = all(getattr(t, "preserves_canvas", False) for t in self.transforms)
        if self.is_affine:
            self.mode, self.padding_mode = self.transforms[0].mode, self.transforms[0].padding_mode

    def steps(self) -> list[tuple[str, Transform]]:
        return list(zip(self.names, self.transforms))

    def param_specs(self) -> dict[str, ParamSpec]:
        return {
            f"{name}.{k}": spec
            for name, t in self.steps()
            for k, spec in t.param_specs().items()
        }

    def _sample(self, n: int, generator: torch.Generator | None, size=None) -> Params:
        out: Params = {}
        for name, t in self.steps():
            out.update({f"{name}.{k}": v for k, v in t.sample(n, generator, size=size).items()})
            if size is not None:
                size = t.output_size(size)
        return out

    def identity_params(self, n: int, device=None) -> Params:
        out: Params = {}
        for name, t in self.steps():
            out.update({f"{name}.{k}": v for k, v in t.identity_params(n, device).items()})
        return out

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        for t in self.transforms:
            size = t.output_size(size)
        return size

    def matrix(self, params: Params, size: tuple[int, int]) -> Tensor:
        total = None
        for name, t in self.steps():
            m = t.matrix(_sub(params, name), size)
            total = m if total is None else m @ total
            size = t.output_size(size)
        return total

    def apply(self, x: Tensor, params: Params) -> Tensor:
        self.check_params(x, params)
        steps = self.steps()
        i = 0
        while i < len(steps):
            name, t = steps[i]
            if not t.is_affine:
                x = t.apply(x, _sub(params, name))
                i += 1
                continue
            # a run: this affine step and the canvas-preserving affine steps after it
            j = i + 1
            while j < len(steps) and steps[j][1].is_affine and steps[j][1].preserves_canvas:
                j += 1
            run = steps[i:j]
            i = j
            if len(run) == 1 or all(_is_exact(s) for _, s in run):
                for name, s in run:  # nothing to fuse, or exact index ops are cheaper
                    x = s.apply(x, _sub(params, name))
                continue
            size = (x.shape[-2], x.shape[-1])
            total, out_size = None, size
            for name, s in run:
                m = s.matrix(_sub(params, name), out_size)
                total = m if total is None else m @ total
                out_size = s.output_size(out_size)
            x = warp_affine(x, total, out_size, run[0][1].mode, run[0][1].padding_mode)
        return x

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class RandomApply(Transform):
    """Apply ``transform`` to each sample with probability ``p``.

    Parameters: ``fired`` (bool, ``(n,)``) plus the inner transform's own, which are
    drawn for every sample whether or not it fires, so replays and twins stay aligned.
    """

    def __init__(self, transform: Transform, p: float = 0.5):
        if not isinstance(transform, Transform):
            raise TypeError(f"RandomApply expects an invlab Transform, got {type(transform).__name__}")
        self.transform = transform
        self.p = _check_probability(p)
        self.name = transform.name
        self.is_affine = transform.is_affine
        if self.is_affine:
            self.mode = transform.mode
            self.padding_mode = transform.padding_mode
            self.preserves_canvas = transform.preserves_canvas

    def param_specs(self) -> dict[str, ParamSpec]:
        return {"fired": ParamSpec("binary"), **self.transform.param_specs()}

    def _sample(self, n: int, generator: torch.Generator | None, size=None) -> Params:
        fired = _bernoulli(n, self.p, generator)
        return {"fired": fired, **self.transform.sample(n, generator, size=size)}

    def identity_params(self, n: int, device=None) -> Params:
        params = self.transform.identity_params(n, device)
        params["fired"] = torch.zeros(n, dtype=torch.bool, device=device)
        return params

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        out = self.transform.output_size(size)
        if out != size:
            raise ValueError(
                f"RandomApply cannot wrap {self.name}: it changes the image size, so "
                "skipped and applied samples would not stack"
            )
        return out

    def matrix(self, params: Params, size: tuple[int, int]) -> Tensor:
        inner = {k: v for k, v in params.items() if k != "fired"}
        m = self.transform.matrix(inner, size)
        eye = torch.eye(3, dtype=m.dtype, device=m.device).expand_as(m)
        return torch.where(params["fired"].to(m.device).view(-1, 1, 1), m, eye)

    def apply(self, x: Tensor, params: Params) -> Tensor:
        self.check_params(x, params)
        if self.is_affine and not _is_exact(self):
            size = (x.shape[-2], x.shape[-1])
            return warp_affine(x, self.matrix(params, size), self.output_size(size), self.mode, self.padding_mode)
        # every sample's output is computed and the fired ones kept: asking whether any
        # fired would make the host wait for the device
        fired = params["fired"].to(x.device)
        inner = {k: v for k, v in params.items() if k != "fired"}
        y = self.transform.apply(x, inner)
        return torch.where(fired.view(-1, *([1] * (x.dim() - 1))), y, x)

    def __repr__(self) -> str:
        return f"RandomApply({self.transform!r}, p={self.p})"


def select_params(params: Params, index: Tensor | slice) -> Params:
    """Rows ``index`` of every parameter tensor."""
    return {k: v[index] for k, v in params.items()}


def cat_params(params: Sequence[Params]) -> Params:
    """Concatenate parameter dicts along the batch dimension (keys must agree)."""
    if not params:
        return {}
    keys = set(params[0])
    for p in params[1:]:
        if set(p) != keys:
            raise KeyError(f"cannot concatenate parameters with keys {sorted(keys)} and {sorted(p)}")
    return {k: torch.cat([p[k] for p in params]) for k in params[0]}
