"""Equivariance measurement: a probe recovers the parameters from an encoder built to be
equivariant, a linear map explains an exactly equivariant representation, and an
invariant one carries nothing about the parameters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from invlab.data.controlled import ControlledImages
from invlab.evaluation import equivariance_score
from invlab.nn import Encoder, resnet18
from invlab.transforms import HorizontalFlip, Rotate, Rotate90


class Centroid(nn.Module):
    """The intensity-weighted centroid of the image (relative to its centre): rotating the
    image about its centre rotates this vector, exactly."""

    def forward(self, x):
        w = x.mean(1)  # (N, H, W)
        h, wd = w.shape[-2:]
        ys = (torch.arange(h, dtype=x.dtype) + 0.5 - h / 2).view(1, h, 1)
        xs = (torch.arange(wd, dtype=x.dtype) + 0.5 - wd / 2).view(1, 1, wd)
        m = w.sum((1, 2)).clamp_min(1e-6)
        return torch.stack([(w * xs).sum((1, 2)) / m, (w * ys).sum((1, 2)) / m], 1)


def _blobs(n, size=24, fixed=True, seed=0, x_range=(0.25, 0.75)):
    """A bright Gaussian blob on black, at one off-centre spot (or a random spot per image)."""
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(n, 2, generator=g) * 0.5 + 0.25
    c[:, 0] = torch.rand(n, generator=g) * (x_range[1] - x_range[0]) + x_range[0]
    if fixed:
        c = torch.tensor([[0.75, 0.5]]).expand(n, 2)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    d2 = (xx - c[:, 0, None, None]) ** 2 + (yy - c[:, 1, None, None]) ** 2
    return torch.exp(-d2 / 0.004).unsqueeze(1).expand(n, 3, size, size).contiguous()


def test_probe_recovers_the_angle_from_an_equivariant_encoder():
    s = equivariance_score(Centroid(), _blobs(300), Rotate((0, 360)), num_samples=300)["output"]
    r = s.params["rotate.angle"]
    assert r.metric == "r2" and r.score > 0.95


def test_probe_recovers_discrete_rotations_and_a_linear_map_explains_them():
    data = _blobs(320, fixed=False)  # the blob anywhere: the map f(x) -> f(T_k x) is a rotation
    s = equivariance_score(Centroid(), data, Rotate90(), num_samples=320)["output"]
    assert s.bins == 4
    assert s.map_error < 1e-3  # one exact linear map per k
    assert s.identity_error > 0.5  # ... which is far from the identity: not invariance
    fixed = equivariance_score(Centroid(), _blobs(320), Rotate90(), num_samples=320)["output"]
    r = fixed.params["rot90.k"]
    assert r.metric == "accuracy" and r.score > 0.98 and r.chance < 0.4


def test_an_invariant_encoder_carries_nothing_about_the_parameters():
    class MeanColour(nn.Module):
        def forward(self, x):
            return x.mean((2, 3))  # invariant to any flip

    data = ControlledImages([], 200, num_classes=5, num_backgrounds=10)
    s = equivariance_score(MeanColour(), data, "hflip", num_samples=200)["output"]
    r = s.params["hflip.flip"]
    assert r.score <= max(r.chance, 0.6)
    # f(T x) ~ f(x) (the flipped object covers slightly different background pixels): the
    # identity map explains it, so the best linear map does too
    assert s.identity_error < 1e-3 and s.map_error < 1e-3


def test_resnet_layers_on_controlled_data_with_random_apply_parameters():
    torch.manual_seed(0)
    enc = Encoder(resnet18(width=4), [0.5] * 3, [0.25] * 3)
    data = ControlledImages([], 120, num_classes=4, num_backgrounds=8)
    out = equivariance_score(enc, data, "pixelate", layers=["layer1", "output"], num_samples=120, max_dim=64)
    assert set(out) == {"layer1", "output"}
    for s in out.values():
        assert "pixelate.fired" in s.params  # factor 0.3 is fixed: nothing to regress
        assert "pixelate.factor" not in s.params
        assert s.feature_dim <= 8 * 64
    with pytest.raises(ValueError, match="test_fraction"):
        equivariance_score(enc, data, "hue", test_fraction=0.99)


def test_horizontal_flip_of_asymmetric_images_is_recovered_from_pixels():
    x = _blobs(200, fixed=False, x_range=(0.6, 0.85))  # the blob somewhere in the right half
    s = equivariance_score(nn.Flatten(), x, HorizontalFlip(0.5), num_samples=200)["output"]
    assert s.params["hflip.flip"].score > 0.8
