"""``invlab``: pretrain, evaluate, list recipes, run the demo.

Errors in the user's input (recipes, data, checkpoints) print one clear line and exit
with status 2; Ctrl-C exits with 130 and says how to resume.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import invlab
from invlab.errors import InvlabError

__all__ = ["main", "build_parser"]


def _add_trainer_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("trainer (override the recipe's trainer section)")
    g.add_argument("--max-epochs", type=int, help="number of epochs")
    g.add_argument("--accelerator", help="cpu, gpu, auto, ...")
    g.add_argument("--devices", help="devices per node (an integer, 'auto', or a list like 0,1)")
    g.add_argument("--num-nodes", type=int, help="number of nodes (torchrun / SLURM)")
    g.add_argument("--strategy", help="auto, ddp, fsdp, ...")
    g.add_argument("--precision", help="32-true, bf16-mixed, 16-mixed, ...")


def _trainer_overrides(args: argparse.Namespace) -> list[str]:
    out = []
    for flag, key in (("max_epochs", "max_epochs"), ("accelerator", "accelerator"), ("devices", "devices"),
                      ("num_nodes", "num_nodes"), ("strategy", "strategy"), ("precision", "precision")):
        value = getattr(args, flag)
        if value is not None:
            out.append(f"trainer.{key}={value}")
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="invlab",
        description="Self-supervised representation learning with explicit invariance and equivariance.",
    )
    parser.add_argument("--version", action="version", version=f"invlab {invlab.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("pretrain", help="pretrain an encoder from a recipe into a run folder",
                       description="Pretrain from a recipe. Any recipe key can be overridden as key=value "
                                   "(e.g. optim.lr=0.1 data.root=/data/cifar10).")
    p.add_argument("--recipe", help="a shipped recipe name (see `invlab recipes`) or a YAML file")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides")
    p.add_argument("--out", "-o", help="run folder (default: runs/<recipe>-<time>)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--dry-run", action="store_true", help="validate the recipe, print the resolved config and exit")
    _add_trainer_flags(p)

    e = sub.add_parser("evaluate", help="evaluate a frozen encoder (kNN or linear probe)",
                       description="MODEL is a run folder, a checkpoint (.ckpt) or an exported encoder.safetensors.")
    e.add_argument("model", metavar="MODEL")
    e.add_argument("--protocol", default="knn", help="images: knn (default) or linear; time series: forecast or classify")
    e.add_argument("--data", help="data set name (default: the run's)")
    e.add_argument("--data-root", help="data path (default: the run's)")
    e.add_argument("--train-subset", type=int, help="training images used as bank / probe set")
    e.add_argument("--k", type=int, default=200, help="kNN neighbours (default 200)")
    e.add_argument("--t", type=float, default=0.1, help="kNN temperature (default 0.1)")
    e.add_argument("--epochs", type=int, default=100, help="linear probe epochs (default 100)")
    e.add_argument("--lr", type=float, default=1e-3, help="linear probe learning rate (default 1e-3)")
    e.add_argument("--horizons", type=int, nargs="+", help="forecast: horizons (default: the run's data.horizons)")
    e.add_argument("--head", choices=["ridge", "sgd"], help="forecast: ridge (default) or TimeDRL's trained linear head")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.add_argument("--no-progress", action="store_true")

    r = sub.add_parser("recipes", help="list the shipped recipes")
    r.add_argument("name", nargs="?", help="print this recipe's YAML")

    d = sub.add_parser("demo", help="the embedded demo: no arguments, no downloads, minutes on a CPU")
    d.add_argument("--out", "-o", default="invlab-demo", help="output folder (default: invlab-demo)")
    d.add_argument("--quick", action="store_true", help="an even shorter run (for smoke tests)")
    return parser


def _show_progress(args: argparse.Namespace) -> bool:
    """Progress bars on a terminal unless --no-progress; logs get the summary only."""
    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from invlab.runs.config import dump_config, load_recipe
    from invlab.runs.pretrain_run import pretrain
    from invlab.runtime import configure_cpu_allocator

    if args.resume:
        if args.recipe or args.overrides:
            raise InvlabError("--resume continues a run with its recorded config; drop --recipe and overrides")
        configure_cpu_allocator()
        summary = pretrain(None, args.resume, resume=True, progress=_show_progress(args))  # type: ignore[arg-type]
        _print_summary(args.resume, summary)
        return 0
    if not args.recipe:
        raise InvlabError("pretrain needs --recipe NAME (see `invlab recipes`) or --resume RUN")
    cfg = load_recipe(args.recipe, list(args.overrides) + _trainer_overrides(args))
    if args.dry_run:
        print(dump_config(cfg), end="")
        return 0
    cfg.trainer.enable_progress_bar = cfg.trainer.enable_progress_bar and _show_progress(args)
    out = args.out or f"runs/{Path(args.recipe).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    configure_cpu_allocator()
    summary = pretrain(cfg, out, progress=_show_progress(args), command=sys.argv)
    _print_summary(out, summary)
    return 0


def _print_summary(out: str, summary: dict) -> None:
    if not summary:
        return
    m = summary.get("metrics", {})
    rows = [("run folder", out), ("method", summary.get("method")), ("epochs", summary.get("epochs")),
            ("train samples/s", f"{summary.get('train_samples_per_s', 0):.1f}")]
    for key in ("val/knn_top1", "val/probe_top1", "train/loss_epoch"):
        if key in m:
            rows.append((key, f"{m[key]:.4f}"))
    width = max(len(r[0]) for r in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from invlab.runs.evaluate_run import evaluate

    overrides = []
    if args.data:
        overrides.append(("name", args.data))
    if args.data_root:
        overrides.append(("root", args.data_root))
    if args.train_subset:
        overrides.append(("train_subset", args.train_subset))
    extra = {key: getattr(args, key) for key in ("horizons", "head") if getattr(args, key) is not None}
    result = evaluate(args.model, args.protocol, overrides, k=args.k, temperature=args.t, epochs=args.epochs,
                      lr=args.lr, progress=_show_progress(args), **extra)
    if args.json:
        print(json.dumps(result, indent=2, default=float))
    elif "top1" in result:
        detail = f"k={result['k']}, t={result['temperature']}" if args.protocol == "knn" else f"{result['epochs']} epochs"
        print(f"{args.protocol} top-1 on {result['data']} test ({result['test_size']} images, "
              f"{result['train_size']} training images, {detail}): {result['top1']:.4f}")
    else:
        print(result.get("table") or json.dumps(result, indent=2, default=float))
    return 0


def _cmd_recipes(args: argparse.Namespace) -> int:
    from invlab.runs.config import read_recipe_file, recipe_names, recipe_path

    if args.name:
        print(recipe_path(args.name).read_text(), end="")
        return 0
    names = recipe_names()
    width = max(len(n) for n in names)
    for name in names:
        desc = str(read_recipe_file(recipe_path(name)).get("description", "")).strip().split(". ")[0]
        print(f"{name:<{width}}  {desc}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from invlab.cli.demo import run_demo
    from invlab.runtime import configure_cpu_allocator

    configure_cpu_allocator()
    run_demo(args.out, quick=args.quick, progress=sys.stderr.isatty())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handlers = {"pretrain": _cmd_pretrain, "evaluate": _cmd_evaluate, "recipes": _cmd_recipes, "demo": _cmd_demo}
    try:
        return handlers[args.command](args)
    except InvlabError as err:
        print(f"invlab {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = ""
        if args.command == "pretrain":
            hint = f"; continue with `invlab pretrain --resume {args.resume or args.out or 'RUN'}`"
        print(f"invlab {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
