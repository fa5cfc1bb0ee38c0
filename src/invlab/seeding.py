"""Seeds of independent random streams, derived by hashing.

A run has one integer seed (any Python int). Every random stream it uses (the views of a
training step, dropout in that step, the extra E-SSL view, the epoch's shuffle order)
gets its own 63-bit seed by hashing the stream's name with the seed and the position in
the run, so streams never share draws, any seed fits ``torch.Generator.manual_seed``, and
a resumed run re-derives exactly the seeds an uninterrupted one used.
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["derive_seed", "stream_generator", "bounded_seed"]

_MASK_63 = (1 << 63) - 1


def derive_seed(stream: str, *parts: int) -> int:
    """A seed in ``[0, 2**63)`` that is a pure function of ``stream`` and the integers
    ``parts`` (e.g. ``derive_seed("views", seed, rank, epoch, batch)``); different names
    or parts give unrelated seeds (BLAKE2b of the decimal text)."""
    text = "\0".join([stream, *(str(int(p)) for p in parts)])
    digest = hashlib.blake2b(text.encode(), digest_size=8, person=b"invlab-seed").digest()
    return int.from_bytes(digest, "little") & _MASK_63


def stream_generator(stream: str, *parts: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` of the same arguments."""
    return torch.Generator().manual_seed(derive_seed(stream, *parts))


def bounded_seed(seed: int, bits: int = 32) -> int:
    """``seed`` reduced into ``[0, 2**bits)`` for libraries that accept no more (NumPy's
    legacy seeding, scikit-learn's ``random_state``): seeds already in range are kept, so
    results for small seeds do not change."""
    return int(seed) % (1 << bits)
