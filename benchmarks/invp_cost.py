"""What does Invariance Propagation's memory bank cost per step as the data set grows?

One InvP step without the encoder (whose cost does not depend on the data set size N):
for a batch of B = 128 anchors with 128-d embeddings, the 4,096 most similar bank
entries are searched in chunks, the propagation candidates are chained through the
stored 4-NN lists for 3 steps, the 20 hard positives are chosen, the loss and its
gradient to the embeddings are computed, and the bank (embeddings and neighbour lists)
is updated. Synthetic unit embeddings, N = 10k, 100k and 1M, float32 and float16
storage, each N in its own process (so peak memory is that configuration's own).

    python benchmarks/invp_cost.py [--sizes 10000 100000 1000000] [--steps 5]

Reports the median CPU time per step (1 thread; the machine is shared, so CPU time is
the steadier measure, wall time is reported beside it), the bank's bytes and the peak resident
memory a step adds on top of the bank (``ru_maxrss`` after the steps minus before them;
the bank is initialised chunk by chunk, so the mark before the steps is the bank's).
Writes benchmarks/results/invp_cost.json and .md; every sentence in the .md is computed
from the numbers (linearity: a least-squares line through the per-step times).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
B, D, K, STEPS_PROP, P, NEG = 128, 128, 4, 3, 20, 4096


def _one(size: int, dtype_name: str, steps: int) -> dict:
    import torch

    from invlab.losses.invariance_propagation import invariance_propagation_loss, propagate
    from invlab.losses.memory_bank import MemoryBank

    torch.set_num_threads(1)
    dtype = {"float32": torch.float32, "float16": torch.float16}[dtype_name]
    bank = MemoryBank(size, D, momentum=0.5, dtype=dtype, neighbours_k=K, seed=0)
    g = torch.Generator().manual_seed(0)
    bank.neighbours.random_(0, size, generator=g)  # a filled graph, written in place
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times, cpu = [], []
    for step in range(steps + 1):  # the first step is a warm-up, not timed
        index = torch.randint(0, size, (B,), generator=g)
        z = torch.randn(B, D, generator=g, requires_grad=True)
        t, c = time.perf_counter(), time.process_time()
        cand = propagate(bank.neighbours, index, STEPS_PROP)
        out = invariance_propagation_loss(z, index, bank.embeddings, cand, num_positives=P, num_negatives=NEG)
        out.loss.backward()
        bank.update(index, z.detach(), out.negatives[:, :K])
        if step:
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "size": size, "dtype": dtype_name, "step_s": statistics.median(times), "step_s_all": times,
        "step_cpu_s": statistics.median(cpu), "step_cpu_s_all": cpu,
        "bank_bytes": bank.embeddings.numel() * bank.embeddings.element_size()
        + bank.neighbours.numel() * bank.neighbours.element_size(),
        "step_peak_extra_bytes": max(0, peak - base),
    }


def measure_in_child(script: str, args: list[str], what: str) -> dict:
    """Run ``python SCRIPT ARGS`` in a fresh one-thread process (so its peak memory is its
    own) and return the JSON object on the last line it prints; exit naming ``what`` if it fails."""
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    if out.returncode:
        sys.exit(f"{what} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def linear_fit(xs, ys):
    """Least-squares line through (xs, ys): (slope, intercept, R^2)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    icpt = my - slope * mx
    ss_res = sum((y - (icpt + slope * x)) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return slope, icpt, 1 - ss_res / ss_tot if ss_tot else 1.0


def _markdown(res: dict) -> str:
    rows = res["rows"]
    lines = [
        "# Invariance Propagation: memory-bank cost per step",
        "",
        f"B = {B} anchors, D = {D}, top-{NEG} negatives, {K}-NN lists chained {STEPS_PROP} steps, "
        f"{P} hard positives; loss + backward to the embeddings + bank update; encoder excluded. "
        f"1 thread, median of {res['steps']} steps; machine shared (load average "
        f"{res['load_before'][0]:.1f} before, {res['load_after'][0]:.1f} after).",
        "",
        "| N | storage | bank (MiB) | CPU time per step (ms) | wall time per step (ms) | peak extra memory per step (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']:,} | {r['dtype']} | {r['bank_bytes'] / 2**20:.1f} | {1000 * r['step_cpu_s']:.1f} | {1000 * r['step_s']:.1f} | "
            f"{r['step_peak_extra_bytes'] / 2**20:.1f} |"
        )
    lines.append("")
    for dtype, fit in res["fits"].items():
        lines.append(
            f"- {dtype}: CPU time per step = {1000 * fit['intercept_s']:.1f} ms + {1e6 * fit['slope_s_per_sample']:.2f} ms "
            f"per 1,000 bank entries (least squares, R^2 = {fit['r2']:.4f}); from the smallest to the largest N "
            f"the bank grew {fit['size_ratio']:.0f}x and the CPU time per step {fit['time_ratio']:.1f}x."
        )
    mems = [r["step_peak_extra_bytes"] for r in rows]
    lines.append(
        f"- The peak memory a step adds on top of the bank stays between {min(mems) / 2**20:.1f} and "
        f"{max(mems) / 2**20:.1f} MiB across all sizes (the search is chunked)."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float16"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "DTYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_one(int(args.child[0]), args.child[1], args.steps)))
        return
    load_before = os.getloadavg()
    rows = []
    for dtype in args.dtypes:
        for size in args.sizes:
            rows.append(measure_in_child(__file__, ["--steps", str(args.steps), "--child", str(size), dtype],
                                         f"N={size} {dtype}"))
            print(rows[-1]["size"], dtype, f"{rows[-1]['step_cpu_s']:.3f} s CPU", flush=True)
    fits = {}
    for dtype in args.dtypes:
        rs = [r for r in rows if r["dtype"] == dtype]
        slope, icpt, r2 = linear_fit([r["size"] for r in rs], [r["step_cpu_s"] for r in rs])
        fits[dtype] = {
            "slope_s_per_sample": slope, "intercept_s": icpt, "r2": r2,
            "size_ratio": rs[-1]["size"] / rs[0]["size"], "time_ratio": rs[-1]["step_cpu_s"] / rs[0]["step_cpu_s"],
        }
    res = {
        "rows": rows, "fits": fits, "steps": args.steps, "batch": B, "dim": D, "num_negatives": NEG,
        "k": K, "propagation_steps": STEPS_PROP, "num_positives": P, "threads": 1,
        "load_before": load_before, "load_after": os.getloadavg(), "python": platform.python_version(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "invp_cost.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "invp_cost.md").write_text(_markdown(res))
    print(_markdown(res))


if __name__ == "__main__":
    main()
