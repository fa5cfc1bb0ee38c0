"""TimeDRL, an improved classification recipe, a supervised baseline and aeon's MiniRocket on
UCR/UEA classification sets (by default the eight aeon ships), through the real `invlab`
path, several seeds, the same splits.

For each data set and seed:

- ``timedrl``: pretrain ``timedrl-ucr`` (TimeDRL, channel-mixing patches) and evaluate
  ``classify`` (logistic-regression probe on the frozen [CLS] embeddings, C chosen by
  stratified cross-validation on the training split);
- ``recipe``: the classification recipe chosen by ``timedrl_ucr_ablation.py`` on training-split
  cross-validation only (``RECIPE`` below), applied unchanged to every set;
- ``untrained``: the recipe's encoder at initialisation (``snapshots/epoch000``) under the
  recipe's probe: what pretraining adds;
- ``supervised``: train ``supervised-ucr`` (the same encoder + a linear classifier on [CLS],
  cross-entropy, the same epochs, no selection) and report its own classifier;
- ``minirocket``: aeon's ``MiniRocketClassifier`` (default 10,000 kernels, its multivariate
  transform where the set has several channels; ``invlab.evaluation.baselines``) on the same
  arrays, its kernels drawn with the seed.

Test accuracy is computed once per run; nothing is selected on it.

    python benchmarks/timedrl_ucr.py [--seeds 0 1 2] [--datasets GunPoint ...] [--data-root DIR]
        [--epochs 100] [--work DIR]

``--data-root DIR`` reads ``DIR/<name>_TRAIN.ts`` / ``_TEST.ts`` (or ``DIR/<name>/...``; also
``.arff``, ``.tsv``, ``.txt``), e.g. the unpacked UCR/UEA archives; ``--datasets`` takes any
list of set names found there. With ``--work DIR`` every finished run is kept as
``DIR/<recipe>-<set>-<seed>.json`` and skipped when the command is run again (resume after an
interruption, or split the sets over several processes and assemble the report with a final
run over all of them); a finished but unevaluated run folder with the same configuration is
evaluated instead of trained again.

Writes benchmarks/results/timedrl_ucr.json and .md.
"""

from __future__ import annotations

import os

# the cores are shared with other jobs: idle OpenMP threads must sleep, not spin (before torch loads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json
import math
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from invlab.evaluation.baselines import minirocket_scores, warm_up_minirocket
from invlab.runs.config import load_recipe
from invlab.runs.evaluate_run import evaluate
from invlab.runs.pretrain_run import pretrain
from invlab.runs.run_dir import RunDir
from invlab.runs.timeseries import load_labelled_data
from invlab.runtime import configure_cpu_allocator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_monitor import LoadMonitor  # noqa: E402

HERE = Path(__file__).resolve().parent
DATASETS = ["GunPoint", "ItalyPowerDemand", "ArrowHead", "OSULeaf", "ACSF1", "PickupGestureWiimoteZ", "BasicMotions",
            "JapaneseVowels"]

# The improved classification recipe, chosen by benchmarks/timedrl_ucr_ablation.py from the
# mean cross-validation accuracy on the training splits (never test), applied unchanged to
# every set: TimeDRL pretrained as `timedrl-ucr` with the pretraining variant's overrides
# (see `variant_overrides`), probed with these options.
RECIPE = {"recipe": "timedrl-ucr", "variant": "patch_l32", "features": "tokens", "level_scale": True}


def variant_overrides(variant: str, length: int) -> list[str]:
    """Recipe overrides of a pretraining variant for series of ``length`` steps ([] = base)."""
    if variant == "base":
        return []
    if variant == "d128":
        return ["model.d_model=128"]
    if variant in ("patch_l32", "budget64"):  # ~32 patches per series; at most ~64 tokens
        p = math.ceil(length / 32) if variant == "patch_l32" else max(8, math.ceil(length / 64))
        return [] if p == 8 else [f"model.patch_len={p}", f"model.stride={p}"]
    if variant == "augment":
        return ["params.randomness=augmentation", f"augment.pipeline={AUGMENT}"]
    if variant == "norm_off":
        return ["model.instance_norm=false", "data.standardize=true"]
    raise ValueError(f"unknown variant {variant!r}")


