"""``invlab demo``: the embedded default job: what does a representation become invariant to?

1. Generates a small controlled data set (glyph objects pasted on a small bank of crops of
   real photographs, varying in rotation and scale), offline.
2. Pretrains two methods on it briefly: **supervised** (cross-entropy, no augmentation:
   the labels tie together the rotations and scales in its data) and **SimCLR** (crop,
   flip, colour jitter and grayscale augmentations).
3. Measures both, and the same network untrained, on eight transformations of whole test
   images (invariance score per transformation, 0 = invariant, ~1 = as far as another
   image, with bootstrap intervals), and evaluates them with a linear probe.
4. Writes ``<out>/report.md`` with the tables, PNGs (examples, invariance profiles),
   ``results.json`` and one run folder per method. Every finding sentence in the report
   is computed from the numbers (:func:`findings`): which column is lowest, by how much,
   with the intervals; nothing is fixed prose.

No arguments, no downloads; a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from invlab.data.controlled import TransformedImages
from invlab.evaluation.features import extract_features
from invlab.evaluation.invariance import invariance_score
from invlab.evaluation.linear_probe import linear_probe
from invlab.report import (
    Estimate,
    compare,
    image_grid,
    invariance_bars,
    lowest,
    markdown_table,
    proportion_interval,
)
from invlab.runs.checkpoint import atomic_write_bytes
from invlab.runs.config import load_recipe
from invlab.runs.export import load_encoder
from invlab.runs.image import build_encoder, load_data
from invlab.runs.pretrain_run import pretrain

__all__ = ["run_demo", "findings", "trained_with", "DEMO_TRANSFORMS"]

DEMO_METHODS = ("supervised-controlled", "simclr-controlled")
DEMO_TRANSFORMS = ("rotate", "scale", "translate", "hflip", "hue", "brightness", "grayscale", "blur")
REFERENCE = "random init"

# which of the measured transformations an augmentation (by registry name) varies
_AUGMENTATION_VARIES = {
    "crop": ("scale", "translate"), "random_resized_crop": ("scale", "translate"),
    "resized_crop": ("scale", "translate"), "hflip": ("hflip",), "horizontal_flip": ("hflip",),
    "grayscale": ("grayscale",), "gray": ("grayscale",), "blur": ("blur",), "gaussian_blur": ("blur",),
    "rotate": ("rotate",), "rotation": ("rotate",), "scale": ("scale",), "translate": ("translate",),
    "hue": ("hue",), "brightness": ("brightness",),
}
_JITTER_DEFAULTS = {"brightness": 0.4, "hue": 0.1}


def trained_with(cfg) -> list[str]:
    """The measured transformations a method was trained to ignore: its augmentations'
    (a crop varies scale and position, colour jitter brightness and hue where their
    strength is > 0), plus, for the supervised method, the data's own factors (the labels
    tie together an object's rotations and scales)."""
    names: list[str] = []
    if cfg.method == "supervised" and cfg.data.controlled is not None:
        names += [str(t) for t in cfg.data.controlled.transforms]
    for spec in (cfg.augment.pipeline if cfg.augment is not None else []):
        name = spec.get("name")
        if name in ("jitter", "color_jitter"):
            names += [k for k, default in _JITTER_DEFAULTS.items() if float(spec.get(k, default)) > 0]
        else:
            names += list(_AUGMENTATION_VARIES.get(name, ()))
    return [t for t in DEMO_TRANSFORMS if t in names]


def _score(row: Mapping[str, Any], t: str) -> Estimate:
    r = row["invariance"][t]
    return Estimate.of(r["score"], r["ci"])


def _probe(row: Mapping[str, Any], n_test: int) -> Estimate:
    return Estimate.of(row["linear_top1"], proportion_interval(row["linear_top1"], n_test))


