"""SimCLR (Chen et al., "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020).

    for each batch x:
        x1, x2 = t1(x), t2(x)                   two views, parameters kept
        h1, h2 = f(x1), f(x2)                   backbone features
        z1, z2 = g(h1), g(h2)                   projector
        loss = NT-Xent(z1, z2; temperature)     all 2B-2 negatives (gathered across ranks)

``loss="info_nce"`` keeps only the other view's B-1 negatives per anchor (the E-SSL code's
SimCLR loss, :func:`~invlab.losses.contrastive.info_nce`).
"""

from __future__ import annotations

from dataclasses import dataclass

from invlab.errors import ConfigError
from invlab.losses.contrastive import info_nce, nt_xent
from invlab.methods.base import SSLMethod, StepOutput
from invlab.methods.spec import MethodSpec
from invlab.nn.heads import HeadSpec
from invlab.transforms.views import Views

__all__ = ["SimCLR", "SimCLRParams", "CONTRASTIVE_LOSSES", "SPEC", "validate_simclr"]

CONTRASTIVE_LOSSES = {"nt_xent": nt_xent, "info_nce": info_nce}


class SimCLR(SSLMethod):
    def __init__(self, encoder, views, *, projector: HeadSpec | None = None, temperature: float = 0.5,
                 gather: bool | None = None, loss: str = "nt_xent", **kwargs):
        super().__init__(encoder, views, **kwargs)
        if views.num_views != 2:
            raise ValueError(f"SimCLR uses exactly 2 views, got {views.num_views}")
        self.projector = (projector or HeadSpec([2048], 128)).build(encoder.feature_dim)
        if loss not in CONTRASTIVE_LOSSES:
            raise ValueError(f"SimCLR loss must be one of {sorted(CONTRASTIVE_LOSSES)}, got {loss!r}")
        self.temperature = temperature
        self.gather = gather
        self.loss_name = loss

    def training_loss(self, views: Views) -> StepOutput:
        b = views[0].x.shape[0]
        h = self.encoder(views.cat())  # one pass: BatchNorm sees both views
        z1, z2 = self.projector(h).chunk(2)
        loss = CONTRASTIVE_LOSSES[self.loss_name](z1, z2, self.temperature, self.gather)
        return StepOutput(loss, {self.loss_name: loss}, h[:b])


@dataclass
class SimCLRParams:
    """The recipe's ``params`` section for ``method: simclr``."""

    temperature: float = 0.5
    gather: bool | None = None
    loss: str = "nt_xent"  # nt_xent (all 2B-2 negatives) | info_nce (cross-view negatives only, E-SSL's)


def validate_simclr(cfg) -> None:
    if cfg.params.temperature <= 0:
        raise ConfigError("recipe key 'params.temperature' must be positive")
    if cfg.params.loss not in CONTRASTIVE_LOSSES:
        raise ConfigError(f"recipe key 'params.loss' must be nt_xent or info_nce, got {cfg.params.loss!r}")


SPEC = MethodSpec(name="simclr", modality="image", cls=SimCLR, params=SimCLRParams, views=2, validate=validate_simclr,
                  sync_batchnorm=True)  # "global BN" (Chen et al. 2020, sec. 2.2)