AUGMENT = "[{name: ts_jitter, sigma: 0.1}, {name: ts_scaling, sigma: 0.2}, {name: time_warp, sigma: 0.2}]"


def series_length(dataset: str, root: str | None) -> int:
    return load_labelled_data(load_recipe("timedrl-ucr", [f"data.dataset={dataset}", *_root(root)]))[0].length


def reuse_rows(earlier: Path, columns: list[str], work: Path, datasets: list[str], seeds: list[int],
               epochs: int) -> list[str]:
    """Seed the ``work`` cache with the per-run rows of ``columns`` (timedrl, supervised) from an
    earlier results JSON of the same recipes, seeds and epochs: what an earlier invocation with
    this ``--work`` would have left. Returns the cache files written."""
    old = json.loads(earlier.read_text())
    if old.get("epochs") != epochs:
        raise SystemExit(f"{earlier}: {old.get('epochs')} epochs, this run asks for {epochs}; cannot reuse its rows")
    written = []
    for name in datasets:
        d = old["datasets"].get(name)
        for column in columns:
            tag = old["recipes"][column]
            for seed in seeds:
                if d is None or seed not in d["seeds"]:
                    continue
                done = work / f"{tag}-{name}-{seed}.json"
                if not done.is_file():
                    row = dict(d[column]["runs"][d["seeds"].index(seed)])
                    row["reused_from"] = f"{earlier.name} ({old.get('date')})"
                    done.write_text(json.dumps(row))
                    written.append(done.name)
    return written


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(HERE.parent))
    except ValueError:
        return path


def _root(root: str | None) -> list[str]:
    return [f"data.root={root}"] if root else []


def _pretrained(cfg, out: Path) -> None:
    """Pretrain into ``out`` unless it already holds a finished run of exactly ``cfg``."""
    if (out / "summary.json").is_file() and (out / "encoder.safetensors").is_file():
        run = RunDir.find(out)
        if run is not None and run.load_config().to_dict() == cfg.to_dict():
            return
    shutil.rmtree(out, ignore_errors=True)  # a run that died part-way starts again
    pretrain(cfg, out, progress=False)


def _scores(probe: dict) -> dict:
    return {"accuracy": probe["accuracy"], "macro_f1": probe["macro_f1"], "probe_C": probe["C"],
            "cv_accuracy": probe["cv_accuracy"].get(probe["C"])}


