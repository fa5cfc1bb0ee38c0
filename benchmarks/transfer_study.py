"""Evidence for issue 3: the two key results of Speicher et al. (TMLR 2024) at CPU scale.

(a) the transfer gap between pretraining with the *same* transformations as the target
    and a *disjoint* set, against the gain from 10x more pretraining images;
(b) nested mismatch: pretraining on 1 of the target's k = 3 transformations vs all 3.

Runs the shipped study ``transfer-benchmark`` (``invlab study transfer-benchmark``; see
its description for the protocol) through the real study runner, so an interrupted
benchmark continues where it stopped when run again. Then summarises it.

    python benchmarks/transfer_study.py [--out runs/transfer-benchmark] [study overrides key=value ...]

Writes benchmarks/results/transfer_study.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from invlab.runs.study import load_study, run_study
from invlab.runtime import configure_cpu_allocator

HERE = Path(__file__).resolve().parent
PAPER = {
    "same_vs_disjoint_gap": "0.12-0.15 (linear probe, Transforms-2D, 10 seeds; larger than the effect of class "
                            "relationship, architecture or pretraining size, 0.02-0.15)",
    "right_1k_vs_wrong_500k": "~0.945 with the right transformations and 1k pretraining samples vs ~0.84 with the "
                              "wrong ones and 500k",
    "nested": "1 of 8 target transformations -> ~0.27 on the 8-transformation target; all 8 -> ~0.98",
}


def _stats(values: list[float]) -> dict:
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "min": float(a.min()), "max": float(a.max()), "values": [float(v) for v in a]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/transfer-benchmark", help="study folder (resumable)")
    parser.add_argument("--study", default="transfer-benchmark")
    parser.add_argument("--results", default=str(HERE / "results"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    configure_cpu_allocator()
    torch.set_num_threads(int(os.environ.get("INVLAB_THREADS", min(2, os.cpu_count() or 1))))
    load_before = os.getloadavg()
    plan = load_study(args.study, args.overrides)
    t0 = time.perf_counter()
    study = run_study(plan, args.out, progress=False)
    wall = time.perf_counter() - t0
    if not study["complete"]:
        raise SystemExit("the study is incomplete; run the same command again")
    seeds = study["seeds"]
    m = study["matrix"]

    def per_seed(source: str, target: str = "target") -> list[float]:
        return [m[source][target]["values"][str(s)] for s in seeds]

    c = study["contrasts"]
    one_of_k = [np.mean([m[f"only-{t}"]["target"]["values"][str(s)] for t in ("hue", "vflip", "blur")]) for s in seeds]
    all_k = per_seed("same")
    times = []
    for p in Path(args.out, "runs").glob("*/seed*/summary.json"):
        s = json.loads(p.read_text())
        times.append((p.parent.parent.name, s["train_seconds"], s["train_samples_per_s"]))
    result = {
        "same_vs_disjoint_gap": c["same_vs_disjoint_gap"]["mean"],
        "data_10x_gain": c["data_10x_gain"]["mean"],
        "seeds": seeds,
        "same_vs_disjoint_gap_per_seed": list(c["same_vs_disjoint_gap"]["values"].values()),
        "data_10x_gain_per_seed": list(c["data_10x_gain"]["values"].values()),
        "gap_exceeds_10x_gain_in_every_seed": all(
            g > d for g, d in zip(c["same_vs_disjoint_gap"]["values"].values(), c["data_10x_gain"]["values"].values())
        ),
        "data_10x_gain_note": "disjoint set, 1,000 -> 10,000 pretraining images at the same number of optimisation "
                              "steps; the same-set gain is data_10x_gain_same",
        "contrasts": {k: _stats(list(v["values"].values())) for k, v in c.items()},
        "accuracy": {src: _stats(per_seed(src)) for src in m},
        "target_invariance": {src: _stats(per_seed(src, "target-invariance")) for src in m},
        "nested": {
            "k": 3,
            "one_of_k_mean_over_the_3_choices": _stats([float(v) for v in one_of_k]),
            "all_k": _stats(all_k),
            "gap": _stats([a - o for a, o in zip(all_k, one_of_k)]),
        },
        "paper": PAPER,
        "protocol": plan.recipe.description.strip(),
        "study_recipe": "src/invlab/recipes/studies/transfer-benchmark.yaml",
        "pretraining_train_seconds": {name: float(np.mean([t for n, t, _ in times if n == name]))
                                      for name in sorted({n for n, _, _ in times})},
        "wall_seconds_this_invocation": wall,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d"),
    }
    folder = Path(args.results)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "transfer_study.json").write_text(json.dumps(result, indent=2))

    def ms(s: dict) -> str:
        return f"{s['mean']:.3f} ± {s['std']:.3f}"

    acc, inv = result["accuracy"], result["target_invariance"]
    order = ["same", "disjoint", "same-10x", "disjoint-10x", "only-hue", "only-vflip", "only-blur"]
    labels = {
        "same": "same set {hue, vflip, blur}, 1k images", "disjoint": "disjoint set {brightness, scale, noise}, 1k",
        "same-10x": "same set, 10k images", "disjoint-10x": "disjoint set, 10k images",
        "only-hue": "only hue (1 of 3), 1k", "only-vflip": "only vflip (1 of 3), 1k", "only-blur": "only blur (1 of 3), 1k",
    }
    lines = [
        "# Transfer study: same vs disjoint transformations, 10x data, nested mismatch",
        "",
        result["protocol"],
        "",
        f"Seeds {', '.join(map(str, seeds))} (each seed also redraws which classes are source and target, and the "
        "images). Mean ± std over seeds; target accuracy = linear-probe top-1 on the 10 target classes (chance 0.10); "
        "target invariance = mean invariance score of the pooled features to hue, vflip and blur on target images "
        "(0 = invariant, 1 = like another image).",
        "",
        "| pretraining source | target accuracy | target invariance |",
        "|---|---|---|",
        *[f"| {labels[s]} | {ms(acc[s])} | {ms(inv[s])} |" for s in order if s in acc],
        "",
        "| result | mean ± std | per seed | paper |",
        "|---|---|---|---|",
        f"| (a) same - disjoint (`same_vs_disjoint_gap`) | {ms(result['contrasts']['same_vs_disjoint_gap'])} | "
        f"{', '.join(f'{v:+.3f}' for v in result['same_vs_disjoint_gap_per_seed'])} | {PAPER['same_vs_disjoint_gap']} |",
        f"| (a) disjoint 10k - disjoint 1k (`data_10x_gain`) | {ms(result['contrasts']['data_10x_gain'])} | "
        f"{', '.join(f'{v:+.3f}' for v in result['data_10x_gain_per_seed'])} | |",
        f"| (a) same 10k - same 1k | {ms(result['contrasts']['data_10x_gain_same'])} | "
        f"{', '.join(f'{v:+.3f}' for v in result['contrasts']['data_10x_gain_same']['values'])} | |",
        f"| (a) same 1k - disjoint 10k | {ms(result['contrasts']['right_1x_vs_wrong_10x'])} | "
        f"{', '.join(f'{v:+.3f}' for v in result['contrasts']['right_1x_vs_wrong_10x']['values'])} | "
        f"{PAPER['right_1k_vs_wrong_500k']} |",
        f"| (b) all 3 - 1 of 3 (mean over the 3 choices) | {ms(result['nested']['gap'])} | "
        f"{', '.join(f'{v:+.3f}' for v in result['nested']['gap']['values'])} | {PAPER['nested']} |",
        "",
        f"Gap larger than the 10x-data gain in every seed: **{'yes' if result['gap_exceeds_10x_gain_in_every_seed'] else 'no'}**.",
        "",
        "**Where this small-scale result differs from the paper.** "
        f"(a) holds, with a larger margin: the same-vs-disjoint gap ({result['same_vs_disjoint_gap']:.2f}) is "
        f"{result['same_vs_disjoint_gap'] / 0.135:.1f}x the paper's 0.12-0.15 and "
        f"{result['same_vs_disjoint_gap'] / max(result['data_10x_gain'], 1e-9):.0f}x the 10x-data gain "
        f"({result['data_10x_gain']:.3f}); here source and target share one glyph domain, the network is small and "
        "10x data comes at the same number of optimisation steps, so extra images help little. "
        f"(b) the nested gap ({result['nested']['gap']['mean']:.2f}) is far smaller than the paper's ~0.7 "
        "(1 of 8 vs all 8): with k = 3 one transformation is a third of the target's variation, and the three "
        f"choices differ a lot (hue alone reaches {acc['only-hue']['mean']:.2f}, vflip {acc['only-vflip']['mean']:.2f}, "
        f"blur {acc['only-blur']['mean']:.2f}, against {acc['disjoint']['mean']:.2f} for the disjoint set), so the "
        "nested mismatch is real but its size depends on which transformation is kept.",
        "",
        "Mean pretraining time per run (s, contended machine): "
        + ", ".join(f"{k} {v:.0f}" for k, v in result["pretraining_train_seconds"].items()) + ".",
        f"Load average before: {', '.join(f'{v:.1f}' for v in load_before)} (2 cores shared with other jobs).",
    ]
    (folder / "transfer_study.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
