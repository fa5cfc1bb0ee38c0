"""CPU budget benchmark: SimCLR on a 10k CIFAR-10 subset, through the real `invlab` path.

Recipe ``simclr-cifar10-budget``: ResNet-18 (CIFAR stem) at width 16, batch 256, 15 epochs,
SGD lr 0.06 momentum 0.9 wd 5e-4 cosine, temperature 0.5, lightly's augmentations
(resized crop scale (0.08, 1), colour jitter 0.8/0.8/0.8/0.2 p=0.8, grayscale p=0.2,
h-flip p=0.5, no blur). Then kNN top-1 (k=200, t=0.1) on the 10,000 test images with the
training subset as the bank.

Also measures, in the same process, the raw model's forward+backward(+SGD step) rate on
ready tensors of the same shape (2 x 256 images, the physical limit of a training step)
before and after training, and peak RSS.

    python benchmarks/cifar10_budget.py [--data ../shared/data/cifar10-jpg.tar.gz] [--epochs 15]

Writes benchmarks/results/cifar10_budget.json and .md.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from invlab.losses.contrastive import nt_xent
from invlab.runs.config import load_recipe
from invlab.runs.evaluate_run import evaluate
from invlab.runs.image import build_method
from invlab.runs.pretrain_run import TrainingClock, pretrain
from invlab.runtime import configure_cpu_allocator

HERE = Path(__file__).resolve().parent
REFERENCE = {"knn_top1": 0.384, "train_samples_per_s": 330.0, "raw_model_samples_per_s": 456.0,
             "source": "lightly SimCLR recipe, torchvision transforms in 2 workers, same model/data/budget (issue 2)"}


class RawStep:
    """One forward + backward + SGD step of the same model on ready tensors of the
    training step's shape (2 x batch images): the physical limit of a training step."""

    def __init__(self, cfg, channels: int = 3):
        torch.manual_seed(0)
        self.method = build_method(cfg, [0.5] * channels, [0.25] * channels, channels, None)
        self.method.setup("fit")
        self.method.train()
        params = [p for p in self.method.parameters() if p.requires_grad]
        self.opt = torch.optim.SGD(params, lr=cfg.optim.lr, momentum=cfg.optim.momentum,
                                   weight_decay=cfg.optim.weight_decay)
        self.batch = cfg.data.batch_size
        self.x = torch.rand(2 * self.batch, channels, 32, 32)
        self.temperature = cfg.method_params().temperature

    def __call__(self) -> float:
        t0 = time.perf_counter()
        z1, z2 = self.method.projector(self.method.encoder(self.x)).chunk(2)
        loss = nt_xent(z1, z2, self.temperature)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return time.perf_counter() - t0

    def rate(self, steps: int = 10, warmup: int = 5) -> float:
        times = [self() for _ in range(warmup + steps)][warmup:]
        return self.batch / statistics.median(times)


