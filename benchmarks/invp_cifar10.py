"""Invariance Propagation vs SimCLR on the CIFAR-10 CPU budget, through the real `invlab` path.

Recipes ``invp-cifar10-budget`` and ``simclr-cifar10-budget``: 10k CIFAR-10 subset (seed 0),
ResNet-18 CIFAR stem at width 16, 15 epochs (each method's own batch, learning rate and
augmentations: InvP the paper's, SimCLR lightly's). Then kNN top-1 (k=200, t=0.1, the
training subset as the bank, the 10,000 test images as queries; the protocol of
``benchmarks/cifar10_budget.py``) and a linear probe on frozen features. InvP's step is
one view, SimCLR's two: training seconds are recorded so the methods can be compared at
equal wall time as well as at equal epochs. For InvP the quality of the positives it
found is read from its metrics: per epoch, the mean number of hard positives and the
fraction sharing the anchor's class (labels used for this monitoring only).

    python benchmarks/invp_cifar10.py [--seeds 0 1 2] [--epochs 15] [--work DIR]
    python benchmarks/invp_cifar10.py --subset 2000 --width 8 --epochs 5 --key reduced   # a cheaper protocol

Each run is a run folder under ``--work``; a finished run (``summary.json`` + evaluations)
is reused when the script is run again, so an interrupted benchmark continues. Results go
to benchmarks/results/invp_cifar10.json under ``--key`` (default ``budget_15ep``; that key
also fills the top-level ``simclr_knn`` / ``invp_knn`` lists) and a markdown table whose
sentences are computed from the numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import torch

from invlab.losses.invariance_propagation import hard_positives, propagate
from invlab.runs.config import load_recipe
from invlab.runs.evaluate_run import evaluate
from invlab.runs.image.recipe import load_data
from invlab.runs.pretrain_run import pretrain
from invlab.runs.run_dir import RunDir
from invlab.runtime import configure_cpu_allocator

HERE = Path(__file__).resolve().parent
METHODS = {"simclr": "simclr-cifar10-budget", "invp": "invp-cifar10-budget"}


def invp_warmup(configured: int | None, epochs: int) -> int:
    """InvP's warm-up epochs: ``--invp-warmup``, else a third of the epochs (5 of 15)."""
    return configured if configured is not None else max(1, epochs // 3)


def run_one(method: str, seed: int, args) -> dict:
    folder = Path(args.work) / args.key / f"{method}-seed{seed}"
    done = folder / "bench.json"
    if done.exists():
        return json.loads(done.read_text())
    overrides = [f"data.root={args.data}", f"seed={seed}", f"trainer.max_epochs={args.epochs}",
                 f"trainer.check_val_every_n_epoch={args.eval_every or args.epochs}", "trainer.enable_progress_bar=false",
                 f"data.train_subset={args.subset}", f"model.width={args.width}"]
    if method == "invp":
        overrides.append(f"params.warmup_epochs={invp_warmup(args.invp_warmup, args.epochs)}")
    cfg = load_recipe(METHODS[method], overrides)
    if folder.exists():  # an interrupted run: start it again from scratch
        shutil.rmtree(folder)
    t = time.perf_counter()
    summary = pretrain(cfg, folder, progress=False)
    knn = evaluate(folder, "knn", k=200, temperature=0.1, progress=False)
    linear = evaluate(folder, "linear", progress=False)
    out = {
        "method": method, "seed": seed, "knn_top1": knn["top1"], "linear_top1": linear["top1"],
        "train_seconds": summary["train_seconds"], "wall_seconds": time.perf_counter() - t,
        "epochs": args.epochs, "batch_size": cfg.data.batch_size, "per_epoch": _per_epoch(folder / "metrics.csv"),
    }
    done.write_text(json.dumps(out, indent=2) + "\n")
    return out


def epoch_timing(args) -> dict:
    """Seconds per training epoch of each method, measured in interleaved one-epoch runs.

    Long runs share the machine with whatever else runs, so their own training seconds
    are not comparable; these short runs alternate (SimCLR, InvP warm-up epoch, InvP
    propagating epoch) ``--timing-rounds`` times, so drift hits every arm alike. Cached in
    ``--work/KEY/timing.json``.
    """
    path = Path(args.work) / args.key / "timing.json"
    if path.exists():
        cached = json.loads(path.read_text())
        if len(cached["simclr"]) == args.timing_rounds:
            return cached
    arms = {"simclr": ("simclr", []), "invp_warmup": ("invp", ["params.warmup_epochs=99"]),
            "invp_propagating": ("invp", ["params.warmup_epochs=0"])}
    out: dict = {name: [] for name in arms}
    load = []
    for r in range(args.timing_rounds):
        for name, (m, extra) in arms.items():
            cfg = load_recipe(METHODS[m], [f"data.root={args.data}", "seed=0", "trainer.max_epochs=1",
                                           "trainer.check_val_every_n_epoch=1000", "trainer.enable_progress_bar=false",
                                           f"data.train_subset={args.subset}", f"model.width={args.width}", *extra])
            folder = Path(args.work) / args.key / "timing" / f"{name}-{r}"
            if folder.exists():
                shutil.rmtree(folder)
            out[name].append(pretrain(cfg, folder, progress=False)["train_seconds"])
            load.append(os.getloadavg()[0])
    out["load_average"] = load
    path.write_text(json.dumps(out, indent=2) + "\n")
    return out


def bank_positive_quality(folder: Path, labels: torch.Tensor) -> dict[str, float]:
    """Class agreement of an InvP run's final memory bank, stage by stage (labels: monitoring only).

    From the checkpoint's bank (embeddings and directed k-NN lists): the stored k nearest
    neighbours, the candidates after propagation (the run's own ``propagation_steps``), the
    ``num_positives`` least similar of them (what the loss uses) and, for contrast, the most
    similar ones; each as the fraction of (anchor, sample) pairs sharing the anchor's
    CIFAR-10 class (chance 0.1). ``labels``: the run's training subset, in bank order.
    """
    state = torch.load(folder / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    emb, neighbours = state["bank.embeddings"].float(), state["bank.neighbours"]
    params = RunDir.find(folder).load_config().params
    index = torch.arange(len(labels))

    def same(chosen: torch.Tensor) -> float:
        valid = chosen >= 0
        return float(((labels[chosen.clamp(min=0)] == labels[:, None]) & valid).sum() / valid.sum())

    cand = propagate(neighbours, index, params.propagation_steps)
    sim = torch.where(cand >= 0, (emb[:, None, :] * emb[cand.clamp(min=0)]).sum(-1), torch.zeros(()))
    _, hard = hard_positives(cand, sim, params.num_positives)
    easy = cand.gather(1, sim.masked_fill(cand < 0, -2.0).topk(params.num_positives, 1).indices)
    return {"neighbours": same(neighbours), "propagated": same(cand), "hard_positives": same(hard),
            "most_similar_candidates": same(easy)}


def _per_epoch(metrics: Path) -> dict[str, list[float | None]]:
    """Epoch-level training terms from metrics.csv (InvP: positives and their class agreement)."""
    keys = ["train/loss", "train/positives", "train/positive_same_class", "train/positive_similarity"]
    rows, online = {}, {}
    with metrics.open() as f:
        for row in csv.DictReader(f):
            if row.get("train/loss"):
                rows[int(row["epoch"])] = {k: (float(row[k]) if row.get(k) else None) for k in keys}
            if row.get("test/knn_top1"):  # the online monitor, logged at each validation epoch
                online[int(row["epoch"])] = float(row["test/knn_top1"])
    out = {k: [rows[e][k] for e in sorted(rows)] for k in keys}
    out["online_knn"] = [online.get(e) for e in sorted(rows)]
    return out


def _interp(x: float, xs: list[float], ys: list[float]) -> float | None:
    """Linear interpolation of ys at x (None outside [xs[0], xs[-1]])."""
    if not xs or x < xs[0] or x > xs[-1]:
        return None
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 > x0 else y1
    return ys[-1]


def equal_time_curve(block: dict) -> list[tuple[float, float, float | None]]:
    """(seconds, InvP online kNN, SimCLR online kNN interpolated at the same training seconds).

    Seconds per epoch come from the interleaved timing runs when the block has them
    (``--timing-rounds``), else from each run's own training seconds spread evenly over its
    epochs; seed means of accuracy.
    """
    timing = block.get("timing")
    warmup = invp_warmup(block["config"].get("invp_warmup"), block["config"]["epochs"])

    def seconds(r, e):  # training seconds at the end of epoch e
        if timing is None:
            return (e + 1) * r["train_seconds"] / r["epochs"]
        if r["method"] == "simclr":
            return (e + 1) * statistics.median(timing["simclr"])
        w = min(e + 1, warmup)
        return w * statistics.median(timing["invp_warmup"]) + (e + 1 - w) * statistics.median(timing["invp_propagating"])

    def curve(runs):
        per = []
        for r in runs:
            knn = r["per_epoch"].get("online_knn") or []
            pts = [(seconds(r, e), v) for e, v in enumerate(knn) if v is not None]
            per.append(pts)
        if not per or not per[0]:
            return [], []
        n = min(len(p) for p in per)
        return ([statistics.mean(p[i][0] for p in per) for i in range(n)],
                [statistics.mean(p[i][1] for p in per) for i in range(n)])

    ts, ks = curve(block["runs"].get("simclr", []))
    ti, ki = curve(block["runs"].get("invp", []))
    return [(t, k, _interp(t, ts, ks)) for t, k in zip(ti, ki)]


def _ms(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def markdown(block: dict, key: str) -> str:
    cfg = block["config"]
    lines = [
        f"# Invariance Propagation vs SimCLR on CIFAR-10 ({key})",
        "",
        f"{cfg['subset']:,}-image training subset, ResNet-18 (CIFAR stem) "
        f"(width {cfg['width']}), {cfg['epochs']} epochs, seeds {', '.join(map(str, block['seeds']))}; kNN k=200 t=0.1 on the "
        "10,000 test images, linear probe on frozen features. CPU, 1 thread, shared machine.",
        "",
        "| method | kNN top-1 (mean +- sd) | per seed | linear top-1 (mean +- sd) | training s per run (mean) |",
        "|---|---|---|---|---|",
    ]
    for m in ("simclr", "invp"):
        if m not in block["runs"]:
            continue
        runs = block["runs"][m]
        km, ks = _ms([r["knn_top1"] for r in runs])
        lm, ls = _ms([r["linear_top1"] for r in runs])
        per = ", ".join(f"{r['knn_top1']:.3f}" for r in runs)
        lines.append(f"| {m} | {km:.3f} +- {ks:.3f} | {per} | {lm:.3f} +- {ls:.3f} | "
                     f"{statistics.mean(r['train_seconds'] for r in runs):.0f} |")
    if "simclr" not in block["runs"]:
        return "\n".join(lines) + "\n"
    s, i = block["runs"]["simclr"], block["runs"]["invp"]
    diff = statistics.mean(r["knn_top1"] for r in i) - statistics.mean(r["knn_top1"] for r in s)
    t_ratio = statistics.mean(r["train_seconds"] for r in i) / statistics.mean(r["train_seconds"] for r in s)
    lines += [
        "",
        f"- At equal epochs InvP's kNN top-1 is {diff:+.3f} relative to SimCLR; an InvP run took {t_ratio:.2f}x "
        "SimCLR's training time (one view per step against two, plus the bank search).",
    ]
    curve = equal_time_curve(block)
    if len(curve) > 1:
        timing = block.get("timing")
        source = ("seconds per epoch from interleaved one-epoch timing runs (medians of "
                  f"{len(timing['simclr'])}: SimCLR {statistics.median(timing['simclr']):.1f} s, InvP warm-up "
                  f"{statistics.median(timing['invp_warmup']):.1f} s, InvP propagating {statistics.median(timing['invp_propagating']):.1f} s)"
                  if timing else "seconds spread evenly over each run's epochs")
        lines += ["", "Online kNN (the training monitor on the test images, its own k) against training seconds "
                  f"({source}), seed means; SimCLR interpolated at InvP's seconds:", "",
                  "| training s | InvP online kNN | SimCLR online kNN at the same seconds |", "|---|---|---|"]
        lines += [f"| {t:.0f} | {k:.3f} | {'—' if o is None else f'{o:.3f}'} |" for t, k, o in curve]
        paired = [(k, o) for _, k, o in curve if o is not None]
        if paired:
            ahead = sum(k > o for k, o in paired)
            lines += ["", f"- At equal training seconds InvP's online kNN is ahead at {ahead} of {len(paired)} "
                      f"matched points (mean difference {statistics.mean(k - o for k, o in paired):+.3f})."]
    same = [r["per_epoch"]["train/positive_same_class"] for r in i]
    if same and any(v is not None for v in same[0]):
        first = [next(v for v in seq if v is not None) for seq in same]
        last = [seq[-1] for seq in same]
        lines.append(
            f"- Positives found by propagation share the anchor's class {statistics.mean(first):.3f} of the time in "
            f"the first propagating epoch and {statistics.mean(last):.3f} in the last (chance 0.1)."
        )
    quality = [r["bank_quality"] for r in i if "bank_quality" in r]
    if quality:
        q = {k: statistics.mean(d[k] for d in quality) for k in quality[0]}
        lines.append(
            f"- In the final memory bank (seed means), a sample's stored 4 nearest neighbours share its class "
            f"{q['neighbours']:.3f} of the time, the propagated candidates {q['propagated']:.3f} "
            f"({q['propagated'] - q['neighbours']:+.3f}), the hard positives the loss uses {q['hard_positives']:.3f} "
            f"({q['hard_positives'] - q['neighbours']:+.3f}) and the most similar candidates "
            f"{q['most_similar_candidates']:.3f} (chance 0.1)."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "cifar10-jpg.tar.gz"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=["simclr", "invp"], choices=list(METHODS))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--subset", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--invp-warmup", type=int, default=None, help="default: a third of the epochs (5 of 15)")
    parser.add_argument("--eval-every", type=int, default=None,
                        help="online kNN every N epochs (a curve for the equal-wall-time comparison); default: last epoch only")
    parser.add_argument("--timing-rounds", type=int, default=0,
                        help="interleaved one-epoch timing runs per method for the equal-time comparison (0: none)")
    parser.add_argument("--key", default="budget_15ep")
    parser.add_argument("--work", default="/tmp/invlab-invp-cifar10")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    configure_cpu_allocator()
    torch.set_num_threads(1)
    runs = {m: [] for m in args.methods}
    labels = None  # the training subset's labels, decoded once (every seed trains on the same subset)
    for seed in args.seeds:
        for m in args.methods:
            runs[m].append(run_one(m, seed, args))
            if m == "invp" and "bank_quality" not in runs[m][-1]:
                folder = Path(args.work) / args.key / f"invp-seed{seed}"
                if labels is None:
                    labels = torch.as_tensor(load_data(RunDir.find(folder).load_config(), progress=False)[0].labels).long()
                runs[m][-1]["bank_quality"] = bank_positive_quality(folder, labels)
                (folder / "bench.json").write_text(json.dumps(runs[m][-1], indent=2) + "\n")
            print(json.dumps({k: v for k, v in runs[m][-1].items() if k != "per_epoch"}), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "invp_cifar10.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    block = {"seeds": args.seeds, "runs": runs,
             "config": {k: getattr(args, k) for k in ("epochs", "subset", "width", "invp_warmup", "eval_every")}}
    if args.timing_rounds:
        block["timing"] = epoch_timing(args)
    res[args.key] = block
    if args.key == "budget_15ep":
        res["simclr_knn"] = [r["knn_top1"] for r in runs.get("simclr", [])]
        res["invp_knn"] = [r["knn_top1"] for r in runs.get("invp", [])]
    path.write_text(json.dumps(res, indent=2) + "\n")
    md = "\n".join(markdown(res[k], k) for k in res if isinstance(res[k], dict) and "runs" in res[k] and "invp" in res[k]["runs"])
    (out / "invp_cifar10.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
