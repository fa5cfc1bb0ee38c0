"""Invariance measurement: an exactly invariant encoder scores ~0, a network that the
transformation moves as far as a swap scores ~1, the naive formula, layers by name,
controlled data and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from invlab.data.controlled import ControlledImages
from invlab.errors import ConfigError
from invlab.evaluation import invariance_profile, invariance_score
from invlab.evaluation.invariance import bootstrap_ratio
from invlab.nn import Encoder, resnet18
from invlab.transforms import HorizontalFlip, Rotate


def _random_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten()
    )


class FlipSymmetrised(nn.Module):
    """g(x) + g(hflip(x)): exactly invariant to horizontal flips by construction."""

    def __init__(self, g: nn.Module):
        super().__init__()
        self.g = g

    def forward(self, x):
        return self.g(x) + self.g(x.flip(-1))


def _images(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, 4, 4, generator=g)
    return nn.functional.interpolate(base, size=(16, 16), mode="bilinear", align_corners=False)


def test_exactly_invariant_encoder_scores_zero():
    enc = FlipSymmetrised(_random_cnn())
    s = invariance_score(enc, _images(), HorizontalFlip(0.5), metrics=("l2", "cosine"), bootstrap=200)
    for r in s.values():
        assert r.score < 1e-5 and r.ci_high < 1e-5
    # ... while the plain network is clearly moved by flips
    plain = invariance_score(_random_cnn(), _images(), HorizontalFlip(0.5), bootstrap=200)["output"]
    assert plain.score > 0.2


def test_a_transformation_that_moves_as_far_as_a_swap_scores_about_one():
    # every sample is the same image: twins and swapped pairs are both two random
    # rotations of it, so for any non-invariant network the expected score is exactly 1
    x = _images(1).expand(256, -1, -1, -1).contiguous()
    r = invariance_score(_random_cnn(), x, Rotate((0, 360)), bootstrap=500)["output"]
    assert 0.85 < r.score < 1.15 and r.ci_low < 1.0 < r.ci_high


def test_random_resnet_on_controlled_data_is_sensitive_to_placement():
    torch.manual_seed(0)
    enc = Encoder(resnet18(width=4), [0.5] * 3, [0.25] * 3)
    data = ControlledImages([], 96, num_classes=6, num_backgrounds=10)
    r = invariance_score(enc, data, "translate", layers=["layer1"], num_samples=96, bootstrap=100)["layer1"]
    assert 0.3 < r.score < 1.5


def test_score_matches_the_naive_formula_and_layers_are_hooked_by_name():
    torch.manual_seed(0)
    enc = _random_cnn()
    x = _images(32)
    t = Rotate(90)
    s = invariance_score(enc, x, t, layers=["2", "output"], batch_size=32, bootstrap=50, seed=3)
    # recompute from the same twins
    from invlab.evaluation.paired_views import PairedViews

    pairs = PairedViews(x, t, 32, seed=3)
    order = torch.randperm(32, generator=torch.Generator().manual_seed(3))
    a, b = pairs.render(order, 0), pairs.render(order, 1)
    with torch.no_grad():
        for label, f in (("2", enc[:3]), ("output", enc)):
            fa, fb = f(a).flatten(1), f(b).flatten(1)
            num = (fa - fb).norm(dim=1).mean()
            den = (fa - fa.roll(1, 0)).norm(dim=1).mean()
            assert s[label].score == pytest.approx(float(num / den), rel=1e-4)


def test_bootstrap_interval_contains_the_estimate():
    rng = np.random.default_rng(0)
    num, den = rng.uniform(0, 1, 500), rng.uniform(1, 2, 500)
    lo, hi = bootstrap_ratio(num, den, 1000)
    assert lo < num.mean() / den.mean() < hi and hi - lo < 0.1


def test_controlled_twins_profile_and_batchnorm_in_eval_mode():
    torch.manual_seed(0)
    enc = Encoder(resnet18(width=4), [0.5] * 3, [0.25] * 3).train()
    data = ControlledImages(["rotate"], 64, num_classes=6, num_backgrounds=10)
    rows = invariance_profile(enc, data, ["hue", "hflip"], layers=["layer2", "pool"], num_samples=64, bootstrap=50)
    assert [(r.transform, r.layer) for r in rows] == [("hue", "layer2"), ("hue", "pool"), ("hflip", "layer2"),
                                                       ("hflip", "pool")]
    assert enc.training  # the mode is restored
    assert all(np.isfinite(r.score) and r.num_samples == 64 for r in rows)


def test_unknown_layer_or_transform_is_a_clear_error():
    enc = Encoder(resnet18(width=4), [0.5] * 3, [0.25] * 3)
    data = ControlledImages([], 16, num_classes=4, num_backgrounds=4)
    with pytest.raises(ConfigError, match="unknown layer 'layer9'"):
        invariance_score(enc, data, "hue", layers=["layer9"])
    with pytest.raises(ConfigError, match="unknown transform 'hu'"):
        invariance_score(enc, data, "hu")


def test_paired_views_of_a_class_sorted_real_set_sample_every_class():
    """A real data set stored class by class: measuring on n < len items must not see only
    the first classes, and each pair index keeps its own image."""
    from invlab.data import ImageArray
    from invlab.data.controlled import TransformedImages
    from invlab.evaluation.paired_views import PairedViews

    labels = np.repeat(np.arange(10), 50)  # sorted by class, as CIFAR-10's folders are
    x = np.random.default_rng(0).integers(0, 256, (500, 3, 8, 8), dtype=np.uint8)
    data = TransformedImages(ImageArray(x, labels, [str(c) for c in range(10)], "sorted"), [], 0, "test")
    pairs = PairedViews(data, "rot90", num_samples=100, seed=0)
    assert pairs.n == 100 and len(np.unique(pairs.labels)) == 10
    identity = pairs.render(torch.arange(100), "identity")
    originals = torch.as_tensor(x).float() / 255
    matches = [int(((originals - img).abs().amax((1, 2, 3)) < 1e-6).nonzero()[0]) for img in identity]
    assert len(set(matches)) == 100 and all(labels[m] == pairs.labels[j] for j, m in enumerate(matches))
    again = PairedViews(data, "rot90", num_samples=100, seed=0)
    torch.testing.assert_close(again.render(torch.arange(5), 0), pairs.render(torch.arange(5), 0))


class _ChannelNorm(torch.nn.Module):
    def forward(self, x):
        return (x / x.std(-1, keepdim=True)).flatten(1)


def test_series_invariance_with_series_transformations():
    """Series ``(N, C, T)`` take the time-series transformations: a per-channel
    normalisation is invariant to per-channel scaling, the raw series are not."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, 32, generator=g).cumsum(-1)
    norm = invariance_score(_ChannelNorm(), x, "ts_scaling", num_samples=64, bootstrap=20)["output"]
    raw = invariance_score(torch.nn.Flatten(), x, "ts_scaling", num_samples=64, bootstrap=20)["output"]
    assert norm.score < 1e-4 < 0.05 < raw.score
    with pytest.raises(ConfigError, match="'rotate' is not a time-series transformation"):
        invariance_score(torch.nn.Flatten(), x, "rotate", num_samples=8)
