"""Transitive Invariance as a method: Triplet-Siamese steps on pairs reduce the loss,
pairs are mined by edge kind, bad input is named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invlab.errors import ConfigError
from invlab.methods.transitive_invariance import TransitiveInvariance, mine_pairs
from invlab.nn import Encoder, HeadSpec, resnet18
from invlab.transforms import Compose, HorizontalFlip, MultiViewSampler, RandomResizedCrop


def _method(**kw):
    enc = Encoder(resnet18(width=4, in_channels=1), [0.3], [0.3])
    views = MultiViewSampler(Compose([RandomResizedCrop(8, scale=(0.6, 1.0)), HorizontalFlip()]), num_views=1)
    return TransitiveInvariance(enc, views, projector=HeadSpec([], 16), num_classes=10, **kw)


def test_a_few_steps_on_same_class_pairs_reduce_the_loss(monkeypatch):
    from invlab.data import load_digits_array

    torch.manual_seed(0)
    d = load_digits_array("train")
    labels = torch.from_numpy(d.labels[:200])
    # pair each image with the next image of the same class
    a, p = [], []
    for c in range(10):
        idx = torch.nonzero(labels == c).flatten()[:5]
        a += idx[:-1].tolist()
        p += idx[1:].tolist()
    a, p = torch.tensor(a[:32]), torch.tensor(p[:32])
    images = torch.from_numpy(d.images[:200])
    batch = {"image": images[a], "positive": images[p], "index": a, "label": labels[a], "group": labels[a]}
    m = _method(margin=0.5, num_negatives=4)
    monkeypatch.setattr(type(m), "global_rank", property(lambda self: 0), raising=False)
    monkeypatch.setattr(type(m), "current_epoch", property(lambda self: 0), raising=False)
    monkeypatch.setattr(m, "log", lambda *a, **k: None)
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(12):
        loss = m.training_step(batch, 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    with pytest.raises(ValueError, match="needs 'positive'"):
        m.training_step({"image": images[a], "index": a}, 0)


def test_the_step_passes_both_members_groups_to_the_loss(monkeypatch):
    import invlab.methods.transitive_invariance as ti

    seen = {}

    def spy(anchor, positive, **kw):
        seen.update(kw)
        return (anchor - positive).pow(2).mean()

    monkeypatch.setattr(ti, "triplet_ranking_loss", spy)
    m = _method()
    monkeypatch.setattr(type(m), "global_rank", property(lambda self: 0), raising=False)
    monkeypatch.setattr(type(m), "current_epoch", property(lambda self: 0), raising=False)
    monkeypatch.setattr(m, "log", lambda *a, **k: None)
    x = torch.randint(0, 255, (4, 1, 8, 8), dtype=torch.uint8)
    batch = {"image": x, "positive": x.flip(0), "index": torch.arange(4), "group": torch.tensor([0, 1, 2, 3]),
             "positive_group": torch.tensor([3, 2, 1, 0])}
    m.training_step(batch, 0)
    assert seen["group"].tolist() == [0, 1, 2, 3] and seen["positive_group"].tolist() == [3, 2, 1, 0]
    m.training_step({k: v for k, v in batch.items() if k != "positive_group"}, 0)
    assert seen["positive_group"] is None  # the loss then uses the anchors' groups for both


def test_mine_pairs_by_kind():
    # two tracks of two frames per category; features make frame 0 of each track similar across tracks
    track = torch.tensor([0, 0, 1, 1])
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [-1.0, 0.2]])
    out = mine_pairs(feats, track, ["intra", "inter", "transitive"], k=1, threshold=0.5)
    assert out["intra"].tolist() == [[0, 1], [2, 3]]
    assert out["inter"].tolist() == [[0, 2]]
    assert out["transitive"].tolist() == [[0, 3], [1, 2], [1, 3]]
    assert out["pairs"].shape == (6, 2)
    assert mine_pairs(feats, track, ["inter"], threshold=0.5)["pairs"].tolist() == [[0, 2]]
    with pytest.raises(ConfigError, match="edge kinds"):
        mine_pairs(feats, track, ["cluster"])


def test_bad_parameters_are_named():
    with pytest.raises(ConfigError, match="params.margin"):
        _method(margin=-1.0)
    with pytest.raises(ConfigError, match="params.num_negatives"):
        _method(num_negatives=0)


def test_default_projector_ends_in_batchnorm_so_embeddings_do_not_collapse_together():
    enc = Encoder(resnet18(width=4, in_channels=1), [0.3], [0.3])
    views = MultiViewSampler(Compose([RandomResizedCrop(8, scale=(0.6, 1.0))]), num_views=1)
    method = TransitiveInvariance(enc, views)
    assert isinstance(list(method.projector.modules())[-1], torch.nn.BatchNorm1d)
    # centred per dimension: a batch of near-identical inputs still spreads out on the sphere
    method.train()
    x = torch.rand(1, 1, 8, 8).repeat(16, 1, 1, 1) + 0.01 * torch.randn(16, 1, 8, 8)
    z = torch.nn.functional.normalize(method.projector(method.encoder(x)), dim=1)
    off_diagonal = (z @ z.T)[~torch.eye(16, dtype=torch.bool)]
    assert off_diagonal.mean() < 0.5
