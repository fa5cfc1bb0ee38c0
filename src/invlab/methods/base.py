"""What every self-supervised method shares: views, optimiser and schedule, an online
linear probe and a kNN monitor on detached features, and the divergence guard.

A method subclasses :class:`SSLMethod` and implements :meth:`SSLMethod.training_loss`,
which reads like the paper's algorithm box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invlab.data.sharding import drop_padding
from invlab.evaluation.knn import knn_accuracy
from invlab.methods.optim import OptimSpec, build_optimizer, param_groups
from invlab.methods.training import EpochAverages, TrainingMethod, per_step_schedule
from invlab.nn.encoder import Encoder
from invlab.seeding import stream_generator
from invlab.transforms.base import Transform
from invlab.transforms.views import MultiViewSampler, Views

__all__ = ["StepOutput", "SSLMethod", "EpochAverages", "step_generator"]


@dataclass
class StepOutput:
    """``loss``: the objective to minimise; ``terms``: its named parts (for logging and
    the divergence guard); ``features``: backbone features ``(B, D)`` of the first view,
    which the online probe reads detached."""

    loss: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
    features: Tensor | None = None


def step_generator(seed: int, rank: int, epoch: int, batch_idx: int, stream: str = "views") -> torch.Generator:
    """The augmentation RNG of one training step: a pure function of where the run is,
    so a resumed run draws exactly the views an uninterrupted one would. ``stream`` names
    an independent stream (``"views"``; E-SSL's extra view uses ``"equivariance"``; the
    global RNG that dropout draws from is seeded from ``"global"`` by the run); any
    integer seed works (hashed into 63 bits by :func:`~invlab.seeding.derive_seed`)."""
    return stream_generator(stream, seed, rank, epoch, batch_idx)


class SSLMethod(TrainingMethod):
    """Base class.

    Args:
        encoder: normalisation + backbone (:class:`~invlab.nn.Encoder`).
        views: the multi-view sampler that makes the training views (on the batch's
            device, after transfer).
        num_classes: classes for the online linear probe (``None``: no probe).
        optim: optimiser and schedule.
        knn_k, knn_t: kNN monitor settings (run at each validation epoch when the data
            module provides ``[bank, query]`` validation loaders).
        seed: seeds the augmentation draws (see :func:`step_generator`).
        eval_transform: deterministic transform for validation inputs (e.g. a resize).
    """

    def __init__(
        self,
        encoder: Encoder,
        views: MultiViewSampler,
        num_classes: int | None = None,
        optim: OptimSpec | None = None,
        knn_k: int = 200,
        knn_t: float = 0.1,
        seed: int = 0,
        eval_transform: Transform | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.views = views
        self.optim_spec = optim or OptimSpec()
        self.num_classes = num_classes
        self.probe = nn.Linear(encoder.feature_dim, num_classes) if num_classes else None
        self.knn_k, self.knn_t = knn_k, knn_t
        self.seed = seed
        self.eval_transform = eval_transform
        self._val: dict[int, tuple[list[Tensor], list[Tensor], list[Tensor]]] = {}
        self.step_labelled: bool | None = None

    # -- to implement --------------------------------------------------------------------
    def training_loss(self, views: Views) -> StepOutput:
        raise NotImplementedError

    # -- training ------------------------------------------------------------------------
    def make_views(self, batch: dict[str, Tensor], batch_idx: int) -> Views:
        x = batch["image"]
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        # one stream for the global batch, of which this process keeps its block: the views
        # of a sample are the same on any number of processes (the data shards are blocks
        # of the global batch too, invlab.data.sharding)
        g = step_generator(self.seed, 0, self.current_epoch, batch_idx)
        shard = (self.global_rank, self.trainer.world_size) if self._trainer is not None else None
        return self.views(x, g, index=batch.get("index"), label=batch.get("label"), shard=shard)

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        # whether every sample has a label, decided on the host before the batch moves, so
        # the step never waits for the device to answer it
        if isinstance(batch, dict) and torch.is_tensor(batch.get("label")) and "labelled" not in batch:
            batch = {**batch, "labelled": bool((batch["label"] >= 0).all())}
        return batch

    @staticmethod
    def all_labelled(batch: dict) -> bool:
        """Whether every sample of ``batch`` has a label (``>= 0``): the ``labelled`` flag
        :meth:`on_before_batch_transfer` set, else (a step called outside Lightning) the labels."""
        label = batch.get("label")
        if label is None:
            return False
        flag = batch.get("labelled")
        return bool((label >= 0).all()) if flag is None else bool(flag)

    def probe_step(self, features: Tensor | None, batch: dict, terms: dict[str, Tensor], loss: Tensor) -> Tensor:
        """Train the online probe on detached ``features`` when every sample is labelled:
        adds ``probe`` and ``probe_top1`` to ``terms`` and returns ``loss + probe loss``."""
        if self.probe is None or features is None or not self.all_labelled(batch):
            return loss
        label = batch["label"]
        logits = self.probe(features.detach())
        probe_loss = F.cross_entropy(logits, label)
        terms["probe"] = probe_loss
        terms["probe_top1"] = (logits.argmax(1) == label).float().mean()
        return loss + probe_loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        self.step_labelled = self.all_labelled(batch)  # for training_loss: known without asking the device
        views = self.make_views(batch, batch_idx)
        try:
            out = self.training_loss(views)
        finally:
            self.step_labelled = None
        terms = dict(out.terms)
        loss = self.probe_step(out.features, batch, terms, out.loss)
        self.check_finite(loss, terms)
        self.log_training_step(out.loss, terms, batch["image"].shape[0])
        return loss

    def configure_optimizers(self):
        spec = self.optim_spec
        exclude = [self.probe] if self.probe is not None else []
        groups = param_groups(self, spec, exclude=exclude)
        if self.probe is not None:
            groups.append(
                {"params": list(self.probe.parameters()), "lr": spec.probe_lr, "weight_decay": 0.0, "lars_exclude": True}
            )
        return per_step_schedule(self, build_optimizer(groups, spec), spec)

    def setup(self, stage: str) -> None:
        if self.encoder.channels_last:
            self.encoder.backbone.to(memory_format=torch.channels_last)

    # -- kNN monitor and probe accuracy on detached features ------------------------------
    # the query loader is the test split, so the metrics are named test/...: a monitor, never
    # a model-selection signal
    def on_validation_epoch_start(self) -> None:
        self._val = {}

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        x = batch["image"]
        if self.eval_transform is not None:
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x
            x = self.eval_transform.apply(x, self.eval_transform.identity_params(x.shape[0], x.device))
        # at least float32: under bf16/fp16 autocast the features come out in low precision, and the kNN
        # monitor and the probe run at epoch end, outside autocast, with float32 weights
        feats = self.encoder(x).detach()
        feats = feats.to(torch.promote_types(feats.dtype, torch.float32))  # bf16 -> float32; float64 stays
        store = self._val.setdefault(dataloader_idx, ([], [], []))
        store[0].append(feats)
        store[1].append(batch["label"])
        index = batch.get("index")
        store[2].append(index if index is not None else torch.full_like(batch["label"], -1))

    def monitor_logits(self, feats: Tensor) -> Tensor | None:
        """Class logits of detached backbone features for ``test/probe_top1`` (the online
        probe; supervised methods use their classifier)."""
        return self.probe(feats) if self.probe is not None else None

    def _gathered(self, dataloader_idx: int) -> tuple[Tensor, Tensor]:
        """This validation loader's features and labels from every process, each sample
        once (the evaluation shards' padding removed by index)."""
        feats, labels, index = (torch.cat(t) for t in self._val[dataloader_idx])
        if self.trainer.world_size > 1:
            feats, labels, index = (self.all_gather(t).flatten(0, 1) for t in (feats, labels, index))
            if bool((index >= 0).all()):
                _, feats, labels = drop_padding(index, feats, labels)
        return feats, labels

    def on_validation_epoch_end(self) -> None:
        if 0 not in self._val or 1 not in self._val or self.num_classes is None:
            self._val = {}
            return
        bank, bank_y = self._gathered(0)
        query, query_y = self._gathered(1)
        if (bank_y >= 0).all() and (query_y >= 0).all():
            acc = knn_accuracy(query, query_y, bank, bank_y, self.num_classes, self.knn_k, self.knn_t)
            self.log("test/knn_top1", acc, prog_bar=True, sync_dist=False, rank_zero_only=True)
        logits = self.monitor_logits(query)
        if logits is not None and len(query_y) and bool((query_y >= 0).all()):
            self.log("test/probe_top1", float((logits.argmax(1) == query_y).float().mean()), prog_bar=True,
                     rank_zero_only=True)
        self._val = {}
