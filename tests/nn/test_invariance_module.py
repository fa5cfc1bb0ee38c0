"""The invariance module (tiny pre-activation ResNet -> distribution parameters) and
Augerino's global widths (they grow under the regulariser only where the data allow)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from invlab.losses.instaaug import augerino_loss
from invlab.nn.invariance_module import AugerinoWidths, InvarianceModule, TinyPreActResNet
from invlab.transforms import Rotate
from invlab.transforms.learned import CropCandidates, LearnedRange, LieAffine


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_tiny_resnet_shapes():
    net = TinyPreActResNet(3, (8, 8, 16, 32))
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 32, 8, 8)
    with pytest.raises(ValueError, match="widths"):
        TinyPreActResNet(3, (8,))


def test_module_starts_from_the_configured_distribution():
    crops = CropCandidates()
    ranges = LearnedRange(Rotate((-180, 180)))
    m = InvarianceModule(3, crops=crops, ranges=ranges, full_image_prob=0.8, init_fraction=0.1)
    out = m(torch.rand(4, 3, 32, 32))
    p = torch.softmax(out["crop_logits"], -1)
    assert p.shape == (4, crops.num_candidates)
    assert torch.allclose(p[:, -1], torch.full((4,), 0.8), atol=1e-5)
    assert torch.allclose(p[:, :-1], torch.full_like(p[:, :-1], 0.2 / (crops.num_candidates - 1)), atol=1e-6)
    assert torch.allclose(out["a_minus"], torch.full((4, 1), 18.0), atol=1e-4)
    assert torch.allclose(out["a_plus"], torch.full((4, 1), 18.0), atol=1e-4)


def test_module_outputs_depend_on_the_input_after_training():
    """The output layers start at zero (every input gets the prior); after one step they
    pass gradients into the body and the outputs differ per input."""
    crops = CropCandidates(scales=((2, 0.5),))
    m = InvarianceModule(3, crops=crops, ranges=LearnedRange(Rotate(90)))
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    x = torch.rand(4, 3, 16, 16)
    for _ in range(2):
        out = m(x)
        loss = (out["crop_logits"][:, 0] * torch.arange(4.0)).sum() + (out["a_plus"][:, 0] * torch.arange(4.0)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(m.body.stem.weight.grad.abs().sum()) > 0
    with torch.no_grad():
        out = m(x)
    assert float(out["crop_logits"][:, 0].std()) > 1e-6 and float(out["a_plus"].std()) > 1e-6
    with pytest.raises(ValueError, match="crops, ranges or both"):
        InvarianceModule(3)


def _discs_and_bars(n: int, g: torch.Generator, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """16 px images. ``discs``: class = small or large centred disc (rotation-invariant).
    ``bars``: class = horizontal or vertical bar (a 90-degree rotation swaps the classes)."""
    y = torch.randint(0, 2, (n,), generator=g)
    c = torch.arange(16) + 0.5 - 8
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    if kind == "discs":
        r = torch.where(y == 0, 3.0, 6.0).view(n, 1, 1)
        img = ((yy**2 + xx**2).unsqueeze(0) < r**2).float()
    else:
        horizontal = ((yy.abs() < 1.5) & (xx.abs() < 6)).float()
        img = torch.where((y == 0).view(n, 1, 1), horizontal, horizontal.t())
    return (img + 0.05 * torch.rand(n, 16, 16, generator=g)).unsqueeze(1), y


def _train_augerino(kind: str, steps: int = 150) -> float:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, stride=2),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    aug = AugerinoWidths(1)
    lie = LieAffine(["rotation"])
    opt = torch.optim.Adam([*model.parameters(), *aug.parameters()], lr=0.01)
    for _ in range(steps):
        x, y = _discs_and_bars(32, g, kind)
        x = lie.apply(x, {"coords": aug.sample(32, g)})
        loss = augerino_loss(F.cross_entropy(model(x), y), aug.widths, reg=0.01)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(aug.widths.detach())


def test_augerino_widths_grow_where_the_data_allow():
    start = math.log(2.0)
    invariant, sensitive = _train_augerino("discs"), _train_augerino("bars")
    assert invariant > start + 0.5, invariant
    assert sensitive < invariant - 0.5, (sensitive, invariant)
