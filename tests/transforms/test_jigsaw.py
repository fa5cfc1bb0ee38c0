"""Jigsaw: tile semantics, the permutation set, inverses, bad input, the registry."""

from __future__ import annotations

import math

import pytest
import torch

from invlab.errors import ConfigError
from invlab.transforms import Jigsaw, build_transform, permutation_set


def test_output_tile_j_is_input_tile_perm_j(images):
    jig = Jigsaw(grid=2)
    assert len(jig.permutations) == 24 and torch.equal(jig.permutations[0], torch.arange(4))
    perm = torch.arange(len(images)) * 4 % 24
    out = jig.apply(images, {"perm": perm})
    for i in range(len(images)):
        order = jig.permutations[perm[i]]
        for j in range(4):
            r, c = divmod(j, 2)
            src_r, src_c = divmod(int(order[j]), 2)
            assert torch.equal(out[i, :, r * 8 : (r + 1) * 8, c * 8 : (c + 1) * 8],
                               images[i, :, src_r * 8 : (src_r + 1) * 8, src_c * 8 : (src_c + 1) * 8])


def test_identity_and_inverse_permutations_restore_the_image(images):
    jig = Jigsaw(grid=4, permutations=30)
    n = len(images)
    assert torch.equal(jig.apply(images, jig.identity_params(n)), images)
    params = jig.sample(n, torch.Generator().manual_seed(0))
    shuffled = jig.apply(images, params)
    # undo by scattering the tiles back: inverse permutation of each sample
    tiles = shuffled.reshape(n, 3, 4, 4, 4, 4).permute(0, 2, 4, 1, 3, 5).reshape(n, 16, 3, 4, 4)
    order = jig.permutations[params["perm"]]
    restored = torch.empty_like(tiles).scatter_(1, order.view(n, 16, 1, 1, 1).expand_as(tiles), tiles)
    restored = restored.reshape(n, 4, 4, 3, 4, 4).permute(0, 3, 1, 4, 2, 5).reshape_as(images)
    assert torch.equal(restored, images)


def test_permutation_sets_are_valid_deterministic_and_far_apart():
    full = permutation_set(4)
    assert full.shape == (24, 4) and len(torch.unique(full, dim=0)) == 24
    sub = permutation_set(9, 20, seed=1)
    assert sub.shape == (20, 9) and torch.equal(sub[0], torch.arange(9))
    assert torch.equal(sub, permutation_set(9, 20, seed=1))
    assert all(sorted(p.tolist()) == list(range(9)) for p in sub)
    hamming = (sub[:, None, :] != sub[None, :, :]).sum(-1) + 100 * torch.eye(20, dtype=torch.long)
    assert int(hamming.min()) >= 6  # greedy max-min selection keeps them far apart (random pairs: often < 6)
    assert len(Jigsaw(2, permutations=6).permutations) == 6


def test_jigsaw_is_differentiable_and_a_discrete_target(images):
    jig = Jigsaw()
    spec = jig.param_specs()["perm"]
    assert spec.kind == "discrete" and spec.num_classes == 24
    x = images.clone().requires_grad_(True)
    jig.apply(x, {"perm": torch.full((len(x),), 5)}).sum().backward()
    assert torch.allclose(x.grad, torch.ones_like(x))  # a permutation moves every pixel once


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="divisible by 3"):
        Jigsaw(grid=3, permutations=10).apply(torch.rand(2, 3, 16, 16), {"perm": torch.zeros(2, dtype=torch.long)})
    with pytest.raises(ValueError, match="grid must be >= 2"):
        Jigsaw(grid=1)
    with pytest.raises(ValueError, match=f"{math.factorial(9)} permutations"):
        Jigsaw(grid=3)
    with pytest.raises(ValueError, match=r"\[2, 24\]"):
        Jigsaw(grid=2, permutations=25)


def test_registry_builds_jigsaw():
    t = build_transform({"name": "jigsaw", "grid": 2, "permutations": 10})
    assert isinstance(t, Jigsaw) and len(t.permutations) == 10
    with pytest.raises(ConfigError, match="unknown option 'tiles'"):
        build_transform({"name": "jigsaw", "tiles": 4})
