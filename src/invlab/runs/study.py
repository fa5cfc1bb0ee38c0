"""Studies: a grid of pretraining configurations x evaluations, over seeds, resumable.

A study recipe (YAML) names a base pretraining recipe, **sources** (named overrides of
it: e.g. which transformations the pretraining data varies in) and **targets** (named
evaluations: a protocol of the run's modality, such as ``linear`` or ``invariance``, on
data the overrides describe, and the result key to report). For every seed each source
is pretrained once into ``OUT/runs/<source>/seed<k>`` and evaluated on every target; each
finished evaluation is written to ``OUT/cells/`` at once. Re-running the same command
skips finished pretraining runs and cells, resumes an interrupted run from its last
checkpoint, and recomputes nothing else. The results: ``study.json``, ``study.md`` and a
heatmap ``study.png`` of the source x target matrix (mean ± std over seeds), plus named
**contrasts** (per-seed differences of two cells, e.g. the same-vs-disjoint gap).

    description: ...
    pretrain: supervised-controlled          # a recipe name, a YAML path, or an inline mapping
    overrides: {trainer.max_epochs: 10}      # applied to every source
    seeds: [0, 1, 2]
    seed_keys: [seed, data.controlled.content_seed]   # recipe keys set to the seed
    sources:
      same: {data.controlled.transforms: [rotate, hue, blur]}
      disjoint: {data.controlled.transforms: [scale, brightness, noise]}
    targets:
      target:
        protocol: linear                     # any protocol of the modality
        metric: top1                         # the key of the protocol's result to report
        data: {controlled.class_offset: 26}  # overrides of the run's data section
        options: {epochs: 100, lr: 0.001}
    contrasts:
      same_vs_disjoint_gap: {plus: same/target, minus: disjoint/target}

An override key ending in ``+`` appends its list to the list already there, so a source can
say "the base augmentation plus h-flip": ``{augment.pipeline+: [{name: hflip, p: 0.5}]}``.
"""

from __future__ import annotations

import copy
import difflib
import json
import shutil
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from invlab.errors import ConfigError, RunError
from invlab.report import markdown_table, matrix_heatmap, mean_spread
from invlab.runs.checkpoint import atomic_write_bytes
from invlab.runs.config import (
    Config,
    config_from_dict,
    dump_config,
    parse_overrides,
    read_recipe_file,
    recipe_path,
)
from invlab.runs.evaluate_run import evaluate
from invlab.runs.pretrain_run import pretrain
from invlab.runs.run_dir import RunDir
from invlab.runs.schema import from_dict, set_path, to_dict

__all__ = [
    "StudyEvaluation", "StudyContrast", "StudyRecipe", "study_names", "study_path", "load_study", "run_study",
    "StudyPlan",
]


@dataclass
class StudyEvaluation:
    protocol: str = "linear"
    metric: str = "top1"
    data: dict[str, Any] = field(default_factory=dict)  # overrides of the run's data section
    options: dict[str, Any] = field(default_factory=dict)  # protocol options
    higher_is_better: bool = True


@dataclass
class StudyContrast:
    plus: str  # "source/target"
    minus: str


@dataclass
class StudyRecipe:
    pretrain: str | dict[str, Any]
    sources: dict[str, dict[str, Any]]
    targets: dict[str, Any]  # name -> StudyEvaluation
    description: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    seed_keys: list[str] = field(default_factory=lambda: ["seed"])
    cells: list[list[str]] | None = None  # [source, target] pairs to evaluate (default: all)
    contrasts: dict[str, Any] = field(default_factory=dict)  # name -> StudyContrast


# -- recipes ----------------------------------------------------------------------------
def _studies_folder():
    return resources.files("invlab") / "recipes" / "studies"


def study_names() -> list[str]:
    folder = _studies_folder()
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def study_path(name: str) -> Path:
    """A shipped study by name, or a path to a YAML file."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise ConfigError(f"study file {candidate} does not exist")
        return candidate
    path = _studies_folder() / f"{name}.yaml"
    if not path.is_file():
        close = difflib.get_close_matches(name, study_names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown study {name!r}{hint}; shipped studies: {', '.join(study_names())}")
    return Path(str(path))


def _nest(overrides: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Dotted or nested override mappings -> ``[(dotted key, value)]``."""
    out = []
    for key, value in overrides.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and value and not any(k == "name" for k in value):
            out += _nest(value, full + ".")
        else:
            out.append((full, value))
    return out