def findings(rows: Sequence[Mapping[str, Any]], trained: Mapping[str, Sequence[str]], n_test: int) -> list[str]:
    """The report's finding sentences, computed from ``rows`` (``rows[0]`` is the
    untrained network; each row has ``method``, ``invariance[t] = {score, ci}`` and
    ``linear_top1``), the transformations each method ``trained`` with, and the number of
    test images of the probe (for its Wilson interval). Lower scores = more invariant."""
    ref, methods = rows[0], rows[1:]
    out: list[str] = []
    held, pairs = [], []
    for row in methods:
        names = list(trained.get(row["method"], ()))
        if not names:
            continue
        parts = []
        for t in names:
            sentence, sign = compare(f"{row['method']}", _score(row, t), REFERENCE, _score(ref, t),
                                     lower="lower (more invariant)", higher="higher (less invariant)")
            parts.append(f"{t}: {sentence}")
            pairs.append((row["method"], t))
            if sign < 0:
                held.append((row["method"], t))
        k = sum(1 for m, _ in held if m == row["method"])
        out.append(f"**{row['method']}** trained with {', '.join(names)}: its score is below {REFERENCE}'s with "
                   f"separated intervals for {k} of {len(names)} of them. " + "; ".join(parts) + ".")
    if pairs:
        missed = [f"{m} on {t}" for m, t in pairs if (m, t) not in held]
        if not missed:
            out.insert(0, f"Each method is more invariant than {REFERENCE} to every transformation it trained with "
                          f"({len(pairs)} of {len(pairs)} comparisons, all intervals separated).")
        else:
            out.insert(0, f"{len(held)} of {len(pairs)} (method, transformation it trained with) pairs are more "
                          f"invariant than {REFERENCE} with separated intervals; not: {', '.join(missed)}.")
    lows = []
    for t in DEMO_TRANSFORMS:
        _, sentence = lowest({r["method"]: _score(r, t) for r in rows})
        lows.append(f"{t}: {sentence}")
    out.append("Lowest score per transformation: " + "; ".join(lows) + ".")
    probe = []
    for row in methods:
        sentence, sign = compare(row["method"], _probe(row, n_test), REFERENCE, _probe(ref, n_test), digits=3)
        verdict = {1: "beats", -1: "is below", 0: "is not clearly different from"}[sign]
        probe.append(f"{row['method']} {verdict} {REFERENCE} ({sentence})")
    if probe:
        out.append(f"Linear probe top-1 on {n_test} test images (95% Wilson intervals): " + "; ".join(probe) + ".")
    return out


# SimCLR's crops keep at least half the image, so the glyph (the class) stays in both views
_METHOD_OVERRIDES = {"simclr-controlled": ["augment.pipeline.0={name: crop, size: 32, scale: [0.5, 1.0]}"]}


def _overrides(quick: bool, progress: bool, recipe: str = "") -> list[str]:
    n_train, n_test, epochs = (256, 128, 1) if quick else (2000, 500, 10)
    return (["model.width=4"] if quick else []) + [
        "data.controlled.transforms=[rotate, scale]",
        "data.controlled.num_classes=10",
        # a small bank of backgrounds: an image's background cannot identify it, its object must
        "data.controlled.num_backgrounds=16",
        f"data.controlled.train_samples={n_train}",
        f"data.controlled.test_samples={n_test}",
        "data.batch_size=64",
        f"trainer.max_epochs={epochs}",
        f"trainer.check_val_every_n_epoch={epochs}",
        f"trainer.enable_progress_bar={str(progress).lower()}",
        "monitor.knn_k=20",
        *_METHOD_OVERRIDES.get(recipe, []),
    ]


def _examples(test, out: Path) -> Path:
    """One row per measured transformation: the same test images under it."""
    base = TransformedImages(test.subset(10, 0), [], 0, "test")
    rows = [base.render(range(10))]
    for name in DEMO_TRANSFORMS:
        rows.append(base.variant(transforms=[name], transform_seed=3).render(range(10)))
    return image_grid(torch.stack(rows).numpy(), out / "examples.png", ["none", *DEMO_TRANSFORMS])


