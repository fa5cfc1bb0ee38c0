"""Supports of learned augmentation distributions: crop candidates, Gumbel sampling,
per-input ranges over any continuous transform parameter (with pathwise gradients), and
the Lie-algebra affine transform."""

from __future__ import annotations

import math

import pytest
import torch

from invlab.transforms import (
    Brightness,
    Compose,
    HorizontalFlip,
    Hue,
    Posterize,
    RandomApply,
    Rotate,
    Rotate90,
    Translate,
)
from invlab.transforms.learned import (
    CropCandidates,
    LearnedRange,
    LieAffine,
    sample_categorical,
)


def test_crop_candidates_layout():
    c = CropCandidates(scales=((4, 0.5), (2, 0.75)))
    assert c.num_candidates == 16 + 4 + 1 and c.num_scales == 3
    assert torch.equal(c.boxes[-1], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert bool((c.boxes >= 0).all() and (c.boxes <= 1 + 1e-6).all())
    sides = c.boxes[:, 2:] - c.boxes[:, :2]
    assert torch.allclose(sides[:16], torch.full((16, 2), 0.5))
    assert torch.allclose(sides[16:20], torch.full((4, 2), 0.75))
    # row-major: the second candidate of the first scale is one cell to the right
    assert c.boxes[1, 0] > c.boxes[0, 0] and c.boxes[1, 1] == c.boxes[0, 1]
    assert c.scale_index.tolist() == [0] * 16 + [1] * 4 + [2]


def test_crop_candidates_apply_is_exact_crop():
    x = torch.rand(2, 3, 8, 8)
    c = CropCandidates(scales=((2, 0.5),), out_size=4)
    out = c.apply(x, torch.tensor([0, 3]))
    assert torch.allclose(out[0], x[0, :, :4, :4], atol=1e-5)
    assert torch.allclose(out[1], x[1, :, 4:, 4:], atol=1e-5)
    full = CropCandidates(scales=((2, 0.5),)).apply(x, torch.tensor([4, 4]))
    assert torch.allclose(full, x, atol=1e-5)
    with pytest.raises(ValueError, match="one candidate per image"):
        c.apply(x, torch.tensor([0]))


def test_crop_coverage_is_probability_of_pixel_in_crop():
    c = CropCandidates(scales=((2, 0.5),))
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.0, 0.4]])
    cov = c.coverage(probs, (4, 4))[0]
    assert torch.allclose(cov[0, 0], torch.tensor(0.1 + 0.4))
    assert torch.allclose(cov[0, 3], torch.tensor(0.2 + 0.4))
    assert torch.allclose(cov[3, 0], torch.tensor(0.3 + 0.4))
    assert torch.allclose(cov[3, 3], torch.tensor(0.4))


def test_bad_crop_scales():
    with pytest.raises(ValueError, match="grid must be >= 1"):
        CropCandidates(scales=((0, 0.5),))
    with pytest.raises(ValueError, match="side in"):
        CropCandidates(scales=((2, 1.5),))
    with pytest.raises(ValueError, match="no crop candidates"):
        CropCandidates(scales=(), full_image=False)


def test_gumbel_sampling_frequencies_and_distinctness():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    g = torch.Generator().manual_seed(0)
    idx = sample_categorical(logits.expand(20000, 4), 2, g)
    assert idx.shape == (20000, 2)
    freq = torch.bincount(idx.flatten(), minlength=4).float() / idx.numel()
    assert torch.allclose(freq, logits.exp()[0], atol=0.01)
    top = sample_categorical(logits.expand(500, 4), 3, torch.Generator().manual_seed(1), replacement=False)
    assert all(len(set(row)) == 3 for row in top.tolist())
    # a pure function of the generator's seed
    a = sample_categorical(logits.expand(7, 4), 2, torch.Generator().manual_seed(5))
    b = sample_categorical(logits.expand(7, 4), 2, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="distinct"):
        sample_categorical(logits, 5, replacement=False)


@pytest.mark.parametrize("transform", [HorizontalFlip(), Rotate90(), Posterize(bits=(2, 6))])
def test_learned_range_refuses_transforms_without_continuous_parameters(transform):
    with pytest.raises(ValueError, match="no continuous parameter") as err:
        LearnedRange(transform)
    assert transform.name in str(err.value)


def test_learned_range_bad_keys_and_widths():
    with pytest.raises(ValueError, match="'fired' .* is binary"):
        LearnedRange(RandomApply(Rotate(30), p=0.5), keys=["fired"])
    with pytest.raises(KeyError, match="no parameter 'angel'"):
        LearnedRange(Rotate(30), keys=["angel"])
    with pytest.raises(ValueError, match="zero width"):
        LearnedRange(Brightness((1.0, 1.0)))
    with pytest.raises(ValueError, match="max_plus"):
        LearnedRange(Translate(0.2), max_plus=[0.1, 0.1, 0.1])


