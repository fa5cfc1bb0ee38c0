"""The training step never makes the host wait for the device: no ``.item()``,
``float()``, ``int()``, ``bool()`` of a tensor, ``.tolist()``, ``.numpy()``, ``nonzero``,
``unique`` or boolean-mask indexing between the divergence checks, which run every
``log_every_n_steps`` steps and still stop a diverging run naming its first bad step.

On a CPU-only machine CUDA's sync debug mode is not available, so the test counts the
Python-level calls that force a synchronisation on an accelerator (C++-internal syncs
other than the ones named above are not visible to it)."""

from __future__ import annotations

import collections

import lightning as L
import numpy as np
import pytest
import torch

from invlab.data.arrays import ImageArray
from invlab.data.loader import ImageDataModule
from invlab.errors import DivergenceError
from invlab.methods import BarlowTwins, SimCLR, SimSiam
from invlab.methods.training import EpochAverages
from invlab.nn import Encoder, HeadSpec, resnet18
from invlab.transforms import (
    ColorJitter,
    Compose,
    HorizontalFlip,
    MultiViewSampler,
    RandomApply,
    RandomResizedCrop,
)

SYNCING = ["item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__", "nonzero", "unique"]


class SyncCounter:
    """Counts syncing calls per training step while ``active``."""

    def __init__(self) -> None:
        self.active = False
        self.step = -1
        self.counts: collections.Counter = collections.Counter()
        self.where: dict[int, list[str]] = collections.defaultdict(list)

    def hit(self, name: str) -> None:
        if self.active:
            self.counts[self.step] += 1
            import traceback

            frame = traceback.extract_stack(limit=4)[-3]
            self.where[self.step].append(f"{name} at {frame.filename.rsplit('/', 2)[-1]}:{frame.lineno}")

    def install(self, monkeypatch) -> None:
        for name in SYNCING:
            original = getattr(torch.Tensor, name)

            def wrapper(self_tensor, *args, _original=original, _name=name, **kwargs):
                self.hit(_name)
                return _original(self_tensor, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, wrapper)
        for name in ("nonzero", "unique", "masked_select"):
            original = getattr(torch, name)

            def function(*args, _original=original, _name=name, **kwargs):
                self.hit(_name)
                return _original(*args, **kwargs)

            monkeypatch.setattr(torch, name, function)
        getitem, setitem = torch.Tensor.__getitem__, torch.Tensor.__setitem__

        def masked(index) -> bool:
            items = index if isinstance(index, tuple) else (index,)
            return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)

        def get(self_tensor, index):
            if masked(index):
                self.hit("boolean-mask indexing")
            return getitem(self_tensor, index)

        def put(self_tensor, index, value):
            if masked(index):
                self.hit("boolean-mask assignment")
            return setitem(self_tensor, index, value)

        monkeypatch.setattr(torch.Tensor, "__getitem__", get)
        monkeypatch.setattr(torch.Tensor, "__setitem__", put)


class Window(L.Callback):
    """Opens the count at a step's start; the method's own ``on_train_batch_end`` (where
    the periodic divergence check runs) closes it, so the check is inside the window."""

    def __init__(self, counter: SyncCounter, module: L.LightningModule) -> None:
        self.counter = counter
        original = module.on_train_batch_end

        def closing(*args, **kwargs):
            try:
                return original(*args, **kwargs)
            finally:
                counter.active = False

        module.on_train_batch_end = closing

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.counter.step = trainer.global_step
        self.counter.active = True


def _data(n=128, labelled=True):
    g = np.random.default_rng(0)
    images = g.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8)
    labels = g.integers(0, 4, n) if labelled else np.full(n, -1)
    return ImageArray(images, labels.astype(np.int64), ["a", "b", "c", "d"])


def _method(cls, **kw):
    enc = Encoder(resnet18(width=4, in_channels=1), [0.5], [0.25], channels_last=True)
    pipe = Compose([RandomResizedCrop(8, scale=(0.5, 1.0)), HorizontalFlip(), RandomApply(ColorJitter(0.4, 0.4), 0.5)])
    return cls(enc, MultiViewSampler(pipe), num_classes=4, **kw)


def _fit(method, steps, every, data=None, precision="32-true"):
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        precision=precision,
                        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=every,
                        callbacks=[Window(counter := SyncCounter(), method)], num_sanity_val_steps=0)
    return trainer, counter, ImageDataModule(data or _data(), None, batch_size=16)


