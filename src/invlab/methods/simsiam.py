"""SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021).

    x1, x2 = t1(x), t2(x)
    z1, z2 = g(f(x1)), g(f(x2))                 projector (BN on its output)
    p1, p2 = q(z1), q(z2)                       bottleneck predictor
    loss = D(p1, sg(z2)) / 2 + D(p2, sg(z1)) / 2,   D = negative cosine
"""

from __future__ import annotations

from dataclasses import dataclass

from invlab.losses.simsiam import simsiam_loss
from invlab.methods.base import SSLMethod, StepOutput
from invlab.methods.spec import MethodSpec
from invlab.nn.heads import HeadSpec
from invlab.transforms.views import Views

__all__ = ["SimSiam", "SimSiamParams", "SPEC"]


class SimSiam(SSLMethod):
    def __init__(self, encoder, views, *, projector: HeadSpec | None = None, predictor: HeadSpec | None = None,
                 **kwargs):
        super().__init__(encoder, views, **kwargs)
        if views.num_views != 2:
            raise ValueError(f"SimSiam uses exactly 2 views, got {views.num_views}")
        projector = projector or HeadSpec([2048, 2048], 2048, last_norm="batch")
        predictor = predictor or HeadSpec([512], projector.out)
        if predictor.out != projector.out:
            raise ValueError(f"the predictor must output the projector's dim {projector.out}, got {predictor.out}")
        self.projector = projector.build(encoder.feature_dim)
        self.predictor = predictor.build(projector.out)

    def training_loss(self, views: Views) -> StepOutput:
        b = views[0].x.shape[0]
        h = self.encoder(views.cat())
        z = self.projector(h)
        p = self.predictor(z)
        z1, z2 = z.chunk(2)
        p1, p2 = p.chunk(2)
        loss = simsiam_loss(p1, p2, z1, z2)
        return StepOutput(loss, {"negative_cosine": loss}, h[:b])


@dataclass
class SimSiamParams:
    """The recipe's ``params`` section for ``method: simsiam`` (none: the heads are ``model.*``)."""


SPEC = MethodSpec(name="simsiam", modality="image", cls=SimSiam, params=SimSiamParams, views=2,
                  sync_batchnorm=True)  # the official main_simsiam.py converts to SyncBatchNorm
