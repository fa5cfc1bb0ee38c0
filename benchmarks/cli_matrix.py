"""Every command line of the README's "Command line" block, run as a user types it, in a
fresh temporary folder, with small budgets given as key=value overrides (or the command's
own size options), plus:

- a ``seed=42`` pretraining run of every shipped image and time-series recipe;
- the README's multi-process command without ``--out`` on 2 CPU processes
  (``--devices 2 --strategy ddp --accelerator cpu``).

Real data from ``--data`` (default ``../shared/data``) wherever the README sets
``data.root``. The commands are read from README.md itself, so a command added there and not
known here fails the matrix instead of being skipped.

    python benchmarks/cli_matrix.py [--data ../shared/data] [--only SUBSTRING ...] [--timeout 1500]

Writes ``benchmarks/results/cli_matrix.json`` (``rows``: ``{command, ok, seconds}``, plus the
exit status and the last lines of stderr of a failed row) and ``cli_matrix.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# small budgets per kind of data (pretraining); every run still trains, validates and exports
_TRAIN = ["trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.check_val_every_n_epoch=1"]
_IMAGE_NET = ["model.width=4", "optim.warmup_epochs=0"]  # recipes warm up for up to 10 of their epochs
BUDGETS = {
    "cifar10": [*_TRAIN, *_IMAGE_NET, "data.train_subset=512", "data.test_subset=256", "data.batch_size=64",
                "monitor.knn_k=20"],
    "controlled": [*_TRAIN, *_IMAGE_NET, "data.controlled.train_samples=512", "data.controlled.test_samples=256",
                   "data.batch_size=64"],
    "digits": [*_TRAIN, *_IMAGE_NET, "data.batch_size=64"],
    "ett": [*_TRAIN, "data.seq_len=96", "data.horizons=[24,48]", "data.window_stride=24"],
    "ucr": [*_TRAIN],
    # video: the controlled clips of the synthetic recipes, and a generated UCF101 / HMDB51 tree
    "video-controlled": ["data.controlled.train_samples=32", "data.controlled.test_samples=16",
                         "data.controlled.num_frames=8", "data.controlled.image_size=16", "data.clip_len=8",
                         "augment.temporal.0.length=4", "augment.spatial.0.size=16", "model.width=4",
                         "params.head_hidden=16", "params.head_out=8", "data.batch_size=8", "trainer.max_epochs=1",
                         "trainer.check_val_every_n_epoch=1", "monitor.knn_k=5", "data.eval_clips=2"],
    "ucf101": ["data.size=16", "data.clip_len=8", "data.cache=none", "data.num_workers=0",
               "augment.temporal.0.length=4", "augment.spatial.0.size=16", "model.width=4", "model.stem_stride=1",
               "params.head_hidden=16", "params.head_out=8", "data.batch_size=4", "trainer.max_epochs=1",
               "optim.warmup_epochs=0", "trainer.check_val_every_n_epoch=1", "monitor.knn_k=3", "data.eval_clips=2"],
}
BUDGETS["hmdb51"] = BUDGETS["ucf101"]
# recipe keys a small training set cannot meet (Invariance Propagation draws 4,096 bank negatives)
RECIPE_BUDGETS = {"invp-": ["params.num_negatives=256"]}


def recipe_budget(recipe: str) -> list[str]:
    kind = recipe_kind(recipe)
    extra = [o for prefix, opts in RECIPE_BUDGETS.items() if recipe.startswith(prefix) for o in opts]
    return [*BUDGETS.get(kind, []), *extra]
# the commands' own size options (they take no recipe overrides)
COMMAND_BUDGETS = {
    "measure": ["--num-samples", "200", "--bootstrap", "100"],
    "evaluate": [],
    "study": ["seeds=[0]", "overrides.trainer.max_epochs=1", "overrides.trainer.check_val_every_n_epoch=1",
              "overrides.trainer.limit_train_batches=2", "overrides.data.controlled.train_samples=256",
              "overrides.data.controlled.test_samples=128", "overrides.data.batch_size=64"],
}


def readme_commands(readme: Path) -> list[str]:
    """The ``invlab ...`` lines of the README's "Command line" block, comments removed."""
    text = readme.read_text()
    section = text[text.index("## Command line"):]
    block = section[section.index("```bash") + len("```bash"): section.index("```", section.index("```bash") + 7)]
    lines = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("invlab"):
            lines.append(line)
    return lines


def recipe_kind(recipe: str) -> str | None:
    from invlab.runs.config import recipe_path

    text = recipe_path(recipe).read_text()
    found = re.search(r"name:\s*(cifar10|controlled|digits|ett|ucr|ucf101|hmdb51)\b", text)
    if found and found.group(1) == "controlled" and re.search(r"^method:\s*(hdc|clip_simclr)\b", text, re.M):
        return "video-controlled"
    return found.group(1) if found else None  # a data kind this script has no small budget for


