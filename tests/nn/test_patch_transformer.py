"""TimeDRL's encoder: patch counts against T_p = (L - P) / S + 2, patch contents, [CLS]
placement, instance normalisation, channel independence, and the two passes differing
only through dropout."""

from __future__ import annotations

import pytest
import torch

from invlab.nn import PatchTransformer
from invlab.nn.patch_transformer import instance_normalize, num_patches, patchify
from invlab.nn.registry import backbone_from_config


@pytest.mark.parametrize("length, patch, stride", [(512, 16, 16), (512, 16, 8), (150, 8, 8), (24, 8, 8), (29, 8, 4),
                                                   (1460, 8, 8), (16, 16, 16), (100, 12, 5)])
def test_patch_count_formula(length, patch, stride):
    x = torch.randn(2, 3, length)
    t_p = num_patches(length, patch, stride)
    if (length - patch) % stride == 0:
        assert t_p == (length - patch) / stride + 2
    assert patchify(x, patch, stride, True).shape == (6, t_p, patch)
    assert patchify(x, patch, stride, False).shape == (2, t_p, 3 * patch)


def test_patch_contents_and_replication_padding():
    x = torch.arange(2 * 2 * 10, dtype=torch.float32).reshape(2, 2, 10)
    ci = patchify(x, 4, 3, channel_independent=True)  # (4, 4, 4): T_p = (10 - 4) // 3 + 2 = 4
    torch.testing.assert_close(ci[3, 1], x[1, 1, 3:7])  # series 1, channel 1, patch 1
    padded_last = torch.cat([x[0, 0, 9:10], x[0, 0, 9:10].expand(3)])
    torch.testing.assert_close(ci[0, 3], padded_last)  # steps 9..12; 10..12 replicate step 9
    mixed = patchify(x, 4, 3, channel_independent=False)  # channel-major within a patch
    torch.testing.assert_close(mixed[1, 2], torch.cat([x[1, 0, 6:10], x[1, 1, 6:10]]))
    with pytest.raises(ValueError, match="shorter than one patch"):
        patchify(torch.randn(1, 1, 5), 8, 8, True)


def test_instance_normalisation_and_denormalisation():
    x = torch.randn(4, 3, 50) * 7 + 3
    xn, stats = instance_normalize(x)
    torch.testing.assert_close(xn.mean(-1), torch.zeros(4, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(xn.var(-1, unbiased=False), torch.ones(4, 3), atol=1e-4, rtol=0)
    torch.testing.assert_close(stats.denormalize(xn), x, atol=1e-4, rtol=1e-5)
    assert not stats.mean.requires_grad


@pytest.mark.parametrize("channel_independent", [True, False])
def test_cls_patch_is_prepended_in_patch_space(channel_independent):
    enc = PatchTransformer(3, 32, patch_len=8, stride=8, d_model=16, n_heads=2, channel_independent=channel_independent)
    x = torch.randn(2, 3, 32)
    patches = enc.patchify(enc.normalize(x)[0])
    with_cls = enc.with_cls(patches)
    assert with_cls.shape == (patches.shape[0], enc.num_patches + 1, enc.token_dim)
    torch.testing.assert_close(with_cls[:, 1:], patches)
    if channel_independent:  # one [CLS] patch per channel, the same for every series
        for row in range(6):
            torch.testing.assert_close(with_cls[row, 0], enc.cls_token[0, row % 3])
    else:
        torch.testing.assert_close(with_cls[:, 0], enc.cls_token[0, 0].expand(2, -1))
    tokens = enc(x)
    assert tokens.shape == (patches.shape[0], enc.num_patches + 1, 16)
    torch.testing.assert_close(enc.instance_embedding(tokens, "cls"), tokens[:, 0])
    torch.testing.assert_close(enc.instance_embedding(tokens, "mean"), tokens[:, 1:].mean(1))
    torch.testing.assert_close(enc.instance_embedding(tokens, "last"), tokens[:, -1])


def test_two_passes_differ_only_through_dropout():
    torch.manual_seed(0)
    x = torch.randn(4, 2, 64)
    enc = PatchTransformer(2, 64, patch_len=16, stride=8, d_model=32, n_heads=4, n_layers=2, dropout=0.2).train()
    assert not torch.allclose(enc(x), enc(x))  # dropout active: the two passes differ
    enc.eval()
    torch.testing.assert_close(enc(x), enc(x), rtol=0, atol=0)  # eval: identical
    no_dropout = PatchTransformer(2, 64, patch_len=16, stride=8, d_model=32, n_heads=4, n_layers=2, dropout=0.0).train()
    torch.testing.assert_close(no_dropout(x), no_dropout(x), rtol=0, atol=0)  # nothing else is random


def test_channel_independence():
    x = torch.randn(2, 3, 48)
    y = x.clone()
    y[:, 1] = torch.randn(2, 48)
    ci = PatchTransformer(3, 48, patch_len=8, stride=8, d_model=16, n_heads=2).eval()
    a, b = ci(x).reshape(2, 3, -1, 16), ci(y).reshape(2, 3, -1, 16)
    torch.testing.assert_close(a[:, 0], b[:, 0])
    torch.testing.assert_close(a[:, 2], b[:, 2])
    assert not torch.allclose(a[:, 1], b[:, 1])
    mixed = PatchTransformer(3, 48, patch_len=8, stride=8, d_model=16, n_heads=2, channel_independent=False).eval()
    assert not torch.allclose(mixed(x), mixed(y))
    assert ci.per_series(ci.instance_embedding(ci(x))).shape == (2, 48)


@pytest.mark.parametrize("options", [dict(token_embedding="linear"), dict(positional="sincos"), dict(positional="none"),
                                     dict(activation="relu", d_ff=24)])
def test_variants_and_rebuild_from_config(options):
    enc = PatchTransformer(2, 40, patch_len=8, stride=4, d_model=16, n_heads=2, **options).eval()
    clone = backbone_from_config(enc.config)
    clone.load_state_dict(enc.state_dict())
    x = torch.randn(3, 2, 40)
    torch.testing.assert_close(clone.eval()(x), enc(x))


def test_bad_configurations_and_inputs():
    with pytest.raises(ValueError, match="divisible by n_heads"):
        PatchTransformer(2, 40, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="odd kernel size"):
        PatchTransformer(2, 40, patch_len=8, stride=8, d_model=16, kernel_size=2)
    with pytest.raises(ValueError, match="positional embedding must be"):
        PatchTransformer(2, 40, patch_len=8, d_model=16, positional="rotary")
    enc = PatchTransformer(2, 40, patch_len=8, stride=8, d_model=16, n_heads=2)
    with pytest.raises(ValueError, match=r"expects series \(B, 2, 40\), got \(3, 3, 40\)"):
        enc(torch.randn(3, 3, 40))


def test_instance_norm_off_feeds_the_series_unchanged():
    x = torch.randn(3, 2, 32) * 5 + 7
    on = PatchTransformer(2, 32, patch_len=8, stride=8, d_model=8, n_heads=2, channel_independent=False).eval()
    config = {k: v for k, v in on.config.items() if k != "arch"}
    off = PatchTransformer(**{**config, "instance_norm": False}).eval()
    off.load_state_dict(on.state_dict())
    xn, stats = off.normalize(x)
    assert torch.equal(xn, x) and torch.equal(stats.denormalize(xn), x)
    # the same weights see the normalised series when instance norm is on
    torch.testing.assert_close(on(x), off(on.normalize(x)[0]))
    assert off.config["instance_norm"] is False and on.config["instance_norm"] is True