def test_learned_range_samples_lie_in_per_input_ranges():
    lr = LearnedRange(Compose([Rotate((-180, 180)), Translate(0.25)]))
    assert lr.keys == ["rotate.angle", "translate.shift"] and lr.dim == 3
    assert lr.component_names() == ["rotate.angle", "translate.shift[0]", "translate.shift[1]"]
    assert torch.allclose(lr.max_minus, torch.tensor([180.0, 0.25, 0.25]))
    raw = torch.randn(64, 6) * 2
    a_minus, a_plus = lr.ranges(raw)
    params = lr.sample(a_minus, a_plus, torch.Generator().manual_seed(0))
    flat = torch.cat([params["rotate.angle"].view(64, 1), params["translate.shift"]], 1)
    assert bool((flat >= -a_minus - 1e-5).all() and (flat <= a_plus + 1e-5).all())
    x = torch.rand(64, 3, 8, 8)
    out, _ = lr.apply(x, a_minus, a_plus, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        lr.ranges(torch.zeros(2, 4))


def test_learned_range_keeps_non_learned_parameters_from_the_transform():
    lr = LearnedRange(RandomApply(Brightness((0.5, 1.5)), p=0.5))
    assert lr.keys == ["factor"]
    a = torch.full((1000, 1), 0.2)
    params = lr.sample(a, a, torch.Generator().manual_seed(0))
    assert 0.4 < params["fired"].float().mean() < 0.6
    assert bool((params["factor"] - 1).abs().max() <= 0.2 + 1e-6)


@pytest.mark.parametrize("transform", [Rotate((-90, 90)), Brightness((0.5, 1.5)), Hue((-0.2, 0.2)), Translate(0.3)])
def test_pathwise_gradients_reach_the_range_parameters(transform):
    """d loss / d raw through transform.apply matches finite differences (same draws)."""
    torch.manual_seed(0)
    lr = LearnedRange(transform)
    x = torch.rand(3, 3, 10, 10, dtype=torch.float64)
    weight = torch.rand(3, 3, 10, 10, dtype=torch.float64)

    def loss(raw):
        a_minus, a_plus = lr.ranges(raw)
        out, _ = lr.apply(x, a_minus, a_plus, torch.Generator().manual_seed(3))
        return (out * weight).sum()

    raw = (torch.randn(3, lr.num_outputs, dtype=torch.float64) * 0.5).requires_grad_()
    (grad,) = torch.autograd.grad(loss(raw), raw)
    assert bool((grad.abs().sum(0) > 0).all()), "every range component must receive a gradient"
    eps = 1e-6
    for j in range(lr.num_outputs):
        d = torch.zeros_like(raw)
        d[0, j] = eps
        fd = (loss(raw.detach() + d) - loss(raw.detach() - d)) / (2 * eps)
        assert float(fd) == pytest.approx(float(grad[0, j]), rel=1e-3, abs=1e-6)


def test_lie_affine_rotation_matches_rotate():
    t = LieAffine(["rotation"])
    x = torch.rand(2, 3, 12, 12)
    coords = torch.tensor([[0.3], [-1.1]])
    ours = t.apply(x, {"coords": coords})
    ref = Rotate().apply(x, {"angle": torch.rad2deg(coords[:, 0])})
    assert torch.allclose(ours, ref, atol=1e-5)


def test_lie_affine_translation_and_identity():
    t = LieAffine(["tx", "ty", "scale"])
    m = t.matrix({"coords": torch.tensor([[1.0, 0.0, 0.0]])}, (8, 16))
    assert torch.allclose(m[0], torch.tensor([[1.0, 0, 8], [0, 1, 0], [0, 0, 1]]), atol=1e-5)  # half the width
    x = torch.rand(2, 3, 8, 16)
    assert torch.allclose(t.apply(x, t.identity_params(2)), x, atol=1e-5)
    m = t.matrix({"coords": torch.tensor([[0.0, 0.0, math.log(2.0)]])}, (8, 8))
    assert torch.allclose(m[0, :2, :2], 2 * torch.eye(2), atol=1e-5)
    with pytest.raises(ValueError, match="generators must be distinct"):
        LieAffine(["rotation", "twist"])
    p = LieAffine(["rotation"], widths=1.0).sample(1000, torch.Generator().manual_seed(0))["coords"]
    assert float(p.abs().max()) <= 0.5
