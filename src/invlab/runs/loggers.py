"""Lightning loggers chosen by the recipe key ``trainer.loggers``.

Each entry is a name or ``{name: ..., <option>: ...}`` (``{logger: ..., name: ...}`` when the
logger has a ``name`` option of its own): ``csv`` (the default: the run's
``metrics.csv``, kept exact across resumes), ``tensorboard`` (event files in
``RUN/tensorboard``, needs the ``tensorboard`` package) or any logger class of
``lightning.pytorch.loggers`` by its class name or short name (``WandbLogger`` / ``wandb``,
``MLFlowLogger`` / ``mlflow``, ...) with its own options. Unknown names and options are
one error line naming the entry.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from invlab.errors import ConfigError
from invlab.runs.metrics_log import RunCSVLogger

__all__ = ["build_loggers", "check_loggers", "lightning_logger_classes"]


def lightning_logger_classes() -> dict[str, type]:
    """Lightning's logger classes by lower-case class name and short name."""
    import lightning.pytorch.loggers as loggers
    from lightning.pytorch.loggers import Logger

    out: dict[str, type] = {}
    for name in dir(loggers):
        cls = getattr(loggers, name)
        if isinstance(cls, type) and issubclass(cls, Logger) and cls is not Logger:
            out[name.lower()] = cls
            if name.lower().endswith("logger"):
                out.setdefault(name.lower()[: -len("logger")], cls)
    return out


def _entry(spec: Any, where: str) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, Mapping) and isinstance(spec.get("logger"), str):  # leaves `name` to the logger
        options = dict(spec)
        return options.pop("logger"), options
    if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        options = dict(spec)
        return options.pop("name"), options
    raise ConfigError(f"{where}: a logger is a name, {{name: ..., options}} or {{logger: ..., options}}, got {spec!r}")


def check_loggers(specs: Sequence[Any] | None) -> None:
    """Validate ``trainer.loggers`` without creating anything (names and options)."""
    build_loggers(specs, None)


def build_loggers(specs: Sequence[Any] | None, run_dir: str | Path | None, resume_step: int | None = None) -> list:
    """The loggers of ``trainer.loggers`` (default ``["csv"]``) for the run in ``run_dir``
    (``None``: only check the entries, create nothing)."""
    specs = ["csv"] if specs is None else specs
    if isinstance(specs, (str, Mapping)):
        specs = [specs]
    if not isinstance(specs, Sequence):
        raise ConfigError(f"recipe key 'trainer.loggers': expected a list of loggers, got {specs!r}")
    out = []
    known = lightning_logger_classes()
    for i, spec in enumerate(specs):
        where = f"recipe key 'trainer.loggers[{i}]'"
        name, options = _entry(spec, where)
        key = name.lower()
        if key == "csv":
            if options:
                raise ConfigError(f"{where}: csv takes no options (it writes RUN/metrics.csv), got {sorted(options)}")
            if run_dir is not None:
                out.append(RunCSVLogger(str(run_dir), resume_step))
            continue
        if key not in known:
            close = difflib.get_close_matches(key, ["csv", *known], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown logger {name!r}{hint}; use csv, tensorboard or a class of "
                              "lightning.pytorch.loggers")
        cls = known[key]
        accepted = set(inspect.signature(cls).parameters)
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(cls).parameters.values())
        unknown = [k for k in options if k not in accepted]
        if unknown and not takes_any:
            raise ConfigError(f"{where}: {cls.__name__} has no option {unknown[0]!r}")
        if run_dir is None:
            continue
        defaults: dict[str, Any] = {}
        if "save_dir" in accepted:
            defaults["save_dir"] = str(run_dir)
        if cls.__name__ == "TensorBoardLogger":
            defaults.update(name="tensorboard", version="")
        try:
            out.append(cls(**{**defaults, **options}))
        except ModuleNotFoundError as err:
            raise ConfigError(f"{where}: {cls.__name__} needs a package that is not installed ({err}); "
                              f"pip install {err.name or 'it'}") from None
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: {cls.__name__}: {err}") from None
    return out
