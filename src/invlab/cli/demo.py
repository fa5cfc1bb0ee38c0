"""``invlab demo``: the embedded default job: what does a representation become invariant to?

1. Generates a small controlled data set (glyph objects pasted on crops of real
   photographs, varying in rotation and scale), offline.
2. Pretrains two methods on it briefly: **supervised** (cross-entropy, no augmentation:
   its only variation is the data's rotation and scale) and **SimCLR** (crop, flip,
   colour jitter and grayscale augmentations).
3. Measures both, and the same network untrained, on eight transformations (invariance
   score per transformation, 0 = invariant, ~1 = as far as another image), and evaluates
   them with a linear probe.
4. Writes ``<out>/report.md`` with the tables and PNGs (examples of the data, the
   invariance profiles), ``results.json`` and one run folder per method.

The expected picture: supervised training becomes invariant to what varies in its data
(rotation, scale), SimCLR to what its augmentations vary (colour, grayscale), and neither
to the other's transformations. No arguments, no downloads; a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from invlab.data.controlled import ControlledImages
from invlab.evaluation.features import extract_features
from invlab.evaluation.invariance import invariance_score
from invlab.evaluation.linear_probe import linear_probe
from invlab.report import image_grid, invariance_bars, markdown_table
from invlab.runs.checkpoint import atomic_write_bytes
from invlab.runs.config import load_recipe
from invlab.runs.export import load_encoder
from invlab.runs.image import build_encoder, load_data
from invlab.runs.pretrain_run import pretrain

__all__ = ["run_demo", "DEMO_TRANSFORMS"]

DEMO_METHODS = ("supervised-controlled", "simclr-controlled")
DEMO_TRANSFORMS = ("rotate", "scale", "translate", "hflip", "hue", "brightness", "grayscale", "blur")


def _overrides(quick: bool, progress: bool) -> list[str]:
    n_train, n_test, epochs = (256, 128, 1) if quick else (2000, 500, 10)
    return (["model.width=4"] if quick else []) + [
        "data.controlled.transforms=[rotate, scale]",
        "data.controlled.num_classes=10",
        f"data.controlled.train_samples={n_train}",
        f"data.controlled.test_samples={n_test}",
        "data.batch_size=64",
        f"trainer.max_epochs={epochs}",
        f"trainer.check_val_every_n_epoch={epochs}",
        f"trainer.enable_progress_bar={str(progress).lower()}",
        "monitor.knn_k=20",
    ]


def _examples(out: Path, size: int = 32) -> Path:
    """One row per measured transformation: the same objects and backgrounds under it."""
    base = ControlledImages([], 10, num_classes=10, image_size=size, content_seed=1)
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
    overrides = _overrides(quick, progress)
    cfgs = {recipe: load_recipe(recipe, overrides) for recipe in DEMO_METHODS}
    first = cfgs[DEMO_METHODS[0]]
    spec = first.data.controlled
    print(f"invlab demo: a controlled data set of {spec.num_classes} glyph classes on crops of real photographs, "
          f"varying in {' and '.join(spec.transforms)}; {spec.train_samples} train / {spec.test_samples} test "
          f"images, {first.trainer.max_epochs} epochs per method; output in {out}/", flush=True)
    _examples(out)
    train, test = load_data(first, progress=False)
    measure_data = ControlledImages.from_spec(spec, "test")
    n_measure = 64 if quick else 500

    def profile(encoder) -> dict:
        scores = {}
        for name in DEMO_TRANSFORMS:
            r = invariance_score(encoder, measure_data, name, num_samples=n_measure, bootstrap=200)["output"]
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
    report = [
        "# invlab demo: what does a representation become invariant to?",
        "",
        f"**Data** (generated, nothing downloaded): {spec.num_classes} glyph classes, one prototype each, pasted on "
        f"random crops of scikit-image's photographs, {spec.image_size} px. The objects vary in "
        f"**{' and '.join(spec.transforms)}** (the data's own factors); {spec.train_samples} training / "
        f"{spec.test_samples} test images.",
        "",
        "![examples](examples.png)",
        "",
        f"**Methods**, {epochs} epochs each, ResNet-18 (width {first.model.width}): *supervised* cross-entropy with no "
        "augmentation "
        "(so the only variation it sees is the data's rotation and scale), and *SimCLR* with crop, flip, colour "
        "jitter and grayscale augmentations. *random init* is the same network untrained.",
        "",
        "**Invariance score** of the pooled features (Speicher et al., TMLR 2024): for twins (same object and "
        "background, two independent draws of the transformation, applied to the object before pasting) the mean "
        "feature distance divided by the mean distance between different images: 0 = invariant, about 1 = the "
        f"transformation moves the representation as far as swapping the image ({n_measure} pairs each, test split).",
        "",
        table,
        "",
        "![invariance](invariance.png)",
        "",
        "Read the columns against each other: a method becomes invariant to what varies between the inputs it must "
        "treat alike: the supervised model to the rotation and scale in its data, SimCLR to its colour and grayscale "
        "augmentations; neither is pushed towards the other's transformations. `invlab measure RUN` gives this "
        "profile for any encoder (per layer, with equivariance), `invlab study` runs transfer studies.",
        "",
        f"Total time: {time.perf_counter() - t_start:.0f} s.",
    ]
    atomic_write_bytes(out / "report.md", ("\n".join(report) + "\n").encode())
    atomic_write_bytes(out / "results.json", json.dumps({"epochs": epochs, "rows": rows}, indent=2,
                                                         default=float).encode())
    print("\n" + table)
    print(f"\nreport: {out / 'report.md'}")
    return {"out": str(out), "rows": rows}

