"""Barlow Twins (Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy
Reduction", ICML 2021).

    x1, x2 = t1(x), t2(x)
    z1, z2 = g(f(x1)), g(f(x2))
    C = cross-correlation of batch-standardised z1, z2      (global batch across ranks)
    loss = sum_i (1 - C_ii)^2 + lambda * sum_{i!=j} C_ij^2
"""

from __future__ import annotations

from dataclasses import dataclass

from invlab.losses.barlow_twins import barlow_twins
from invlab.methods.base import SSLMethod, StepOutput
from invlab.methods.spec import MethodSpec
from invlab.nn.heads import HeadSpec
from invlab.transforms.views import Views

__all__ = ["BarlowTwins", "BarlowTwinsParams", "SPEC"]


class BarlowTwins(SSLMethod):
    def __init__(self, encoder, views, *, projector: HeadSpec | None = None, lambda_offdiag: float = 5e-3,
                 gather: bool | None = None, **kwargs):
        super().__init__(encoder, views, **kwargs)
        if views.num_views != 2:
            raise ValueError(f"Barlow Twins uses exactly 2 views, got {views.num_views}")
        self.projector = (projector or HeadSpec([2048, 2048], 2048)).build(encoder.feature_dim)
        self.lambda_offdiag = lambda_offdiag
        self.gather = gather

    def training_loss(self, views: Views) -> StepOutput:
        b = views[0].x.shape[0]
        h = self.encoder(views.cat())
        z1, z2 = self.projector(h).chunk(2)
        loss = barlow_twins(z1, z2, self.lambda_offdiag, self.gather)
        return StepOutput(loss, {"barlow_twins": loss}, h[:b])


@dataclass
class BarlowTwinsParams:
    """The recipe's ``params`` section for ``method: barlow_twins``."""

    lambda_offdiag: float = 5e-3
    gather: bool | None = None


SPEC = MethodSpec(name="barlow_twins", modality="image", cls=BarlowTwins, params=BarlowTwinsParams, views=2,
                  sync_batchnorm=True)  # the official main.py converts to SyncBatchNorm
