"""Checkpoints: written atomically, loaded without executing code.

Saving goes to a temporary file in the same folder, is fsync'ed and renamed over the
target, so a crash mid-save leaves the previous checkpoint intact. Loading uses
``torch.load(weights_only=True)``: only tensors and plain containers are rebuilt; a file
that asks for anything else is refused with :class:`~invlab.errors.CheckpointError`.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from invlab.errors import CheckpointError

__all__ = ["atomic_torch_save", "atomic_save_safetensors", "safe_torch_load", "read_json_object", "AtomicCheckpointIO"]


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """``write`` into a temporary file beside ``path``, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    _atomic_write(path, lambda f: f.write(data))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_save_safetensors(state: dict[str, torch.Tensor], path: str | os.PathLike,
                            metadata: dict[str, str] | None = None) -> None:
    """``state`` as a safetensors file, written like a checkpoint (a temporary name unique
    to this process, fsync, rename), so a crash never leaves a half-written file at ``path``."""
    from safetensors.torch import save

    data = save({k: v.detach().cpu().contiguous() for k, v in state.items()}, metadata=metadata)
    atomic_write_bytes(path, data)


def read_json_object(path: str | os.PathLike, what: str, error: type[Exception] = CheckpointError) -> dict[str, Any]:
    """The JSON object in ``path`` (``what`` names it in errors, e.g. "the run's metadata").
    A truncated, hand-broken or non-object file raises ``error`` in one line naming it."""
    import json

    path = Path(path)
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise error(f"{path}: cannot read {what} ({err}); the file is truncated or was edited by hand. Restore it, "
                    "or start a new run") from None
    if not isinstance(value, dict):
        raise error(f"{path}: {what} must be a JSON object, found {type(value).__name__}; the file was edited by hand")
    return value


def safe_torch_load(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: refused to load: the file contains Python objects beyond tensors and plain "
            f"containers, which could execute code ({first}). invlab never unpickles arbitrary objects; "
            "re-export the weights with invlab or as safetensors."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({err}); it may be truncated or corrupt") from None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O: atomic saves, ``weights_only`` loads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        return safe_torch_load(path, map_location if map_location is not None else "cpu")
