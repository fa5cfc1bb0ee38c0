"""Side-by-side SimCLR training throughput: invlab, lightly's recipe and the raw model,
interleaved in one invocation.

Arms, all with the same model (invlab's ResNet-18 with the CIFAR stem at the given width,
its projector), batch, optimiser (SGD lr 0.06, momentum 0.9, weight decay 5e-4) and data
(the CIFAR-10 JPEG copy):

- ``invlab``: ``invlab train``'s own path: recipe ``simclr-cifar10`` through
  ``pretrain()`` (Lightning's Trainer, the decoded uint8 cache, views made on the batch
  in the training step, the online probe, logging, the divergence guard);
- ``raw``: the same model's forward + backward + SGD step on ready float tensors of the
  training step's shape (2 x batch images) in this process: the limit a training step
  can reach;
- ``lightly``: lightly's documented SimCLR recipe (``SimCLRTransform`` on PIL images in
  DataLoader workers, ``NTXentLoss``) on the same model, in the peers venv
  (benchmarks/setup_peers.sh) as a subprocess (benchmarks/lightly_arm.py);
- ``raw_peer``: the raw step in that subprocess's torch (a torch-version control).

The arms alternate in blocks of steps, several rounds, order rotating each round
(benchmarks/throughput_schedule.py); warm-up steps are not timed. Each block's
samples/s is one sample; the row gives median and mean over rounds and the per-round
ratios. Only one arm runs at a time: the others wait (lightly's workers are stopped).

    bash benchmarks/setup_peers.sh
    python benchmarks/peer_throughput.py [--configs 16x256,16x128,64x256,64x128] [--rounds 5]

Writes benchmarks/results/peer_throughput.json and .md (or --name).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from load_monitor import LoadMonitor  # noqa: E402
from throughput_schedule import interleaved_schedule, paired_ratio, rate_summary  # noqa: E402

from invlab.data.archive import extract_once, is_archive  # noqa: E402
from invlab.losses.contrastive import nt_xent  # noqa: E402
from invlab.runs.config import load_recipe  # noqa: E402
from invlab.runs.image import build_method  # noqa: E402
from invlab.runs.pretrain_run import pretrain  # noqa: E402
from invlab.runtime import configure_cpu_allocator  # noqa: E402

DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "cifar10-jpg.tar.gz"
PEERS_PYTHON = HERE / ".venv-peers" / "bin" / "python"


class RawStep:
    """Forward + backward + SGD step of the invlab-built model (encoder with its
    normalisation and memory format, projector) on ready tensors (2 x batch images)."""

    def __init__(self, cfg, device: torch.device):
        torch.manual_seed(0)
        self.method = build_method(cfg, [0.5] * 3, [0.25] * 3, 3, None)
        self.method.setup("fit")
        self.method.to(device).train()
        o = cfg.optim
        self.opt = torch.optim.SGD(self.method.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        self.batch, self.device = cfg.data.batch_size, device
        size = image_size(cfg)
        self.x = torch.rand(2 * self.batch, 3, size, size, device=device)
        self.temperature = cfg.method_params().temperature

    def step(self) -> None:
        z1, z2 = self.method.projector(self.method.encoder(self.x)).chunk(2)
        loss = nt_xent(z1, z2, self.temperature)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def __call__(self, steps: int, skip: int = 0) -> float:
        for _ in range(skip):
            self.step()
        sync(self.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        sync(self.device)
        return time.perf_counter() - t0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def image_size(cfg) -> int:
    return int(next(t for t in cfg.augment.pipeline if t["name"] == "crop")["size"])


class PeerProcess:
    """benchmarks/lightly_arm.py in the peers' Python, driven one block at a time."""

    def __init__(self, python: str, spec: dict, images: Path | None, arms: list[str], workers: int, threads: int,
                 device: str):
        cmd = [python, str(HERE / "lightly_arm.py"), "--spec", json.dumps(spec), "--arms", ",".join(arms),
               "--workers", str(workers), "--threads", str(threads), "--device", device]
        if images is not None:
            cmd += ["--images", str(images)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # the peers' Python sees none of invlab's paths, only what PEERS_PYTHONPATH names
        env["PYTHONPATH"] = os.environ.get("PEERS_PYTHONPATH", "")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.hello = self._read()

    def _read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("@@"):
                return json.loads(line[2:])
        raise RuntimeError(f"the peer process ended (exit code {self.proc.wait()}) before answering")

    def run(self, arm: str, steps: int, skip: int) -> dict:
        self.proc.stdin.write(json.dumps({"arm": arm, "steps": steps, "skip": skip}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"arm": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=60)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()


class Interleaver(Callback):
    """Drives the schedule from inside invlab's training loop: an ``invlab`` block is the
    time from the start of one training batch to the start of the batch ``steps`` later
    (data fetch, views, step, hooks, logging: everything ``invlab train`` does per
    batch); the other arms' blocks run between invlab's, at a batch start."""

    def __init__(self, plan: list[tuple[int, str]], steps: int, warmup: int, batch: int, others: dict, device):
        self.plan, self.steps, self.warmup, self.batch = plan, steps, warmup, batch
        self.others, self.device = others, device
        self.rates: dict[str, list[float]] = {arm: [] for _, arm in plan}
        # samples per CPU-second of this process (all its threads) for the in-process arms:
        # less sensitive than wall time to other processes taking the cores
        self.cpu_rates: dict[str, list[float]] = {"invlab": [], "raw": []}
        self.errors: dict[str, str] = {}
        self.pos, self.seen = 0, 0
        self.block_start: tuple[int, float] | None = None
        self.done = False

    def batches_needed(self) -> int:
        return self.warmup + self.steps * sum(arm == "invlab" for _, arm in self.plan) + 1

    def _run_other(self, arm: str) -> None:
        c0 = time.process_time()
        try:
            result = self.others[arm](self.steps)
        except Exception as err:  # a dead peer process: the round records the failure, the run goes on
            result = {"error": f"{type(err).__name__}: {err}"}
        if arm in self.cpu_rates and "error" not in result:
            self.cpu_rates[arm].append(result["samples"] / (time.process_time() - c0))
        if "error" in result:
            self.errors[arm] = result["error"]
            self.rates[arm].append(float("nan"))
        else:
            self.rates[arm].append(result["samples"] / result["seconds"])
        print(f"  round {self.plan[self.pos][0]} {arm}: {self.rates[arm][-1]:.1f} samples/s", flush=True)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        n, self.seen = self.seen, self.seen + 1
        if self.done or n < self.warmup:
            return
        if self.block_start is not None:
            first, t0, c0 = self.block_start
            if n - first < self.steps:
                return
            sync(self.device)
            self.rates["invlab"].append(self.steps * self.batch / (time.perf_counter() - t0))
            self.cpu_rates["invlab"].append(self.steps * self.batch / (time.process_time() - c0))
            print(f"  round {self.plan[self.pos][0]} invlab: {self.rates['invlab'][-1]:.1f} samples/s", flush=True)
            self.block_start = None
            self.pos += 1
        while self.pos < len(self.plan) and self.plan[self.pos][1] != "invlab":
            self._run_other(self.plan[self.pos][1])
            self.pos += 1
        if self.pos == len(self.plan):
            self.done = True
            trainer.should_stop = True
            return
        sync(self.device)
        self.block_start = (n, time.perf_counter(), time.process_time())


def train_images(data: Path) -> Path:
    """The folder of training images (``<class>/<image>``) inside the data copy."""
    root = extract_once(data) if is_archive(data) else data
    for candidate in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        if (candidate / "train").is_dir():
            return candidate / "train"
    raise SystemExit(f"{data}: no train/ folder of images inside")


def build_config(args, width: int, batch: int, batches: int):
    overrides = [
        f"data.root={args.data}", f"data.batch_size={batch}", f"model.width={width}",
        f"model.backbone={args.backbone}", f"model.stem={args.stem}",
        "monitor.knn=false",  # no validation epochs inside the measurement (the online probe stays)
        "trainer.max_epochs=1", f"trainer.limit_train_batches={batches}", "trainer.check_val_every_n_epoch=1000",
        "trainer.enable_progress_bar=false", f"trainer.accelerator={args.accelerator}", "trainer.devices=1",
    ]
    if args.data_name != "cifar10":
        overrides.append(f"data.name={args.data_name}")
    if args.projector_hidden:
        overrides.append(f"model.projector.hidden=[{args.projector_hidden}]")
    cfg = load_recipe(args.recipe, overrides + list(args.override))
    if args.image_size != image_size(cfg):
        for t in cfg.augment.pipeline:
            if t["name"] == "crop":
                t["size"] = args.image_size
    return cfg


def peer_spec(cfg) -> dict:
    jitter = next(t for t in cfg.augment.pipeline if t["name"] == "jitter")
    crop = next(t for t in cfg.augment.pipeline if t["name"] == "crop")
    gray = next(t for t in cfg.augment.pipeline if t["name"] == "grayscale")
    flip = next(t for t in cfg.augment.pipeline if t["name"] == "hflip")
    proj = cfg.model.projector
    return {
        "model": {"backbone": cfg.model.backbone, "stem": cfg.model.stem, "width": cfg.model.width,
                  "projector": {"hidden": list(proj.hidden), "out": proj.out, "norm": proj.norm}},
        "batch": cfg.data.batch_size,
        "image_size": image_size(cfg),
        "optim": {"lr": cfg.optim.lr, "momentum": cfg.optim.momentum, "weight_decay": cfg.optim.weight_decay},
        "temperature": cfg.method_params().temperature,
        # the recipe's augmentations in SimCLRTransform's terms (no blur: the recipe has none)
        "lightly_transform": {
            "min_scale": float(crop["scale"][0]), "cj_prob": float(jitter.get("p", 0.8)), "cj_strength": 1.0,
            "cj_bright": float(jitter["brightness"]), "cj_contrast": float(jitter["contrast"]),
            "cj_sat": float(jitter["saturation"]), "cj_hue": float(jitter["hue"]),
            "random_gray_scale": float(gray["p"]), "gaussian_blur": 0.0, "hf_prob": float(flip["p"]),
        },
    }


def cpu_ticks() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return math.nan, math.nan
    hz = os.sysconf("SC_CLK_TCK")
    total = sum(fields) / hz
    return total - (fields[3] + fields[4]) / hz, total


def own_cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the peer process and its
    DataLoader workers, once they have been waited for)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measure(args, width: int, batch: int, rounds: int, images: Path | None, device: torch.device) -> dict:
    busy0, total0 = cpu_ticks()
    own0 = own_cpu_seconds()
    peer_arms = [a for a in ("lightly", "raw_peer") if a in args.arms]
    if width not in args.raw_peer_widths and "raw_peer" in peer_arms:
        peer_arms.remove("raw_peer")
    arms = ["invlab", "raw", *peer_arms]
    plan = interleaved_schedule(arms, rounds)
    probe_cfg = build_config(args, width, batch, 1)
    raw = RawStep(probe_cfg, device)
    t_raw = raw(2, skip=1) / 2  # warm-up, and the step time that sizes the blocks
    steps = args.steps or max(args.min_steps, min(args.max_steps, round(args.block_seconds / t_raw)))
    # batches of a fresh lightly iterator not timed: the workers' start-up, then one more
    # where a step is short enough for the queue to matter
    skip = args.lightly_skip if args.lightly_skip is not None else (2 if t_raw < 1.0 else 1)
    print(f"width {width}, batch {batch}: raw step {t_raw:.3f} s -> blocks of {steps} steps, {rounds} rounds",
          flush=True)
    peer = None
    hello: dict = {}
    others = {"raw": lambda n: {"samples": n * batch, "seconds": raw(n)}}
    if peer_arms:
        peer = PeerProcess(args.peers_python, peer_spec(probe_cfg), images, peer_arms, args.lightly_workers,
                           args.threads, str(device))
        hello = peer.hello
        for arm in peer_arms:
            others[arm] = lambda n, arm=arm: peer.run(arm, n, skip if arm == "lightly" else 0)
            print(f"  warm-up {arm}: {peer.run(arm, 1, 1)}", flush=True)  # two untimed steps
    interleaver = Interleaver(plan, steps, args.warmup_steps, batch, others, device)
    cfg = build_config(args, width, batch, interleaver.batches_needed())
    run_dir = Path(tempfile.mkdtemp(prefix="invlab-peer-throughput-")) / "run"
    try:
        with LoadMonitor(every_s=5.0) as load:
            t0 = time.perf_counter()
            pretrain(cfg, run_dir, progress=False, callbacks=[interleaver])
            wall = time.perf_counter() - t0
    finally:
        if peer is not None:
            peer.close()
        shutil.rmtree(run_dir.parent, ignore_errors=True)
    busy1, total1 = cpu_ticks()
    own = own_cpu_seconds() - own0
    cpu_share = {
        "machine_busy": (busy1 - busy0) / (total1 - total0),
        "this_benchmark": own / (total1 - total0),
        "other_processes": max(0.0, (busy1 - busy0) - own) / (total1 - total0),
        "note": "shares of all CPUs' time over the row (warm-ups included); other_processes > 0 means the "
                "benchmark shared the cores",
    }
    if not interleaver.done:
        raise RuntimeError(f"training stopped after {interleaver.seen} batches, before the schedule ended")
    r = interleaver.rates
    row = {
        "width": width, "batch": batch, "backbone": args.backbone, "stem": args.stem, "image_size": args.image_size,
        "device": str(device),
        "invlab_samples_per_s": rate_summary(r["invlab"])["median"],
        "raw_samples_per_s": rate_summary(r["raw"])["median"],
        "lightly_samples_per_s": rate_summary(r["lightly"])["median"] if "lightly" in r else None,
        "raw_peer_samples_per_s": rate_summary(r["raw_peer"])["median"] if "raw_peer" in r else None,
        "summary": {arm: rate_summary(v) for arm, v in r.items()},
        "invlab_to_raw": paired_ratio(r["invlab"], r["raw"]),
        "invlab_to_raw_cpu_time": paired_ratio(interleaver.cpu_rates["invlab"], interleaver.cpu_rates["raw"]),
        "per_round_samples_per_cpu_s": interleaver.cpu_rates,
        "invlab_to_lightly": paired_ratio(r["invlab"], r["lightly"]) if "lightly" in r else None,
        "lightly_to_raw_peer": paired_ratio(r["lightly"], r["raw_peer"]) if {"lightly", "raw_peer"} <= r.keys() else None,
        "raw_to_raw_peer": paired_ratio(r["raw"], r["raw_peer"]) if "raw_peer" in r else None,
        "rounds": rounds, "steps_per_block": steps, "warmup_steps": args.warmup_steps, "lightly_skip": skip,
        "schedule": [arm for _, arm in plan],
        "per_round_samples_per_s": r,
        "errors": interleaver.errors,
        "peer": hello,
        "load": load.summary(),
        "cpu_share": cpu_share,
        "nice": os.nice(0),
        "wall_seconds": wall,
    }
    return row


def markdown(result: dict) -> str:
    rows = result["rows"]
    goals = result["goals"]
    lines = [
        "# SimCLR training throughput: invlab, lightly's recipe, the raw model (interleaved)",
        "",
        f"{result['machine']}; {result['threads']} torch threads per measured process; invlab: torch "
        f"{result['torch']}; peers: {result['peer_versions']}; lightly's DataLoader: {result['lightly_workers']} "
        f"workers ({result['lightly_workers_reason']}). {result['date']}.",
        "",
        "Samples/s = median over rounds of one block's samples / seconds (mean in brackets); ratios are medians of "
        "the per-round ratios (each round's arms ran back to back, so they saw the same machine).",
        "",
        "| width | batch | invlab | raw | lightly | raw (peer torch) | invlab / raw | invlab / lightly | load (1 min, mean / max) | CPU taken by other processes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def fmt(row, arm):
        s = row["summary"].get(arm)
        return "n/a" if not s else f"{s['median']:.1f} ({s['mean']:.1f})"

    def ratio(p):
        return "n/a" if not p else f"{p['median_of_round_ratios']:.3f}"

    for row in rows:
        ld = row["load"]
        lines.append(
            f"| {row['width']} | {row['batch']} | {fmt(row, 'invlab')} | {fmt(row, 'raw')} | {fmt(row, 'lightly')} | "
            f"{fmt(row, 'raw_peer')} | {ratio(row['invlab_to_raw'])} | {ratio(row['invlab_to_lightly'])} | "
            f"{ld['load_avg_1min_mean']:.2f} / {ld['load_avg_1min_max']:.2f} | {row['cpu_share']['other_processes']:.0%} |"
        )
    lines += ["", "## Findings against the goals", ""]
    goal_raw, goal_lightly, goal_widths = goals["invlab_to_raw_min"], goals["invlab_to_lightly_min"], goals["lightly_goal_widths"]
    def verdict(p, goal):
        r = p["round_ratios"]
        text = "met" if p["median_of_round_ratios"] >= goal else "NOT met"
        if r and min(r) < goal <= max(r):
            text += " in the median, but the per-round ratios lie on both sides of the goal, so this machine load does not resolve it"
        return text

    def spread(p, fmt, unit=""):
        r = p["round_ratios"]
        return f"{format(min(r), fmt)}{unit} to {format(max(r), fmt)}{unit}" if r else "none"

    for row in rows:
        p = row["invlab_to_raw"]
        lines.append(
            f"- width {row['width']}, batch {row['batch']}: invlab runs at {p['median_of_round_ratios']:.1%} of the raw "
            f"model (per-round ratios {spread(p, '.1%')}; ratio of medians "
            f"{p['ratio_of_medians']:.1%}): goal >= {goal_raw:.0%} {verdict(p, goal_raw)}; per CPU-second of "
            f"the process (less sensitive to other processes): {row['invlab_to_raw_cpu_time']['median_of_round_ratios']:.1%}."
        )
        q = row["invlab_to_lightly"]
        if q:
            goal = f"; goal >= {goal_lightly}x {verdict(q, goal_lightly)}" \
                if row["width"] in goal_widths else ""
            lines.append(
                f"  invlab is {q['median_of_round_ratios']:.2f}x lightly's recipe (per-round {spread(q, '.2f', 'x')}){goal}."
            )
        lp, rp = row.get("lightly_to_raw_peer"), row.get("raw_to_raw_peer")
        if lp and rp:
            lines.append(
                f"  lightly's recipe runs at {lp['median_of_round_ratios']:.1%} of the raw model in its own process; "
                f"the raw step runs {rp['median_of_round_ratios']:.2f}x as fast in invlab's process (torch "
                f"{result['torch']}, invlab's glibc malloc setting) as in the peer process (torch "
                f"{result['peer_versions'].get('torch')}, default malloc, as lightly's users run it)."
            )
        if row["errors"]:
            lines.append(f"  errors: {row['errors']}")
    if result["failed"]:
        lines.append(f"- failed (see the run's log): {', '.join(result['failed'])}.")
    if result["not_measured"]:
        lines.append(f"- not measured (the run stopped before them): {', '.join(result['not_measured'])}.")
    if not rows:
        return "\n".join(lines) + "\n"
    loads = [row["load"]["load_avg_1min_mean"] for row in rows]
    cpus = rows[0]["load"]["cpus"] if rows else os.cpu_count()
    others = [row["cpu_share"]["other_processes"] for row in rows]
    # The load average counts the benchmark's own threads and lightly's loader workers, so
    # only CPU time taken by other processes says whether the machine was shared.
    contended = max(others) > 0.1
    contended_text = ("the machine was contended (other processes shared the cores): absolute rates are low and noisy, "
                 "the interleaved ratios are the comparable figures")
    quiet_text = ("no other process took a noticeable share of the CPU (the load average counts the benchmark's own "
             "threads and lightly's loader workers)")
    lines += [
        "",
        f"Machine load: the 1-minute load average was {min(loads):.2f} to {max(loads):.2f} (mean per row) on {cpus} "
        f"CPUs, other processes took {min(others):.0%} to {max(others):.0%} of all CPU time (benchmark at nice "
        f"{rows[0]['nice']}); {contended_text if contended else quiet_text}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--data-name", default="cifar10", help="invlab data.name (image_folder for a folder)")
    parser.add_argument("--recipe", default="simclr-cifar10")
    parser.add_argument("--configs", default="16x256,64x128,16x128,64x256",
                        help="WIDTHxBATCH[xROUNDS], comma-separated, measured in this order")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--stem", default="cifar")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--projector-hidden", type=int, help="projector hidden width (default: the recipe's)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of a config that names none")
    parser.add_argument("--steps", type=int, help="steps per block (default: sized by --block-seconds)")
    parser.add_argument("--block-seconds", type=float, default=6.0)
    parser.add_argument("--min-steps", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=20)
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--lightly-skip", type=int, help="batches of a fresh lightly iterator not timed "
                        "(default: 2 where a raw step takes under 1 s, else 1)")
    parser.add_argument("--raw-peer-widths", default="16", help="widths with the raw_peer arm (comma-separated)")
    parser.add_argument("--lightly-workers", type=int, default=2)
    parser.add_argument("--lightly-workers-reason", default="one per core: lightly's examples hard-code 8 "
                        "(written for GPU machines); PyTorch's DataLoader warns above the CPU count, 2 here")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arms", default="lightly,raw_peer", help="peer arms to run (empty: invlab and raw only)")
    parser.add_argument("--peers-python", default=str(PEERS_PYTHON))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--name", default="peer_throughput")
    parser.add_argument("--goal-raw", type=float, default=0.95, help="goal: invlab / raw at least this")
    parser.add_argument("--goal-lightly", type=float, default=1.3, help="goal: invlab / lightly at least this ...")
    parser.add_argument("--goal-lightly-widths", default="16", help="... at these widths (comma-separated, or none)")
    parser.add_argument("--from-json", help="only rewrite the markdown from this result JSON")
    parser.add_argument("override", nargs="*", help="extra recipe overrides KEY=VALUE")
    args = parser.parse_args()
    if args.from_json:
        rows = json.loads(Path(args.from_json).read_text())
        result = {**rows[0]["run"], "rows": [{k: v for k, v in row.items() if k != "run"} for row in rows]}
        result.setdefault("failed", [])
        Path(args.from_json).with_suffix(".md").write_text(markdown(result))
        print(markdown(result))
        return 0
    args.arms = [a for a in args.arms.split(",") if a]
    args.goal_lightly_widths = [int(w) for w in args.goal_lightly_widths.split(",") if w.strip().isdigit()]
    args.raw_peer_widths = [int(w) for w in args.raw_peer_widths.split(",") if w.strip().isdigit()]
    device = torch.device(args.device)
    args.accelerator = "gpu" if device.type == "cuda" else "cpu"
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    else:
        torch.backends.cudnn.benchmark = True
    allocator = configure_cpu_allocator()  # as `invlab train` does
    if args.arms and not Path(args.peers_python).exists():
        raise SystemExit(f"{args.peers_python} does not exist: run `bash benchmarks/setup_peers.sh` first, "
                         "or pass --arms '' for invlab and raw only")
    images = train_images(Path(args.data)) if "lightly" in args.arms else None
    rows: list[dict] = []
    failed: list[str] = []
    done = 0
    configs = [[int(v) for v in item.lower().split("x")] for item in args.configs.split(",")]
    for config in configs:
        width, batch, rounds = (*config, args.rounds)[:3]
        try:
            rows.append(measure(args, width, batch, rounds, images, device))
        except Exception:  # one broken config must not lose the others' measurements
            traceback.print_exc()
            failed.append(f"{width}x{batch}")
        done += 1
        write(args, device, allocator, rows, [c[:2] for c in configs[done:]], failed)  # a partial run keeps its rows
    return 1 if failed else 0
    return 0


def write(args, device, allocator, rows: list[dict], pending: list[list[int]], failed: list[str]) -> None:
    peer = next((row["peer"] for row in rows if row["peer"]), {})
    result = {
        "benchmark": "peer_throughput",
        "goals": {"invlab_to_raw_min": args.goal_raw, "invlab_to_lightly_min": args.goal_lightly,
                  "lightly_goal_widths": args.goal_lightly_widths},
        "recipe": args.recipe,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs" + (
            f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "peer_versions": peer.get("versions", {}),
        "lightly_workers": args.lightly_workers,
        "lightly_workers_reason": args.lightly_workers_reason,
        "glibc_allocator_tuned": allocator,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "not_measured": [f"{w}x{b}" for w, b in pending],
        "failed": failed,
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(rows_first(result), indent=2) + "\n")
    md = markdown(result)
    (out / f"{args.name}.md").write_text(md)
    print(md, flush=True)


def rows_first(result: dict) -> list[dict]:
    """The committed JSON is a list of rows (as the issue asks); the run's shared facts go
    into every row under ``run``."""
    shared = {k: v for k, v in result.items() if k != "rows"}
    return [{**row, "run": shared} for row in result["rows"]]


if __name__ == "__main__":
    sys.exit(main())
