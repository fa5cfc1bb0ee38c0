"""TS2Vec (Yue, Wang, Duan, Yang, Huang, Tong, Xu: "TS2Vec: Towards Universal Representation
of Time Series", AAAI 2022).

    x (B, C, T)                                 a batch of training series
    (window: a random max_train_length steps, one offset per batch, for longer series)
    crop_l ~ U{2^(u+1) .. T}; [a1, b1] of length crop_l inside [0, T]
    a2 ~ U{0 .. a1},  b2 ~ U{b1 .. T};  offset_b ~ U{-a2 .. T - b2}   per series
    view 1 = x_b[offset_b + a2 : offset_b + b1]  ->  r1 = f(view 1, mask 1)[:, -crop_l:]
    view 2 = x_b[offset_b + a1 : offset_b + b2]  ->  r2 = f(view 2, mask 2)[:, :crop_l]
    loss = hierarchical_contrastive_loss(r1, r2, alpha, temporal_unit)

Two overlapping crops of each series ("contextual consistency": the overlap
``[a1, b1]`` is seen in two contexts) go through the encoder with independent timestamp
masks (Bernoulli, ``mask_prob`` of steps masked); the representations of the overlap are
contrasted across series and across time at every scale. The crops and masks are drawn
from the step's generator (a pure function of seed, epoch and batch), so a resumed run
draws exactly what an uninterrupted one would.

As in the authors' code, the encoder used afterwards is the running uniform average of
the trained network's weights over all steps (its initialisation included; stochastic
weight averaging): ``encoder`` is that average and is what the run exports; ``network``
is the one the optimiser trains. The paper trains ``200`` iterations (``600`` when the
training split holds more than 100,000 values) at batch 8; :func:`ts2vec_iterations` and
:func:`epochs_for_iterations` turn that rule into the run's ``trainer.max_epochs``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import lightning as L
import torch
from torch import Tensor

from invlab.errors import ConfigError, DataError
from invlab.losses.ts2vec import hierarchical_contrastive_loss
from invlab.methods.base import step_generator
from invlab.methods.optim import OptimSpec
from invlab.methods.spec import MethodSpec
from invlab.methods.training import SeriesTrainingMethod
from invlab.nn.dilated_conv import TS2VecEncoder

__all__ = ["TS2Vec", "TS2VecParams", "SPEC", "ts2vec_iterations", "epochs_for_iterations", "contextual_crops"]


def ts2vec_iterations(num_values: int) -> int:
    """The paper's training length: 200 iterations for a training split of at most
    100,000 values (series x channels x steps), 600 above."""
    return 200 if num_values <= 100_000 else 600


def epochs_for_iterations(iterations: int, num_series: int, batch_size: int) -> int:
    """The fewest epochs giving at least ``iterations`` steps when an epoch is
    ``num_series // batch_size`` batches (the last partial batch dropped; one batch when
    the split is no larger than a batch)."""
    per_epoch = num_series // batch_size if num_series > batch_size else 1
    return math.ceil(iterations / per_epoch)


@dataclass
class Crops:
    """One step's crop positions: the overlap is ``[left, right)`` (``length`` steps); view 1
    spans ``[extended_left, right)``, view 2 ``[left, extended_right)``, both shifted by
    ``offsets (B,)`` per series."""

    length: int
    left: int
    right: int
    extended_left: int
    extended_right: int
    offsets: Tensor


def _randint(low: int, high: int, g: torch.Generator, size: tuple[int, ...] = ()) -> Tensor:
    return torch.randint(low, high, size, generator=g)  # in [low, high)


def contextual_crops(batch: int, length: int, g: torch.Generator, temporal_unit: int = 0) -> Crops:
    """Draw the two overlapping crops of TS2Vec for ``batch`` series of ``length`` steps."""
    shortest = 2 ** (temporal_unit + 1)
    if length < shortest:
        raise ValueError(f"series of {length} steps are shorter than the shortest crop TS2Vec draws "
                         f"(2^(temporal_unit+1) = {shortest} steps)")
    crop = int(_randint(shortest, length + 1, g))
    left = int(_randint(0, length - crop + 1, g))
    right = left + crop
    extended_left = int(_randint(0, left + 1, g))
    extended_right = int(_randint(right, length + 1, g))
    offsets = _randint(-extended_left, length - extended_right + 1, g, (batch,))
    return Crops(crop, left, right, extended_left, extended_right, offsets)


def take_per_row(x: Tensor, starts: Tensor, length: int) -> Tensor:
    """``x (B, C, T)`` -> ``(B, C, length)``: row ``b`` from step ``starts[b]``."""
    index = starts.to(x.device).view(-1, 1) + torch.arange(length, device=x.device)  # (B, length)
    return torch.gather(x, 2, index.unsqueeze(1).expand(-1, x.shape[1], -1))


class TS2Vec(SeriesTrainingMethod):
    """Args:
        encoder: the dilated-convolution encoder (:class:`~invlab.nn.dilated_conv.TS2VecEncoder`);
            trained as ``network``; ``encoder`` becomes its weight average.
        alpha: weight of the instance-wise term (``1 - alpha``: temporal).
        temporal_unit: the first scale with a temporal term (0: all of them).
        mask_prob: probability that a timestamp's latent vector is masked (0.5).
        max_train_length: longer training series are cut to a random window of this many
            steps per batch (``None``: never).
        optim: optimiser and schedule. seed: seeds the crops and masks.
        callbacks: extra Lightning callbacks the run attaches (e.g. encoder snapshots).
        augment: not used (TS2Vec's views are its crops and masks); refused when given.
    """

    def __init__(
        self,
        encoder: TS2VecEncoder,
        *,
        alpha: float = 0.5,
        temporal_unit: int = 0,
        mask_prob: float = 0.5,
        max_train_length: int | None = 3000,
        augment=None,
        optim: OptimSpec | None = None,
        seed: int = 0,
        callbacks: Sequence[L.Callback] = (),
    ):
        super().__init__()
        if not isinstance(encoder, TS2VecEncoder):
            raise TypeError(f"TS2Vec trains a TS2VecEncoder, got {type(encoder).__name__}")
        if augment is not None:
            raise ValueError("TS2Vec draws its views itself (crops and masks); it takes no augment pipeline")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        if temporal_unit < 0:
            raise ValueError(f"temporal_unit must be >= 0, got {temporal_unit}")
        if not 0.0 <= mask_prob < 1.0:
            raise ValueError(f"mask_prob must lie in [0, 1), got {mask_prob}")
        shortest = 2 ** (temporal_unit + 1)
        if max_train_length is not None and max_train_length < shortest:
            raise ValueError(f"max_train_length must be >= {shortest} (the shortest crop), got {max_train_length}")
        if encoder.seq_len < shortest:
            raise DataError(f"the training series have {encoder.seq_len} step(s), fewer than the shortest crop TS2Vec "
                            f"draws (2^(temporal_unit+1) = {shortest} steps)")
        self.network = encoder
        self.encoder = copy.deepcopy(encoder).requires_grad_(False)  # the weight average, exported
        self.register_buffer("averaged_steps", torch.ones((), dtype=torch.long))  # the initialisation counts once
        self.alpha, self.temporal_unit, self.mask_prob = float(alpha), int(temporal_unit), float(mask_prob)
        self.max_train_length = max_train_length
        self.optim_spec = optim or OptimSpec(name="adamw", lr=1e-3, weight_decay=1e-2, warmup_epochs=0,
                                             schedule="constant")
        self.seed = seed
        self._callbacks = list(callbacks)

    # -- the algorithm ------------------------------------------------------------------------
    def timestamp_mask(self, batch: int, length: int, g: torch.Generator, device: torch.device) -> Tensor:
        """Kept steps ``(batch, length)``: each masked with probability ``mask_prob``."""
        return (torch.rand(batch, length, generator=g) >= self.mask_prob).to(device)

    def pretext_loss(self, x: Tensor, g: torch.Generator) -> Tensor:
        """The hierarchical contrastive loss of a batch ``x (B, C, T)`` (crops, masks from ``g``)."""
        if x.dim() != 3:
            raise ValueError(f"expected series (B, C, T), got shape {tuple(x.shape)}")
        if self.max_train_length is not None and x.shape[-1] > self.max_train_length:
            start = int(_randint(0, x.shape[-1] - self.max_train_length + 1, g))
            x = x[..., start : start + self.max_train_length]
        b, length = x.shape[0], x.shape[-1]
        c = contextual_crops(b, length, g, self.temporal_unit)
        len1, len2 = c.right - c.extended_left, c.extended_right - c.left
        view1 = take_per_row(x, c.offsets + c.extended_left, len1)
        view2 = take_per_row(x, c.offsets + c.left, len2)
        r1 = self.network(view1, self.timestamp_mask(b, len1, g, x.device))[:, -c.length :]
        r2 = self.network(view2, self.timestamp_mask(b, len2, g, x.device))[:, : c.length]
        return hierarchical_contrastive_loss(r1, r2, self.alpha, self.temporal_unit)

    @torch.no_grad()
    def update_average(self) -> None:
        """``encoder <- encoder + (network - encoder) / (n + 1)``: the uniform average of all steps."""
        n = self.averaged_steps.to(torch.float64)
        for avg, p in zip(self.encoder.parameters(), self.network.parameters(), strict=True):
            avg.add_((p.detach() - avg) / (n + 1).to(avg.dtype))
        self.averaged_steps += 1

    # -- Lightning ------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        g = step_generator(self.seed, self.global_rank, self.current_epoch, batch_idx)
        loss = self.pretext_loss(batch["series"], g)
        self.check_finite(loss, {"hierarchical_contrastive": loss})
        self.log_training_step(loss, {}, batch["series"].shape[0])
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        super().on_train_batch_end(outputs, batch, batch_idx)
        self.update_average()  # after the optimiser step of this batch

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        g = step_generator(self.seed, self.global_rank, 0, batch_idx, stream="validation")
        loss = self.pretext_loss(batch["series"], g)
        self.log("val/loss", loss, on_step=False, on_epoch=True, batch_size=batch["series"].shape[0], prog_bar=True)



# -- recipe ---------------------------------------------------------------------------------
@dataclass
class TS2VecParams:
    """The recipe's ``params`` section for ``method: ts2vec``."""

    alpha: float = 0.5
    temporal_unit: int = 0
    mask_prob: float = 0.5
    max_train_length: int | None = 3000


def _validate(cfg) -> None:
    p = cfg.params
    if cfg.model.backbone != "dilated_conv":
        raise ConfigError(f"method ts2vec trains the dilated-convolution encoder: set model.backbone=dilated_conv "
                          f"(got {cfg.model.backbone!r})")
    if cfg.data.name != "ucr":
        raise ConfigError("method ts2vec is wired for classification here: set data.name=ucr")
    if cfg.augment.pipeline:
        raise ConfigError("recipe key 'augment.pipeline': TS2Vec draws its own views (crops and masks); leave it empty")
    if not 0 <= p.alpha <= 1:
        raise ConfigError(f"recipe key 'params.alpha' must lie in [0, 1], got {p.alpha}")
    if p.temporal_unit < 0:
        raise ConfigError(f"recipe key 'params.temporal_unit' must be >= 0, got {p.temporal_unit}")
    if not 0 <= p.mask_prob < 1:
        raise ConfigError(f"recipe key 'params.mask_prob' must lie in [0, 1), got {p.mask_prob}")
    if p.max_train_length is not None and p.max_train_length < 2 ** (p.temporal_unit + 1):
        raise ConfigError(f"recipe key 'params.max_train_length' must be >= {2 ** (p.temporal_unit + 1)}, "
                          f"got {p.max_train_length}")


SPEC = MethodSpec(name="ts2vec", modality="timeseries", cls=TS2Vec, params=TS2VecParams, validate=_validate)
