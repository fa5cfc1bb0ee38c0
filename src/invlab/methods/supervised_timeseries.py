"""Supervised baseline for time-series classification, in the same harness as TimeDRL:
the same patch Transformer, a linear classifier on the instance embedding, cross-entropy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lightning as L
import torch.nn.functional as F
from torch import Tensor, nn

from invlab.methods.optim import OptimSpec
from invlab.methods.spec import MethodSpec, check_choice
from invlab.methods.training import SeriesTrainingMethod
from invlab.nn.patch_transformer import PatchTransformer

__all__ = ["SupervisedTimeSeries", "SupervisedTimeSeriesParams", "SPEC"]


class SupervisedTimeSeries(SeriesTrainingMethod):
    """The supervised baseline in the same harness: the same encoder and a linear
    classifier on the instance embedding (``Dropout -> Linear``), trained end to end with
    cross-entropy on the labelled training split."""

    def __init__(
        self,
        encoder: PatchTransformer,
        num_classes: int,
        *,
        instance: str = "cls",
        label_smoothing: float = 0.0,
        optim: OptimSpec | None = None,
        seed: int = 0,
        callbacks: Sequence[L.Callback] = (),
    ):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"classification needs at least 2 classes, got {num_classes}")
        self.encoder = encoder
        width = encoder.d_model * (encoder.in_channels if encoder.channel_independent else 1)
        self.classifier = nn.Sequential(nn.Dropout(encoder.config["dropout"]), nn.Linear(width, num_classes))
        self.instance, self.label_smoothing = instance, float(label_smoothing)
        self.optim_spec = optim or OptimSpec(name="adamw", lr=1e-3, weight_decay=1e-2, warmup_epochs=0)
        self.seed = seed
        self._callbacks = list(callbacks)

    def logits(self, x: Tensor) -> Tensor:
        tokens = self.encoder(x)
        return self.classifier(self.encoder.per_series(self.encoder.instance_embedding(tokens, self.instance)))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self.logits(batch["series"])
        loss = F.cross_entropy(logits, batch["label"], label_smoothing=self.label_smoothing)
        self.check_finite(loss, {"cross_entropy": loss})
        top1 = (logits.argmax(1) == batch["label"]).float().mean()
        self.log_training_step(loss, {"top1": top1}, batch["series"].shape[0])  # epoch means kept across a resume
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        logits = self.logits(batch["series"])
        bs = batch["series"].shape[0]
        self.log("val/loss", F.cross_entropy(logits, batch["label"]), on_epoch=True, batch_size=bs)
        self.log("val/top1", (logits.argmax(1) == batch["label"]).float().mean(), on_epoch=True, batch_size=bs,
                 prog_bar=True)



# -- recipe ---------------------------------------------------------------------------------
@dataclass
class SupervisedTimeSeriesParams:
    """The recipe's ``params`` section for ``method: supervised_ts``."""

    instance: str = "cls"
    label_smoothing: float = 0.0


def _validate(cfg) -> None:
    check_choice("params.instance", cfg.params.instance, ("cls", "last", "mean"))


SPEC = MethodSpec(name="supervised_ts", modality="timeseries", cls=SupervisedTimeSeries,
                  params=SupervisedTimeSeriesParams, needs_labels=True, validate=_validate)