class InterleavedRawSteps(Callback):
    """Runs a raw step every ``every`` training batches, under the same machine conditions
    as training, and removes its time from the training clock."""

    def __init__(self, raw: RawStep, clock: TrainingClock, every: int = 5):
        self.raw, self.clock, self.every = raw, clock, every
        self.times: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx % self.every == self.every // 2:
            t0 = time.perf_counter()
            self.times.append(self.raw())
            self.clock.exclude(time.perf_counter() - t0)

    def rate(self, statistic=statistics.fmean) -> float:
        """Samples/s from the mean step time: like for like with the training rate, which
        is total samples over total time."""
        return self.raw.batch / statistic(self.times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "cifar10-jpg.tar.gz"))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--keep-run", help="keep the run folder here")
    args = parser.parse_args()

    allocator = configure_cpu_allocator()
    cfg = load_recipe("simclr-cifar10-budget", [f"data.root={args.data}", f"trainer.max_epochs={args.epochs}",
                                                f"trainer.check_val_every_n_epoch={args.epochs}",
                                                "trainer.enable_progress_bar=false"])
    raw_step = RawStep(cfg)
    raw_before = raw_step.rate()
    print(f"raw model (before): {raw_before:.1f} samples/s", flush=True)

    run_dir = Path(args.keep_run) if args.keep_run else Path(tempfile.mkdtemp(prefix="invlab-budget-")) / "run"
    clock = TrainingClock()
    interleaved = InterleavedRawSteps(raw_step, clock)
    summary = pretrain(cfg, run_dir, progress=False, callbacks=[clock, interleaved])
    train_rate = summary["train_samples_per_s"]
    print(f"training: {train_rate:.1f} samples/s over {summary['train_seconds']:.0f} s", flush=True)
    raw = interleaved.rate()
    raw_median = interleaved.rate(statistics.median)
    print(f"raw model (interleaved with training, {len(interleaved.times)} steps): {raw:.1f} samples/s "
          f"(median step: {raw_median:.1f})", flush=True)

    raw_after = raw_step.rate()
    print(f"raw model (after): {raw_after:.1f} samples/s", flush=True)

    knn = evaluate(run_dir, "knn", k=200, temperature=0.1, progress=False)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "benchmark": "cifar10_budget",
        "recipe": "simclr-cifar10-budget",
        "epochs": args.epochs,
        "seed": cfg.seed,
        "train_subset": cfg.data.train_subset,
        "knn_top1": knn["top1"],
        "knn_bank_size": knn["train_size"],
        "knn_test_size": knn["test_size"],
        "train_samples_per_s": train_rate,
        "train_seconds": summary["train_seconds"],
        "raw_model_samples_per_s": raw,
        "raw_model_samples_per_s_method": "batch / mean time of raw steps interleaved with training (every 5th batch)",
        "raw_model_samples_per_s_median_step": raw_median,
        "raw_model_interleaved_steps": len(interleaved.times),
        "raw_model_step_seconds": [round(t, 4) for t in interleaved.times],
        "raw_model_samples_per_s_before": raw_before,
        "raw_model_samples_per_s_after": raw_after,
        "train_to_raw_ratio": train_rate / raw,
        "peak_rss_mb": peak_rss_mb,
        "online_knn_top1": summary["metrics"].get("test/knn_top1"),
        "glibc_allocator_tuned": allocator,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads".strip(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "reference": REFERENCE,
        "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cifar10_budget.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# CIFAR-10 CPU budget (SimCLR, 10k subset, ResNet-18/16, batch 256)",
        "",
        f"{args.epochs} epochs, seed {cfg.seed}, {result['machine']}, torch {torch.__version__}, {result['date']}.",
        "",
        "| | invlab | reference (lightly, issue 2) |",
        "|---|---|---|",
        f"| kNN top-1 (k=200, t=0.1) | {result['knn_top1']:.4f} | {REFERENCE['knn_top1']:.3f} |",
        f"| training samples/s | {train_rate:.1f} | {REFERENCE['train_samples_per_s']:.0f} |",
        f"| raw model fwd+bwd samples/s (same run) | {raw:.1f} | {REFERENCE['raw_model_samples_per_s']:.0f} |",
        f"| training / raw | {train_rate / raw:.1%} | {REFERENCE['train_samples_per_s'] / REFERENCE['raw_model_samples_per_s']:.0%} |",
        f"| peak RSS | {peak_rss_mb:.0f} MB | |",
        "",
        "Raw rate = batch / mean time of a forward + backward + SGD step of the same model on ready tensors of the "
        "training step's shape (2 x 256 images), run every 5th batch during training (its time excluded from "
        "training time) so both see the same machine (this VM's speed drifts by tens of percent over minutes); "
        f"median-step raw rate {raw_median:.0f}; before/after training alone: {raw_before:.0f} / {raw_after:.0f}.",
    ]
    (out / "cifar10_budget.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    if not args.keep_run:
        shutil.rmtree(run_dir.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
