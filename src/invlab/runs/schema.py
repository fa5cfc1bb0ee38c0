"""Typed validation of nested dicts against dataclasses, with errors that name the key.

``from_dict(Cls, data, "data")`` checks every key (unknown keys get a "did you mean"),
every type (ints are accepted for floats; nothing else is coerced) and builds nested
dataclasses. Used for recipes; generic enough for any config section.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from typing import Any, Union

import yaml

from invlab.errors import ConfigError

__all__ = ["from_dict", "to_dict", "set_path", "describe_type", "yaml_load"]


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def describe_type(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(describe_type(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = typing.get_args(tp)
        inner = describe_type(args[0]) if args else "any"
        return f"a list of {inner}" if origin is list else f"a pair of {inner}"
    if origin is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    if _is_dataclass_type(tp):
        return "a mapping"
    if tp is Any:
        return "any value"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


def _fail(path: str, tp: Any, value: Any) -> ConfigError:
    return ConfigError(
        f"recipe key '{path}': expected {describe_type(tp)}, got {value!r} ({type(value).__name__})"
    )


def _convert(tp: Any, value: Any, path: str) -> Any:
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise _fail(path, tp, value)
        nested: ConfigError | None = None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, path)
            except ConfigError as err:
                if isinstance(value, dict) and _is_dataclass_type(arg) and nested is None:
                    nested = err  # a mapping meant for a section: its own error names the key
                continue
        raise nested if nested is not None else _fail(path, tp, value)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise _fail(path, tp, value)
        (inner,) = typing.get_args(tp) or (Any,)
        return [_convert(inner, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise _fail(path, tp, value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"recipe key '{path}': expected {len(args)} values, got {len(value)} ({value!r})")
        return tuple(_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(path, tp, value)
        return dict(value)
    if _is_dataclass_type(tp):
        if not isinstance(value, dict):
            raise _fail(path, tp, value)
        return from_dict(tp, value, path)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _fail(path, tp, value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _fail(path, tp, value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _fail(path, tp, value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _fail(path, tp, value)
    raise ConfigError(f"recipe key '{path}': unsupported type {tp!r}")


def from_dict(cls: type, data: dict[str, Any] | None, path: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; missing keys take the defaults."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"recipe key '{path or '<root>'}': expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        full = f"{path}.{key}" if path else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{(path + '.') if path else ''}{close[0]}'?)" if close else ""
            raise ConfigError(
                f"unknown recipe key '{full}'{hint}; valid keys here: {', '.join(sorted(fields))}"
            )
        kwargs[key] = _convert(hints[key], value, full)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"recipe section '{path or '<root>'}': {err}") from None


def to_dict(obj: Any) -> Any:
    """Dataclasses -> plain dicts/lists (tuples become lists, for YAML)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """``set_path(d, "optim.lr", 0.1)``; integer parts index lists
    (``augment.pipeline.1.p``)."""
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"override key '{dotted}' has an empty part")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override key '{dotted}': '{where}' is not a valid list index")
            node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"override key '{dotted}': '{'.'.join(parts[:i])}' is not a mapping")
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(f"override key '{dotted}': '{last}' is not a valid list index")
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"override key '{dotted}': parent is not a mapping")


class _Loader(yaml.SafeLoader):
    """Safe YAML with YAML 1.2 floats: ``1e-4`` and ``5E3`` are numbers (PyYAML's YAML 1.1
    resolver reads them as strings, a classic trap for learning rates)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def yaml_load(text: str) -> Any:
    """Parse recipe YAML (safe: plain data only)."""
    return yaml.load(text, Loader=_Loader)