def run_demo(out: str | Path = "invlab-demo", quick: bool = False, progress: bool = True) -> dict:
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = out.with_name(f"{out.name}-{stamp}")
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    cfgs = {recipe: load_recipe(recipe, _overrides(quick, progress, recipe)) for recipe in DEMO_METHODS}
    first = cfgs[DEMO_METHODS[0]]
    spec = first.data.controlled
    print(f"invlab demo: a controlled data set of {spec.num_classes} glyph classes on crops of real photographs, "
          f"varying in {' and '.join(spec.transforms)}; {spec.train_samples} train / {spec.test_samples} test "
          f"images, {first.trainer.max_epochs} epochs per method; output in {out}/", flush=True)
    train, test = load_data(first, progress=False)
    _examples(test, out)
    n_measure = 64 if quick else 500

    def profile(encoder) -> dict:
        scores = {}
        for name in DEMO_TRANSFORMS:
            r = invariance_score(encoder, test, name, num_samples=n_measure, bootstrap=200)["output"]
            scores[name] = {"score": r.score, "ci": [r.ci_low, r.ci_high]}
        tx, ty = extract_features(encoder, train, show_progress=False)
        qx, qy = extract_features(encoder, test, show_progress=False)
        probe = linear_probe(tx, ty, qx, qy, train.num_classes, epochs=20 if quick else 100, lr=1e-2)
        return {"invariance": scores, "linear_top1": probe.top1}

    rows = []
    torch.manual_seed(0)
    random_encoder = build_encoder(first, [0.5] * 3, [0.25] * 3, 3).eval()
    print("\nmeasuring the untrained network ...", flush=True)
    rows.append({"method": "random init", "seconds": 0.0, **profile(random_encoder)})
    for recipe, cfg in cfgs.items():
        print(f"\npretraining {cfg.method} ({recipe}) ...", flush=True)
        t0 = time.perf_counter()
        summary = pretrain(cfg, out / recipe, progress=progress)
        seconds = time.perf_counter() - t0
        print(f"  {summary['epochs']} epochs in {seconds:.0f} s ({summary['train_samples_per_s']:.0f} samples/s); "
              "measuring ...", flush=True)
        encoder, _ = load_encoder(out / recipe)
        rows.append({"method": cfg.method, "seconds": seconds, "run": str(out / recipe), **profile(encoder)})

    headers = ["transformation", *[r["method"] for r in rows]]
    table_rows = [[t, *[f"{r['invariance'][t]['score']:.2f}" for r in rows]] for t in DEMO_TRANSFORMS]
    table_rows.append(["**linear probe top-1**", *[f"{r['linear_top1']:.3f}" for r in rows]])
    table = markdown_table(headers, table_rows)
    invariance_bars({r["method"]: {t: r["invariance"][t]["score"] for t in DEMO_TRANSFORMS} for r in rows},
                    out / "invariance.png",
                    {r["method"]: {t: tuple(r["invariance"][t]["ci"]) for t in DEMO_TRANSFORMS} for r in rows},
                    title="invariance of the pooled features (lower = more invariant)")
    epochs = first.trainer.max_epochs
    trained = {cfg.method: trained_with(cfg) for cfg in cfgs.values()}
    sentences = findings(rows, trained, len(test))
    report = [
        "# invlab demo: what does a representation become invariant to?",
        "",
        f"**Data** (generated, nothing downloaded): {spec.num_classes} glyph classes, one prototype each, pasted on "
        f"one of {spec.num_backgrounds} crops of scikit-image's photographs, {spec.image_size} px. The objects vary in "
        f"**{' and '.join(map(str, spec.transforms))}** (the data's own factors); {spec.train_samples} training / "
        f"{spec.test_samples} test images.",
        "",
        f"**Methods**, {epochs} epochs each, ResNet-18 (width {first.model.width}): *supervised* cross-entropy with no "
        f"augmentation (trained with: {', '.join(trained.get('supervised', [])) or 'none of the measured'}; the "
        "labels tie together an object's rotations and scales), and *SimCLR* with crop, flip, colour jitter and "
        f"grayscale augmentations (trained with: {', '.join(trained.get('simclr', [])) or 'none of the measured'}). "
        f"*{REFERENCE}* is the same network untrained.",
        "",
        "**Invariance score** of the pooled features (Speicher et al., TMLR 2024): for twins (the same test image "
        "under two independent draws of the transformation, applied to the whole image, as below) the mean feature "
        "distance divided by the mean distance between different images: 0 = invariant, about 1 = the "
        f"transformation moves the representation as far as swapping the image ({n_measure} pairs each, test split; "
        "95% bootstrap intervals in results.json and the plot).",
        "",
        "![examples](examples.png)",
        "",
        table,
        "",
        "![invariance](invariance.png)",
        "",
        "## Findings (computed from the numbers above)",
        "",
        *[f"- {line}" for line in sentences],
        "",
        "`invlab measure RUN` gives this profile for any encoder (per layer, with equivariance), `invlab study` "
        "runs transfer studies.",
        "",
        f"Total time: {time.perf_counter() - t_start:.0f} s.",
    ]
    atomic_write_bytes(out / "report.md", ("\n".join(report) + "\n").encode())
    atomic_write_bytes(out / "results.json", json.dumps({"epochs": epochs, "trained_with": trained, "rows": rows,
                                                          "findings": sentences}, indent=2, default=float).encode())
    print("\n" + table)
    print("\n" + "\n".join(f"- {line}" for line in sentences))
    print(f"\nreport: {out / 'report.md'}")
    return {"out": str(out), "rows": rows}

