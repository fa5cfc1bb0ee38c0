"""SimCLR (Chen et al., "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020).

    for each batch x:
        x1, x2 = t1(x), t2(x)                   two views, parameters kept
        h1, h2 = f(x1), f(x2)                   backbone features
        z1, z2 = g(h1), g(h2)                   projector
        loss = NT-Xent(z1, z2; temperature)     all 2B-2 negatives (gathered across ranks)
"""

from __future__ import annotations

from invlab.losses.contrastive import nt_xent
from invlab.methods.base import SSLMethod, StepOutput
from invlab.nn.heads import HeadSpec
from invlab.transforms.views import Views

__all__ = ["SimCLR"]


class SimCLR(SSLMethod):
    def __init__(self, encoder, views, *, projector: HeadSpec | None = None, temperature: float = 0.5,
                 gather: bool | None = None, **kwargs):
        super().__init__(encoder, views, **kwargs)
        if views.num_views != 2:
            raise ValueError(f"SimCLR uses exactly 2 views, got {views.num_views}")
        self.projector = (projector or HeadSpec([2048], 128)).build(encoder.feature_dim)
        self.temperature = temperature
        self.gather = gather

    def training_loss(self, views: Views) -> StepOutput:
        b = views[0].x.shape[0]
        h = self.encoder(views.cat())  # one pass: BatchNorm sees both views
        z1, z2 = self.projector(h).chunk(2)
        loss = nt_xent(z1, z2, self.temperature, self.gather)
        return StepOutput(loss, {"nt_xent": loss}, h[:b])