def with_budget(command: str, data: Path) -> list[str]:
    """The README line as argv, real data paths filled in and a small budget appended."""
    argv = shlex.split(command)
    out: list[str] = []
    for arg in argv:
        if arg.startswith("data.root="):
            value = arg.split("=", 1)[1]
            if "ETTh1" in value:
                arg = f"data.root={data / 'ETTh1.csv'}"
            elif "UCF101" in value or "HMDB51" in value:
                arg = f"data.root={'ucf101' if 'UCF101' in value else 'hmdb51'}"  # generated in the cwd
            else:
                arg = f"data.root={data / 'cifar10-jpg.tar.gz'}"
        out.append(arg)
    sub = out[1] if len(out) > 1 else ""
    if sub == "pretrain" and "--recipe" in out:
        out += recipe_budget(out[out.index("--recipe") + 1])
    elif sub == "evaluate" and "--protocol" in out and out[out.index("--protocol") + 1] == "linear":
        out += ["--epochs", "5"]
    else:
        out += COMMAND_BUDGETS.get(sub, [])
    return out


def plan(readme: Path, data: Path) -> list[tuple[str, list[str]]]:
    """``(label, argv)`` in order: the README's lines (each with its ``or`` variants, e.g.
    ``--protocol linear``, a ``.ckpt`` and an ``encoder.safetensors``), then the extra rows."""
    from invlab.runs.config import recipe_names

    rows: list[tuple[str, list[str]]] = []
    for line in readme_commands(readme):
        rows.append((line, with_budget(line, data)))
        if line.startswith("invlab evaluate runs/simclr --protocol knn"):
            for variant in ("invlab evaluate runs/simclr --protocol linear",
                            "invlab evaluate runs/simclr/checkpoints/last.ckpt --protocol knn",
                            "invlab evaluate runs/simclr/encoder.safetensors --protocol knn"):
                rows.append((variant, with_budget(variant, data)))
        if line.startswith("invlab measure runs/simclr"):
            variant = line + " --equivariance"
            rows.append((variant, with_budget(variant, data)))
    for name in recipe_names():
        kind = recipe_kind(name)
        root = {"cifar10": [f"data.root={data / 'cifar10-jpg.tar.gz'}"], "ett": [f"data.root={data / 'ETTh1.csv'}"],
                "ucf101": ["data.root=ucf101"], "hmdb51": ["data.root=hmdb51"]}
        line = f"invlab pretrain --recipe {name} seed=42 --out runs/{name}-seed42"
        # a recipe of a data kind without a known budget still runs (its own, full budget)
        rows.append((line, [*shlex.split(line), *root.get(kind, []), *recipe_budget(name)]))
    line = "invlab pretrain --recipe simclr-digits --devices 2 --strategy ddp --accelerator cpu"
    rows.append((line + "  (no --out)", [*shlex.split(line), *BUDGETS["digits"]]))
    return rows


USER_MODEL = '''"""A user's own network, as in the README's `invlab measure --model mypkg.nets:build`."""
from collections import OrderedDict

from torch import nn


def build():
    return nn.Sequential(OrderedDict(
        layer1=nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()),
        layer2=nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU()),
        pool=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        fc=nn.Linear(16, 10),
    ))
'''


def write_user_model(cwd: Path) -> None:
    """``mypkg/nets.py`` (factory ``build``) and its weights ``net.safetensors`` in ``cwd``."""
    import torch
    from safetensors.torch import save_file

    (cwd / "mypkg").mkdir(exist_ok=True)
    (cwd / "mypkg" / "__init__.py").write_text("")
    (cwd / "mypkg" / "nets.py").write_text(USER_MODEL)
    namespace: dict[str, Any] = {}
    exec(compile(USER_MODEL, "mypkg/nets.py", "exec"), namespace)
    torch.manual_seed(0)
    save_file({k: v.contiguous() for k, v in namespace["build"]().state_dict().items()}, str(cwd / "net.safetensors"))


def write_video_layouts(cwd: Path) -> None:
    """Small generated UCF101 and HMDB51 trees (real .mp4 / .avi files and split files) in
    ``cwd``, standing in for the README's ``/data/UCF101`` (users bring the real sets)."""
    from invlab.data.video import ControlledVideos, write_hmdb51, write_ucf101

    motions = ["right", "left", "grow"]
    train = ControlledVideos(9, num_frames=10, image_size=16, motions=motions)
    test = ControlledVideos(6, num_frames=10, image_size=16, motions=motions, split="test")
    write_ucf101(cwd / "ucf101", train, test)
    write_hmdb51(cwd / "hmdb51", train, test)


