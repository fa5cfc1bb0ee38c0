"""Invariance Propagation (Feng Wang, Huiyu Wang, Chen Wei, Alan Yuille, Wei Shen,
"Unsupervised Representation Learning by Invariance Propagation", NeurIPS 2020).

    memory bank v: one unit embedding per training sample; k-NN lists nb (k = 4)
    for each batch x with sample indices i:
        z = normalise(g(f(t(x))))                     one augmented view
        Neg = the n bank entries most similar to z, other than v_i      (n = 4096)
        if epoch >= warm-up:
            C = nb[i] chained `steps` times            (propagation, 3 on CIFAR-10)
            Pos = the P members of C least similar to z                 (hard positives, 20)
        loss = -log p(i | z)  +  w * -log sum_{p in Pos} p(p | z)      (w = 0.6, t = 0.07)
        after backward: v_i <- normalise(m v_i + (1 - m) z)   (m = 0.5);  nb[i] <- first k of Neg

The memory bank (:class:`~invlab.losses.memory_bank.MemoryBank`) is created when training
starts, one row per training sample; its embeddings and k-NN lists are registered
buffers, so checkpoints carry them and a resumed run is exact. Positives of every step
are inspectable (``last_positives``) and their count, cosine similarity and — where the
data set has labels, for monitoring only — the fraction sharing the anchor's class are
logged with the training terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from invlab.errors import ConfigError
from invlab.losses.invariance_propagation import invariance_propagation_loss, propagate
from invlab.losses.memory_bank import MemoryBank
from invlab.methods.base import SSLMethod, StepOutput
from invlab.methods.spec import MethodSpec
from invlab.nn.heads import HeadSpec
from invlab.transforms.views import Views

__all__ = ["InvariancePropagation", "InvariancePropagationParams", "BANK_DTYPES", "SPEC", "check_params"]

BANK_DTYPES = {"float32": torch.float32, "float16": torch.float16}


@dataclass
class InvariancePropagationParams:
    """The recipe's ``params`` section for ``method: invariance_propagation``.

    Defaults are the paper's CIFAR-10 settings except ``warmup_epochs`` (30 of 800 in
    the paper; recipes scale it to their budget)."""

    temperature: float = 0.07  # 0.2 with an MLP head
    num_negatives: int = 4096
    num_positives: int = 20  # P: hard positives kept (50 on ImageNet)
    neighbours: int = 4  # k of the directed k-NN graph
    propagation_steps: int = 3  # 4 on CIFAR-100
    propagation_weight: float = 0.6
    warmup_epochs: int = 30  # instance discrimination only before this epoch
    bank_momentum: float = 0.5
    bank_dtype: str = "float32"  # float16 halves the bank's memory


class InvariancePropagation(SSLMethod):
    """See the module docstring. ``projector`` defaults to a linear 128-d head (the
    paper's); with an MLP head use temperature 0.2."""

    def __init__(
        self,
        encoder,
        views,
        *,
        projector: HeadSpec | None = None,
        temperature: float = 0.07,
        num_negatives: int = 4096,
        num_positives: int = 20,
        neighbours: int = 4,
        propagation_steps: int = 3,
        propagation_weight: float = 0.6,
        warmup_epochs: int = 30,
        bank_momentum: float = 0.5,
        bank_dtype: str = "float32",
        **kwargs,
    ):
        super().__init__(encoder, views, **kwargs)
        if views.num_views != 1:
            raise ValueError(f"Invariance Propagation uses one view per step, got {views.num_views}")
        check_params(InvariancePropagationParams(
            temperature, num_negatives, num_positives, neighbours, propagation_steps, propagation_weight,
            warmup_epochs, bank_momentum, bank_dtype,
        ))
        self.projector = (projector or HeadSpec([], 128)).build(encoder.feature_dim)
        self.temperature, self.num_negatives, self.num_positives = temperature, num_negatives, num_positives
        self.k, self.steps, self.weight = neighbours, propagation_steps, propagation_weight
        self.warmup_epochs, self.bank_momentum, self.bank_dtype = warmup_epochs, bank_momentum, bank_dtype
        self.bank: MemoryBank | None = None
        self.register_buffer("sample_labels", torch.zeros(0, dtype=torch.long), persistent=False)
        self.last_positives: dict[str, Tensor] = {}
        self._pending: list[tuple[Tensor, Tensor, Tensor]] = []

    # -- the memory bank ----------------------------------------------------------------------
    def init_bank(self, size: int, labels: Tensor | None = None) -> MemoryBank:
        """Create the bank for a training set of ``size`` samples (``labels (size,)``:
        used only to monitor the positives). Called by :meth:`setup` from the data
        module; call it yourself when training without a Trainer."""
        if size < self.num_negatives + 1:
            raise ConfigError(
                f"recipe key 'params.num_negatives' = {self.num_negatives} needs a training set of at least "
                f"{self.num_negatives + 1} samples, this one has {size}"
            )
        if self.bank is not None and self.bank.size == size:
            return self.bank
        device = next(self.parameters()).device
        self.bank = MemoryBank(
            size, self.projector.out_dim,
            momentum=self.bank_momentum, dtype=BANK_DTYPES[self.bank_dtype], neighbours_k=self.k, seed=self.seed,
        ).to(device)
        if labels is not None:
            labels = torch.as_tensor(labels, dtype=torch.long)
            if labels.shape != (size,):
                raise ValueError(f"labels must be ({size},), got {tuple(labels.shape)}")
            self.sample_labels = labels.to(device)
        return self.bank

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage != "fit":
            return
        train = getattr(getattr(self.trainer, "datamodule", None), "train", None)
        if train is None:
            raise RuntimeError("InvariancePropagation needs a data module with a `train` data set (or call init_bank first)")
        labels = getattr(train, "labels", None)
        self.init_bank(len(train), None if labels is None else torch.as_tensor(labels))

    # -- one step -----------------------------------------------------------------------------
    def training_loss(self, views: Views) -> StepOutput:
        if self.bank is None:
            raise RuntimeError("InvariancePropagation: the memory bank is not created yet (init_bank)")
        self._flush_bank_updates()  # a step whose backward never ran (should not happen)
        view, index = views[0], views.index
        if index is None:
            raise ValueError("Invariance Propagation needs each sample's data set index (batch['index'])")
        h = self.encoder(view.x)
        z = self.projector(h)
        propagating = self.current_epoch >= self.warmup_epochs and self.weight > 0
        candidates = propagate(self.bank.neighbours, index, self.steps) if propagating else None
        out = invariance_propagation_loss(
            z, index, self.bank.embeddings, candidates, num_positives=self.num_positives,
            temperature=self.temperature, num_negatives=self.num_negatives, propagation_weight=self.weight,
        )
        # the bank is a constant of this step's graph: write it once the backward pass is done
        self._pending.append((index.detach(), z.detach(), out.negatives[:, : self.k]))
        terms = {"instance": out.instance.detach(), "propagation": out.propagation.detach()}
        terms.update(self._inspect(index, candidates, out))
        return StepOutput(out.loss, terms, h)

    def _inspect(self, index: Tensor, candidates: Tensor | None, out) -> dict[str, Tensor]:
        """What the step's positives were (monitoring only: nothing here feeds the loss)."""
        self.last_positives = {"index": index.detach(), "positives": out.positives, "similarity": out.positive_similarity}
        if candidates is None or out.positives.shape[1] == 0:
            return {}
        valid = out.positives >= 0
        terms = {
            "candidates": (candidates >= 0).sum(1).float().mean(),
            "positives": valid.sum(1).float().mean(),
        }
        if bool(valid.any()):
            terms["positive_similarity"] = out.positive_similarity[valid].mean()
            if self.sample_labels.numel() and bool((self.sample_labels >= 0).all()):
                same = self.sample_labels[out.positives.clamp(min=0)] == self.sample_labels[index][:, None]
                terms["positive_same_class"] = same[valid].float().mean()
                self.last_positives["same_class"] = same & valid
        return terms

    def on_after_backward(self) -> None:
        self._flush_bank_updates()

    def _flush_bank_updates(self) -> None:
        while self._pending:
            index, z, neighbours = self._pending.pop(0)
            self.bank.update(index, z, neighbours)


def check_params(p: InvariancePropagationParams) -> None:
    """``ConfigError`` naming the ``params`` key that is out of range."""
    checks = [
        ("temperature", p.temperature > 0, "must be positive"),
        ("num_negatives", p.num_negatives >= 1, "must be >= 1"),
        ("num_positives", p.num_positives >= 1, "must be >= 1"),
        ("neighbours", p.neighbours >= 1, "must be >= 1"),
        ("neighbours", p.neighbours <= p.num_negatives, "must not exceed params.num_negatives (the k-NN lists come from the negatives)"),
        ("propagation_steps", p.propagation_steps >= 1, "must be >= 1"),
        ("propagation_weight", p.propagation_weight >= 0, "must be >= 0"),
        ("warmup_epochs", p.warmup_epochs >= 0, "must be >= 0"),
        ("bank_momentum", 0 <= p.bank_momentum < 1, "must lie within [0, 1)"),
        ("bank_dtype", p.bank_dtype in BANK_DTYPES, f"must be one of {', '.join(BANK_DTYPES)}"),
    ]
    for key, ok, what in checks:
        if not ok:
            raise ConfigError(f"recipe key 'params.{key}' {what}, got {getattr(p, key)!r}")


def _validate(cfg) -> None:
    # the bank's size is the training set's, known once the data is read (init_bank checks it)
    check_params(cfg.params)


SPEC = MethodSpec(name="invariance_propagation", modality="image", cls=InvariancePropagation,
                  params=InvariancePropagationParams, views=1, validate=_validate)
