"""E-SSL: equivariant self-supervised learning as a wrapper over any invariance method
(Dangovski et al., "Equivariant Contrastive Learning", ICLR 2022).

    x1, x2 = t1(x), t2(x)                      the base method's two views (unchanged)
    s = t_small(x)                             a third, smaller view (CIFAR: 16 px crop, scale 0.2-1)
    s_j, g_j = T(s; g_j)  for j = 1..copies    e.g. every image in all four rot90s (4B images)
    loss = L_base(x1, x2) + lambda * L_eq(head(f(s_j)), g_j)

``head`` reads the *backbone* features ``f`` (not the projector): by default a 3-layer MLP
with LayerNorm. ``T`` is any invlab transform (or a list of them); ``L_eq`` predicts its
parameters (:class:`~invlab.losses.equivariance.EquivarianceLoss`: cross-entropy for
discrete ones, regression for continuous ones, a circular loss for angles). With
``lambda = 0`` no extra view is drawn and the method *is* the base method: same views,
same loss, same updates.

``lambda`` defaults follow the paper: 0.4 for SimCLR and SimSiam, 8 for Barlow Twins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from invlab.errors import ConfigError
from invlab.losses.equivariance import EquivarianceLoss, prediction_layout
from invlab.methods.barlow_twins import BarlowTwins, BarlowTwinsParams
from invlab.methods.base import StepOutput, step_generator
from invlab.methods.simclr import SimCLR, SimCLRParams, validate_simclr
from invlab.methods.simsiam import SimSiam, SimSiamParams
from invlab.methods.spec import MethodSpec
from invlab.nn.heads import MLP
from invlab.transforms.base import Params, Transform
from invlab.transforms.copies import enumerable_key, transformed_copies
from invlab.transforms.registry import build_pipeline
from invlab.transforms.views import Views

__all__ = ["EquivarianceSpec", "Equivariant", "ESimCLR", "ESimSiam", "EBarlowTwins", "ESSL_CIFAR_VIEW",
           "ESimCLRParams", "ESimSiamParams", "EBarlowTwinsParams", "validate_equivariance", "SPECS"]

# The E-SSL CIFAR code's rotation view: a 16 px resized crop with the base colour augmentations.
ESSL_CIFAR_VIEW: list[dict[str, Any]] = [
    {"name": "crop", "size": 16, "scale": [0.2, 1.0]},
    {"name": "hflip", "p": 0.5},
    {"name": "jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1, "p": 0.8},
    {"name": "grayscale", "p": 0.2},
]


@dataclass
class EquivarianceSpec:
    """What to predict and how (the ``params.equivariance`` section of ``e_*`` recipes).

    weight: lambda (0 turns the objective off: the base method exactly).
    view: the extra view's pipeline (transform specs, or a Transform).
    target: the transformation(s) whose parameters are predicted (specs or a Transform).
    predict: which of the target's parameter keys to predict (default: all).
    copies: transformed copies of each extra view per step (4: rot90's four rotations).
    enumerate: a discrete parameter to cycle through all its values over the copies;
        ``"auto"`` picks the target's only scalar discrete/binary parameter when the
        copies cover its values evenly (see :func:`~invlab.transforms.copies.enumerable_key`).
    hidden, norm, activation: the head ``MLP(feature_dim, hidden, out, norm)``.
    """

    weight: float = 0.4
    view: list[dict[str, Any]] = field(default_factory=lambda: [dict(t) for t in ESSL_CIFAR_VIEW])
    target: list[dict[str, Any]] = field(default_factory=lambda: [{"name": "rot90"}])
    predict: list[str] | None = None
    copies: int = 4
    enumerate: str | None = "auto"
    hidden: list[int] = field(default_factory=lambda: [2048, 2048])
    norm: str = "layer"
    activation: str = "relu"


def _as_transform(spec: Transform | Sequence[dict[str, Any]], where: str) -> Transform:
    if isinstance(spec, Transform):
        return spec
    return build_pipeline(spec, where)


class Equivariant:
    """Mixin adding E-SSL's equivariance objective to an :class:`SSLMethod` subclass; list it
    first: ``class ESimCLR(Equivariant, SimCLR)``. The base method's ``training_loss`` runs
    untouched on the base views; the extra view is drawn from its own random stream (a
    pure function of seed, rank, epoch and batch, like the base views)."""

    default_weight = 0.4

    def __init__(self, encoder, views, *, equivariance: EquivarianceSpec | None = None, **kwargs):
        super().__init__(encoder, views, **kwargs)
        spec = equivariance if equivariance is not None else EquivarianceSpec(weight=self.default_weight)
        if spec.weight < 0:
            raise ValueError(f"the equivariance weight (lambda) must be >= 0, got {spec.weight}")
        self.equivariance_weight = float(spec.weight)
        self.small_view = _as_transform(spec.view, "equivariance.view")
        self.target = _as_transform(spec.target, "equivariance.target")
        self.copies = int(spec.copies)
        self.enumerate_key = enumerable_key(self.target, self.copies, spec.enumerate)
        self.equivariance_loss = EquivarianceLoss(self.target.param_specs(), spec.predict)
        # created after the base method's modules, so those initialise exactly as without it
        self.equivariance_head = MLP(encoder.feature_dim, spec.hidden, self.equivariance_loss.out_dim,
                                     norm=spec.norm, activation=spec.activation)

    def equivariance_generator(self, batch_idx: int) -> torch.Generator:
        """The extra view's random stream: separate from (and independent of) the base views'."""
        return step_generator(self.seed, self.global_rank, self.current_epoch, batch_idx, stream="equivariance")

    def equivariance_batch(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, Params]:
        """``x (B, C, H, W)`` in [0, 1] -> the ``copies * B`` transformed small views and
        their target parameters (copy-major, see :func:`transformed_copies`)."""
        small, _ = self.small_view(x, generator)
        return transformed_copies(small, self.target, self.copies, generator, self.enumerate_key)

    def make_views(self, batch: dict[str, Tensor], batch_idx: int) -> Views:
        views = super().make_views(batch, batch_idx)
        if self.equivariance_weight > 0:
            x = batch["image"]
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x
            views.extra["equivariance"] = self.equivariance_batch(x, self.equivariance_generator(batch_idx))
        return views

    def equivariance_terms(self, x: Tensor, params: Params) -> tuple[Tensor, dict[str, Tensor]]:
        """The equivariance loss of transformed images ``x`` with parameters ``params``,
        read from backbone features, and its named parts."""
        loss, terms = self.equivariance_loss(self.equivariance_head(self.encoder(x)), params)
        return loss, {f"equivariance/{k}": v for k, v in terms.items()}

    def training_loss(self, views: Views) -> StepOutput:
        out = super().training_loss(views)
        extra = views.extra.get("equivariance")
        if self.equivariance_weight == 0 or extra is None:
            return out
        eq, terms = self.equivariance_terms(*extra)
        return StepOutput(out.loss + self.equivariance_weight * eq, {**out.terms, "equivariance": eq, **terms},
                          out.features)


class ESimCLR(Equivariant, SimCLR):
    """SimCLR + equivariance (E-SimCLR; lambda 0.4)."""

    default_weight = 0.4


class ESimSiam(Equivariant, SimSiam):
    """SimSiam + equivariance (E-SimSiam; lambda 0.4 on CIFAR, the paper uses 0.08 on ImageNet)."""

    default_weight = 0.4


class EBarlowTwins(Equivariant, BarlowTwins):
    """Barlow Twins + equivariance (E-Barlow Twins; lambda 8)."""

    default_weight = 8.0


# -- recipe parameters: the base method's plus the `equivariance` section ---------------------
@dataclass
class ESimCLRParams(SimCLRParams):
    equivariance: EquivarianceSpec = field(default_factory=lambda: EquivarianceSpec(weight=0.4))


@dataclass
class ESimSiamParams(SimSiamParams):
    equivariance: EquivarianceSpec = field(default_factory=lambda: EquivarianceSpec(weight=0.4))


@dataclass
class EBarlowTwinsParams(BarlowTwinsParams):
    equivariance: EquivarianceSpec = field(default_factory=lambda: EquivarianceSpec(weight=8.0))


def validate_equivariance(cfg) -> None:
    """Checks of ``params.equivariance`` (names the recipe key on failure)."""
    spec = cfg.params.equivariance
    if spec.weight < 0:
        raise ConfigError(f"recipe key 'params.equivariance.weight' must be >= 0, got {spec.weight}")
    if spec.copies < 1:
        raise ConfigError(f"recipe key 'params.equivariance.copies' must be >= 1, got {spec.copies}")
    if spec.norm not in ("none", "batch", "layer", "batch_noaffine"):
        raise ConfigError(f"recipe key 'params.equivariance.norm' must be none, batch, layer or batch_noaffine, got {spec.norm!r}")
    build_pipeline(spec.view, "params.equivariance.view")
    target = build_pipeline(spec.target, "params.equivariance.target")
    try:
        enumerable_key(target, spec.copies, spec.enumerate)
        prediction_layout(target.param_specs(), spec.predict)
    except ValueError as err:
        raise ConfigError(f"recipe section 'params.equivariance': {err}") from None


def _validate_e_simclr(cfg) -> None:
    validate_simclr(cfg)
    validate_equivariance(cfg)


SPECS: tuple[MethodSpec, ...] = (
    # E-SSL keeps its base method's synchronised BatchNorm
    MethodSpec(name="e_simclr", modality="image", cls=ESimCLR, params=ESimCLRParams, views=2,
               validate=_validate_e_simclr, sync_batchnorm=True),
    MethodSpec(name="e_simsiam", modality="image", cls=ESimSiam, params=ESimSiamParams, views=2,
               validate=validate_equivariance, sync_batchnorm=True),
    MethodSpec(name="e_barlow_twins", modality="image", cls=EBarlowTwins, params=EBarlowTwinsParams, views=2,
               validate=validate_equivariance, sync_batchnorm=True),
)
