from __future__ import annotations

import pytest
import torch

from invlab.nn import MLP, Encoder, HeadSpec, build_backbone, resnet18, resnet34, resnet50
from invlab.nn.registry import backbone_from_config


@pytest.mark.parametrize(
    "make, stem, size, dim, stage_sizes",
    [
        (resnet18, "cifar", 32, 8 * 16, {"stem": 32, "layer1": 32, "layer2": 16, "layer3": 8, "layer4": 4}),
        (resnet34, "cifar", 32, 8 * 8, {"layer4": 4}),
        (resnet50, "cifar", 32, 8 * 8 * 4, {"layer1": 32, "layer4": 4}),
        (resnet18, "imagenet", 64, 8 * 16, {"stem": 16, "layer1": 16, "layer4": 2}),
    ],
)
def test_shapes_and_stage_taps(make, stem, size, dim, stage_sizes):
    width = dim // 8 // (4 if make is resnet50 else 1)
    net = make(width=width, stem=stem).eval()
    x = torch.rand(2, 3, size, size)
    assert net(x).shape == (2, dim) and net.feature_dim == dim
    feats = net.forward_features(x)
    assert set(feats) == set(net.stage_names)
    for stage, side in stage_sizes.items():
        assert feats[stage].shape[-1] == side
        assert feats[stage].shape[1] == net.stage_channels[stage]
    torch.testing.assert_close(feats["pool"], net(x))


def test_forward_features_stops_at_the_deepest_requested_stage():
    net = resnet18(width=8)
    calls = []
    net.layer3.register_forward_hook(lambda *a: calls.append("layer3"))
    net.layer4.register_forward_hook(lambda *a: calls.append("layer4"))
    out = net.forward_features(torch.rand(1, 3, 16, 16), stages=("layer2",))
    assert list(out) == ["layer2"] and calls == []
    with pytest.raises(KeyError, match="unknown stage"):
        net.forward_features(torch.rand(1, 3, 16, 16), stages=("res5",))


def test_width_and_grey_input():
    net = resnet18(width=4, in_channels=1)
    assert net(torch.rand(2, 1, 8, 8)).shape == (2, 32)
    with pytest.raises(ValueError):
        resnet18(stem="vgg")


def test_config_rebuilds_the_same_architecture():
    net = resnet50(width=8, stem="imagenet", in_channels=1)
    clone = backbone_from_config(net.config)
    assert clone.config == net.config
    assert sum(p.numel() for p in clone.parameters()) == sum(p.numel() for p in net.parameters())
    with pytest.raises(ValueError):
        build_backbone("resnet999")


def test_mlp_heads():
    head = MLP(16, [32, 32], 8, norm="batch", last_norm="batch")
    assert head(torch.rand(4, 16)).shape == (4, 8)
    assert isinstance(head[-1], torch.nn.BatchNorm1d)
    ln = HeadSpec(hidden=[12], out=3, norm="layer").build(5)
    assert isinstance(ln[1], torch.nn.LayerNorm) and ln(torch.rand(2, 5)).shape == (2, 3)
    with pytest.raises(ValueError):
        MLP(4, [4], 4, norm="group")


def test_encoder_normalises_and_accepts_uint8():
    net = resnet18(width=4)
    enc = Encoder(net, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]).eval()
    x = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    torch.testing.assert_close(enc(x), net.eval()((x.float() / 255 - 0.5) / 0.25))
    with pytest.raises(ValueError, match="3 input channels"):
        enc(torch.rand(2, 1, 8, 8))
