import pytest
import torch

from invlab.nn import Encoder, r2plus1d_18, r3d_18
from invlab.nn.registry import backbone_from_config


@pytest.mark.parametrize("factory, params", [(r3d_18, 33_166_272), (r2plus1d_18, 31_300_125)])
def test_full_size_parameter_counts_match_torchvision(factory, params):
    # torchvision's r3d_18 / r2plus1d_18 minus their 400-way fc (512 * 400 + 400)
    assert sum(p.numel() for p in factory().parameters()) == params


@pytest.mark.parametrize("factory", [r3d_18, r2plus1d_18])
def test_stage_shapes_and_width(factory):
    torch.manual_seed(0)
    net = factory(width=8, stem_stride=1).eval()
    x = torch.rand(2, 3, 8, 16, 16)
    f = net.forward_features(x)
    assert f["res2"].shape == (2, 8, 8, 16, 16)
    assert f["res3"].shape == (2, 16, 4, 8, 8)
    assert f["res4"].shape == (2, 32, 2, 4, 4)
    assert f["res5"].shape == (2, 64, 1, 2, 2)
    assert f["pool"].shape == (2, 64) and net.feature_dim == 64
    assert torch.allclose(net(x), f["pool"], atol=1e-6)
    assert list(net.forward_features(x, ("res3",))) == ["res3"]
    assert factory(width=8).forward_features(x, ("stem",))["stem"].shape[-1] == 8  # standard stem halves H, W
    with pytest.raises(KeyError, match="unknown stage"):
        net.forward_features(x, ("layer3",))
    with pytest.raises(ValueError, match=r"\(N, C, T, H, W\)"):
        net(torch.rand(2, 3, 16, 16))


def test_gradients_reach_the_stem_and_rebuild_from_config():
    net = r2plus1d_18(width=4, stem_stride=1)
    net(torch.rand(2, 3, 4, 8, 8)).sum().backward()
    assert net.stem[0].weight.grad is not None and net.stem[0].weight.grad.abs().sum() > 0
    again = backbone_from_config(net.config)
    assert type(again) is type(net) and again.config == net.config
    again.load_state_dict(net.state_dict())


def test_encoder_normalises_clips():
    net = r3d_18(width=4, stem_stride=1).eval()
    enc = Encoder(net, [0.5, 0.4, 0.3], [0.2, 0.2, 0.2]).eval()
    x = torch.randint(0, 256, (2, 3, 4, 8, 8), dtype=torch.uint8)
    mean = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1, 1)
    expected = net((x.float() / 255 - mean) / 0.2)
    assert torch.allclose(enc(x), expected, atol=1e-5)
    assert set(enc.forward_features(x, ("res3", "pool"))) == {"res3", "pool"}
