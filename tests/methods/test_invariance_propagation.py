"""Invariance Propagation as a method: one view per step against the bank, the bank
written after the backward pass, propagation switched on after the warm-up, positives
inspectable, parameters checked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invlab.errors import ConfigError
from invlab.methods.invariance_propagation import InvariancePropagation
from invlab.nn import Encoder, HeadSpec, resnet18
from invlab.transforms import Compose, HorizontalFlip, MultiViewSampler, RandomResizedCrop

N = 96


def _method(**kw):
    enc = Encoder(resnet18(width=4, in_channels=1), [0.3], [0.3])
    views = MultiViewSampler(Compose([RandomResizedCrop(8, scale=(0.5, 1.0)), HorizontalFlip()]), num_views=1)
    args = dict(projector=HeadSpec([], 16), num_negatives=40, num_positives=5, warmup_epochs=1, temperature=0.1)
    args.update(kw)
    return InvariancePropagation(enc, views, **args)


def _data():
    from invlab.data import load_digits_array

    d = load_digits_array("train")
    return torch.from_numpy(d.images[:N]), torch.from_numpy(d.labels[:N])


def _patch(m, monkeypatch, epoch):
    state = {"epoch": epoch}
    monkeypatch.setattr(type(m), "global_rank", property(lambda self: 0), raising=False)
    monkeypatch.setattr(type(m), "current_epoch", property(lambda self: state["epoch"]), raising=False)
    monkeypatch.setattr(m, "log", lambda *a, **k: None)
    return state


def _epoch(m, opt, images, labels, batch=32):
    losses = []
    for b, start in enumerate(range(0, N, batch)):
        idx = torch.arange(start, start + batch)
        loss = m.training_step({"image": images[idx], "label": labels[idx], "index": idx}, b)
        opt.zero_grad()
        loss.backward()
        m.on_after_backward()  # Lightning calls it after every backward pass
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_warm_up_then_propagation_with_inspectable_positives(monkeypatch):
    torch.manual_seed(0)
    m = _method()
    images, labels = _data()
    m.init_bank(N, labels)
    state = _patch(m, monkeypatch, 0)
    opt = torch.optim.SGD(m.parameters(), lr=0.03, momentum=0.9)
    before = m.bank.embeddings.clone()
    losses = _epoch(m, opt, images, labels)
    assert np.isfinite(losses).all()
    # epoch 0 is the warm-up: instance discrimination only; every sample visited once
    assert m.epoch_averages.means()["propagation"] == 0.0 and "positives" not in m.epoch_averages.means()
    assert not torch.equal(m.bank.embeddings, before)
    assert (m.bank.neighbours >= 0).all() and not (m.bank.neighbours == torch.arange(N)[:, None]).any()
    torch.testing.assert_close(m.bank.embeddings.norm(dim=1), torch.ones(N))
    m.epoch_averages.reset()
    state["epoch"] = 1
    _epoch(m, opt, images, labels)
    means = m.epoch_averages.means()
    assert means["propagation"] != 0.0
    assert 0 < means["positives"] <= 5 and means["candidates"] >= means["positives"]
    assert -1 <= means["positive_similarity"] <= 1 and 0 <= means["positive_same_class"] <= 1
    last = m.last_positives
    assert last["positives"].shape == (32, 5) and last["same_class"].shape == (32, 5)
    got = last["same_class"][last["positives"] >= 0].float().mean()
    want = (labels[last["positives"].clamp(min=0)] == labels[last["index"]][:, None])[last["positives"] >= 0].float().mean()
    assert float(got) == pytest.approx(float(want))


def test_bank_is_written_after_the_backward_pass_only(monkeypatch):
    m = _method(warmup_epochs=0)
    images, labels = _data()
    m.init_bank(N)
    _patch(m, monkeypatch, 0)
    idx = torch.arange(16)
    before = m.bank.embeddings.clone()
    loss = m.training_step({"image": images[idx], "label": labels[idx], "index": idx}, 0)
    assert torch.equal(m.bank.embeddings, before)  # the forward pass leaves the bank alone
    loss.backward()  # would fail if the bank had been modified in place before it
    m.on_after_backward()
    changed = (m.bank.embeddings != before).any(1)
    assert changed[:16].all() and not changed[16:].any()


def test_one_view_and_bank_size_are_checked():
    enc = Encoder(resnet18(width=4, in_channels=1), [0.3], [0.3])
    two = MultiViewSampler(Compose([HorizontalFlip()]), num_views=2)
    with pytest.raises(ValueError, match="one view per step"):
        InvariancePropagation(enc, two)
    m = _method(num_negatives=200)
    with pytest.raises(ConfigError, match="'params.num_negatives' = 200 needs a training set of at least 201 samples, this one has 96"):
        m.init_bank(N)


@pytest.mark.parametrize(
    "kw, key",
    [
        ({"temperature": 0.0}, "params.temperature"),
        ({"neighbours": 0}, "params.neighbours"),
        ({"neighbours": 50, "num_negatives": 40}, "params.neighbours"),
        ({"propagation_steps": 0}, "params.propagation_steps"),
        ({"bank_momentum": 1.0}, "params.bank_momentum"),
        ({"bank_dtype": "int8"}, "params.bank_dtype"),
        ({"propagation_weight": -1.0}, "params.propagation_weight"),
    ],
)
def test_bad_params_name_the_key(kw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _method(**kw)


# -- runs: the bank lives in the checkpoint; SIGKILL + resume is exact --------------------
RECIPE = ["trainer.max_epochs=3", "params.warmup_epochs=1", "model.width=8", "trainer.log_every_n_steps=2"]


def _cli(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "invlab.cli.main", *args]


@pytest.mark.slow
def test_sigkill_during_propagation_then_resume_equals_an_uninterrupted_run(tmp_path):
    import subprocess

    from safetensors.torch import load_file

    from invlab.runs.checkpoint import safe_torch_load
    from invlab.runs.pretrain_run import resume_position
    from tests.run_helpers import sigkill_when_checkpointed

    killed, reference = tmp_path / "killed", tmp_path / "reference"
    args = ["pretrain", "--recipe", "invp-digits", *RECIPE, "trainer.checkpoint_every_n_steps=1", "--no-progress"]
    sigkill_when_checkpointed(_cli(*args, "--out", str(killed)), killed,
                              lambda step: step >= 13 and step % 10 != 0)  # inside the second epoch: propagation is on
    ckpt = killed / "checkpoints" / "last.ckpt"
    state = safe_torch_load(ckpt)
    _, epoch, done = resume_position(state)
    assert epoch == 1 and 0 < done < 10, "killed outside the middle of the first propagating epoch"
    # the checkpoint carries the bank, its k-NN lists (filled during the warm-up epoch) and the step's writes
    assert state["state_dict"]["bank.embeddings"].shape == (1347, 64)
    # (drop_last leaves 67 of 1,347 digits out of each epoch: their lists may still be empty)
    assert float((state["state_dict"]["bank.neighbours"] >= 0).all(1).float().mean()) > 0.9

    resumed = subprocess.run(_cli("pretrain", "--resume", str(killed), "--no-progress"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ref = subprocess.run(_cli(*args, "--out", str(reference)), capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr[-3000:]

    wa, wb = load_file(str(killed / "encoder.safetensors")), load_file(str(reference / "encoder.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    sa = safe_torch_load(killed / "checkpoints" / "last.ckpt")["state_dict"]
    sb = safe_torch_load(reference / "checkpoints" / "last.ckpt")["state_dict"]
    for key in ("bank.embeddings", "bank.neighbours"):
        assert torch.equal(sa[key], sb[key]), key
    assert (killed / "metrics.csv").read_text() == (reference / "metrics.csv").read_text()
    metrics = (reference / "metrics.csv").read_text()
    assert "train/positive_same_class" in metrics and "train/positives" in metrics

    # resuming against a training set of another size is refused, naming the problem
    cfg_file = killed / "config.yaml"
    cfg_file.write_text(cfg_file.read_text().replace("train_subset: null", "train_subset: 1200"))
    grown = subprocess.run(_cli("pretrain", "--resume", str(killed), "--max-epochs", "4", "--no-progress"),
                           capture_output=True, text=True)
    assert grown.returncode != 0
    assert "training set now has 1200 samples" in grown.stderr and "built for 1347" in grown.stderr
