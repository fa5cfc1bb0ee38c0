"""What the video methods share on top of :class:`~invlab.methods.base.SSLMethod`
(optimiser and schedule, online linear probe, kNN monitor, divergence guard,
resume-exact epoch averages): batches of clips.

Training batches are ``{"video": uint8 (B, C, L, H, W), "label", "index"}`` where ``L``
is the loaded window (the data module's ``clip_len``); a method draws its views from it
with :class:`~invlab.transforms.video.ClipPairs` (temporal steps pick ``T <= L``
frames, spatial steps act per clip) with the step's generator
(:func:`~invlab.methods.base.step_generator`), so a resumed run draws the same views.
Validation batches are clips ``(B, C, T, H, W)``; ``eval_transform`` (e.g. a
:class:`~invlab.transforms.video.Spatial` resize) brings them to the training size.
"""

from __future__ import annotations

import torch
from torch import Tensor

from invlab.methods.base import SSLMethod, StepOutput, step_generator
from invlab.transforms.video import ClipPairs

__all__ = ["VideoSSLMethod"]


class VideoSSLMethod(SSLMethod):
    """Base class of video methods: implement :meth:`clip_loss` ``(x, generator) ->
    StepOutput`` with ``x`` float clips ``(B, C, L, H, W)`` in ``[0, 1]``."""

    def __init__(self, encoder, pairs: ClipPairs, **kwargs):
        super().__init__(encoder, None, **kwargs)
        self.pairs = pairs

    def clip_loss(self, x: Tensor, generator: torch.Generator) -> StepOutput:
        raise NotImplementedError

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        x = batch["video"]
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x
        g = step_generator(self.seed, self.global_rank, self.current_epoch, batch_idx)
        out = self.clip_loss(x, g)
        terms = dict(out.terms)
        loss = self.probe_step(out.features, batch, terms, out.loss)
        self.check_finite(loss, terms)
        self.log_training_step(out.loss, terms, x.shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        super().validation_step({"image": batch["video"], "label": batch["label"]}, batch_idx, dataloader_idx)
