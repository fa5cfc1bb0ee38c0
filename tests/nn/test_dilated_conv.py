"""TS2Vec's dilated-convolution encoder: shapes at any length, the block structure of the
paper, what the timestamp mask removes, export round trip and bad input."""

from __future__ import annotations

import pytest
import torch

from invlab.nn.dilated_conv import DilatedConvBlock, SamePadConv, TS2VecEncoder
from invlab.nn.registry import backbone_from_config


def _small(channels=2, **kw):
    return TS2VecEncoder(channels, 40, hidden_dim=8, output_dim=12, depth=3, **kw).eval()


@pytest.mark.parametrize("length", [1, 2, 7, 40, 61])
def test_timestamp_representations_keep_the_length(length):
    enc = _small()
    z = enc(torch.randn(5, 2, length))
    assert z.shape == (5, length, 12)
    assert enc.series_representation(z).shape == (5, 12)
    assert enc.pool(z, "instance").shape == (5, 12) and enc.pool(z, "tokens").shape == (5, 24)
    torch.testing.assert_close(enc.pool(z, "instance"), z.max(dim=1).values)


def test_paper_structure_depth_blocks_then_one_to_the_output_width():
    enc = TS2VecEncoder(3, 100)  # the paper's defaults: 64 hidden, 320 out, depth 10
    blocks = list(enc.feature_extractor.blocks)
    assert len(blocks) == 11 and enc.input_fc.in_features == 3 and enc.input_fc.out_features == 64
    assert [b.conv1.conv.dilation[0] for b in blocks] == [2**i for i in range(11)]
    assert all(b.conv1.conv.kernel_size == (3,) for b in blocks)
    assert [b.projector is not None for b in blocks] == [False] * 10 + [True]
    assert blocks[-1].conv2.conv.out_channels == 320 and enc.repr_dropout.p == 0.1


def test_block_is_a_residual_of_two_gelu_convolutions():
    torch.manual_seed(0)
    block = DilatedConvBlock(4, 4, 3, dilation=2)
    x = torch.randn(2, 4, 9)
    gelu = torch.nn.functional.gelu
    expected = x + block.conv2(gelu(block.conv1(gelu(x))))
    torch.testing.assert_close(block(x), expected)
    conv = SamePadConv(1, 1, 4, dilation=1)  # an even receptive field still keeps the length
    assert conv(torch.randn(1, 1, 10)).shape == (1, 1, 10)


def test_receptive_field_grows_with_the_dilations():
    enc = _small(channels=1)  # blocks with dilations 1, 2, 4, 8: each reaches 2 * d steps further each way
    x = torch.zeros(1, 1, 40)
    base = enc(x)
    x[0, 0, 0] = 5.0
    changed = (enc(x) - base).abs().sum(dim=-1)[0] > 1e-6
    reach = 2 * (1 + 2 + 4 + 8)
    assert changed[: reach + 1].all() and not changed[reach + 1 :].any()


def test_masked_timestamps_carry_nothing_of_the_input():
    enc = _small()
    x = torch.randn(3, 2, 20)
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[:, 7] = False
    y = x.clone()
    y[:, :, 7] += 10.0
    torch.testing.assert_close(enc(x, mask), enc(y, mask))  # the masked step is invisible
    assert not torch.allclose(enc(x), enc(y))
    none = torch.zeros(3, 20, dtype=torch.bool)
    torch.testing.assert_close(enc(x, none), enc(torch.randn(3, 2, 20), none))


def test_export_config_rebuilds_the_same_module():
    enc = _small()
    rebuilt = backbone_from_config(enc.config)
    rebuilt.load_state_dict(enc.state_dict())
    x = torch.randn(2, 2, 40)
    torch.testing.assert_close(rebuilt.eval()(x), enc(x))


def test_bad_input_and_options_are_refused():
    enc = _small()
    with pytest.raises(ValueError, match=r"expects series \(B, 2, T\)"):
        enc(torch.randn(2, 3, 10))
    with pytest.raises(ValueError, match="expects series"):
        enc(torch.randn(2, 10))
    with pytest.raises(ValueError, match="mask must be bool of shape"):
        enc(torch.randn(2, 2, 10), torch.ones(2, 9, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be bool"):
        enc(torch.randn(2, 2, 10), torch.ones(2, 10))
    with pytest.raises(ValueError, match="refused|pools 'instance'"):
        enc.pool(torch.randn(2, 5, 12), "all")
    with pytest.raises(ValueError, match="hidden_dim must be >= 1"):
        TS2VecEncoder(1, 10, hidden_dim=0)
    with pytest.raises(ValueError, match="dropout"):
        TS2VecEncoder(1, 10, dropout=1.0)
