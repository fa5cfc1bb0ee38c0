"""Progress bars that stay readable in logs: frequent updates on a terminal, a line
every ~10 s otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

__all__ = ["progress"]


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, enable: bool = True, unit: str = "it") -> Iterable[T]:
    tty = sys.stderr.isatty()
    return tqdm(
        iterable, desc=desc, total=total, disable=not enable, unit=unit,
        mininterval=0.2 if tty else 10.0, dynamic_ncols=True, leave=tty,
    )
