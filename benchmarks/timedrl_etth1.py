"""TimeDRL on ETTh1 (multivariate), all five horizons from ONE pretraining run, through the
real `invlab` path, with model selection on the validation split only.

1. ``invlab pretrain --recipe timedrl-etth1`` (input 512, patches 16/16, d_model 128, 2
   heads, 1 layer, dropout 0.2, lambda 0.5); the encoder is snapshotted before training
   and after every epoch.
2. ``invlab evaluate RUN --protocol forecast``: for every evaluated snapshot, each window is
   encoded once by the frozen encoder and a linear head per horizon is fitted on the
   training windows (ridge, the de-normalised MSE); for each horizon the (snapshot,
   penalty) with the lowest **validation** MSE is kept and scored once on test.

Reported next to: TimeDRL's published numbers and TS2Vec's (METHODS.md; TimeDRL's were
picked as the best *test* score over epochs), and the issue's measurements of the
official TimeDRL code (best on test as it reports, and selected on validation).

    python benchmarks/timedrl_etth1.py [--data ../shared/data/ETTh1.csv] [--epochs 10] [--snapshots 1 2 ...]

Writes benchmarks/results/timedrl_etth1.json and .md.
"""

from __future__ import annotations

import os

# the cores are shared with other jobs: idle OpenMP threads must sleep, not spin (before torch loads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from invlab.runs.config import load_recipe
from invlab.runs.evaluate_run import evaluate
from invlab.runs.pretrain_run import pretrain
from invlab.runtime import configure_cpu_allocator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_monitor import LoadMonitor  # noqa: E402

