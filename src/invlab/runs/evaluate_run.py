"""Evaluate a frozen encoder with one of its modality's protocols (images: knn, linear)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from invlab.errors import CheckpointError, ConfigError
from invlab.runs.checkpoint import atomic_write_bytes
from invlab.runs.config import config_from_dict
from invlab.runs.modalities import MODALITIES
from invlab.runs.run_dir import RunDir
from invlab.runs.schema import set_path

__all__ = ["evaluate", "protocols"]


def protocols() -> dict[str, list[str]]:
    """Modality -> the protocols it offers."""
    return {name: sorted(m.protocols) for name, m in MODALITIES.items()}


def evaluate(
    model: str | Path,
    protocol: str = "knn",
    data_overrides: list[tuple[str, Any]] | None = None,
    method: str | None = None,
    write: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Evaluate ``model`` (a run folder, a checkpoint or an exported encoder).

    The data set is the run's own (its ``config.yaml``) unless ``data_overrides``
    (``[("root", "/x"), ...]`` on the ``data`` section) change it; a bare encoder outside a
    run needs them, and ``method`` picks the modality (default: an image method).
    ``options`` go to the protocol (e.g. ``k``, ``temperature``, ``epochs``, ``lr``).
    Writes ``RUN/eval_<protocol>.json`` when ``model`` lives in a run folder.
    """
    if not Path(model).expanduser().exists():
        raise CheckpointError(f"model {model} does not exist (expected a run folder, a .ckpt or an encoder.safetensors)")
    run = RunDir.find(model)
    if run is not None:
        data = run.load_config().to_dict()
    elif data_overrides:
        data = {"method": method or "simclr"}
    else:
        raise ConfigError(f"{model} is not inside a run folder: say which data to use (--data NAME --data-root PATH)")
    for key, value in data_overrides or []:
        set_path(data, f"data.{key}", value)
    cfg = config_from_dict(data)
    available = cfg.modality.protocols
    if protocol not in available:
        raise ConfigError(
            f"unknown protocol {protocol!r} for {cfg.modality.name} models; use one of {', '.join(sorted(available))}"
        )
    result = {"protocol": protocol, "model": str(model), "method": cfg.method,
              **available[protocol](model, cfg, **options)}
    if write and run is not None:
        atomic_write_bytes(run.path / f"eval_{protocol}.json", json.dumps(result, indent=2, default=float).encode())
    return result


