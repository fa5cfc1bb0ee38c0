"""Equivariance losses against naive loops, masking, layouts, and a toy whose answer is known."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from invlab.losses import EquivarianceLoss, circular_loss, discrete_loss, info_nce, regression_loss
from invlab.losses.equivariance import prediction_layout
from invlab.nn.heads import MLP
from invlab.transforms import Brightness, Compose, GaussianBlur, RandomApply, Rotate, Rotate90
from invlab.transforms.copies import transformed_copies


def naive_info_nce(z1, z2, t):
    z1, z2 = F.normalize(z1.detach(), dim=1), F.normalize(z2.detach(), dim=1)
    n, total = len(z1), 0.0
    for a, b in ((z1, z2), (z2, z1)):
        for i in range(n):
            den = sum(math.exp(float(a[i] @ b[j]) / t) for j in range(n))  # the other view only
            total += -math.log(math.exp(float(a[i] @ b[i]) / t) / den) / (2 * n)
    return total


@pytest.mark.parametrize("t", [0.1, 0.5])
def test_info_nce_matches_naive_loop_and_gradcheck(t):
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert info_nce(z1, z2, t).item() == pytest.approx(naive_info_nce(z1, z2, t), rel=1e-9)
    assert torch.autograd.gradcheck(lambda a, b: info_nce(a, b, t), (z1, z2))
    with pytest.raises(ValueError, match="equal shape"):
        info_nce(torch.rand(4, 3), torch.rand(5, 3))
    with pytest.raises(ValueError, match="temperature"):
        info_nce(torch.rand(4, 3), torch.rand(4, 3), temperature=-1)


def test_discrete_loss_matches_naive_cross_entropy_with_mask():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 2, 3, generator=g, dtype=torch.float64)
    target = torch.randint(3, (5, 2), generator=g)
    mask = torch.tensor([True, False, True, True, False])
    naive = 0.0
    for i in torch.nonzero(mask).flatten().tolist():
        for e in range(2):
            row = logits[i, e]
            naive += (-row[target[i, e]] + torch.logsumexp(row, 0)).item() / 2
    assert float(discrete_loss(logits, target, mask)) == pytest.approx(naive / 3, rel=1e-12)


def test_regression_loss_normalises_the_range():
    pred = torch.tensor([[0.0], [2.0], [-1.0]], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([[2.0], [6.0], [3.0]], dtype=torch.float64)  # range [2, 6] -> 0, 1, 0.25
    naive = 0.0
    for logit, value in zip(pred.detach().flatten().tolist(), target.flatten().tolist()):
        t, q = (value - 2) / 4, 1 / (1 + math.exp(-logit))
        naive += sum(a * math.log(a / b) for a, b in ((t, q), (1 - t, 1 - q)) if a > 0)  # KL(Bern(t) || Bern(q))
    loss = regression_loss(pred, target, 2.0, 6.0)
    assert float(loss.detach()) == pytest.approx(naive / 3, rel=1e-12)
    loss.backward()  # bounded like a cross-entropy's: (sigmoid(l) - t) / N
    expected = (torch.sigmoid(pred.detach()) - torch.tensor([[0.0], [1.0], [0.25]], dtype=torch.float64)) / 3
    assert torch.allclose(pred.grad, expected)
    exact = torch.logit(torch.tensor([[0.25]], dtype=torch.float64))
    assert float(regression_loss(exact, torch.tensor([[3.0]], dtype=torch.float64), 2.0, 6.0)) == pytest.approx(0, abs=1e-12)


def test_regression_stays_finite_at_the_base_methods_learning_rate():
    """SGD at E-SSL's lr on a wide LayerNorm head: squared error diverged to NaN within ten
    steps here (the blur-equivariance run of the essl-controlled study)."""
    torch.manual_seed(0)
    transform = RandomApply(GaussianBlur((0.1, 2.0)), p=0.5)
    loss_fn = EquivarianceLoss(transform.param_specs())
    head = MLP(64, [2048, 2048], loss_fn.out_dim, norm="layer")
    opt = torch.optim.SGD(head.parameters(), lr=0.06, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(40):
        x, params = transformed_copies(_toy_images(128), transform, 2, g)
        loss, _ = loss_fn(head(x.flatten(1)), params)
        opt.zero_grad()
        (0.4 * loss).backward()
        opt.step()
        losses.append(float(loss))
    assert all(math.isfinite(v) for v in losses)
    assert max(losses) < 10


def test_circular_loss_matches_naive_and_wraps_around():
    g = torch.Generator().manual_seed(2)
    pred = torch.randn(7, 1, 2, generator=g, dtype=torch.float64)
    angle = torch.rand(7, 1, generator=g, dtype=torch.float64) * 360 - 180
    naive = sum(1 - math.cos(math.atan2(float(p[0, 1]), float(p[0, 0])) - math.radians(float(a[0])))
                for p, a in zip(pred, angle)) / 7
    assert float(circular_loss(pred, angle, 360.0)) == pytest.approx(naive, rel=1e-5)  # eps in the norm
    # 359 degrees and -1 degree are the same angle; a perfect prediction costs ~0, the opposite 2
    up = torch.tensor([[[math.cos(math.radians(-1.0)), math.sin(math.radians(-1.0))]]], dtype=torch.float64)
    assert float(circular_loss(up, torch.tensor([[359.0]], dtype=torch.float64), 360.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(circular_loss(-up, torch.tensor([[359.0]], dtype=torch.float64), 360.0)) == pytest.approx(2.0, abs=1e-6)


def test_layout_covers_every_parameter_and_masks_unfired_ones():
    target = Compose([Rotate90(), RandomApply(GaussianBlur((0.5, 2.0)), p=0.5), Rotate((-180, 180))])
    loss_fn = EquivarianceLoss(target.param_specs())
    assert loss_fn.keys == ["rot90.k", "blur.fired", "blur.sigma", "rotate.angle"]
    assert loss_fn.out_dim == 4 + 2 + 1 + 2
    layout = {p.key: p for p in loss_fn.layout}
    assert layout["blur.sigma"].mask_key == "blur.fired" and layout["rot90.k"].mask_key is None

    params = target.sample(16, torch.Generator().manual_seed(3))
    pred = torch.randn(16, loss_fn.out_dim, generator=torch.Generator().manual_seed(4))
    loss, terms = loss_fn(pred, params)
    assert float(loss) == pytest.approx(sum(float(terms[k]) for k in loss_fn.keys), rel=1e-6)
    assert {"rot90.k/acc", "blur.fired/acc", "blur.sigma/mae", "rotate.angle/mae"} <= set(terms)
    # the sigma of samples whose blur did not fire is never scored
    changed = dict(params)
    changed["blur.sigma"] = torch.where(params["blur.fired"], params["blur.sigma"], torch.full_like(params["blur.sigma"], 99.0))
    assert float(loss_fn(pred, changed)[1]["blur.sigma"]) == pytest.approx(float(terms["blur.sigma"]))


def test_bad_targets_are_named():
    specs = Rotate90().param_specs()
    with pytest.raises(ValueError, match=r"cannot predict \['angle'\].*\['k'\]"):
        prediction_layout(specs, ["angle"])
    loss_fn = EquivarianceLoss(specs)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        loss_fn(torch.zeros(3, 5), {"k": torch.zeros(3, dtype=torch.long)})
    with pytest.raises(KeyError, match="missing"):
        loss_fn(torch.zeros(3, 4), {})


def _toy_images(n: int) -> torch.Tensor:
    """One fixed, asymmetric 8x8 image repeated: the transformation is the only variation."""
    base = torch.zeros(1, 1, 8, 8)
    base[..., 1:4, 2:7] = 1.0
    base[..., 4:7, 2:4] = 0.6
    return base.repeat(n, 1, 1, 1)


STEPS = 400


@pytest.mark.parametrize("transform, key, tolerance", [
    (Brightness((0.3, 1.0)), "factor", 0.015),  # continuous: 2% of the range (logistic-link regression)
    (Rotate((-180.0, 180.0)), "angle", 3.0),  # angle: circular loss, error in degrees
])
def test_a_continuous_target_trains_to_low_error_on_a_toy(transform, key, tolerance):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only add overhead
    try:
        torch.manual_seed(0)
        loss_fn = EquivarianceLoss(transform.param_specs())
        head = MLP(64, [64, 64], loss_fn.out_dim, norm="layer")
        opt = torch.optim.Adam(head.parameters(), lr=1e-2)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, STEPS)
        g = torch.Generator().manual_seed(0)
        for _ in range(STEPS):
            x, params = transformed_copies(_toy_images(64), transform, 1, g)
            loss, _ = loss_fn(head(x.flatten(1)), params)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        x, params = transformed_copies(_toy_images(256), transform, 1, torch.Generator().manual_seed(99))
        with torch.no_grad():
            _, terms = loss_fn(head(x.flatten(1)), params)
    finally:
        torch.set_num_threads(threads)
    assert float(terms[f"{key}/mae"]) < tolerance  # chance: ~0.23 (factor), ~90 degrees (angle)