HERE = Path(__file__).resolve().parent
HORIZONS = [24, 48, 168, 336, 720]
PUBLISHED_TIMEDRL = {24: (0.327, 0.378), 48: (0.353, 0.392), 168: (0.411, 0.427), 336: (0.437, 0.446), 720: (0.446, 0.461)}
PUBLISHED_TS2VEC_MSE = {24: 0.599, 48: 0.629, 168: 0.755, 336: 0.907, 720: 1.048}
# issue 5: the official TimeDRL code, its tuned ETTh1 configuration, measured on this machine kind
OFFICIAL_BEST_ON_TEST = {24: (0.319, 0.370), 168: (0.411, 0.429), 720: (0.466, 0.472)}
OFFICIAL_SELECTED_ON_VAL = {24: (0.324, 0.375), 168: (0.429, 0.439), 720: (0.503, 0.497)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "ETTh1.csv"))
    p.add_argument("--epochs", type=int, default=None, help="pretraining epochs (default: the recipe's)")
    p.add_argument("--snapshots", nargs="+", type=int, default=None,
                   help="epochs whose snapshots are candidates (default: every epoch)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--override", nargs="*", default=[], help="extra recipe overrides key=value")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--work", default=None, help="run folder (default: a temporary folder)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    configure_cpu_allocator()
    overrides = [f"data.root={args.data}", *args.override]
    if args.epochs is not None:
        overrides.append(f"trainer.max_epochs={args.epochs}")
    cfg = load_recipe("timedrl-etth1", overrides)
    run = Path(args.work or tempfile.mkdtemp(prefix="invlab-etth1-")) / "run"
    with LoadMonitor() as load:
        t0, c0 = time.perf_counter(), time.process_time()
        summary = pretrain(cfg, run, progress=False)
        pre_wall, pre_cpu = time.perf_counter() - t0, time.process_time() - c0
        t1, c1 = time.perf_counter(), time.process_time()
        result = evaluate(run, "forecast", horizons=HORIZONS, snapshots=args.snapshots or "all", progress=False)
        eval_wall, eval_cpu = time.perf_counter() - t1, time.process_time() - c1
    rows = {}
    for h in HORIZONS:
        r = result["horizons"][str(h)]
        rows[str(h)] = {
            "mse": r["test_mse"], "mae": r["test_mae"], "selection_split": "validation",
            "selected_snapshot": r["selected"], "ridge_alpha_relative": r["alpha"], "val_mse": r["val_mse"],
            "published_timedrl": dict(zip(("mse", "mae"), PUBLISHED_TIMEDRL[h])),
            "published_ts2vec_mse": PUBLISHED_TS2VEC_MSE[h],
            "official_code_best_on_test": dict(zip(("mse", "mae"), OFFICIAL_BEST_ON_TEST[h])) if h in OFFICIAL_BEST_ON_TEST else None,
            "official_code_selected_on_val": dict(zip(("mse", "mae"), OFFICIAL_SELECTED_ON_VAL[h])) if h in OFFICIAL_SELECTED_ON_VAL else None,
            "untrained_encoder": result.get("untrained_encoder", {}).get(str(h)),
            "train_windows": r["train_windows"], "val_windows": r["val_windows"], "test_windows": r["test_windows"],
        }
    goals = {
        "no_worse_than_official_val_selected": {
            str(h): rows[str(h)]["mse"] <= OFFICIAL_SELECTED_ON_VAL[h][0] for h in OFFICIAL_SELECTED_ON_VAL},
        "within_10pct_of_published": {str(h): rows[str(h)]["mse"] <= 1.1 * PUBLISHED_TIMEDRL[h][0] for h in HORIZONS},
        "beats_published": {str(h): rows[str(h)]["mse"] < PUBLISHED_TIMEDRL[h][0] for h in HORIZONS},
        "total_under_40_min": (pre_wall + eval_wall) < 40 * 60,
    }
    report = {
        "benchmark": "timedrl_etth1",
        "data": "ETTh1 multivariate (7 variables), 12/4/4-month split, scaler fitted on train, MSE/MAE on the standardised scale",
        "protocol": ("one pretraining run; frozen encoder; per horizon a ridge linear head (TimeDRL's Flatten -> Linear "
                     "per channel, de-normalised, bias unpenalised) fitted on the training windows; (snapshot, penalty) "
                     "selected by validation MSE; test scored once"),
        "selection_split": "validation",
        "published_note": "TimeDRL's published numbers (and the official code's 'best on test') pick the best test score over epochs.",
        "recipe": "timedrl-etth1", "overrides": overrides, "seed": cfg.seed,
        "config": {"epochs": cfg.trainer.max_epochs, "batch_size": cfg.data.batch_size, "window_stride": cfg.data.window_stride,
                   "optim": {"name": cfg.optim.name, "lr": cfg.optim.lr, "weight_decay": cfg.optim.weight_decay,
                             "schedule": cfg.optim.schedule, "warmup_epochs": cfg.optim.warmup_epochs},
                   "model": {k: getattr(cfg.model, k) for k in ("patch_len", "stride", "d_model", "n_heads", "n_layers",
                                                                  "dropout", "token_embedding", "positional")},
                   "params": {k: getattr(cfg.params, k) for k in ("contrastive_weight", "predictive_weight",
                                                                   "stop_gradient", "instance", "predictive_target")}},
        "horizons": rows,
        "avg": {"mse": result["avg"]["mse"], "mae": result["avg"]["mae"],
                "published_timedrl": {"mse": 0.395, "mae": 0.421}},
        "candidates_val_mse": result["candidates_val_mse"],
        "goals": goals,
        "timing": {
            "pretrain_wall_s": pre_wall, "pretrain_cpu_s": pre_cpu, "train_seconds": summary["train_seconds"],
            "train_samples_per_s": summary["train_samples_per_s"], "evaluate_wall_s": eval_wall, "evaluate_cpu_s": eval_cpu,
            "total_wall_s": pre_wall + eval_wall, "total_cpu_s": pre_cpu + eval_cpu,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        },
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "torch": torch.__version__, "threads": args.threads, **load.summary()},
        "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    previous = out / "timedrl_etth1.json"
    runs = _seed_runs(json.loads(previous.read_text())) if previous.is_file() else []
    runs = [r for r in runs if r["seed"] != report["seed"]] + _seed_runs(report)
    report["runs"] = sorted(runs, key=lambda r: r["seed"])
    report["across_seeds"] = {
        h: {k: {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0, "n": len(v)}
            for k, v in (("mse", [r["mse"][h] for r in runs]), ("mae", [r["mae"][h] for r in runs]))}
        for h in map(str, HORIZONS)
    }
    (out / "timedrl_etth1.json").write_text(json.dumps(report, indent=2))
    (out / "timedrl_etth1.md").write_text(markdown(report))
    print(markdown(report))
    return report


def _seed_runs(report: dict) -> list[dict]:
    """The per-seed summary rows a results file holds (files from before seeds were kept
    hold one run)."""
    if "runs" in report:
        return report["runs"]
    t, m = report["timing"], report["machine"]
    return [{"seed": report["seed"], "threads": m["threads"], "total_wall_s": t["total_wall_s"],
             "total_cpu_s": t["total_cpu_s"], "load_avg_1min_mean": m.get("load_avg_1min_mean"),
             "mse": {h: v["mse"] for h, v in report["horizons"].items()},
             "mae": {h: v["mae"] for h, v in report["horizons"].items()}}]


def _pair(d: dict | None) -> str:
    return f"{d['mse']:.3f} / {d['mae']:.3f}" if d else ""


