"""TimeDRL, TS2Vec, a classification recipe chosen between them, a supervised baseline and
aeon's MiniRocket on UCR/UEA classification sets (by default the eight aeon ships), through the
real `invlab` path, several seeds, the same splits.

For each data set and seed:

- ``timedrl``: pretrain ``timedrl-ucr`` (TimeDRL, channel-mixing patches) and evaluate
  ``classify`` (logistic-regression probe on the frozen [CLS] embeddings, C chosen by
  stratified cross-validation on the training split);
- ``timedrl_recipe``: the TimeDRL recipe chosen by ``timedrl_ucr_ablation.py`` on training-split
  cross-validation only (``RECIPE`` below), applied unchanged to every set;
- ``ts2vec``: pretrain ``ts2vec-ucr`` (TS2Vec, the paper's iteration rule) and probe the series
  representation (max over time); ``ts2vec_tokens``: the same runs, probe on mean+max over time;
- ``recipe``: whichever of the candidates (``CANDIDATES``) has the highest mean probe CV accuracy
  on the training splits, the same candidate on every set (test accuracy plays no part);
- ``untrained`` (and ``<candidate>_untrained``): the encoder at initialisation
  (``snapshots/epoch000``) under the same probe: what pretraining adds;
- ``supervised``: train ``supervised-ucr`` (the same encoder + a linear classifier on [CLS],
  cross-entropy, the same epochs, no selection) and report its own classifier;
- ``minirocket``: aeon's ``MiniRocketClassifier`` (default 10,000 kernels, its multivariate
  transform where the set has several channels; ``invlab.evaluation.baselines``) on the same
  arrays, its kernels drawn with the seed.

Test accuracy is computed once per run; nothing is selected on it.

    python benchmarks/timedrl_ucr.py [--seeds 0 1 2] [--datasets GunPoint ...] [--data-root DIR]
        [--epochs 100] [--work DIR] [--keep-runs] [--no-report]
        [--reuse timedrl supervised minirocket timedrl_recipe]

``--data-root DIR`` reads ``DIR/<name>_TRAIN.ts`` / ``_TEST.ts`` (or ``DIR/<name>/...``; also
``.arff``, ``.tsv``, ``.txt``), e.g. the unpacked UCR/UEA archives; ``--datasets`` takes any
list of set names found there. With ``--work DIR`` every finished run is kept as
``DIR/<recipe>-<set>-<seed>.json`` and skipped when the command is run again (resume after an
interruption, or split the sets over several processes and assemble the report with a final
run over all of them; ``--no-report`` for the partial processes); a finished but unevaluated
run folder with the same configuration is evaluated instead of trained again. ``--reuse``
seeds that cache with per-run rows of an earlier results JSON for columns whose code did not
change (CPU runs are deterministic).

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
from invlab.methods.ts2vec import epochs_for_iterations, ts2vec_iterations
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

# TS2Vec as the paper runs it on UCR/UEA (batch 8, 200 iterations, 600 above 100,000 training
# values, turned into epochs per set), probed on its series representation (max over time).
# Training windows are capped at 512 steps (the paper's max_train_length mechanism; its default
# 3000) to fit one CPU core: of the eight shipped sets only ACSF1 (1460 steps) is affected.
TS2VEC = {"recipe": "ts2vec-ucr", "features": "instance", "level_scale": False, "max_train_length": 512}

# The `recipe` column is whichever candidate has the highest mean probe cross-validation
# accuracy on the training splits (mean over sets of the mean over seeds), the same candidate
# on every set; test accuracy plays no part. ts2vec_tokens: the same TS2Vec runs, the probe
# reading mean and max over time instead of the paper's max alone.
CANDIDATES = ("timedrl_recipe", "ts2vec", "ts2vec_tokens", "ts2vec_svm")
TS2VEC_TOKENS_PROBE = {"features": "tokens", "level_scale": False}
# ts2vec_svm: the same runs, the series representation probed by an RBF-kernel SVM, the
# classifier of TS2Vec's paper (C by cross-validation on the training split, as every probe here)
TS2VEC_SVM_PROBE = {"features": "instance", "level_scale": False, "classifier": "svm"}


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


def ts2vec_epochs(dataset: str, root: str | None) -> int:
    """Epochs giving TS2Vec's iterations (200, or 600 above 100,000 training values) at its batch size."""
    cfg = load_recipe("ts2vec-ucr", [f"data.dataset={dataset}", *_root(root)])
    train = load_labelled_data(cfg)[0]
    return epochs_for_iterations(ts2vec_iterations(int(train.x.size)), len(train), cfg.data.batch_size)