@pytest.mark.parametrize(
    "cls, kw",
    [
        (SimCLR, {"projector": HeadSpec([16], 8)}),
        (SimSiam, {"projector": HeadSpec([16], 16, last_norm="batch"), "predictor": HeadSpec([8], 16)}),
        (BarlowTwins, {"projector": HeadSpec([16], 16)}),
    ],
)
def test_training_steps_make_no_host_sync_between_divergence_checks(cls, kw, monkeypatch):
    torch.manual_seed(0)
    method = _method(cls, **kw)
    trainer, counter, data = _fit(method, steps=7, every=3)
    counter.install(monkeypatch)
    trainer.fit(method, datamodule=data)
    monkeypatch.undo()
    assert trainer.global_step == 7
    # a step whose end brings the recorded count to a multiple of 3 runs the check: one
    # int() of the first bad step; every other step makes no syncing call at all
    checks = {2, 5}  # global_step at the start of the 3rd and 6th steps
    assert {s: counter.where[s] for s in range(7) if s not in checks and counter.counts[s]} == {}
    for s in checks:
        assert counter.counts[s] == 1, counter.where[s]
    assert "train/loss" in trainer.callback_metrics  # epoch means still logged (at the epoch's end)


def test_a_nan_loss_stops_within_the_check_interval_naming_its_first_step():
    class NaNAtStep4(SimCLR):
        def training_loss(self, views):
            out = super().training_loss(views)
            if self.global_step == 4:
                out.loss = out.loss * float("nan")
                out.terms["nt_xent"] = out.loss
            return out

    method = _method(NaNAtStep4, projector=HeadSpec([16], 8))
    trainer, _, data = _fit(method, steps=20, every=5)
    with pytest.raises(DivergenceError, match=r"step 4: term\(s\) nt_xent = nan"):
        trainer.fit(method, datamodule=data)
    assert trainer.global_step == 5  # stopped at the first check after step 4 (5 steps recorded)


def test_unlabelled_batches_skip_the_probe_without_asking_the_device():
    method = _method(SimCLR, projector=HeadSpec([16], 8))
    trainer, _, data = _fit(method, steps=2, every=1, data=_data(labelled=False))
    trainer.fit(method, datamodule=data)
    assert "train/loss" in trainer.callback_metrics and "train/probe" not in trainer.callback_metrics


def test_epoch_averages_sum_on_the_device_and_survive_a_checkpoint_exactly():
    avg = EpochAverages()
    values = [torch.tensor(0.1), torch.tensor(1 / 3), torch.tensor(2.5)]
    for v, n in zip(values, [16, 16, 7]):
        avg.add({"loss": v}, n)
    expected = (float(values[0]) * 16 + float(values[1]) * 16 + float(values[2]) * 7) / 39
    assert avg.means() == {"loss": expected}  # float64 sums: the old Python-float arithmetic, bit for bit
    restored = EpochAverages()
    restored.load_state_dict(avg.state_dict())
    restored.add({"loss": torch.tensor(1.0)}, 1)
    avg.add({"loss": torch.tensor(1.0)}, 1)
    assert restored.means() == avg.means()


def test_bf16_mixed_training_runs_its_loss_in_float32(monkeypatch):
    import invlab.methods.simclr as simclr

    seen = []
    original = simclr.CONTRASTIVE_LOSSES["nt_xent"]

    def spy(z1, z2, *args):
        loss = original(z1, z2, *args)
        seen.append((z1.dtype, loss.dtype, torch.is_autocast_enabled("cpu")))
        return loss

    monkeypatch.setitem(simclr.CONTRASTIVE_LOSSES, "nt_xent", spy)
    method = _method(SimCLR, projector=HeadSpec([16], 8))
    trainer, _, data = _fit(method, steps=3, every=1, precision="bf16-mixed")
    trainer.fit(method, datamodule=data)
    assert seen == [(torch.bfloat16, torch.float32, True)] * 3  # bf16 projector output, float32 loss
    assert np.isfinite(float(trainer.callback_metrics["train/loss"]))


def test_bf16_mixed_validation_feeds_the_knn_monitor_and_probe_float32_features():
    # the monitors run at epoch end, outside autocast: bf16 features there crashed the probe
    torch.manual_seed(0)
    method = _method(SimCLR, projector=HeadSpec([16], 8))
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, precision="bf16-mixed", enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(method, datamodule=ImageDataModule(_data(64), _data(32), batch_size=16, eval_batch_size=16))
    for name in ("test/knn_top1", "test/probe_top1"):
        assert 0.0 <= float(trainer.callback_metrics[name]) <= 1.0