def _get_path(data: Any, dotted: str) -> Any:
    """The value at ``dotted`` in nested mappings/lists, or None where it is missing."""
    node = data
    for part in dotted.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _apply_override(data: dict[str, Any], key: str, value: Any) -> None:
    """``set_path``; a key ending in ``+`` appends the list ``value`` to the list already
    there (``augment.pipeline+: [{name: hflip}]``: the base pipeline plus h-flip)."""
    if not key.endswith("+"):
        set_path(data, key, value)
        return
    key = key[:-1]
    current = _get_path(data, key)
    if not isinstance(current, list) or not isinstance(value, list):
        raise ConfigError(f"override key '{key}+' appends a list to the list at '{key}', but that holds "
                          f"{current!r} and the value is {value!r}")
    set_path(data, key, current + value)


@dataclass
class StudyPlan:
    """A validated study: the pretraining config of every (source, seed)."""

    recipe: StudyRecipe
    configs: dict[tuple[str, int], Config]
    cells: list[tuple[str, str]]
    source_file: str = ""


def load_study(name_or_path: str, overrides: list[str] | None = None) -> StudyPlan:
    """Read, override (``key=value`` on the study mapping) and validate a study: every
    pretraining config is built and validated before anything runs."""
    path = study_path(name_or_path)
    data = read_recipe_file(path)
    for key, value in parse_overrides(overrides or []):
        set_path(data, key, value)
    missing = [k for k in ("pretrain", "sources", "targets") if k not in data]
    if missing:
        raise ConfigError(f"{path}: study key '{missing[0]}' is missing (a study needs pretrain, sources and targets)")
    recipe: StudyRecipe = from_dict(StudyRecipe, data, "")
    recipe.targets = {k: from_dict(StudyEvaluation, v, f"targets.{k}") for k, v in recipe.targets.items()}
    recipe.contrasts = {k: from_dict(StudyContrast, v, f"contrasts.{k}") for k, v in recipe.contrasts.items()}
    for k, v in recipe.sources.items():
        if v is not None and not isinstance(v, dict):
            raise ConfigError(f"{path}: study key 'sources.{k}' must be a mapping of recipe overrides, got {v!r}")
    if not recipe.sources:
        raise ConfigError(f"{path}: study key 'sources' must name at least one pretraining configuration")
    if not recipe.targets:
        raise ConfigError(f"{path}: study key 'targets' must name at least one evaluation")
    if not recipe.seeds or len(set(recipe.seeds)) != len(recipe.seeds):
        raise ConfigError(f"{path}: study key 'seeds' must be a non-empty list of distinct integers, got {recipe.seeds}")
    for name in [*recipe.sources, *recipe.targets]:
        if "/" in name or name.startswith(".") or not name:
            raise ConfigError(f"{path}: source and target names must be plain words, got {name!r}")
    if isinstance(recipe.pretrain, str):
        base = read_recipe_file(recipe_path(recipe.pretrain))
    else:
        base = copy.deepcopy(recipe.pretrain)
    configs = {}
    for source, source_overrides in recipe.sources.items():
        for seed in recipe.seeds:
            d = copy.deepcopy(base)
            try:
                for key, value in [*_nest(recipe.overrides), *_nest(source_overrides or {})]:
                    _apply_override(d, key, copy.deepcopy(value))
                for key in recipe.seed_keys:
                    set_path(d, key, seed)
                configs[(source, seed)] = config_from_dict(d)
            except ConfigError as err:
                raise ConfigError(f"study source {source!r} (seed {seed}): {err}") from None
    cells = [(s, t) for s in recipe.sources for t in recipe.targets]
    if recipe.cells is not None:
        cells = []
        for pair in recipe.cells:
            if len(pair) != 2 or pair[0] not in recipe.sources or pair[1] not in recipe.targets:
                raise ConfigError(f"{path}: study key 'cells': {pair} is not a [source, target] pair of this study")
            cells.append((pair[0], pair[1]))
    for t_name, t in recipe.targets.items():
        modality = next(iter(configs.values())).modality
        if t.protocol not in modality.protocols:
            raise ConfigError(f"study target {t_name!r}: unknown protocol {t.protocol!r}; use one of "
                              f"{', '.join(sorted(modality.protocols))}")
        for key, value in _nest(t.data):
            probe = to_dict(next(iter(configs.values())))
            try:
                set_path(probe, f"data.{key}", value)
                config_from_dict(probe)
            except ConfigError as err:
                raise ConfigError(f"study target {t_name!r}: {err}") from None
    for c_name, c in recipe.contrasts.items():
        for side in (c.plus, c.minus):
            src, _, tgt = side.partition("/")
            if (src, tgt) not in cells:
                raise ConfigError(f"study contrast {c_name!r}: {side!r} is not an evaluated source/target cell")
    return StudyPlan(recipe, configs, cells, str(path))


