"""``invlab measure``: the invariance (and equivariance) profile of an encoder.

MODEL is a run folder, a checkpoint or an exported encoder of either modality, or a user's
own network (``model_factory="package.module:factory"``, a function returning an
``nn.Module``, with optional weights). Image encoders are measured on a controlled set
(default; the transformations act on the object before pasting), the run's own data, or a
named real data set (they act on the whole image); time-series encoders on their run's
test series with the time-series transformations; video encoders on controlled clips or
their run's test videos with the video transformations (invariance only). Writes ``measure.json``,
``measure.md`` and ``invariance.png`` (and ``equivariance.png``) into ``out``.

Python users measure any ``torch.nn.Module`` directly with
:func:`invlab.evaluation.invariance_score` / :func:`invlab.evaluation.equivariance_score`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from invlab.data.controlled import ControlledImages, TransformedImages
from invlab.data.registry import load_image_dataset
from invlab.errors import ConfigError
from invlab.evaluation.equivariance import EquivarianceScore, equivariance_score
from invlab.evaluation.invariance import InvarianceScore, invariance_score
from invlab.evaluation.layers import SeriesRepresentation
from invlab.evaluation.paired_views import series_transform_names
from invlab.report import invariance_bars, markdown_table
from invlab.runs.checkpoint import atomic_write_bytes
from invlab.runs.export import load_encoder
from invlab.runs.run_dir import RunDir
from invlab.transforms.transforms2d import FAMILIES, transform_2d_names

__all__ = ["expand_transform_names", "measure", "measure_tables", "load_user_model"]

SERIES_LAYERS = ("output", "tokens")


def expand_transform_names(items: Sequence[str] | str, modality: str = "image") -> list[str]:
    """``"rotate,hue"`` -> names; for images ``all`` and the family names (``geometric``,
    ``photometric``, ``corruption``) expand to their Transforms-2D transformations, for
    series ``all`` is every time-series transformation."""
    if isinstance(items, str):
        items = [s.strip() for s in items.split(",") if s.strip()]
    out: list[str] = []
    for item in items:
        if modality == "timeseries":
            names = series_transform_names() if item == "all" else [item]
            bad = [n for n in names if n not in series_transform_names()]
            if bad:
                raise ConfigError(f"--transforms: {bad[0]!r} is not a time-series transformation; series encoders "
                                  f"take: {', '.join(series_transform_names())} (or all)")
        else:
            names = transform_2d_names() if item == "all" else FAMILIES.get(item, [item])
        out += [n for n in names if n not in out]
    if not out:
        raise ConfigError("--transforms: name at least one transformation (or all, geometric, photometric, corruption)")
    return out


# -- a user's own network -----------------------------------------------------------------------
def _import_factory(spec: str):
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"--model: expected package.module:factory (or path/to/file.py:factory), got {spec!r}")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).expanduser()
            if not path.is_file():
                raise ConfigError(f"--model {spec}: file {path} does not exist")
            loader_spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(loader_spec)
            loader_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path and "" not in sys.path:
                sys.path.insert(0, os.getcwd())  # as `python -m` would: the user's own package
            module = importlib.import_module(module_name)
    except ConfigError:
        raise
    except Exception as err:  # anything the user's module raises on import
        raise ConfigError(f"--model {spec}: cannot import {module_name!r} ({type(err).__name__}: {err})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"--model {spec}: module {module_name!r} has no callable {attr!r}")
    return factory


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ConfigError(f"--weights {path}: file does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file, or a pickle that is more than tensors
        raise ConfigError(f"--weights {path}: cannot read it as .safetensors or a state-dict .pt "
                          f"(weights_only=True) ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"--weights {path}: expected a state dict (names -> tensors), got {type(state).__name__}")
    return state


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing key {missing[0]!r}" + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""))
        if unexpected:
            parts.append(f"unexpected key {unexpected[0]!r}"
                         + (f" (+{len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
        if shapes:
            k = shapes[0]
            parts.append(f"key {k!r} has shape {tuple(state[k].shape)} in the file but {tuple(own[k].shape)} in "
                         "the model")
        raise ConfigError(f"--weights {path}: the weights do not fit the model: {'; '.join(parts)}")
    model.load_state_dict(state)


def load_user_model(spec: str, weights: str | Path | None = None, mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None) -> nn.Module:
    """The ``nn.Module`` that ``spec`` (``package.module:factory`` or ``file.py:factory``)
    returns, with ``weights`` (``.safetensors`` or a state-dict ``.pt`` read with
    ``weights_only=True``; every key and shape must match) and, with ``mean``/``std``, inputs
    normalised per channel before its forward (a pre-hook, so layer names stay those of
    ``model.named_modules()``). In eval mode."""
    factory = _import_factory(spec)
    try:
        model = factory()
    except Exception as err:
        raise ConfigError(f"--model {spec}: the factory raised {type(err).__name__}: {err}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"--model {spec}: the factory returned {type(model).__name__}, not a torch.nn.Module")
    if weights is not None:
        path = Path(weights).expanduser()
        _load_state(model, _read_weights(path), path)
    if (mean is None) != (std is None):
        raise ConfigError("--mean and --std go together (one value per channel each)")
    if mean is not None:
        if len(mean) != len(std) or any(float(v) <= 0 for v in std):
            raise ConfigError(f"--mean and --std need one value per channel and std > 0, got {list(mean)} and {list(std)}")
        m = torch.tensor([float(v) for v in mean]).view(1, -1, 1, 1)
        sd = torch.tensor([float(v) for v in std]).view(1, -1, 1, 1)

        def normalise(_module, args):
            return ((args[0] - m.to(args[0].device)) / sd.to(args[0].device), *args[1:])

        model.register_forward_pre_hook(normalise)
        model.invlab_channels = len(mean)
    return model.eval()


# -- encoders from runs -------------------------------------------------------------------------
def _load_model_ref(model: Path) -> tuple[nn.Module, dict[str, Any]]:
    """An exported / checkpointed encoder of either modality (from its description)."""
    encoder, meta = load_encoder(model)
    modality = meta.get("modality", "image")
    if modality not in ("image", "timeseries", "video"):
        raise ConfigError(f"{model}: invlab measure handles image, time-series and video encoders, not {modality!r} ones")
    return encoder, {**meta, "modality": modality}


def _series_data(model: Path, num_samples: int, seed: int) -> tuple[torch.Tensor, str, str]:
    """The test series of the run holding ``model``: ``(series (N, C, T), source, instance)``."""
    from invlab.data.timeseries.windows import WindowDataset
    from invlab.runs.timeseries.recipe import is_forecasting, load_forecast_data, load_labelled_data

    run = RunDir.find(model)
    if run is None:
        raise ConfigError(f"{model}: time-series encoders are measured on their run's test series; "
                          "give the run folder (or a file inside it)")
    cfg = run.load_config()
    instance = getattr(cfg.params, "instance", "cls")
    if is_forecasting(cfg):
        series = load_forecast_data(cfg)
        windows = WindowDataset(series, "test", cfg.data.seq_len, 0)
        n = min(num_samples, len(windows))
        rows = np.sort(np.random.default_rng(seed).choice(len(windows), n, replace=False))
        x = torch.from_numpy(np.ascontiguousarray(windows.inputs(rows))).float()
        return x, f"{Path(series.path).name} test windows (length {cfg.data.seq_len})", instance
    _, test = load_labelled_data(cfg)
    return torch.as_tensor(test.x).float(), f"{test.name} test series", instance


def _video_measure_data(meta: dict[str, Any], model: Path, data: str, image_size: int | None, num_samples: int,
                        seed: int, progress: bool):
    """Clips for a video encoder: the centred clip of the run's test videos (``run``) or
    controlled videos (``controlled``) at the encoder's clip length and frame size."""
    clip_len = int(meta.get("clip_len") or 8)
    if data == "run":
        from invlab.runs.video import centred_test_clips

        run = RunDir.find(model)
        if run is None:
            raise ConfigError(f"--data run: {model} is not inside a run folder")
        return centred_test_clips(run.load_config(), clip_len, num_samples, progress)
    if data == "controlled":
        from invlab.data.video import ControlledVideos

        size = image_size or int((meta.get("input_size") or [32])[0])
        size += size % 2
        return ControlledVideos(num_samples, num_frames=clip_len, image_size=size, content_seed=seed,
                                motion_seed=seed, split="test").to_video_array("motion")
    raise ConfigError(f"--data {data!r}: video encoders are measured on 'controlled' videos or their run's data ('run')")


