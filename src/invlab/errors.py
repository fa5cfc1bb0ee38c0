"""Exceptions invlab raises on purpose. Each message names the file, key or value at
fault and says what to do; the CLI prints them without a traceback."""

from __future__ import annotations

__all__ = ["InvlabError", "ConfigError", "DataError", "CheckpointError", "DivergenceError", "RunError"]


class InvlabError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""


class ConfigError(InvlabError, ValueError):
    """A recipe or override is invalid (unknown key, wrong type, impossible combination)."""


class DataError(InvlabError, ValueError):
    """A data file or folder cannot be used as it is."""


class CheckpointError(InvlabError, ValueError):
    """A checkpoint or exported encoder cannot be loaded safely."""


class DivergenceError(InvlabError, RuntimeError):
    """Training produced a NaN or infinite loss."""


class RunError(InvlabError, RuntimeError):
    """A run folder cannot be used (locked, incompatible, missing files)."""
