"""Every loss computes in float32 under bf16 autocast: its value equals the float32
computation on the same (bf16-rounded) inputs exactly, and the float32 value on the
unrounded inputs within a stated tolerance."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from invlab.losses import (
    EquivarianceLoss,
    StageWeights,
    bank_similarities,
    bank_topk,
    barlow_twins,
    circular_loss,
    discrete_loss,
    float32_loss,
    info_nce,
    instance_contrastive_loss,
    invariance_propagation_loss,
    negative_cosine,
    nt_xent,
    regression_loss,
    simsiam_loss,
    timestamp_predictive_loss,
    triplet_ranking_loss,
)
from invlab.losses.hdc import positive_similarity
from invlab.losses.instaaug import (
    AdaptiveEntropyWeight,
    EntropyTarget,
    augerino_loss,
    categorical_entropy,
    nt_xent_per_sample,
    score_function_loss,
    uniform_entropy,
)
from invlab.transforms import Compose, HorizontalFlip, RandomResizedCrop, Rotate

#: |bf16-input loss - float32-input loss| <= REL * |float32 loss| + ABS: the inputs' own
#: bfloat16 rounding (8-bit mantissa, relative error <= 2^-9) is the only difference left
REL, ABS = 1e-2, 1e-2  # observed worst: 7.6e-3 absolute (bank_similarities, a sum of 96 values)

g = torch.Generator().manual_seed(0)
B, D = 16, 32
Z = [torch.randn(B, D, generator=g) for _ in range(4)]
BANK = F.normalize(torch.randn(64, D, generator=g), dim=1)
INDEX = torch.arange(B)
CAND = torch.randint(0, 64, (B, 6), generator=g)
SPECS = Compose([RandomResizedCrop(8), HorizontalFlip(), Rotate(30)]).param_specs()
EQ = EquivarianceLoss(SPECS)
PARAMS = Compose([RandomResizedCrop(8), HorizontalFlip(), Rotate(30)]).sample(B, torch.Generator().manual_seed(1), size=(8, 8))
PRED = torch.randn(B, EQ.out_dim, generator=g)
LOGP = torch.randn(3, B, generator=g)
LOSSES = torch.rand(3, B, generator=g)
WIDTH = torch.rand(B, 4, generator=g)
GROUP = torch.arange(B) // 2

CASES = {
    "nt_xent": (lambda a, b: nt_xent(a, b, 0.1), Z[:2]),
    "info_nce": (lambda a, b: info_nce(a, b, 0.1), Z[:2]),
    "barlow_twins": (barlow_twins, Z[:2]),
    "negative_cosine": (negative_cosine, Z[:2]),
    "simsiam_loss": (simsiam_loss, Z),
    "instance_contrastive": (instance_contrastive_loss, Z),
    "timestamp_predictive": (timestamp_predictive_loss, [z.view(B, 4, 8) for z in Z[:3]]),
    "discrete_loss": (lambda p: discrete_loss(p.view(B, 4, 8), torch.arange(B * 4).view(B, 4) % 8), [Z[0]]),
    "regression_loss": (lambda p: regression_loss(p, torch.rand(B, D, generator=torch.Generator().manual_seed(2)), 0.0, 1.0), [Z[0]]),
    "circular_loss": (lambda p: circular_loss(p.view(B, 16, 2), torch.linspace(0, 300, B * 16).view(B, 16), 360.0), [Z[0]]),
    "equivariance": (lambda p: EQ(p, PARAMS)[0], [PRED]),
    "positive_similarity": (positive_similarity, Z[:2]),
    "stage_weights": (lambda losses, sims: StageWeights(["a", "b", "c", "d"], "fixed", fixed=[1, 2, 3, 4])(losses, sims)[0],
                      [torch.rand(4, generator=g) * 5, torch.rand(4, generator=g)]),
    "score_function": (score_function_loss, [LOGP, LOSSES]),
    "categorical_entropy": (lambda x: categorical_entropy(x).mean(), [Z[0]]),
    "uniform_entropy": (lambda a, b: uniform_entropy(a, b).mean(), [WIDTH, WIDTH.flip(0)]),
    "adaptive_entropy": (lambda h: AdaptiveEntropyWeight(1.0, 2.0).loss(h), [LOSSES[0] * 3]),
    "entropy_target": (lambda h: EntropyTarget(3.0, 1.0).loss(h, 0.5), [LOSSES[0] * 3]),
    "augerino": (augerino_loss, [LOSSES[0, 0], WIDTH[0]]),
    "nt_xent_per_sample": (lambda a, b: nt_xent_per_sample(a, b, 0.1).mean(), Z[:2]),
    "invariance_propagation": (
        lambda z: invariance_propagation_loss(z, INDEX, BANK, CAND, num_positives=3, num_negatives=20, temperature=0.07).loss,
        [Z[0]]),
    "bank_similarities": (lambda z: bank_similarities(z, BANK, CAND).sum(), [Z[0]]),
    "bank_topk": (lambda z: bank_topk(z, BANK, 5)[0].sum(), [Z[0]]),
    "triplet_ranking": (lambda a, p: triplet_ranking_loss(a, p, group=GROUP, generator=torch.Generator().manual_seed(3)),
                        Z[:2]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_under_bf16_autocast_is_computed_in_float32(name):
    fn, inputs = CASES[name]
    half = [x.bfloat16().requires_grad_() for x in inputs]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = fn(*half)
    assert got.dtype == torch.float32, f"{name} returned {got.dtype}"
    # the same bf16-rounded inputs in float32 without autocast: identical, bit for bit, so
    # nothing inside ran in bfloat16
    assert torch.equal(got, fn(*[x.detach().float() for x in half])), name
    want = fn(*inputs)
    assert abs(float(got) - float(want)) <= REL * abs(float(want)) + ABS, (name, float(got), float(want))
    if got.requires_grad:  # gradients reach the bfloat16 inputs in their own dtype
        got.backward()
        grads = [x.grad for x in half if x.grad is not None]
        assert grads and all(gr.dtype == torch.bfloat16 and torch.isfinite(gr.float()).all() for gr in grads)


def test_autocast_would_change_the_logits_otherwise():
    """The check above can fail: the same NT-Xent logits computed under bf16 autocast
    without the decorator are not the float32 ones, and the decorator restores them."""
    a, b = (F.normalize(z, dim=1) for z in Z[:2])

    def logits(x, y):
        return x @ y.T / 0.1

    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = logits(a, b)
        guarded = float32_loss(logits)(a, b)
    assert plain.dtype == torch.bfloat16 and not torch.equal(plain.float(), logits(a, b))
    assert guarded.dtype == torch.float32 and torch.equal(guarded, logits(a, b))


def test_keep_leaves_a_half_precision_bank_alone():
    seen = {}

    @float32_loss(keep=("bank",))
    def f(z, bank):
        seen["z"], seen["bank"] = z.dtype, bank.dtype
        return z.sum()

    f(torch.ones(2, 2, dtype=torch.bfloat16), bank=torch.ones(3, 2, dtype=torch.float16))
    assert seen == {"z": torch.float32, "bank": torch.float16}
