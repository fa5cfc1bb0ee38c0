"""``invlab measure``: the invariance (and equivariance) profile of an encoder.

MODEL is a run folder, a checkpoint or an exported encoder. The data is a controlled set
(default; the transformations act on the object before pasting), the run's own data, or a
named real data set (they act on the whole image). Writes ``measure.json``,
``measure.md`` and ``invariance.png`` (and ``equivariance.png``) into ``out``.

Python users measure any ``torch.nn.Module`` directly with
:func:`invlab.evaluation.invariance_score` / :func:`invlab.evaluation.equivariance_score`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from invlab.data.controlled import ControlledImages, TransformedImages
from invlab.data.registry import load_image_dataset
from invlab.errors import ConfigError
from invlab.evaluation.equivariance import EquivarianceScore, equivariance_score
from invlab.evaluation.invariance import InvarianceScore, invariance_score
from invlab.report import invariance_bars, markdown_table
from invlab.runs.checkpoint import atomic_write_bytes
from invlab.runs.export import load_encoder
from invlab.runs.run_dir import RunDir
from invlab.transforms.transforms2d import FAMILIES, transform_2d_names

__all__ = ["expand_transform_names", "measure", "measure_tables"]


def meta_modality(model: str | Path) -> str | None:
    """The modality recorded beside an exported encoder in ``model`` (a run folder or file), if any."""
    p = Path(model).expanduser()
    for candidate in (p / "encoder.json", p.with_name("encoder.json")):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text()).get("modality")
            except (OSError, ValueError):
                return None
    return None


def expand_transform_names(items: Sequence[str] | str) -> list[str]:
    """``"rotate,hue"`` -> names; ``all`` and the family names (``geometric``,
    ``photometric``, ``corruption``) expand to their Transforms-2D transformations."""
    if isinstance(items, str):
        items = [s.strip() for s in items.split(",") if s.strip()]
    out: list[str] = []
    for item in items:
        names = transform_2d_names() if item == "all" else FAMILIES.get(item, [item])
        out += [n for n in names if n not in out]
    if not out:
        raise ConfigError("--transforms: name at least one transformation (or all, geometric, photometric, corruption)")
    return out


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


def _measure_data(encoder, meta: dict[str, Any], model: Path, data: str, data_root: str | None,
                  image_size: int | None, num_samples: int, seed: int, progress: bool):
    if meta.get("modality") == "video":
        return _video_measure_data(meta, model, data, image_size, num_samples, seed, progress)
    channels = int(encoder.mean.shape[1]) if hasattr(encoder, "mean") else 3
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
    model: str | Path,
    transforms: Sequence[str] | str,
    layers: Sequence[str] | str | None = None,
    *,
    data: str = "controlled",
    data_root: str | None = None,
    image_size: int | None = None,
    num_samples: int = 1000,
    metrics: Sequence[str] = ("l2", "cosine"),
    equivariance: bool = False,
    bootstrap: int = 1000,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure ``model`` and write the report into ``out`` (default ``RUN/measure`` for a
    model inside a run folder, else ``invlab-measure``). Returns the JSON-ready result."""
    names = expand_transform_names(transforms)
    if equivariance and str(meta_modality(model)) == "video":
        raise ConfigError("--equivariance is not implemented for video encoders yet; measure invariance only")
    for m in metrics:
        if m not in ("l2", "cosine"):
            raise ConfigError(f"--metric must be l2, cosine or both, got {m!r}")
    model = Path(model).expanduser()
    encoder, meta = load_encoder(model)
    if image_size is None and meta.get("input_size"):
        size = int(meta["input_size"][0])
        image_size = size if size >= 16 else None
    t0 = time.perf_counter()
    dataset = _measure_data(encoder, meta, model, data, data_root, image_size, num_samples, seed, progress)
    inv_rows: list[InvarianceScore] = []
    eq_rows: list[EquivarianceScore] = []
    for name in names:
        inv_rows += invariance_score(encoder, dataset, name, layers, metrics=tuple(metrics), num_samples=num_samples,
                                     bootstrap=bootstrap, seed=seed, progress=progress).values()
        if equivariance:
            eq_rows += equivariance_score(encoder, dataset, name, layers, num_samples=num_samples, seed=seed,
                                          progress=progress).values()
    result = {
        "model": str(model),
        "method": meta.get("method"),
        "data": dataset.source,
        "num_samples": inv_rows[0].num_samples if inv_rows else 0,
        "transforms": names,
        "layers": list(dict.fromkeys(r.layer for r in inv_rows)),
        "metrics": list(metrics),
        "invariance": [r.to_dict() for r in inv_rows],
        "equivariance": [r.to_dict() for r in eq_rows],
        "seconds": time.perf_counter() - t0,
    }
    if out is None:
        run = RunDir.find(model)
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

