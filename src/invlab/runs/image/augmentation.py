"""The ``augmentation`` protocol of the image modality: pictures of what a learned
augmentation (InstaAug, Augerino) learned, from a run's checkpoint (the invariance module
is not part of the exported encoder, so the whole method is rebuilt)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from invlab.errors import ConfigError
from invlab.methods.instaaug import LearnedAugmentation, augmentation_pictures
from invlab.runs.checkpoint import safe_torch_load
from invlab.runs.image.recipe import load_data, normalisation
from invlab.runs.image.setup import build_method

__all__ = ["augmentation_protocol"]


def augmentation_protocol(model, cfg, num_images: int = 8, progress: bool = False, **_: Any) -> dict[str, Any]:
    """Pictures of a learned augmentation (InstaAug crop heat-maps, per-input ranges;
    Augerino's widths) for ``num_images`` test images spread evenly over the split
    (``result["test_indices"]``), written into the run
    folder (``augmentation_*.png``). Needs the run's checkpoint (the invariance module is
    not part of the exported encoder)."""
    path = Path(model).expanduser()
    ckpt = path / "checkpoints" / "last.ckpt" if path.is_dir() else path
    if ckpt.suffix != ".ckpt" or not ckpt.exists():
        raise ConfigError(f"{model}: the augmentation protocol needs a run folder with checkpoints/last.ckpt "
                          "(or that .ckpt): the invariance module is not part of an exported encoder")
    folder = ckpt.parent.parent
    train, test = load_data(cfg, progress=progress)
    mean, std = normalisation(cfg, train)
    method = build_method(cfg, mean, std, train.channels, train.num_classes)
    if not isinstance(method, LearnedAugmentation):
        raise ConfigError(f"method {cfg.method!r} learns no augmentation; the augmentation protocol is for "
                          "instaaug, augerino and instaaug_simclr runs")
    method.load_state_dict(safe_torch_load(ckpt)["state_dict"])
    method.eval()
    n = min(num_images, len(test))
    # spread over the split (test sets are often stored class by class)
    index = np.linspace(0, len(test) - 1, n).round().astype(np.int64)
    x = torch.from_numpy(np.asarray(test.images[index])).float() / 255.0
    result = augmentation_pictures(method, x, folder)
    result["num_images"] = n
    result["test_indices"] = index.tolist()
    return result