# -- running --------------------------------------------------------------------------------
def _run_folder_state(path: Path, cfg: Config) -> str:
    """``done``, ``resume``, ``fresh`` (nothing there) or ``restart`` (a start with no checkpoint)."""
    if not path.exists() or not any(path.iterdir()):
        return "fresh"
    run = RunDir(path)
    if not run.config_path.is_file():
        raise RunError(f"{path} exists but is not a run folder; move it away or pick another --out")
    if run.config_path.read_text() != dump_config(cfg):
        raise RunError(
            f"{path} holds a run with a different config than the study now asks for; the study recipe changed "
            "since it ran. Use another --out (or delete that run folder) to rerun it"
        )
    if run.summary_path.is_file() and (path / "encoder.safetensors").is_file():
        return "done"
    if run.last_checkpoint.is_file():
        return "resume"
    return "restart"


def _cell_path(out: Path, source: str, target: str, seed: int) -> Path:
    return out / "cells" / f"{source}__{target}__seed{seed}.json"


def _cell_key(cfg: Config, evaluation: StudyEvaluation) -> str:
    return json.dumps({"run": to_dict(cfg), "evaluation": to_dict(evaluation)}, sort_keys=True, default=str)


def run_study(plan: StudyPlan, out: str | Path, progress: bool = False, log=print) -> dict[str, Any]:
    """Run (or finish) the study into ``out``; returns the result written to ``study.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = RunDir(out)
    lock.lock()
    try:
        recipe = plan.recipe
        atomic_write_bytes(out / "study.yaml", json.dumps(to_dict(recipe), indent=2, default=str).encode())
        sources_needed = sorted({s for s, _ in plan.cells}, key=list(recipe.sources).index)
        jobs = [(s, seed) for seed in recipe.seeds for s in sources_needed]
        t_start = time.perf_counter()
        done_runs = done_cells = 0
        for i, (source, seed) in enumerate(jobs):
            cfg = plan.configs[(source, seed)]
            run_path = out / "runs" / source / f"seed{seed}"
            state = _run_folder_state(run_path, cfg)
            tag = f"[{i + 1}/{len(jobs)}] {source}, seed {seed}"
            if state == "done":
                log(f"{tag}: pretrained already (skipped)")
            else:
                if state == "restart":
                    shutil.rmtree(run_path)
                log(f"{tag}: {'resuming' if state == 'resume' else 'pretraining'} {cfg.method} ...")
                t0 = time.perf_counter()
                if state == "resume":
                    pretrain(None, run_path, resume=True, progress=progress)  # type: ignore[arg-type]
                else:
                    pretrain(cfg, run_path, progress=progress, command=["invlab", "study", plan.source_file])
                done_runs += 1
                log(f"{tag}: pretrained in {time.perf_counter() - t0:.0f} s")
            for target in [t for s, t in plan.cells if s == source]:
                evaluation = recipe.targets[target]
                cell = _cell_path(out, source, target, seed)
                key = _cell_key(cfg, evaluation)
                if cell.is_file():
                    try:
                        previous = json.loads(cell.read_text())
                    except (OSError, ValueError):
                        previous = {}
                    if previous.get("key") == key:
                        continue
                t0 = time.perf_counter()
                result = evaluate(run_path, evaluation.protocol, _nest(evaluation.data), write=False,
                                  progress=progress, **evaluation.options)
                if evaluation.metric not in result:
                    raise ConfigError(
                        f"study target {target!r}: the {evaluation.protocol} result has no key {evaluation.metric!r}; "
                        f"it has {', '.join(k for k, v in result.items() if isinstance(v, (int, float)))}"
                    )
                value = float(result[evaluation.metric])
                record = {"source": source, "target": target, "seed": seed, "value": value,
                          "metric": evaluation.metric, "seconds": time.perf_counter() - t0, "key": key,
                          "result": {k: v for k, v in result.items() if k != "rows"}}
                atomic_write_bytes(cell, json.dumps(record, indent=2, default=float).encode())
                done_cells += 1
                log(f"{tag} -> {target}: {evaluation.metric} = {value:.4f}")
        result = collect_study(plan, out)
        result["seconds_this_invocation"] = time.perf_counter() - t_start
        result["computed_this_invocation"] = {"pretraining_runs": done_runs, "cells": done_cells}
        write_study_report(result, out)
        return result
    finally:
        lock.unlock()


def collect_study(plan: StudyPlan, out: Path) -> dict[str, Any]:
    """The matrix and contrasts from the cell files (missing cells are NaN)."""
    recipe = plan.recipe
    values: dict[tuple[str, str], dict[int, float]] = {c: {} for c in plan.cells}
    for source, target in plan.cells:
        for seed in recipe.seeds:
            cell = _cell_path(out, source, target, seed)
            if cell.is_file():
                values[(source, target)][seed] = float(json.loads(cell.read_text())["value"])

    def stats(v: dict[int, float]) -> dict[str, Any]:
        arr = np.array(list(v.values()), dtype=float)
        return {
            "mean": float(arr.mean()) if len(arr) else float("nan"),
            "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0 if len(arr) else float("nan"),
            "values": {str(k): x for k, x in v.items()},
        }

    matrix = {s: {t: stats(values[(s, t)]) for (s2, t) in plan.cells if s2 == s} for s in recipe.sources}
    contrasts = {}
    for name, c in recipe.contrasts.items():
        a = values[tuple(c.plus.split("/", 1))]
        b = values[tuple(c.minus.split("/", 1))]
        diffs = {seed: a[seed] - b[seed] for seed in recipe.seeds if seed in a and seed in b}
        contrasts[name] = {"plus": c.plus, "minus": c.minus, **stats(diffs)}
    return {
        "description": recipe.description,
        "study": plan.source_file,
        "seeds": list(recipe.seeds),
        "sources": {s: to_dict(v) for s, v in recipe.sources.items()},
        "targets": {t: to_dict(v) for t, v in recipe.targets.items()},
        "matrix": matrix,
        "contrasts": contrasts,
        "complete": all(len(values[c]) == len(recipe.seeds) for c in plan.cells),
    }


def write_study_report(result: dict[str, Any], out: Path) -> None:
    atomic_write_bytes(out / "study.json", json.dumps(result, indent=2, default=float).encode())
    sources = list(result["matrix"])
    targets = list(dict.fromkeys(t for s in sources for t in result["matrix"][s]))
    means = np.full((len(sources), len(targets)), np.nan)
    notes = [["" for _ in targets] for _ in sources]
    rows = []
    for i, s in enumerate(sources):
        row = [s]
        for j, t in enumerate(targets):
            cell = result["matrix"][s].get(t)
            if cell is None:
                row.append("")
                continue
            vals = list(cell["values"].values())
            means[i, j] = cell["mean"]
            notes[i][j] = mean_spread(vals)
            row.append(notes[i][j] + (f" (n={len(vals)})" if len(vals) != len(result["seeds"]) else ""))
        rows.append(row)
    metrics = {t: result["targets"][t]["metric"] for t in targets}
    lines = [
        "# Study", "",
        result["description"].strip(), "",
        f"Seeds: {', '.join(map(str, result['seeds']))}. Cells: mean ± std over seeds of the target's metric "
        f"({', '.join(f'{t}: {m}' for t, m in metrics.items())}).", "",
        markdown_table(["source \\ target", *targets], rows),
    ]
    if result["contrasts"]:
        crow = [[name, c["plus"], c["minus"], mean_spread(list(c["values"].values())),
                 ", ".join(f"{v:+.3f}" for v in c["values"].values())] for name, c in result["contrasts"].items()]
        lines += ["", "## Contrasts (per-seed differences)", "",
                  markdown_table(["contrast", "plus", "minus", "mean ± std", "per seed"], crow)]
    if not result["complete"]:
        lines += ["", "**Incomplete:** some cells have not run yet; run the same command again to finish."]
    lines += ["", "![matrix](study.png)"]
    atomic_write_bytes(out / "study.md", ("\n".join(lines) + "\n").encode())
    if np.isfinite(means).any():
        matrix_heatmap(means, sources, targets, out / "study.png", title="transfer matrix (mean over seeds)",
                       annotations=notes, xlabel="target", ylabel="source (pretraining)")