def _measure_data(channels: int, model: Path | None, data: str, data_root: str | None,
                  image_size: int | None, num_samples: int, seed: int, progress: bool):
    if data == "controlled":
        size = image_size or 32
        return ControlledImages([], num_samples, image_size=size, channels=channels, content_seed=seed, split="test")
    if data == "run":
        from invlab.runs.image import measurement_data

        run = RunDir.find(model)
        if run is None:
            raise ConfigError(f"--data run: {model} is not inside a run folder")
        return measurement_data(run.load_config(), "test", progress)
    arr = load_image_dataset(data, data_root, "test", channels=channels,
                             image_size=image_size, cache="memory", progress=progress)
    return TransformedImages(arr.subset(num_samples, seed), [], 0, "test")


def measure(
    model: str | Path | None,
    transforms: Sequence[str] | str = "all",
    layers: Sequence[str] | str | None = None,
    *,
    data: str | None = None,
    data_root: str | None = None,
    image_size: int | None = None,
    num_samples: int = 1000,
    metrics: Sequence[str] = ("l2", "cosine"),
    equivariance: bool = False,
    bootstrap: int = 1000,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
    model_factory: str | None = None,
    weights: str | Path | None = None,
    input_size: Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Measure ``model`` (or the network ``model_factory`` builds, see
    :func:`load_user_model`; ``input_size`` ``(C, H, W)`` sets its images) and write the
    report into ``out`` (default ``RUN/measure`` for a model inside a run folder, else
    ``invlab-measure``). Returns the JSON-ready result."""
    for m in metrics:
        if m not in ("l2", "cosine"):
            raise ConfigError(f"--metric must be l2, cosine or both, got {m!r}")
    if (model is None) == (model_factory is None):
        raise ConfigError("measure takes either MODEL (a run folder, checkpoint or encoder) or --model FACTORY")
    if model_factory is None and (weights is not None or input_size is not None or mean is not None):
        raise ConfigError("--weights, --input-size, --mean and --std go with --model package.module:factory")
    t0 = time.perf_counter()
    if model_factory is not None:
        encoder = load_user_model(model_factory, weights, mean, std)
        modality, label, meta = "image", model_factory, {"method": None}
        channels = 3
        if input_size is not None:
            if len(input_size) != 3 or input_size[1] != input_size[2] or min(input_size) < 1:
                raise ConfigError(f"--input-size: give C H W with square images (H = W), got {list(input_size)}; "
                                  "time-series networks are measured from Python (invariance_score on a series tensor)")
            channels, image_size = int(input_size[0]), int(input_size[1])
        if getattr(encoder, "invlab_channels", channels) != channels:
            raise ConfigError(f"--mean/--std have {encoder.invlab_channels} values but the input has {channels} channels")
        if data == "run":
            raise ConfigError("--data run needs a run folder; with --model use controlled or a data set name")
        model_path = None
    else:
        model_path = Path(model).expanduser()
        encoder, meta = _load_model_ref(model_path)
        modality, label = meta.get("modality", "image"), str(model_path)
        channels = int(encoder.mean.shape[1]) if hasattr(encoder, "mean") else 3
    names = expand_transform_names(transforms, modality)
    if modality == "timeseries":
        if data not in (None, "run"):
            raise ConfigError(f"--data {data}: time-series encoders are measured on their run's test series "
                              "(--data run, the default for them)")
        requested = [s.strip() for s in layers.split(",")] if isinstance(layers, str) else list(layers or ["output"])
        bad = [x for x in requested if x not in SERIES_LAYERS]
        if bad:
            raise ConfigError(f"--layers: {bad[0]!r}: time-series encoders offer {', '.join(SERIES_LAYERS)} "
                              "(the instance embedding, every token)")
        dataset, source, instance = _series_data(model_path, num_samples, seed)
        encoder = SeriesRepresentation(encoder, instance).eval()
    elif modality == "video":
        if equivariance:
            raise ConfigError("--equivariance is not implemented for video encoders yet; measure invariance only")
        dataset = _video_measure_data(meta, model_path, data or "controlled", image_size, num_samples, seed, progress)
        source = dataset.source
    else:
        if image_size is None and meta.get("input_size"):
            size = int(meta["input_size"][0])
            image_size = size if size >= 16 else None
        dataset = _measure_data(channels, model_path, data or "controlled", data_root, image_size, num_samples, seed,
                                progress)
        source = dataset.source
    inv_rows: list[InvarianceScore] = []
    eq_rows: list[EquivarianceScore] = []
    for name in names:
        inv_rows += invariance_score(encoder, dataset, name, layers, metrics=tuple(metrics), num_samples=num_samples,
                                     bootstrap=bootstrap, seed=seed, progress=progress).values()
        if equivariance:
            eq_rows += equivariance_score(encoder, dataset, name, layers, num_samples=num_samples, seed=seed,
                                          progress=progress).values()
    result = {
        "model": label,
        "method": meta.get("method"),
        "modality": modality,
        "data": source,
        "num_samples": inv_rows[0].num_samples if inv_rows else 0,
        "transforms": names,
        "layers": list(dict.fromkeys(r.layer for r in inv_rows)),
        "metrics": list(metrics),
        "invariance": [r.to_dict() for r in inv_rows],
        "equivariance": [r.to_dict() for r in eq_rows],
        "seconds": time.perf_counter() - t0,
    }
    if out is None:
        run = RunDir.find(model_path) if model_path is not None else None
        out = (run.path / "measure") if run is not None else Path("invlab-measure")
    result["out"] = str(write_measure_report(result, out))
    return result


def measure_tables(result: dict[str, Any]) -> str:
    """The invariance (and equivariance) tables of a :func:`measure` result as markdown."""
    inv = result["invariance"]
    metrics = result["metrics"]
    by_key = {(r["transform"], r["layer"], r["metric"]): r for r in inv}
    headers = ["transformation", "layer"] + [f"{'L2' if m == 'l2' else 'cosine'} invariance [95% CI]" for m in metrics]
    rows = []
    for t in result["transforms"]:
        for layer in result["layers"]:
            cells = []
            for m in metrics:
                r = by_key.get((t, layer, m))
                cells.append(f"{r['score']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if r else "")
            rows.append([t, layer, *cells])
    text = markdown_table(headers, rows)
    if result["equivariance"]:
        eq_rows = []
        for r in result["equivariance"]:
            params = ", ".join(
                f"{k.split('.', 1)[1]} {p['metric']} {p['score']:.2f}" + (f" (chance {p['chance']:.2f})" if p["metric"] == "accuracy" else "")
                for k, p in r["params"].items()
            )
            eq_rows.append([r["transform"], r["layer"], params or "n/a", r["map_error"], r["identity_error"]])
        text += "\n\n" + markdown_table(
            ["transformation", "layer", "parameter recovery (held-out linear probe)", "linear-map error", "identity-map error"],
            eq_rows,
        )
    return text


def write_measure_report(result: dict[str, Any], out: str | Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "measure.json", json.dumps(result, indent=2, default=float).encode())
    metric = result["metrics"][0]
    scores: dict[str, dict[str, float]] = {}
    errors: dict[str, dict[str, tuple[float, float]]] = {}
    for r in result["invariance"]:
        if r["metric"] != metric:
            continue
        scores.setdefault(r["layer"], {})[r["transform"]] = r["score"]
        errors.setdefault(r["layer"], {})[r["transform"]] = (r["ci_low"], r["ci_high"])
    invariance_bars(scores, out / "invariance.png", errors, title=f"{Path(result['model']).name}: {metric} invariance")
    if result["equivariance"]:
        rec = {}
        for r in result["equivariance"]:
            rec.setdefault(r["layer"], {})[r["transform"]] = r["recovery"]
        invariance_bars(rec, out / "equivariance.png", title="parameter recovery (accuracy or R^2)",
                        ylabel="held-out linear probe score")
    lines = [
        f"# Invariance profile of {result['model']}",
        "",
        f"Data: {result['data']}, {result['num_samples']} samples per transformation. Invariance score: "
        "mean distance between twins (same content, two independent draws of the transformation) over the mean "
        "distance to another sample; 0 = invariant, about 1 = the transformation moves the representation as far "
        "as swapping the image (Speicher et al., TMLR 2024). 95% bootstrap intervals.",
        "",
        measure_tables(result),
        "",
        "![invariance](invariance.png)",
    ]
    if result["equivariance"]:
        lines += ["", "![equivariance](equivariance.png)"]
    atomic_write_bytes(out / "measure.md", ("\n".join(lines) + "\n").encode())
    return out