def run_one(recipe: str, dataset: str, seed: int, epochs: int, work: Path, root: str | None = None,
            overrides: tuple[str, ...] = (), probe: dict | None = None, tag: str | None = None,
            keep: bool = False) -> dict:
    """Pretrain ``recipe`` on one set and seed, evaluate ``classify`` (the [CLS] probe; with
    ``probe`` options also that probe and the untrained encoder under it). Cached in ``work``;
    ``keep`` keeps the run's final and untrained encoders there (otherwise it is removed)."""
    snapshots = probe is not None or recipe == "timedrl-ucr"
    cfg = load_recipe(recipe, [f"data.dataset={dataset}", f"seed={seed}", f"trainer.max_epochs={epochs}",
                               f"monitor.snapshots={str(snapshots).lower()}", *_root(root), *overrides])
    out = work / f"{tag or recipe}-{dataset}-{seed}"
    probed = "" if probe is None else f".{probe['features']}{'+ls' if probe['level_scale'] else ''}"
    done = work / f"{out.name}{probed}.json"  # another probe on a kept run is probed again
    if done.is_file():  # finished in an earlier (interrupted or parallel) invocation with the same --work
        return json.loads(done.read_text())
    c0, t0 = time.process_time(), time.perf_counter()
    _pretrained(cfg, out)
    result = evaluate(out, "classify", progress=False)
    summary = json.loads((out / "summary.json").read_text())
    row = {"accuracy": result["accuracy"], "macro_f1": result["macro_f1"], "train_seconds": summary["train_seconds"],
           "wall_seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
    if recipe == "supervised-ucr":
        row["probe_on_cls_accuracy"] = result["probe"]["accuracy"]  # for reference: a probe on its [CLS]
    else:
        row["probe_C"] = result["probe"]["C"]
    if probe is not None:
        rich = evaluate(out, "classify", progress=False, include_init=True, **probe)
        row["recipe"] = _scores(rich["probe"])
        row["untrained"] = _scores(rich["untrained"])
        row["recipe"]["feature_dim"] = rich["probe"]["feature_dim"]
    if keep:  # the final and the untrained encoder stay, to probe again with other options
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        for snapshot in (out / "snapshots").glob("epoch*.safetensors"):
            if snapshot.name != "epoch000.safetensors":
                snapshot.unlink()
    else:
        shutil.rmtree(out, ignore_errors=True)
    done.write_text(json.dumps(row))
    return row


def run_minirocket(dataset: str, seed: int, work: Path, root: str | None = None) -> dict:
    """aeon's MiniRocketClassifier on the arrays the other rows use (same loader, same padding)."""
    done = work / f"minirocket-{dataset}-{seed}.json"
    if done.is_file():
        return json.loads(done.read_text())
    train, test = load_labelled_data(load_recipe("timedrl-ucr", [f"data.dataset={dataset}", *_root(root)]))
    row = minirocket_scores(train.x, train.y, test.x, test.y, seed=seed)
    done.write_text(json.dumps(row))
    return row


def _stats(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


COLUMNS = ("minirocket", "untrained", "recipe", "timedrl", "supervised")


def _block(rows: list[dict]) -> dict:
    return {"accuracy": _stats([r["accuracy"] for r in rows]), "macro_f1": _stats([r["macro_f1"] for r in rows]),
            "runs": rows}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=DATASETS, help="UCR/UEA set names (default: aeon's shipped eight)")
    p.add_argument("--data-root", default=None,
                   help="folder of <name>_TRAIN/_TEST files, e.g. the unpacked archives (default: aeon's shipped sets)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--work", default=None, help="scratch folder for the runs (default: a temporary folder)")
    p.add_argument("--reuse", nargs="+", default=[], choices=["timedrl", "supervised"],
                   help="take these columns' per-run rows from --reuse-from instead of running them again "
                        "(same recipes, seeds, epochs; runs are deterministic on CPU)")
    p.add_argument("--reuse-from", default=str(HERE / "results" / "timedrl_ucr.json"))
    p.add_argument("--keep-runs", action="store_true",
                   help="keep the TimeDRL and recipe runs' encoders in --work (delete a set's .json to probe again)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    configure_cpu_allocator()
    work = Path(args.work or tempfile.mkdtemp(prefix="invlab-ucr-"))
    work.mkdir(parents=True, exist_ok=True)
    probe = {"features": RECIPE["features"], "level_scale": RECIPE["level_scale"]}
    lengths = {name: series_length(name, args.data_root) for name in args.datasets}
    overrides = {name: variant_overrides(RECIPE["variant"], lengths[name]) for name in args.datasets}
    shared = RECIPE["recipe"] == "timedrl-ucr" and RECIPE["variant"] == "base"  # one pretraining serves both rows
    if args.reuse and shared and "timedrl" in args.reuse:
        raise SystemExit("the recipe shares TimeDRL's pretraining: its runs are needed, --reuse timedrl is not possible")
    reused = reuse_rows(Path(args.reuse_from), args.reuse, work, args.datasets, args.seeds, args.epochs) if args.reuse else []
    results: dict[str, dict] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    compile_seconds = warm_up_minirocket()
    with LoadMonitor() as load:
        for name in args.datasets:
            entry: dict[str, list] = {k: [] for k in COLUMNS}
            for seed in args.seeds:
                entry["minirocket"].append(run_minirocket(name, seed, work, args.data_root))
                timedrl = run_one("timedrl-ucr", name, seed, args.epochs, work, args.data_root,
                                  probe=probe if shared else None, keep=args.keep_runs)
                recipe = timedrl if shared else run_one(
                    RECIPE["recipe"], name, seed, args.epochs, work, args.data_root, tuple(overrides[name]),
                    probe=probe, tag="recipe", keep=args.keep_runs)
                entry["timedrl"].append(timedrl)
                entry["recipe"].append({**recipe["recipe"], "train_seconds": recipe["train_seconds"]})
                entry["untrained"].append(recipe["untrained"])
                entry["supervised"].append(run_one("supervised-ucr", name, seed, args.epochs, work, args.data_root))
                print(f"{name} seed {seed}: " + ", ".join(f"{k} {entry[k][-1]['accuracy']:.4f}" for k in COLUMNS),
                      flush=True)
            results[name] = {"seeds": args.seeds}
            results[name].update({f"{k}_accuracy": [r["accuracy"] for r in entry[k]] for k in COLUMNS})
            results[name].update({k: _block(entry[k]) for k in COLUMNS})
    base = load_recipe("timedrl-ucr")
    report = {
        "benchmark": "timedrl_ucr",
        "protocol": ("TimeDRL: pretrain the recipe's epochs, then a logistic-regression probe on frozen [CLS] "
                     "embeddings, C by stratified k-fold CV on the training split. Recipe: the probe options and "
                     "pretraining overrides in `recipe` (chosen by timedrl_ucr_ablation.py on training-split CV), "
                     "same probe protocol. Untrained: the recipe's encoder at initialisation, the recipe's probe. "
                     "Supervised: the same encoder + Dropout/Linear on [CLS], cross-entropy, same epochs, last "
                     "epoch. MiniRocket: aeon's MiniRocketClassifier, default settings, kernels drawn with the seed. "
                     "Test split used once per run."),
        "recipes": {"timedrl": "timedrl-ucr", "supervised": "supervised-ucr", "recipe": RECIPE["recipe"]},
        "recipe": {**RECIPE, "overrides": overrides, "shares_timedrl_pretraining": shared,
                   "chosen_by": "benchmarks/timedrl_ucr_ablation.py (mean CV accuracy on the training splits)"},
        "reused": {"columns": args.reuse, "from": _relative(args.reuse_from) if args.reuse else None,
                   "rows_written_now": len(reused)},
        "minirocket": {k: entry["minirocket"][0][k] for k in ("estimator", "transform", "aeon_version")}
        | {"settings": "aeon defaults (10,000 kernels, RidgeClassifierCV)", "compile_seconds": compile_seconds},
        "epochs": args.epochs, "batch_size": base.data.batch_size,
        "model": {k: getattr(base.model, k) for k in ("patch_len", "stride", "d_model", "n_heads", "n_layers", "dropout")},
        "unequal_length": base.data.unequal_length, "data_root": args.data_root,
        "datasets": results,
        "mean_accuracy": {k: statistics.mean(r[k]["accuracy"]["mean"] for r in results.values()) for k in COLUMNS},
        "wall_seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": args.threads,
                    **load.summary()},
        "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "timedrl_ucr.json").write_text(json.dumps(report, indent=2))
    (out / "timedrl_ucr.md").write_text(markdown(report))
    print(markdown(report))
    return report


def _seconds(d: dict, key: str, field: str) -> float:
    return statistics.mean(r[field] for r in d[key]["runs"])


def markdown(r: dict) -> str:
    seeds = len(next(iter(r["datasets"].values()))["seeds"])
    m, rec, mean = r["machine"], r["recipe"], r["mean_accuracy"]
    reads = {"instance": "[CLS]", "tokens": "mean+max of the patch tokens",
             "all": "[CLS] + mean+max of the patch tokens"}[rec["features"]]
    reads += " + per-series level/scale" if rec["level_scale"] else ""
    pre = f"`{rec['recipe']}` (variant `{rec['variant']}`; per-set overrides in the JSON)"
    lines = [
        "# TimeDRL, an improved recipe, supervised and MiniRocket on UCR/UEA sets",
        "",
        f"{r['epochs']} epochs, batch {r['batch_size']}, {seeds} seeds, model {r['model']}; unequal lengths: "
        f"{r['unequal_length']}; data: {r['data_root'] or 'aeon shipped copies'}. {m['threads']} thread(s), torch "
        f"{m['torch']}, aeon {r['minirocket']['aeon_version']}, {r['date']}; load average mean "
        f"{m['load_avg_1min_mean']} / max {m['load_avg_1min_max']} on {m['cpus']} CPUs (above {m['cpus']}: contended). "
        f"Total {r['wall_seconds'] / 60:.1f} min wall (runs cached in --work by an earlier invocation are not re-timed).",
        "",
    ]
    if r["reused"]["columns"]:
        runs = [run for d in r["datasets"].values() for k in r["reused"]["columns"] for run in d[k]["runs"]]
        sources = sorted({run["reused_from"] for run in runs if "reused_from" in run})
        lines += [f"Columns {', '.join(r['reused']['columns'])}: per-run rows reused from {', '.join(sources)} (same "
                  "recipes, seeds, epochs and code path; CPU runs are deterministic: this session's seed-0 TimeDRL "
                  "runs in the ablation reproduce them), not run again; their seconds were measured then, under "
                  "another load, and are not comparable with this run's.", ""]
    lines += [
        "Test accuracy, mean ± std over seeds (per-seed values in the JSON). **TimeDRL**: linear probe on frozen "
        "[CLS], C by cross-validation on the training split. **Recipe**: TimeDRL pretrained as " + pre + ", the probe "
        f"reads {reads} (`invlab evaluate RUN --protocol classify --features {rec['features']}"
        + (" --level-scale" if rec["level_scale"] else "") + "`), chosen on training-split cross-validation by "
        "`timedrl_ucr_ablation.py` and applied unchanged to every set. **Untrained**: the recipe's encoder at "
        "initialisation under the recipe's probe. **Supervised**: the same encoder trained end to end, last epoch. "
        f"**MiniRocket**: aeon's `{r['minirocket']['estimator'].rsplit('.', 1)[-1]}` (its MiniRocket transform handles "
        "multivariate sets), default settings, kernels drawn with the seed. Seconds: mean per run, one thread; "
        f"MiniRocket fit + predict (numba compilation, {r['minirocket']['compile_seconds']:.0f} s once, excluded); "
        "TimeDRL pretraining.",
        "",
        "| data set | MiniRocket | untrained | recipe | TimeDRL ([CLS]) | supervised | MiniRocket s | recipe s | TimeDRL s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, d in r["datasets"].items():
        cells = " | ".join(f"{d[k]['accuracy']['mean']:.3f} ± {d[k]['accuracy']['std']:.3f}" for k in COLUMNS)
        mr = _seconds(d, "minirocket", "fit_seconds") + _seconds(d, "minirocket", "predict_seconds")
        lines.append(f"| {name} | {cells} | {mr:.1f} | {_seconds(d, 'recipe', 'train_seconds'):.0f} | "
                     f"{_seconds(d, 'timedrl', 'train_seconds'):.0f} |")
    lines.append("| **mean** | " + " | ".join(f"**{mean[k]:.3f}**" for k in COLUMNS) + " | | | |")
    sets = r["datasets"].values()
    wins_sup = sum(d["recipe"]["accuracy"]["mean"] > d["supervised"]["accuracy"]["mean"] for d in sets)
    wins_mr = sum(d["recipe"]["accuracy"]["mean"] >= d["minirocket"]["accuracy"]["mean"] for d in sets)
    gap = mean["minirocket"] - mean["recipe"]
    worst = max(r["datasets"], key=lambda n: r["datasets"][n]["minirocket"]["accuracy"]["mean"]
                - r["datasets"][n]["recipe"]["accuracy"]["mean"])
    worst_gap = (r["datasets"][worst]["minirocket"]["accuracy"]["mean"]
                 - r["datasets"][worst]["recipe"]["accuracy"]["mean"])
    lines += [
        "",
        "Reading (computed from the numbers above):",
        "",
        f"- The recipe scores {mean['recipe']:.3f} on the mean against {mean['timedrl']:.3f} for TimeDRL's [CLS] probe "
        f"({mean['recipe'] - mean['timedrl']:+.3f}) and {mean['supervised']:.3f} for the supervised baseline "
        f"({mean['recipe'] - mean['supervised']:+.3f}; it beats it on {wins_sup} of {len(r['datasets'])} sets). Goal "
        f"'beat supervised on the mean': {'met' if mean['recipe'] > mean['supervised'] else 'NOT met'}.",
        f"- MiniRocket averages {mean['minirocket']:.3f}; the recipe is {gap:.3f} below it (goal: within 0.05 — "
        f"{'met' if gap <= 0.05 else 'NOT met'}), at least as good on {wins_mr} of {len(r['datasets'])} sets; the "
        f"largest gap is {worst} ({worst_gap:+.3f}).",
        f"- Pretraining adds {mean['recipe'] - mean['untrained']:+.3f} over the untrained encoder under the same probe "
        f"({mean['untrained']:.3f}).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
