"""Supervised pretraining: cross-entropy on a real batch goes down, the classifier is the
probe (no second head), and missing labels or wrong view counts are clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invlab.errors import DataError
from invlab.methods.supervised import Supervised
from invlab.nn import Encoder, resnet18
from invlab.transforms import Compose, MultiViewSampler, RandomResizedCrop


def _method(**kw):
    torch.manual_seed(0)
    enc = Encoder(resnet18(width=4, in_channels=1), [0.3], [0.3])
    views = MultiViewSampler(Compose([RandomResizedCrop(8, scale=(0.8, 1.0))]), num_views=1)
    return Supervised(enc, views, num_classes=10, **kw)


def _batch(labels=None):
    from invlab.data import load_digits_array

    d = load_digits_array("train")
    idx = np.arange(64)
    y = torch.from_numpy(d.labels[idx]) if labels is None else labels
    return {"image": torch.from_numpy(d.images[idx]), "label": y, "index": torch.from_numpy(idx)}


def _quiet(m, monkeypatch):
    monkeypatch.setattr(type(m), "global_rank", property(lambda self: 0), raising=False)
    monkeypatch.setattr(type(m), "current_epoch", property(lambda self: 0), raising=False)
    monkeypatch.setattr(m, "log", lambda *a, **k: None)


def test_cross_entropy_goes_down_on_real_digits(monkeypatch):
    m = _method(label_smoothing=0.1)
    _quiet(m, monkeypatch)
    assert m.probe is None and m.classifier.out_features == 10
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    batch = _batch()
    losses = []
    for _ in range(15):
        loss = m.training_step(batch, 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]
    m.eval()
    with torch.no_grad():
        acc = (m.classifier(m.encoder(batch["image"])).argmax(1) == batch["label"]).float().mean()
    assert float(acc) > 0.3


def test_missing_labels_and_wrong_views_are_errors(monkeypatch):
    m = _method()
    _quiet(m, monkeypatch)
    with pytest.raises(DataError, match="needs a label"):
        m.training_step(_batch(torch.full((64,), -1)), 0)
    enc = Encoder(resnet18(width=4, in_channels=1), [0.3], [0.3])
    with pytest.raises(ValueError, match="exactly 1 view"):
        Supervised(enc, MultiViewSampler(RandomResizedCrop(8), 2), num_classes=10)
    with pytest.raises(ValueError, match="number of classes"):
        Supervised(enc, MultiViewSampler(RandomResizedCrop(8), 1), num_classes=None)
