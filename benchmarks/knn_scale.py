"""How do kNN evaluation's time and memory grow with the bank?

Weighted kNN (k = 200, t = 0.1, 10 classes) of a fixed set of Q query features against
a bank of N synthetic features (D = 128, float32), N = 10k, 100k and 1M, with
:func:`invlab.evaluation.knn.knn_predict`:

- ``torch``: the streaming search (query chunks of 1,024 rows, bank chunks of
  ``MAX_CHUNK_ELEMENTS / 1024`` rows, top-k merged chunk by chunk);
- ``faiss``: the optional faiss backend with the exact ``Flat`` index (one thread);
- ``dense`` (N <= 100k only): the previous implementation, one ``(1024, N)`` similarity
  matrix per query chunk, kept here as the reference the streaming search replaced.

Each (backend, N) runs in its own process, so its peak resident memory is its own: the
figure reported is the peak the evaluation adds on top of the bank and queries
(``ru_maxrss`` after minus before; the bank is allocated before the mark). Times are CPU
seconds (1 thread; the machine is shared, so CPU time is the steadier measure; wall time
is reported beside it), median of ``--repeats`` runs after one warm-up on 1% of the queries.

    nice -n 10 python benchmarks/knn_scale.py [--sizes 10000 100000 1000000] [--queries 1000]

Writes benchmarks/results/knn_scale.json and .md; every sentence in the .md is computed
from the numbers (growth: the exponent of a power law through the smallest and largest N,
and a least-squares line through all of them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from invp_cost import linear_fit, measure_in_child  # noqa: E402  (shared with the bank-cost benchmark)

D, K, T, CLASSES = 128, 200, 0.1, 10


def _dense_predict(query, bank, bank_labels, num_classes, k, temperature, chunk_size=1024):
    """The kNN of invlab before the streaming search: a (chunk, N) matrix per query chunk."""
    import torch
    import torch.nn.functional as F

    bank = F.normalize(bank.float(), dim=1)
    out = []
    for start in range(0, query.shape[0], chunk_size):
        q = F.normalize(query[start : start + chunk_size].float(), dim=1)
        sim, idx = (q @ bank.T).topk(k, dim=1)
        scores = torch.zeros(q.shape[0], num_classes)
        scores.scatter_add_(1, bank_labels[idx], (sim / temperature).exp())
        out.append(scores)
    return torch.cat(out)


def _one(size: int, backend: str, queries: int, repeats: int) -> dict:
    import torch

    from invlab.evaluation.knn import MAX_CHUNK_ELEMENTS, knn_predict

    torch.set_num_threads(1)
    if backend == "faiss":
        import faiss

        faiss.omp_set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    bank = torch.randn(size, D, generator=g)
    labels = torch.randint(0, CLASSES, (size,), generator=g)
    query = torch.randn(queries, D, generator=g)

    def run(q):
        if backend == "dense":
            return _dense_predict(q, bank, labels, CLASSES, K, T)
        return knn_predict(q, bank, labels, CLASSES, K, T, backend=backend)

    run(query[: max(1, queries // 100)])  # warm-up (faiss index, allocator)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    wall, cpu, preds = [], [], None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        preds = run(query).argmax(1)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "size": size, "backend": backend, "queries": queries, "cpu_s": statistics.median(cpu), "cpu_s_all": cpu,
        "wall_s": statistics.median(wall), "wall_s_all": wall, "bank_bytes": bank.numel() * 4,
        "peak_extra_bytes": max(0, peak - base), "max_chunk_elements": MAX_CHUNK_ELEMENTS,
        "predictions_checksum": int((preds * torch.arange(1, queries + 1)).sum()),
    }


def _growth(rows: list[dict]) -> dict:
    rs = sorted(rows, key=lambda r: r["size"])
    slope, icpt, r2 = linear_fit([r["size"] for r in rs], [r["cpu_s"] for r in rs])
    size_ratio = rs[-1]["size"] / rs[0]["size"]
    time_ratio = rs[-1]["cpu_s"] / rs[0]["cpu_s"]
    return {
        "sizes": [r["size"] for r in rs], "slope_s_per_row": slope, "intercept_s": icpt, "r2": r2,
        "size_ratio": size_ratio, "time_ratio": time_ratio, "exponent": math.log(time_ratio) / math.log(size_ratio),
        "peak_extra_min_bytes": min(r["peak_extra_bytes"] for r in rs),
        "peak_extra_max_bytes": max(r["peak_extra_bytes"] for r in rs),
        "bank_growth": rs[-1]["bank_bytes"] / rs[0]["bank_bytes"],
    }


def _markdown(res: dict) -> str:
    q = res["queries"]
    lines = [
        "# kNN evaluation as the bank grows",
        "",
        f"{q:,} queries, bank of N synthetic features (D = {D}, float32), k = {K}, t = {T}, {CLASSES} classes; "
        f"1 thread, median of {res['repeats']} runs; machine shared (load average {res['load_before'][0]:.1f} "
        f"before, {res['load_after'][0]:.1f} after). Peak memory: what the evaluation adds on top of the bank "
        "and the queries.",
        "",
        "| backend | N | bank (MiB) | CPU time (s) | wall time (s) | CPU time per 1k queries per 1M rows (s) | peak extra memory (MiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        per = r["cpu_s"] / (r["queries"] / 1000) / (r["size"] / 1e6)
        lines.append(
            f"| {r['backend']} | {r['size']:,} | {r['bank_bytes'] / 2**20:.1f} | {r['cpu_s']:.2f} | {r['wall_s']:.2f} | "
            f"{per:.2f} | {r['peak_extra_bytes'] / 2**20:.1f} |"
        )
    lines.append("")
    for backend, gr in res["growth"].items():
        if len(gr["sizes"]) < 2:
            continue
        lines.append(
            f"- {backend}: from N = {gr['sizes'][0]:,} to {gr['sizes'][-1]:,} ({gr['size_ratio']:.0f}x) the CPU time grew "
            f"{gr['time_ratio']:.1f}x (power-law exponent {gr['exponent']:.2f}; 1 is linear); least-squares line "
            f"{gr['intercept_s']:.2f} s + {1e6 * gr['slope_s_per_row']:.2f} s per 1M bank rows (R^2 = {gr['r2']:.4f}). "
            f"Peak extra memory stayed between {gr['peak_extra_min_bytes'] / 2**20:.1f} and "
            f"{gr['peak_extra_max_bytes'] / 2**20:.1f} MiB while the bank grew {gr['bank_growth']:.0f}x."
        )
    agree = res["agreement"]
    if agree:
        lines.append(
            f"- Predictions (checksums) of the backends agree at {sum(agree.values())} of {len(agree)} sizes "
            f"({', '.join(f'{n:,}' for n, ok in agree.items() if ok) or 'none'})."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", default=["torch", "faiss", "dense"])
    parser.add_argument("--dense-max", type=int, default=100_000, help="largest N for the dense reference")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_one(int(args.child[0]), args.child[1], args.queries, args.repeats)))
        return
    load_before = os.getloadavg()
    rows = []
    for backend in args.backends:
        for size in args.sizes:
            if backend == "dense" and size > args.dense_max:
                continue
            rows.append(measure_in_child(__file__, ["--queries", str(args.queries), "--repeats", str(args.repeats),
                                                    "--child", str(size), backend], f"N={size} {backend}"))
            print(backend, size, f"{rows[-1]['cpu_s']:.2f} s CPU", f"{rows[-1]['peak_extra_bytes'] / 2**20:.1f} MiB",
                  flush=True)
    growth = {b: _growth([r for r in rows if r["backend"] == b]) for b in args.backends
              if any(r["backend"] == b for r in rows)}
    agreement = {}
    for size in args.sizes:
        sums = {r["predictions_checksum"] for r in rows if r["size"] == size}
        if len([r for r in rows if r["size"] == size]) > 1:
            agreement[size] = len(sums) == 1
    res = {
        "rows": rows, "growth": growth, "agreement": agreement, "queries": args.queries, "repeats": args.repeats,
        "dim": D, "k": K, "temperature": T, "classes": CLASSES, "threads": 1, "load_before": load_before,
        "load_after": os.getloadavg(), "python": platform.python_version(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "knn_scale.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "knn_scale.md").write_text(_markdown(res))
    print(_markdown(res))


if __name__ == "__main__":
    main()