def run_row(argv: list[str], cwd: Path, timeout: float) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", *argv], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
        rc, err = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, err = None, f"timed out after {timeout:.0f} s\n{(exc.stderr or b'')[-2000:]!r}"
    row: dict[str, Any] = {"ok": rc == 0, "seconds": round(time.perf_counter() - t0, 1), "exit_status": rc}
    if rc != 0:
        row["stderr_tail"] = "\n".join(err.strip().splitlines()[-6:])
    return row


def check_outputs(label: str, cwd: Path) -> str | None:
    """What a row must leave behind besides its exit status (None: fine)."""
    if label.endswith("(no --out)"):
        folders = sorted(p.name for p in (cwd / "runs").glob("simclr-digits-2*"))
        if len(folders) != 1 or not (cwd / "runs" / folders[0] / "summary.json").is_file():
            return f"expected one run folder runs/simclr-digits-<time> with a summary.json, found {folders}"
    if "--devices 4" in label:
        folders = sorted(p.name for p in (cwd / "runs").glob("simclr-cifar10-2*"))
        if len(folders) != 1 or not (cwd / "runs" / folders[0] / "encoder.safetensors").is_file():
            return f"expected one run folder runs/simclr-cifar10-<time> with an encoder, found {folders}"
    return None


def markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    ok = sum(r["ok"] for r in rows)
    lines = [
        "# Command-line matrix",
        "",
        f"Every command of README.md's \"Command line\" block (small budgets), a `seed=42` run of each of the "
        f"{result['recipes']} shipped recipes and the multi-process command without `--out`: "
        f"**{ok} of {len(rows)} ok** ({result['machine']}, {result['date']}, {result['total_seconds'] / 60:.1f} min).",
        "",
        "| command | ok | seconds |",
        "|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| `{r['command']}` | {'ok' if r['ok'] else '**FAILED**'} | {r['seconds']:.1f} |")
    failed = [r for r in rows if not r["ok"]]
    if failed:
        lines += ["", "Failures:", ""]
        for r in failed:
            lines.append(f"- `{r['command']}` (exit {r.get('exit_status')}): {r.get('stderr_tail', '')}")
    lines += ["", "Budgets: " + "; ".join(f"{k}: `{' '.join(v)}`" for k, v in BUDGETS.items())
              + "; " + "; ".join(f"{k}: `{' '.join(v)}`" for k, v in COMMAND_BUDGETS.items() if v)
              + "; `evaluate --protocol linear`: `--epochs 5`."]
    return "\n".join(lines)


def _git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--only", nargs="*", help="run only rows whose command contains one of these")
    parser.add_argument("--timeout", type=float, default=1500.0, help="seconds per command")
    parser.add_argument("--out", help="results folder (default: benchmarks/results for a full run; a run with "
                                      "--only writes only where --out says)")
    parser.add_argument("--keep", help="run in this folder (kept) instead of a temporary one")
    parser.add_argument("--list", action="store_true", help="print the rows and exit")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    data = Path(args.data).resolve()
    rows = plan(ROOT / "README.md", data)
    if args.only:
        rows = [(label, argv) for label, argv in rows if any(s in label for s in args.only)]
    if args.list:
        for label, argv in rows:
            print(f"{label}\n    {shlex.join(argv)}")
        return 0
    results: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="invlab-cli-matrix-") as tmp:
        cwd = Path(args.keep or tmp)
        cwd.mkdir(parents=True, exist_ok=True)
        write_user_model(cwd)
        write_video_layouts(cwd)
        for label, argv in rows:
            row = run_row(argv, cwd, args.timeout)
            problem = check_outputs(label, cwd) if row["ok"] else None
            if problem:
                row.update(ok=False, stderr_tail=problem)
            results.append({"command": label, **row, "argv": ["invlab", *argv[1:]]})
            print(f"{'ok' if row['ok'] else 'FAILED':>6}  {row['seconds']:7.1f} s  {label}", flush=True)
            if not row["ok"]:
                print("        " + row.get("stderr_tail", "").replace("\n", "\n        "), flush=True)
    from invlab.runs.config import recipe_names

    result = {"benchmark": "cli_matrix", "rows": results, "recipes": len(recipe_names()),
              "all_ok": all(r["ok"] for r in results), "total_seconds": time.perf_counter() - t0,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, OMP_NUM_THREADS=1 per process",
              "date": time.strftime("%Y-%m-%d"), "git_revision": _git_revision()}
    out = Path(args.out) if args.out else None if args.only else HERE / "results"
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "cli_matrix.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "cli_matrix.md").write_text(markdown(result) + "\n")
    print(markdown(result))
    return 0 if result["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