def _probe_suffix(probe: dict) -> str:
    svm = "+svm" if probe.get("classifier", "logistic") == "svm" else ""
    return f".{probe['features']}{'+ls' if probe['level_scale'] else ''}{svm}"


def reuse_rows(earlier: Path, columns: list[str], work: Path, datasets: list[str], seeds: list[int],
               epochs: int) -> list[str]:
    """Seed the ``work`` cache with the per-run rows of ``columns`` (timedrl, supervised,
    minirocket, timedrl_recipe) from an earlier results JSON of the same recipes, seeds and
    epochs: what an earlier invocation with this ``--work`` would have left. ``timedrl_recipe``
    takes the earlier file's ``recipe`` and ``untrained`` rows when they came from the TimeDRL
    recipe of ``RECIPE``. Returns the cache files written."""
    old = json.loads(earlier.read_text())
    if old.get("epochs") != epochs:
        raise SystemExit(f"{earlier}: {old.get('epochs')} epochs, this run asks for {epochs}; cannot reuse its rows")
    if "timedrl_recipe" in columns:
        was = old.get("recipe", {})
        if "timedrl_recipe" in old.get("datasets", {}).get(datasets[0], {}):
            pass  # a file written by this version: the candidate's own rows
        elif any(was.get(k) != RECIPE[k] for k in RECIPE):
            raise SystemExit(f"{earlier}: its recipe rows come from {was}, not {RECIPE}; cannot reuse them")
    source = f"{earlier.name} ({old.get('date')})"
    written = []
    for name in datasets:
        d = old["datasets"].get(name)
        for column in columns:
            for seed in seeds:
                if d is None or seed not in d["seeds"]:
                    continue
                i = d["seeds"].index(seed)
                if column == "timedrl_recipe":
                    done = work / f"recipe-{name}-{seed}{_probe_suffix(RECIPE)}.json"
                    own = "timedrl_recipe" in d
                    rec = dict(d["timedrl_recipe" if own else "recipe"]["runs"][i])
                    untrained = dict(d["timedrl_recipe_untrained" if own else "untrained"]["runs"][i])
                    row = {"train_seconds": rec.pop("train_seconds"), "recipe": rec, "untrained": untrained}
                else:
                    tag = {"minirocket": "minirocket"}.get(column) or old["recipes"][column]
                    done = work / f"{tag}-{name}-{seed}.json"
                    row = dict(d[column]["runs"][i])
                if not done.is_file():
                    row["reused_from"] = row.get("reused_from", source)
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
    probed = "" if probe is None else _probe_suffix(probe)
    done = work / f"{out.name}{probed}.json"  # another probe on a kept run is probed again
    if done.is_file():  # finished in an earlier (interrupted or parallel) invocation with the same --work
        return json.loads(done.read_text())
    c0, t0 = time.process_time(), time.perf_counter()
    _pretrained(cfg, out)
    default_probe = (probe is not None and probe["features"] == "instance" and not probe["level_scale"]
                     and probe.get("classifier", "logistic") == "logistic")
    result = evaluate(out, "classify", progress=False, include_init=default_probe)
    summary = json.loads((out / "summary.json").read_text())
    row = {"accuracy": result["accuracy"], "macro_f1": result["macro_f1"], "train_seconds": summary["train_seconds"],
           "wall_seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
    if recipe == "supervised-ucr":
        row["probe_on_cls_accuracy"] = result["probe"]["accuracy"]  # for reference: a probe on its [CLS]
    else:
        row["probe_C"] = result["probe"]["C"]
    if probe is not None:
        rich = result if default_probe else evaluate(out, "classify", progress=False, include_init=True, **probe)
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


COLUMNS = ("minirocket", "untrained", "recipe", "timedrl", "supervised", "ts2vec", "ts2vec_untrained",
           "ts2vec_tokens", "ts2vec_tokens_untrained", "ts2vec_svm", "ts2vec_svm_untrained", "timedrl_recipe",
           "timedrl_recipe_untrained")


def _block(rows: list[dict]) -> dict:
    return {"accuracy": _stats([r["accuracy"] for r in rows]), "macro_f1": _stats([r["macro_f1"] for r in rows]),
            "runs": rows}


def choose_recipe(cv: dict[str, dict[str, list[float]]]) -> tuple[str, dict[str, float]]:
    """The candidate with the highest mean (over sets) of its mean (over seeds) probe CV
    accuracy on the training splits: ``cv[candidate][set] = [cv accuracy per seed]``."""
    means = {c: statistics.mean(statistics.mean(v) for v in per_set.values()) for c, per_set in cv.items()}
    return max(means, key=lambda c: (means[c], -CANDIDATES.index(c))), means


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=DATASETS, help="UCR/UEA set names (default: aeon's shipped eight)")
    p.add_argument("--data-root", default=None,
                   help="folder of <name>_TRAIN/_TEST files, e.g. the unpacked archives (default: aeon's shipped sets)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=100, help="TimeDRL and supervised epochs (TS2Vec: its iteration rule)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--work", default=None, help="scratch folder for the runs (default: a temporary folder)")
    p.add_argument("--reuse", nargs="+", default=[], choices=["timedrl", "supervised", "minirocket", "timedrl_recipe"],
                   help="take these columns' per-run rows from --reuse-from instead of running them again "
                        "(same recipes, seeds, epochs; runs are deterministic on CPU)")
    p.add_argument("--reuse-from", default=str(HERE / "results" / "timedrl_ucr.json"))
    p.add_argument("--keep-runs", action="store_true",
                   help="keep the TimeDRL and recipe runs' encoders in --work (delete a set's .json to probe again)")
    p.add_argument("--no-report", action="store_true",
                   help="run and cache the runs only (split the sets over processes; a last run writes the report)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    configure_cpu_allocator()
    work = Path(args.work or tempfile.mkdtemp(prefix="invlab-ucr-"))
    work.mkdir(parents=True, exist_ok=True)
    probe = {"features": RECIPE["features"], "level_scale": RECIPE["level_scale"]}
    ts2vec_probe = {"features": TS2VEC["features"], "level_scale": TS2VEC["level_scale"]}
    lengths = {name: series_length(name, args.data_root) for name in args.datasets}
    overrides = {name: variant_overrides(RECIPE["variant"], lengths[name]) for name in args.datasets}
    ts2vec_epochs_per_set = {name: ts2vec_epochs(name, args.data_root) for name in args.datasets}
    ts2vec_overrides = [f"params.max_train_length={TS2VEC['max_train_length']}"]
    shared = RECIPE["recipe"] == "timedrl-ucr" and RECIPE["variant"] == "base"  # one pretraining serves both rows
    if args.reuse and shared and "timedrl" in args.reuse:
        raise SystemExit("the recipe shares TimeDRL's pretraining: its runs are needed, --reuse timedrl is not possible")
    reused = reuse_rows(Path(args.reuse_from), args.reuse, work, args.datasets, args.seeds, args.epochs) if args.reuse else []
    results: dict[str, dict] = {}
    entries: dict[str, dict[str, list]] = {}
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
                ts2vec = run_one(TS2VEC["recipe"], name, seed, ts2vec_epochs_per_set[name], work, args.data_root,
                                 tuple(ts2vec_overrides), probe=ts2vec_probe, tag="ts2vec", keep=args.keep_runs)
                entry["timedrl"].append(timedrl)
                entry["timedrl_recipe"].append({**recipe["recipe"], "train_seconds": recipe["train_seconds"]})
                entry["timedrl_recipe_untrained"].append(recipe["untrained"])
                entry["ts2vec"].append({**ts2vec["recipe"], "train_seconds": ts2vec["train_seconds"]})
                entry["ts2vec_untrained"].append(ts2vec["untrained"])
                # the same runs probed again (kept with --keep-runs; otherwise trained again, deterministically)
                tokens = run_one(TS2VEC["recipe"], name, seed, ts2vec_epochs_per_set[name], work, args.data_root,
                                 tuple(ts2vec_overrides), probe=TS2VEC_TOKENS_PROBE, tag="ts2vec", keep=args.keep_runs)
                entry["ts2vec_tokens"].append({**tokens["recipe"], "train_seconds": tokens["train_seconds"]})
                entry["ts2vec_tokens_untrained"].append(tokens["untrained"])
                svm = run_one(TS2VEC["recipe"], name, seed, ts2vec_epochs_per_set[name], work, args.data_root,
                              tuple(ts2vec_overrides), probe=TS2VEC_SVM_PROBE, tag="ts2vec", keep=args.keep_runs)
                entry["ts2vec_svm"].append({**svm["recipe"], "train_seconds": svm["train_seconds"]})
                entry["ts2vec_svm_untrained"].append(svm["untrained"])
                entry["supervised"].append(run_one("supervised-ucr", name, seed, args.epochs, work, args.data_root))
                print(f"{name} seed {seed}: " + ", ".join(
                    f"{k} {entry[k][-1]['accuracy']:.4f}" for k in COLUMNS if entry[k]), flush=True)
            entries[name] = entry
    if args.no_report:
        return {}
    cv = {c: {name: [r["cv_accuracy"] for r in entries[name][c]] for name in args.datasets} for c in CANDIDATES}
    chosen, mean_cv = choose_recipe(cv)
    for name, entry in entries.items():
        entry["recipe"], entry["untrained"] = entry[chosen], entry[f"{chosen}_untrained"]
        results[name] = {"seeds": args.seeds}
        results[name].update({f"{k}_accuracy": [r["accuracy"] for r in entry[k]] for k in COLUMNS})
        results[name].update({k: _block(entry[k]) for k in COLUMNS})
    base = load_recipe("timedrl-ucr")
    report = {
        "benchmark": "timedrl_ucr",
        "protocol": ("TimeDRL: pretrain the recipe's epochs, then a logistic-regression probe on frozen [CLS] "
                     "embeddings, C by stratified k-fold CV on the training split. Candidates for the recipe: "
                     "timedrl_recipe (TimeDRL with the probe options and pretraining overrides chosen by "
                     "timedrl_ucr_ablation.py), ts2vec (TS2Vec, the paper's iteration rule, logistic probe on the "
                     "series representation, max over time), ts2vec_tokens (mean+max over time) and ts2vec_svm "
                     "(RBF-SVM probe), the last two on the same TS2Vec runs; the recipe is the candidate with the "
                     "highest mean training-split CV accuracy, "
                     "the same on every set. Untrained: the recipe's encoder at initialisation, the recipe's probe. "
                     "Supervised: the same encoder as TimeDRL + Dropout/Linear on [CLS], cross-entropy, same epochs, "
                     "last epoch. MiniRocket: aeon's MiniRocketClassifier, default settings, kernels drawn with the "
                     "seed. Test split used once per run."),
        "recipes": {"timedrl": "timedrl-ucr", "supervised": "supervised-ucr", "recipe": {
            "timedrl_recipe": RECIPE["recipe"], "ts2vec": TS2VEC["recipe"], "ts2vec_tokens": TS2VEC["recipe"],
            "ts2vec_svm": TS2VEC["recipe"]}[chosen],
            "timedrl_recipe": RECIPE["recipe"], "ts2vec": TS2VEC["recipe"]},
        "recipe": {"chosen": chosen, "mean_cv_accuracy": mean_cv,
                   "chosen_by": "the highest mean (over sets, of the mean over seeds) probe CV accuracy on the "
                                "training splits among " + ", ".join(CANDIDATES)},
        "candidates": {
            "timedrl_recipe": {**RECIPE, "overrides": overrides, "shares_timedrl_pretraining": shared,
                               "chosen_by": "benchmarks/timedrl_ucr_ablation.py (mean CV accuracy on the training splits)"},
            "ts2vec": {**TS2VEC, "epochs": ts2vec_epochs_per_set, "overrides": ts2vec_overrides,
                       "iterations": "200, or 600 when the training split holds > 100,000 values (the paper's rule); "
                                     "epochs = ceil(iterations / (training series // batch 8))"},
            "ts2vec_tokens": {"runs": "the ts2vec candidate's runs", **TS2VEC_TOKENS_PROBE},
            "ts2vec_svm": {"runs": "the ts2vec candidate's runs", **TS2VEC_SVM_PROBE},
        },
        "reused": {"columns": args.reuse, "from": _relative(args.reuse_from) if args.reuse else None,
                   "rows_written_now": len(reused)},
        "minirocket": {k: entries[args.datasets[0]]["minirocket"][0][k] for k in ("estimator", "transform", "aeon_version")}
        | {"settings": "aeon defaults (10,000 kernels, RidgeClassifierCV)", "compile_seconds": compile_seconds},
        "epochs": args.epochs, "batch_size": base.data.batch_size,
        "model": {k: getattr(base.model, k) for k in ("patch_len", "stride", "d_model", "n_heads", "n_layers", "dropout")},
        "ts2vec_model": {k: getattr(load_recipe("ts2vec-ucr").model, k)
                         for k in ("hidden_dim", "output_dim", "depth", "kernel_size", "dropout")},
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


LABELS = {"minirocket": "MiniRocket", "recipe": "recipe", "untrained": "untrained", "ts2vec": "TS2Vec",
          "ts2vec_untrained": "TS2Vec untrained", "ts2vec_tokens": "TS2Vec mean+max",
          "ts2vec_tokens_untrained": "TS2Vec mean+max untrained", "ts2vec_svm": "TS2Vec SVM",
          "ts2vec_svm_untrained": "TS2Vec SVM untrained", "timedrl_recipe": "TimeDRL recipe",
          "timedrl_recipe_untrained": "TimeDRL recipe untrained", "timedrl": "TimeDRL ([CLS])",
          "supervised": "supervised"}
TABLE = ("minirocket", "recipe", "untrained", "ts2vec", "ts2vec_untrained", "ts2vec_tokens", "ts2vec_svm",
         "ts2vec_svm_untrained", "timedrl_recipe", "timedrl_recipe_untrained", "timedrl", "supervised")
CANDIDATE_NAMES = {"timedrl_recipe": "the TimeDRL recipe", "ts2vec": "TS2Vec (max over time)",
                   "ts2vec_tokens": "TS2Vec (mean+max over time)", "ts2vec_svm": "TS2Vec (RBF-SVM probe)"}


def markdown(r: dict) -> str:
    seeds = len(next(iter(r["datasets"].values()))["seeds"])
    m, mean, choice = r["machine"], r["mean_accuracy"], r["recipe"]
    tdr, tsv = r["candidates"]["timedrl_recipe"], r["candidates"]["ts2vec"]
    reads = {"instance": "[CLS]", "tokens": "mean+max of the patch tokens",
             "all": "[CLS] + mean+max of the patch tokens"}[tdr["features"]]
    reads += " + per-series level/scale" if tdr["level_scale"] else ""
    chosen = CANDIDATE_NAMES[choice["chosen"]]
    lines = [
        "# TimeDRL, TS2Vec, the chosen recipe, supervised and MiniRocket on UCR/UEA sets",
        "",
        f"TimeDRL and supervised: {r['epochs']} epochs, batch {r['batch_size']}, model {r['model']}. TS2Vec: model "
        f"{r['ts2vec_model']}, batch 8, the paper's iteration rule as epochs per set {tsv['epochs']}, training windows "
        f"of at most {tsv['max_train_length']} steps. {seeds} seeds; unequal lengths: {r['unequal_length']}; data: "
        f"{r['data_root'] or 'aeon shipped copies'}. {m['threads']} thread(s), torch {m['torch']}, aeon "
        f"{r['minirocket']['aeon_version']}, {r['date']}; load average mean {m['load_avg_1min_mean']} / max "
        f"{m['load_avg_1min_max']} on {m['cpus']} CPUs (above {m['cpus']}: contended). Total "
        f"{r['wall_seconds'] / 60:.1f} min wall (runs cached in --work by an earlier invocation are not re-timed).",
        "",
    ]
    if r["reused"]["columns"]:
        runs = [run for d in r["datasets"].values() for k in r["reused"]["columns"] for run in d[k]["runs"]]
        sources = sorted({run["reused_from"] for run in runs if "reused_from" in run})
        lines += [f"Columns {', '.join(r['reused']['columns'])}: per-run rows reused from {', '.join(sources)} (same "
                  "recipes, seeds, epochs and code path; CPU runs are deterministic), not run again; their seconds "
                  "were measured then, under another load, and are not comparable with this run's.", ""]
    lines += [
        "Test accuracy, mean ± std over seeds (per-seed values in the JSON). **Recipe**: the candidate with the "
        f"highest mean probe cross-validation accuracy on the training splits, the same on every set: {chosen} "
        "(mean CV accuracy " + ", ".join(f"{k} {v:.3f}" for k, v in choice["mean_cv_accuracy"].items())
        + "); **untrained**: its encoder at initialisation under its probe. **TS2Vec**: `ts2vec-ucr` (dilated "
        "convolutions, hierarchical contrastive loss over two overlapping crops, the weight average of all steps), "
        "linear probe on the series representation (maximum over time; `invlab evaluate RUN --protocol classify`); "
        "**TS2Vec mean+max**: the same runs, the probe reads mean and max over time (`--features tokens`); "
        "**TS2Vec SVM**: the same runs and representation, an RBF-kernel SVM as the probe (`--classifier svm`, "
        "the classifier of TS2Vec's paper; C from 1e-4..1e4 by the same cross-validation). "
        f"**TimeDRL recipe**: TimeDRL pretrained as `{tdr['recipe']}` (variant `{tdr['variant']}`), the probe reads "
        f"{reads} (`--features {tdr['features']}" + (" --level-scale" if tdr["level_scale"] else "") + "`), chosen by "
        "`timedrl_ucr_ablation.py` on training-split CV. **TimeDRL**: linear probe on frozen [CLS]. **Supervised**: "
        "TimeDRL's encoder trained end to end, last epoch. Every other probe: logistic regression, C by "
        f"cross-validation on the training split. **MiniRocket**: aeon's `{r['minirocket']['estimator'].rsplit('.', 1)[-1]}` (its "
        "MiniRocket transform handles multivariate sets), default settings, kernels drawn with the seed. Seconds: "
        "mean per run, one thread; MiniRocket fit + predict (numba compilation, "
        f"{r['minirocket']['compile_seconds']:.0f} s once, excluded); pretraining otherwise.",
        "",
        "| data set | " + " | ".join(LABELS[k] for k in TABLE) + " | MiniRocket s | TS2Vec s | TimeDRL recipe s |",
        "|---|" + "---|" * (len(TABLE) + 3),
    ]
    for name, d in r["datasets"].items():
        cells = " | ".join(f"{d[k]['accuracy']['mean']:.3f} ± {d[k]['accuracy']['std']:.3f}" for k in TABLE)
        mr = _seconds(d, "minirocket", "fit_seconds") + _seconds(d, "minirocket", "predict_seconds")
        lines.append(f"| {name} | {cells} | {mr:.1f} | {_seconds(d, 'ts2vec', 'train_seconds'):.0f} | "
                     f"{_seconds(d, 'timedrl_recipe', 'train_seconds'):.0f} |")
    lines.append("| **mean** | " + " | ".join(f"**{mean[k]:.3f}**" for k in TABLE) + " | | | |")
    sets = r["datasets"].values()
    n = len(r["datasets"])
    wins_sup = sum(d["recipe"]["accuracy"]["mean"] > d["supervised"]["accuracy"]["mean"] for d in sets)
    wins_mr = sum(d["recipe"]["accuracy"]["mean"] >= d["minirocket"]["accuracy"]["mean"] for d in sets)
    wins_tdr = sum(d["ts2vec"]["accuracy"]["mean"] > d["timedrl_recipe"]["accuracy"]["mean"] for d in sets)
    gap = mean["minirocket"] - mean["recipe"]
    gaps = {name: d["minirocket"]["accuracy"]["mean"] - d["recipe"]["accuracy"]["mean"]
            for name, d in r["datasets"].items()}
    worst = max(gaps, key=gaps.get)
    best_on_test = max(CANDIDATES, key=lambda c: mean[c])
    lines += [
        "",
        "Reading (computed from the numbers above):",
        "",
        f"- Chosen on the training splits: {chosen} (mean CV accuracy "
        f"{choice['mean_cv_accuracy'][choice['chosen']]:.3f} against "
        + ", ".join(f"{v:.3f} for {CANDIDATE_NAMES[k]}" for k, v in choice["mean_cv_accuracy"].items()
                    if k != choice["chosen"])
        + "). On test: " + ", ".join(f"{CANDIDATE_NAMES[c]} {mean[c]:.3f}" for c in CANDIDATES) + " ("
        + ("the chosen candidate is also the best on test" if best_on_test == choice["chosen"]
           else f"{CANDIDATE_NAMES[best_on_test]} would have been better on test")
        + f"); TS2Vec beats the TimeDRL recipe on {wins_tdr} of {n} sets."
        + ("" if best_on_test == choice["chosen"] else
           f" The best candidate on test would be {mean['minirocket'] - mean[best_on_test]:.3f} below MiniRocket; it "
           "is reported, not selected (selection looks at the training splits only)."),
        f"- The recipe scores {mean['recipe']:.3f} on the mean against {mean['timedrl']:.3f} for TimeDRL's [CLS] probe "
        f"({mean['recipe'] - mean['timedrl']:+.3f}) and {mean['supervised']:.3f} for the supervised baseline "
        f"({mean['recipe'] - mean['supervised']:+.3f}; it beats it on {wins_sup} of {n} sets). Goal "
        f"'beat supervised on the mean': {'met' if mean['recipe'] > mean['supervised'] else 'NOT met'}.",
        f"- MiniRocket averages {mean['minirocket']:.3f}; the recipe is {gap:.3f} below it (goal: within 0.05 — "
        f"{'met' if gap <= 0.05 else 'NOT met'}), at least as good on {wins_mr} of {n} sets; the largest gap is "
        f"{worst} ({gaps[worst]:+.3f}).",
        "- Per set, the chosen recipe against the TimeDRL recipe: " + ", ".join(
            f"{name} {d['recipe']['accuracy']['mean'] - d['timedrl_recipe']['accuracy']['mean']:+.3f}"
            for name, d in r["datasets"].items()) + "; against MiniRocket: " + ", ".join(
            f"{name} {-gaps[name]:+.3f}" for name in r["datasets"]) + ".",
        f"- Pretraining adds {mean['recipe'] - mean['untrained']:+.3f} over the recipe's untrained encoder under the "
        f"same probe ({mean['untrained']:.3f}); TS2Vec's pretraining adds {mean['ts2vec'] - mean['ts2vec_untrained']:+.3f} "
        f"({mean['ts2vec_untrained']:.3f} untrained), the TimeDRL recipe's "
        f"{mean['timedrl_recipe'] - mean['timedrl_recipe_untrained']:+.3f}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
