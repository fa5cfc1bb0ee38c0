"""TimeDRL (Chang, Chen, Wu, Chen, Huang: "TimeDRL: Disentangled Representation Learning
for Multivariate Time-Series", ICDE 2024).

    xn = InstanceNorm(x)                                   per series and channel, no affine
    x1 = x2 = xn                                           randomness = dropout only
    z1 = f([CLS], Patch(x1));  z2 = f([CLS], Patch(x2))    two passes, dropout active
    t* = z*[:, 1:]   timestamp embeddings;   i* = z*[:, 0]   instance embeddings
    L_pred = (MSE(h(t1), Patch(xn)) + MSE(h(t2), Patch(xn))) / 2      h: Dropout -> Linear(D, P')
    L_con  = -(cos(sg(i1), g(i2)) + cos(sg(i2), g(i1))) / 2           g: D -> D/2 (BN, ReLU, Dropout) -> D
    loss   = w_pred L_pred + lambda L_con

The two passes run as one batched call (dropout masks are drawn independently per
element, and nothing in the encoder mixes samples, so this equals two calls in
distribution); the predictor ``g`` runs once per pass, so its BatchNorm sees each pass
alone, as in the paper's code.

Ablation switches: ``randomness="augmentation"`` (two augmented views of ``xn`` instead of
dropout alone), ``stop_gradient=False``, ``instance="last" | "mean"`` instead of [CLS],
and a loss weight of 0 switches a term off. ``predictive_target="raw"`` reconstructs the
patches of the input before instance normalisation, as the authors' code does (the paper
reconstructs the normalised patches, the default here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invlab.errors import ConfigError
from invlab.losses.timedrl import instance_contrastive_loss, timestamp_predictive_loss
from invlab.methods.base import step_generator
from invlab.methods.optim import OptimSpec
from invlab.methods.spec import MethodSpec, check_choice
from invlab.methods.training import SeriesTrainingMethod
from invlab.nn.patch_transformer import PatchTransformer
from invlab.transforms.base import Transform

__all__ = ["TimeDRL", "TimeDRLParams", "SPEC"]


class TimeDRL(SeriesTrainingMethod):
    """Args:
        encoder: the patch Transformer (instance norm, patching, [CLS], embeddings).
        contrastive_weight: ``lambda`` (0 switches the instance-contrastive term off).
        predictive_weight: weight of the timestamp-predictive term (0 switches it off).
        stop_gradient: stop-gradient on the instance embeddings (off: collapse ablation).
        instance: ``"cls"``, ``"last"`` or ``"mean"`` (of the timestamp tokens).
        randomness: ``"dropout"`` (same input twice) or ``"augmentation"`` (two views of
            the normalised input drawn from ``augment``).
        predictive_target: ``"normalized"`` or ``"raw"`` patches (see the module docstring).
        optim: optimiser and schedule. seed: seeds the augmentation draws.
        callbacks: extra Lightning callbacks the run attaches (e.g. encoder snapshots).
    """

    def __init__(
        self,
        encoder: PatchTransformer,
        *,
        contrastive_weight: float = 0.5,
        predictive_weight: float = 1.0,
        stop_gradient: bool = True,
        instance: str = "cls",
        randomness: str = "dropout",
        augment: Transform | None = None,
        predictive_target: str = "normalized",
        optim: OptimSpec | None = None,
        seed: int = 0,
        callbacks: Sequence[L.Callback] = (),
    ):
        super().__init__()
        if contrastive_weight < 0 or predictive_weight < 0 or contrastive_weight + predictive_weight == 0:
            raise ValueError("loss weights must be >= 0 and not both 0")
        if instance not in ("cls", "last", "mean"):
            raise ValueError(f"instance must be cls, last or mean, got {instance!r}")
        if randomness not in ("dropout", "augmentation"):
            raise ValueError(f"randomness must be dropout or augmentation, got {randomness!r}")
        if randomness == "augmentation" and augment is None:
            raise ValueError("randomness='augmentation' needs an augment transform")
        if predictive_target not in ("normalized", "raw"):
            raise ValueError(f"predictive_target must be normalized or raw, got {predictive_target!r}")
        self.encoder = encoder
        d, p = encoder.d_model, encoder.config["dropout"]
        self.predictive_head = nn.Sequential(nn.Dropout(p), nn.Linear(d, encoder.token_dim))
        self.predictor = nn.Sequential(
            nn.Linear(d, d // 2), nn.BatchNorm1d(d // 2), nn.ReLU(), nn.Dropout(p), nn.Linear(d // 2, d)
        )
        self.contrastive_weight, self.predictive_weight = float(contrastive_weight), float(predictive_weight)
        self.stop_gradient, self.instance = stop_gradient, instance
        self.randomness, self.augment = randomness, augment
        self.predictive_target = predictive_target
        self.optim_spec = optim or OptimSpec(name="adamw", lr=1e-3, weight_decay=1e-2, warmup_epochs=0)
        self.seed = seed
        self._callbacks = list(callbacks)

    # -- the algorithm ------------------------------------------------------------------------
    def two_views(self, xn: Tensor, batch_idx: int) -> tuple[Tensor, Tensor]:
        if self.randomness == "dropout":
            return xn, xn
        g = step_generator(self.seed, self.global_rank, self.current_epoch, batch_idx)
        size = tuple(xn.shape[-2:])
        p1 = self.augment.sample(xn.shape[0], g, device=xn.device, size=size)
        p2 = self.augment.sample(xn.shape[0], g, device=xn.device, size=size)
        return self.augment.apply(xn, p1), self.augment.apply(xn, p2)

    def pretext_losses(self, x: Tensor, batch_idx: int = 0) -> dict[str, Tensor]:
        """All terms for a batch ``x (B, C, L)``: ``loss``, ``predictive``, ``contrastive``
        and ``instance_std`` (std of the L2-normalised instance embeddings; ~0 = collapse)."""
        enc = self.encoder
        xn, _ = enc.normalize(x)
        x1, x2 = self.two_views(xn, batch_idx)
        patches = enc.patchify(torch.cat([x1, x2]))
        z1, z2 = enc.transform_tokens(patches).chunk(2)
        target = enc.patchify(xn if self.predictive_target == "normalized" else x)
        terms: dict[str, Tensor] = {}
        loss = x.new_zeros(())
        if self.predictive_weight > 0:
            recon1, recon2 = self.predictive_head(z1[:, 1:]), self.predictive_head(z2[:, 1:])
            terms["predictive"] = timestamp_predictive_loss(recon1, recon2, target)
            loss = loss + self.predictive_weight * terms["predictive"]
        i1, i2 = enc.instance_embedding(z1, self.instance), enc.instance_embedding(z2, self.instance)
        if self.contrastive_weight > 0:
            q1, q2 = self.predictor(i1), self.predictor(i2)
            terms["contrastive"] = instance_contrastive_loss(i1, i2, q1, q2, self.stop_gradient)
            loss = loss + self.contrastive_weight * terms["contrastive"]
        terms["instance_std"] = F.normalize(i1.detach(), dim=-1).std(dim=0).mean()
        terms["loss"] = loss
        return terms

    # -- Lightning ------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        terms = self.pretext_losses(batch["series"], batch_idx)
        loss, instance_std = terms.pop("loss"), terms.pop("instance_std")
        self.check_finite(loss, terms)
        # epoch means of loss, predictive, contrastive and instance_std (kept across a resume)
        self.log_training_step(loss, {**terms, "instance_std": instance_std}, batch["series"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        terms = self.pretext_losses(batch["series"], batch_idx)
        bs = batch["series"].shape[0]
        for name, value in terms.items():
            self.log(f"val/{name}", value, on_step=False, on_epoch=True, batch_size=bs, prog_bar=name == "loss")



# -- recipe ---------------------------------------------------------------------------------
@dataclass
class TimeDRLParams:
    """The recipe's ``params`` section for ``method: timedrl``."""

    contrastive_weight: float = 0.5  # lambda
    predictive_weight: float = 1.0
    stop_gradient: bool = True
    instance: str = "cls"  # cls | last | mean
    randomness: str = "dropout"  # dropout | augmentation
    predictive_target: str = "normalized"  # normalized | raw (the authors' code)


def _validate(cfg) -> None:
    p = cfg.params
    check_choice("params.instance", p.instance, ("cls", "last", "mean"))
    check_choice("params.randomness", p.randomness, ("dropout", "augmentation"))
    check_choice("params.predictive_target", p.predictive_target, ("normalized", "raw"))
    if p.contrastive_weight < 0 or p.predictive_weight < 0 or p.contrastive_weight + p.predictive_weight == 0:
        raise ConfigError("recipe keys 'params.contrastive_weight' and 'params.predictive_weight' must be >= 0, not both 0")
    if p.randomness == "augmentation" and not cfg.augment.pipeline:
        raise ConfigError("recipe key 'augment.pipeline' is empty but params.randomness=augmentation needs transforms")
    if p.contrastive_weight > 0 and p.randomness == "dropout" and cfg.model.dropout == 0:
        raise ConfigError("params.randomness=dropout with model.dropout=0 makes the two passes identical; "
                          "raise model.dropout or use augmentation")


SPEC = MethodSpec(name="timedrl", modality="timeseries", cls=TimeDRL, params=TimeDRLParams, validate=_validate)
