"""Recipes: the typed, validated configuration of a run.

A recipe is YAML. ``method`` picks the method, which belongs to a modality (images, time
series, video); the method's modality decides what the ``data``, ``model``, ``augment``
and ``monitor`` sections may hold (see :mod:`invlab.methods.registry` and :mod:`invlab.runs.modalities`). ``params`` holds the
method's hyperparameters; ``optim`` and ``trainer`` are shared by all methods.

:func:`load_recipe` reads a shipped recipe by name (``invlab recipes`` lists them) or a
YAML file, applies ``key=value`` overrides and validates everything before any data is
touched: an unknown key, a wrong type or an impossible combination fails with a message
naming the key.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from invlab.errors import ConfigError
from invlab.methods.optim import OptimSpec
from invlab.methods.registry import METHODS
from invlab.runs.modalities import MODALITIES
from invlab.runs.modality import Modality
from invlab.runs.schema import from_dict, set_path, to_dict, yaml_load

__all__ = [
    "TrainerSection", "Config", "recipe_names", "recipe_path", "load_recipe", "parse_overrides",
    "config_from_dict", "dump_config", "read_recipe_file", "yaml_load",
]


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class TrainerSection:
    max_epochs: int = 100
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"  # bf16-mixed: autocast; losses still compute in float32
    compile: bool = False  # torch.compile the encoder (state-dict keys unchanged)
    compile_mode: str = "default"  # default | reduce-overhead | max-autotune | max-autotune-no-cudagraphs
    sync_batchnorm: bool | None = None  # None: the method's default (MethodSpec.sync_batchnorm), used when > 1 process
    log_every_n_steps: int = 10
    check_val_every_n_epoch: int = 1
    checkpoint_every_n_steps: int | None = None  # besides the end of every epoch
    gradient_clip_val: float | None = None
    deterministic: bool = False
    limit_train_batches: int | float | None = None
    enable_progress_bar: bool = True
    loggers: list[Any] | None = None  # csv (default), tensorboard, any Lightning logger: see runs/loggers.py
    invariance_monitor: dict[str, Any] | None = None  # {transforms, every_n_epochs, num_samples}: runs/monitors.py


@dataclass
class Config:
    """A validated recipe. ``data``, ``model``, ``augment``, ``monitor`` and ``params`` are
    instances of the dataclasses the method and its modality declare."""

    method: str
    params: Any
    data: Any
    model: Any
    augment: Any = None
    monitor: Any = None
    optim: OptimSpec = field(default_factory=OptimSpec)
    trainer: TrainerSection = field(default_factory=TrainerSection)
    seed: int = 0
    description: str = ""

    @property
    def modality(self) -> Modality:
        return MODALITIES[METHODS[self.method].modality]

    def method_params(self) -> Any:
        return self.params

    def to_dict(self) -> dict[str, Any]:
        out = to_dict(self)
        return {k: v for k, v in out.items() if v is not None or k in ("augment", "monitor")}

    def world_size(self) -> int | None:
        """Processes the trainer will start, when the recipe says (None for 'auto')."""
        devices = self.trainer.devices
        if isinstance(devices, int):
            return devices * self.trainer.num_nodes
        if isinstance(devices, str) and devices.isdigit():
            return int(devices) * self.trainer.num_nodes
        return None

    def validate(self) -> Config:
        """Checks across sections (the modality adds its own); raises :class:`ConfigError`."""
        t, o = self.trainer, self.optim
        batch = getattr(self.data, "batch_size", None)
        if batch is not None:
            if batch < 1:
                raise ConfigError(f"recipe key 'data.batch_size' must be >= 1, got {batch}")
            world = self.world_size()
            if world is not None:
                if world < 1:
                    raise ConfigError(f"recipe keys 'trainer.devices' x 'trainer.num_nodes' must be >= 1, got {world}")
                if batch < world:
                    raise ConfigError(
                        f"recipe key 'data.batch_size' ({batch}) is smaller than the number of processes "
                        f"({world} = trainer.devices x trainer.num_nodes); each process needs samples"
                    )
                if batch % world:
                    raise ConfigError(
                        f"recipe key 'data.batch_size' ({batch}) is the global batch and must divide evenly "
                        f"over {world} processes (trainer.devices x trainer.num_nodes)"
                    )
        from invlab.runs.loggers import check_loggers
        from invlab.runs.monitors import monitor_spec

        check_loggers(t.loggers)
        if monitor_spec(t.invariance_monitor) is not None and self.modality.name != "image":
            raise ConfigError(f"recipe key 'trainer.invariance_monitor': measures image encoders; "
                              f"{self.modality.name} runs are measured afterwards with invlab measure")
        if t.max_epochs < 1:
            raise ConfigError(f"recipe key 'trainer.max_epochs' must be >= 1, got {t.max_epochs}")
        if t.num_nodes < 1:
            raise ConfigError(f"recipe key 'trainer.num_nodes' must be >= 1, got {t.num_nodes}")
        if o.warmup_epochs < 0 or o.warmup_epochs > t.max_epochs:
            raise ConfigError(
                f"recipe key 'optim.warmup_epochs' ({o.warmup_epochs}) must lie within [0, trainer.max_epochs={t.max_epochs}]"
            )
        if o.name not in ("sgd", "lars", "adamw"):
            raise ConfigError(f"recipe key 'optim.name' must be sgd, lars or adamw, got {o.name!r}")
        if o.schedule not in ("cosine", "constant"):
            raise ConfigError(f"recipe key 'optim.schedule' must be cosine or constant, got {o.schedule!r}")
        if o.lr <= 0:
            raise ConfigError(f"recipe key 'optim.lr' must be positive, got {o.lr}")
        if t.accelerator == "cpu" and t.precision in ("16-mixed", "16-true", "16"):
            raise ConfigError("recipe key 'trainer.precision': float16 needs a GPU; use bf16-mixed or 32-true on CPU")
        if t.compile_mode not in COMPILE_MODES:
            raise ConfigError(f"recipe key 'trainer.compile_mode' must be one of {', '.join(COMPILE_MODES)}, "
                              f"got {t.compile_mode!r}")
        if str(t.strategy).lower().startswith(("fsdp", "deepspeed")):
            # checkpoints and the exported encoder read the whole model on rank 0, which a
            # sharded strategy does not hold there: refuse rather than export one shard
            raise ConfigError(
                f"recipe key 'trainer.strategy' ({t.strategy}): sharded strategies (fsdp, deepspeed) are not "
                "supported yet (invlab's checkpoints and encoder export read the whole model on rank 0); use ddp"
            )
        if t.checkpoint_every_n_steps is not None and t.checkpoint_every_n_steps < 1:
            raise ConfigError("recipe key 'trainer.checkpoint_every_n_steps' must be >= 1 or null")
        spec = METHODS[self.method]
        views = getattr(self.augment, "views", None)
        if spec.views is not None and views is not None and views != spec.views:
            raise ConfigError(f"recipe key 'augment.views': {self.method} uses exactly {spec.views} views, got {views}")
        self.modality.validate(self)
        if spec.validate is not None:
            spec.validate(self)
        return self


_TOP_LEVEL = {f.name for f in fields(Config)}


def config_from_dict(data: dict[str, Any]) -> Config:
    """Validate a recipe mapping into a :class:`Config`."""
    if not isinstance(data, dict):
        raise ConfigError(f"a recipe must be a mapping of sections, got {type(data).__name__}")
    data = dict(data)
    data.pop("invlab_version", None)
    for key in data:
        if key not in _TOP_LEVEL:
            close = difflib.get_close_matches(str(key), sorted(_TOP_LEVEL), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown recipe key '{key}'{hint}; valid sections: {', '.join(sorted(_TOP_LEVEL))}")
    method = data.get("method", "simclr")
    if not isinstance(method, str) or method not in METHODS:
        raise ConfigError(f"recipe key 'method': unknown method {method!r}; known: {', '.join(sorted(METHODS))}")
    spec = METHODS[method]
    modality = MODALITIES[spec.modality]
    sections: dict[str, Any] = {
        "method": method,
        "params": from_dict(spec.params, data.get("params"), "params"),
        "data": from_dict(modality.data, data.get("data"), "data"),
        "model": from_dict(modality.model, data.get("model"), "model"),
        "optim": from_dict(OptimSpec, data.get("optim"), "optim"),
        "trainer": from_dict(TrainerSection, data.get("trainer"), "trainer"),
    }
    for name, cls in (("augment", modality.augment), ("monitor", modality.monitor)):
        if cls is None:
            if data.get(name) not in (None, {}):
                raise ConfigError(f"recipe key '{name}': {modality.name} methods have no {name} section")
            sections[name] = None
        else:
            sections[name] = from_dict(cls, data.get(name), name)
    for key, kind in (("seed", int), ("description", str)):
        if key in data:
            value = data[key]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ConfigError(f"recipe key '{key}': expected {kind.__name__}, got {value!r}")
            if key == "seed" and not 0 <= value < 2**63:
                raise ConfigError(f"recipe key 'seed': expected an integer in [0, 2**63), got {value}")
            sections[key] = value
    return Config(**sections).validate()


def recipe_names() -> list[str]:
    folder = resources.files("invlab") / "recipes"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def recipe_path(name: str) -> Path:
    """A shipped recipe by name, or a path to a YAML file."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise ConfigError(f"recipe file {candidate} does not exist")
        return candidate
    path = resources.files("invlab") / "recipes" / f"{name}.yaml"
    if not path.is_file():
        close = difflib.get_close_matches(name, recipe_names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown recipe {name!r}{hint}; `invlab recipes` lists them")
    return Path(str(path))


def read_recipe_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of sections, got {type(data).__name__}")
    return data


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    """``["optim.lr=0.1", "data.root=/x"]`` -> typed pairs (values parsed as YAML scalars)."""
    out = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has an empty key")
        try:
            value = yaml_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        out.append((key, value))
    return out


def load_recipe(name_or_path: str, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a recipe."""
    data = read_recipe_file(recipe_path(name_or_path))
    for key, value in parse_overrides(overrides or []):
        set_path(data, key, value)
    return config_from_dict(data)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
