"""Jigsaw: cut the image into a ``grid x grid`` array of tiles and rearrange them.

The permutation is drawn from a fixed, ordered *permutation set* and its index is the
transform's parameter (a discrete parameter, so an equivariance head can predict it: the
jigsaw pretext task of Noroozi & Favaro, ECCV 2016, and one of E-SSL's targets).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from invlab.transforms.base import Params, ParamSpec, Transform

__all__ = ["Jigsaw", "permutation_set"]

_MAX_ENUMERATED = 5040  # 7!: larger sets are chosen from a seeded pool of random permutations


def permutation_set(tiles: int, count: int | None = None, seed: int = 0) -> Tensor:
    """``(count, tiles)`` permutations of ``range(tiles)``, the identity first.

    ``count=None`` gives all ``tiles!`` permutations in lexicographic order (allowed up to
    7 tiles). Otherwise the set is chosen greedily to keep permutations far apart in
    Hamming distance (each new one maximises its distance to the nearest chosen one,
    Noroozi & Favaro's recipe), from all permutations or, for more than 7 tiles, from a
    pool of random ones drawn with ``seed``; so the same arguments always give the same set.
    """
    if tiles < 2:
        raise ValueError(f"a jigsaw needs at least 2 tiles, got {tiles}")
    total = math.factorial(tiles)
    if count is None:
        if total > _MAX_ENUMERATED:
            raise ValueError(f"{tiles} tiles have {total} permutations; pass `permutations` (a count) to choose a subset")
        return torch.tensor(list(itertools.permutations(range(tiles))), dtype=torch.long)
    if not 2 <= count <= total:
        raise ValueError(f"permutations must lie in [2, {total}] for {tiles} tiles, got {count}")
    if total <= _MAX_ENUMERATED:
        pool = torch.tensor(list(itertools.permutations(range(tiles))), dtype=torch.long)
    else:
        g = torch.Generator().manual_seed(seed)
        pool = torch.stack([torch.randperm(tiles, generator=g) for _ in range(max(4 * count, 1000))])
        pool = torch.cat([torch.arange(tiles).unsqueeze(0), pool]).unique(dim=0)  # sorted rows
    chosen = [0]  # the identity: the lexicographically first row of either pool
    nearest = (pool != pool[0]).sum(1)  # Hamming distance of every candidate to the chosen set
    for _ in range(count - 1):
        i = int(torch.argmax(nearest))
        chosen.append(i)
        nearest = torch.minimum(nearest, (pool != pool[i]).sum(1))
    return pool[chosen]


class Jigsaw(Transform):
    """Rearrange ``grid x grid`` tiles by a permutation drawn uniformly from a fixed set.

    Parameter ``perm`` (int64, an index into :attr:`permutations`, 0 = identity). Tile
    ``j`` of the output (row-major) is tile ``permutations[perm][j]`` of the input. The
    image sides must be multiples of ``grid``. ``permutations``: ``None`` for all
    ``(grid^2)!`` (24 for the default 2x2 grid), or a count for a far-apart subset (see
    :func:`permutation_set`).
    """

    name = "jigsaw"

    def __init__(self, grid: int = 2, permutations: int | None = None, seed: int = 0):
        if int(grid) < 2:
            raise ValueError(f"jigsaw grid must be >= 2, got {grid}")
        self.grid = int(grid)
        self.permutations = permutation_set(self.grid * self.grid, permutations, seed)

    def param_specs(self):
        return {"perm": ParamSpec("discrete", num_classes=len(self.permutations))}

    def _sample(self, n, generator, size=None):
        return {"perm": torch.randint(len(self.permutations), (n,), generator=generator)}

    def identity_params(self, n, device=None):
        return {"perm": torch.zeros(n, dtype=torch.long, device=device)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        self.check_params(x, params)
        n, c, h, w = x.shape
        g = self.grid
        if h % g or w % g:
            raise ValueError(f"jigsaw with a {g}x{g} grid needs image sides divisible by {g}, got {h}x{w}")
        th, tw = h // g, w // g
        tiles = x.reshape(n, c, g, th, g, tw).permute(0, 2, 4, 1, 3, 5).reshape(n, g * g, c, th, tw)
        order = self.permutations.to(x.device)[params["perm"].to(x.device).long()]  # (n, g*g)
        tiles = tiles.gather(1, order.view(n, g * g, 1, 1, 1).expand_as(tiles))
        return tiles.reshape(n, g, g, c, th, tw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)

    def __repr__(self):
        return f"Jigsaw(grid={self.grid}, permutations={len(self.permutations)})"
