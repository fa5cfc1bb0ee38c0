"""The modalities a recipe's method can belong to: an explicit table, no registration on
import. A new modality (video) is a package ``runs/<name>/`` defining ``MODALITY`` and one
entry here."""

from __future__ import annotations

from invlab.runs import image, timeseries
from invlab.runs.modality import Modality

__all__ = ["MODALITIES"]

MODALITIES: dict[str, Modality] = {m.name: m for m in (image.MODALITY, timeseries.MODALITY)}