def markdown(r: dict) -> str:
    t, m, c = r["timing"], r["machine"], r["config"]
    lines = [
        "# TimeDRL on ETTh1 (multivariate), five horizons from one pretraining run",
        "",
        f"{c['epochs']} pretraining epochs (windows every {c['window_stride']} step(s), batch {c['batch_size']}, "
        f"{c['optim']['name']} lr {c['optim']['lr']:g}, wd {c['optim']['weight_decay']:g}, {c['optim']['schedule']}), "
        f"model {c['model']}, seed {r['seed']}. {m['threads']} threads, torch {m['torch']}, {r['date']}.",
        "",
        "Test MSE / MAE on the standardised scale. **invlab: every choice (snapshot, ridge penalty) made on the "
        "validation split.** Published TimeDRL numbers and the official code's \"best on test\" were picked on the "
        "test split; the official code's validation-selected figures are the issue's measurements.",
        "",
        "| horizon | invlab (selected on val) | selected | official code, selected on val | official code, best on test "
        "| TimeDRL published (best on test) | TS2Vec published MSE | untrained encoder, same protocol |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for h, row in r["horizons"].items():
        lines.append(
            f"| {h} | **{row['mse']:.3f} / {row['mae']:.3f}** | {row['selected_snapshot']} | "
            f"{_pair(row['official_code_selected_on_val'])} | {_pair(row['official_code_best_on_test'])} | "
            f"{_pair(row['published_timedrl'])} | {row['published_ts2vec_mse']:.3f} | "
            f"{_pair({'mse': row['untrained_encoder']['test_mse'], 'mae': row['untrained_encoder']['test_mae']}) if row['untrained_encoder'] else ''} |"
        )
    lines.append(f"| avg | **{r['avg']['mse']:.3f} / {r['avg']['mae']:.3f}** | | | | 0.395 / 0.421 | | |")
    g = r["goals"]
    lines += [
        "",
        f"Goals: no worse than the official code selected on validation: {g['no_worse_than_official_val_selected']}; "
        f"within 10% of published: {g['within_10pct_of_published']}; total under 40 min: {g['total_under_40_min']}.",
        "",
        f"Time: pretraining {t['pretrain_wall_s'] / 60:.1f} min wall ({t['pretrain_cpu_s'] / 60:.1f} min CPU, "
        f"{t['train_samples_per_s']:.0f} windows/s), evaluation of {len(r['candidates_val_mse'])} snapshots + the untrained "
        f"encoder {t['evaluate_wall_s'] / 60:.1f} min wall ({t['evaluate_cpu_s'] / 60:.1f} min CPU); total "
        f"{t['total_wall_s'] / 60:.1f} min; peak RSS {t['peak_rss_mb']:.0f} MB. Load average mean "
        f"{m['load_avg_1min_mean']} (max {m['load_avg_1min_max']}) on {m['cpus']} CPUs: above {m['cpus']} the cores "
        "were shared with other processes and wall times are inflated.",
    ]
    if len(r.get("runs", [])) > 1:
        lines += ["", f"Across seeds {', '.join(str(x['seed']) for x in r['runs'])} (test MSE / MAE, mean ± std; "
                  "each seed its own pretraining run and validation selection):", "",
                  "| horizon | " + " | ".join(f"seed {x['seed']}" for x in r["runs"]) + " | mean ± std |",
                  "|---|" + "---|" * len(r["runs"]) + "---|"]
        for h, a in r["across_seeds"].items():
            lines.append(f"| {h} | " + " | ".join(f"{x['mse'][h]:.3f} / {x['mae'][h]:.3f}" for x in r["runs"])
                         + f" | {a['mse']['mean']:.3f} ± {a['mse']['std']:.3f} / {a['mae']['mean']:.3f} ± {a['mae']['std']:.3f} |")
        lines.append("")
        lines.append("Time per run: " + ", ".join(
            f"seed {x['seed']} {x['total_wall_s'] / 60:.1f} min wall on {x['threads']} thread(s) (load {x['load_avg_1min_mean']})"
            for x in r["runs"]) + ".")
    gains = {h: v["untrained_encoder"]["test_mse"] - v["mse"] for h, v in r["horizons"].items()}
    lines += [
        "",
        "Reading: the untrained encoder under the same protocol (ridge on every frozen patch token, penalty picked on "
        "validation) is already strong on ETTh1, so the pretraining's own contribution is the gap to that column: "
        + ", ".join(f"h{h} {g:+.3f}" for h, g in gains.items())
        + " MSE. Much of the margin over the published numbers at short horizons comes from the evaluation protocol, "
        "not from pretraining.",
    ]
    if t["total_wall_s"] > 40 * 60:
        lines.append(f"The time goal (all five horizons from one pretraining run in under 40 min on 2 cores) is "
                     f"**not met** in this run: {t['total_wall_s'] / 60:.1f} min with {m.get('threads', '?')} thread(s).")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
