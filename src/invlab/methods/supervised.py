"""Supervised pretraining: cross-entropy on labels with a chosen augmentation set.

The protocol of Speicher et al. (TMLR 2024, "Understanding the Role of Invariance in
Transfer Learning") pretrains this way before transfer (Adam 1e-3, 50 epochs); the
classic baseline of every self-supervised paper too.

    for each batch (x, y):
        x' = t(x)                        one view, parameters kept (empty pipeline: x' = x)
        h = f(x')                        backbone features
        loss = CE(W h + b, y)            (optional label smoothing)

The classifier is the method's own head, so there is no separate online probe: its
test accuracy is logged as ``test/probe_top1`` next to the kNN monitor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invlab.errors import ConfigError, DataError
from invlab.methods.base import SSLMethod, StepOutput
from invlab.methods.spec import MethodSpec
from invlab.transforms.views import Views

__all__ = ["Supervised", "SupervisedParams", "SPEC"]


class Supervised(SSLMethod):
    needs_labels = True

    def __init__(self, encoder, views, *, num_classes: int | None = None, label_smoothing: float = 0.0, **kwargs):
        if not num_classes or num_classes < 2:
            raise ValueError(f"supervised pretraining needs the number of classes (>= 2), got {num_classes}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie within [0, 1), got {label_smoothing}")
        super().__init__(encoder, views, num_classes=num_classes, **kwargs)
        if views.num_views != 1:
            raise ValueError(f"supervised pretraining uses exactly 1 view, got {views.num_views}")
        self.probe = None  # the classifier below is the probe
        self.classifier = nn.Linear(encoder.feature_dim, num_classes)
        self.label_smoothing = label_smoothing

    def training_loss(self, views: Views) -> StepOutput:
        y = views.label
        labelled = self.step_labelled if self.step_labelled is not None else y is not None and bool((y >= 0).all())
        if y is None or not labelled:
            raise DataError("supervised pretraining needs a label for every training image (some are missing, -1)")
        h = self.encoder(views[0].x)
        logits = self.classifier(h)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            top1 = (logits.argmax(1) == y).float().mean()
        # train/top1 is an epoch mean of the base class's store (kept across a resume)
        return StepOutput(loss, {"cross_entropy": loss, "top1": top1}, h)

    def monitor_logits(self, feats: Tensor) -> Tensor:
        """``test/probe_top1`` of a supervised run is its classifier's accuracy."""
        return self.classifier(feats)


@dataclass
class SupervisedParams:
    """The recipe's ``params`` section for ``method: supervised``."""

    label_smoothing: float = 0.0


def _validate(cfg) -> None:
    if not 0 <= cfg.params.label_smoothing < 1:
        raise ConfigError("recipe key 'params.label_smoothing' must lie within [0, 1)")


SPEC = MethodSpec(name="supervised", modality="image", cls=Supervised, params=SupervisedParams, views=1,
                  needs_labels=True, validate=_validate)
