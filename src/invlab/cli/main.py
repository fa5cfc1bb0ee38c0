"""``invlab``: pretrain, evaluate, measure, study, list recipes, run the demo.

Errors in the user's input (recipes, data, checkpoints) print one clear line and exit
with status 2; Ctrl-C exits with 130 and says how to resume.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import invlab
from invlab.errors import ConfigError, InvlabError

__all__ = ["main", "build_parser"]


def _add_trainer_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("trainer (override the recipe's trainer section)")
    g.add_argument("--max-epochs", type=int, help="number of epochs")
    g.add_argument("--accelerator", help="cpu, gpu, auto, ...")
    g.add_argument("--devices", help="devices per node (an integer, 'auto', or a list like 0,1)")
    g.add_argument("--num-nodes", type=int, help="number of nodes (torchrun / SLURM)")
    g.add_argument("--strategy", help="auto, ddp, ddp_spawn, ... (sharded fsdp / deepspeed are refused: not supported yet)")
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
    p.add_argument("--out", "-o", help="run folder (default: runs/<recipe>-<time>, chosen once by the launching "
                                       "process and handed to the processes Lightning starts)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--dry-run", action="store_true", help="validate the recipe, print the resolved config and exit")
    _add_trainer_flags(p)

    e = sub.add_parser("evaluate", help="evaluate a frozen encoder (kNN or linear probe)",
                       description="MODEL is a run folder, a checkpoint (.ckpt) or an exported encoder.safetensors.")
    e.add_argument("model", metavar="MODEL")
    e.add_argument("--protocol", default="knn",
                   help="images: knn (default), linear, invariance or equivariance (on the run's test data), "
                        "augmentation (pictures of a learned augmentation: InstaAug crop heat-maps and per-input "
                        "ranges, Augerino widths; needs the run's checkpoint); time series: forecast or classify")
    e.add_argument("--data", help="data set name (default: the run's)")
    e.add_argument("--data-root", help="data path (default: the run's)")
    e.add_argument("--train-subset", type=int, help="training images used as bank / probe set")
    e.add_argument("--k", type=int, default=200, help="kNN neighbours (default 200)")
    e.add_argument("--t", type=float, default=0.1, help="kNN temperature (default 0.1)")
    e.add_argument("--knn-backend", choices=["torch", "faiss"], default=None,
                   help="kNN search: torch (streaming, exact; default) or faiss (pip install 'invlab[faiss]')")
    e.add_argument("--epochs", type=int, default=100, help="linear probe (and video fine-tuning) epochs (default 100)")
    e.add_argument("--lr", type=float, default=1e-3, help="linear probe (and video fine-tuning) learning rate (default 1e-3)")
    e.add_argument("--horizons", type=int, nargs="+", help="forecast: horizons (default: the run's data.horizons)")
    e.add_argument("--head", choices=["ridge", "sgd"], help="forecast: ridge (default) or TimeDRL's trained linear head")
    e.add_argument("--features", choices=["instance", "tokens", "all"],
                   help="classify: what the probe reads: instance ([CLS], default; D features), tokens (mean and max "
                        "over the patch tokens; 2D) or all (both; 3D)")
    e.add_argument("--classifier", choices=["logistic", "svm"],
                   help="classify: the probe: logistic regression (default) or an RBF-kernel SVM (TS2Vec's "
                        "evaluation); C by cross-validation on the training split either way")
    e.add_argument("--level-scale", action="store_true",
                   help="classify: also give the probe each series' per-channel mean and log std (2C features), "
                        "which instance normalisation removes")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.add_argument("--no-progress", action="store_true")

    m = sub.add_parser(
        "measure", help="invariance (and equivariance) profile of an encoder",
        description="MODEL is a run folder, a checkpoint (.ckpt) or an exported encoder.safetensors (image or "
                    "time series), or use --model package.module:factory for your own network. For each "
                    "transformation: the invariance score (0 = invariant, ~1 = as far as another image) per layer "
                    "with a bootstrap interval; with --equivariance also how well a linear probe recovers its "
                    "parameters and how well a linear map predicts the transformed representation. Time-series "
                    "encoders are measured on their run's test series with the time-series transformations. Writes "
                    "measure.json, measure.md and invariance.png.")
    m.add_argument("model", metavar="MODEL", nargs="?")
    m.add_argument("--model", dest="model_factory", metavar="MODULE:FACTORY",
                   help="your own network: package.module:factory (or path/to/file.py:factory), a function "
                        "returning a torch.nn.Module that takes images (N, C, H, W) in [0, 1]")
    m.add_argument("--weights", help="weights for --model: .safetensors or a state-dict .pt (loaded with "
                                     "weights_only=True; every key and shape must match)")
    m.add_argument("--input-size", type=int, nargs=3, metavar=("C", "H", "W"),
                   help="input of --model: channels and square image side (default 3 32 32)")
    m.add_argument("--mean", type=float, nargs="+", help="per-channel mean subtracted before --model's forward")
    m.add_argument("--std", type=float, nargs="+", help="per-channel std divided before --model's forward")
    m.add_argument("--transforms", "-t", default="all",
                   help="comma-separated names; time series: ts_jitter, ts_scaling, magnitude_warp, time_warp, "
                        "window_slice, window_crop, segment_permutation, ts_masking, or all; images: Transforms-2D names (translate, rotate, scale, hflip, vflip, shear, hue, "
                        "brightness, grayscale, posterize, invert, sharpen, blur, noise, pixelate, elastic, erasing, "
                        "contrast), or all / geometric / photometric / corruption (default: all)")
    m.add_argument("--layers", "-l", help="comma-separated layers: output (default), stem, layer1..layer4, or any "
                                          "module name of the encoder (as in model.named_modules()); time "
                                          "series: output (instance embedding) or tokens")
    m.add_argument("--data",
                   help="controlled (default for images: a controlled set, transformations act on the object), run "
                        "(the run's own test data; the only choice, and default, for time series), or a data set "
                        "name (cifar10, image_folder, digits) with --data-root")
    m.add_argument("--data-root", help="data path for --data cifar10 / image_folder")
    m.add_argument("--image-size", type=int, help="side of the controlled images (default: the encoder's input size, else 32)")
    m.add_argument("--num-samples", type=int, default=1000, help="samples (twin pairs) per transformation (default 1000)")
    m.add_argument("--metric", choices=("l2", "cosine", "both"), default="both", help="distance (default both)")
    m.add_argument("--equivariance", action="store_true", help="also measure parameter recovery and linear-map error")
    m.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals (default 1000)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", "-o", help="report folder (default: RUN/measure, or ./invlab-measure)")
    m.add_argument("--json", action="store_true", help="print the result as JSON")
    m.add_argument("--no-progress", action="store_true")

    st = sub.add_parser(
        "study", help="a transfer study: pretrain each source x evaluate on each target, over seeds (resumable)",
        description="Run a study recipe (a shipped name or a YAML file; without one, list the shipped studies). "
                    "Finished pretraining runs and evaluations are skipped when the same command runs again, and "
                    "an interrupted run resumes from its last checkpoint. Writes study.json, study.md and study.png.")
    st.add_argument("study", nargs="?", metavar="STUDY", help="a shipped study name or a YAML file")
    st.add_argument("overrides", nargs="*", metavar="key=value",
                    help="study overrides, e.g. seeds=[0] overrides.trainer.max_epochs=2")
    st.add_argument("--out", "-o", help="study folder (default: studies/<name>)")
    st.add_argument("--dry-run", action="store_true", help="validate every configuration, print the plan and exit")
    st.add_argument("--no-progress", action="store_true")

    sh = sub.add_parser("shards", help="write an image set as tar shards (data.format=shards)",
                        description="Write the train and test splits of a recipe's data (decoded, as PNG) or one "
                                    "image folder (the files' own bytes, not decoded) as WebDataset tar shards "
                                    "with an offset index; train from them with data.format=shards data.root=OUT.")
    sh.add_argument("out", help="folder to write the shards to")
    sh.add_argument("--recipe", help="write this recipe's data splits (after its overrides)")
    sh.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides (e.g. data.root=...)")
    sh.add_argument("--folder", help="instead: an image folder root/<class>/<image>, written as split --split")
    sh.add_argument("--split", default="train", help="split name for --folder (default: train)")
    sh.add_argument("--image-size", type=int, help="--folder: the size the reader decodes to (default: the "
                                                   "first image's)")
    sh.add_argument("--channels", type=int, default=3, choices=[1, 3], help="--folder: 1 or 3 (default 3)")
    sh.add_argument("--samples-per-shard", type=int, default=10_000)

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
        summary = pretrain(None, args.resume, resume=True, progress=_show_progress(args))
        _print_summary(args.resume, summary)
        return 0
    if not args.recipe:
        raise InvlabError("pretrain needs --recipe NAME (see `invlab recipes`) or --resume RUN")
    cfg = load_recipe(args.recipe, list(args.overrides) + _trainer_overrides(args))
    if args.dry_run:
        print(dump_config(cfg), end="")
        return 0
    cfg.trainer.enable_progress_bar = cfg.trainer.enable_progress_bar and _show_progress(args)
    out = args.out or _default_run_folder(args.recipe)
    args.out = out  # named in the Ctrl-C hint
    configure_cpu_allocator()
    # processes that Lightning starts for --devices N re-run this command line: they find
    # the folder chosen here instead of a timestamp of their own
    inherited = os.environ.get(RUN_FOLDER_ENV)
    os.environ[RUN_FOLDER_ENV] = str(out)
    try:
        summary = pretrain(cfg, out, progress=_show_progress(args), command=sys.argv)
    finally:
        if inherited is None:
            os.environ.pop(RUN_FOLDER_ENV, None)
        else:
            os.environ[RUN_FOLDER_ENV] = inherited
    _print_summary(out, summary)
    return 0


RUN_FOLDER_ENV = "INVLAB_RUN_FOLDER"


def _default_run_folder(recipe: str) -> str:
    """``runs/<recipe>-<time>``, decided once per run: a process started by a distributed
    launcher (rank > 0) takes the folder its launcher chose, from ``INVLAB_RUN_FOLDER``."""
    from invlab.runs.pretrain_run import launch_rank

    inherited = os.environ.get(RUN_FOLDER_ENV)
    if inherited and launch_rank() != 0:
        return inherited
    return f"runs/{Path(recipe).stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def _print_summary(out: str, summary: dict) -> None:
    if not summary:
        return
    m = summary.get("metrics", {})
    rows = [("run folder", out), ("method", summary.get("method")), ("epochs", summary.get("epochs")),
            ("train samples/s", f"{summary.get('train_samples_per_s', 0):.1f}")]
    for key in ("test/knn_top1", "test/probe_top1", "train/loss"):
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
    extra = {key: getattr(args, key) for key in ("horizons", "head", "features", "classifier", "knn_backend")
             if getattr(args, key) is not None}
    if args.level_scale:
        extra["level_scale"] = True
    result = evaluate(args.model, args.protocol, overrides, k=args.k, temperature=args.t, epochs=args.epochs,
                      lr=args.lr, progress=_show_progress(args), **extra)
    if args.json:
        print(json.dumps(result, indent=2, default=float))
    elif "video_top1" in result:
        print(f"{args.protocol} top-1 on {result['data']} test ({result['test_videos']} videos x {result['clips_per_test_video']} "
              f"clips, {result['train_videos']} training videos): clip {result['clip_top1']:.4f}, "
              f"video {result['video_top1']:.4f}")
    elif "test_videos" in result and "top1" in result:
        print(f"{args.protocol} top-1 on {result['data']} test ({result['test_videos']} videos, centred clips, "
              f"{result['train_videos']} training videos, k={result['k']}, t={result['temperature']}): {result['top1']:.4f}")
    elif "top1" in result:
        detail = f"k={result['k']}, t={result['temperature']}" if args.protocol == "knn" else f"{result['epochs']} epochs"
        print(f"{args.protocol} top-1 on {result['data']} test ({result['test_size']} images, "
              f"{result['train_size']} training images, {detail}): {result['top1']:.4f}")
    else:
        print(result.get("table") or json.dumps(result, indent=2, default=float))
    return 0


def _cmd_measure(args: argparse.Namespace) -> int:
    from invlab.runs.measure_run import measure, measure_tables
    from invlab.runtime import configure_cpu_allocator

    configure_cpu_allocator()
    metrics = ("l2", "cosine") if args.metric == "both" else (args.metric,)
    result = measure(args.model, args.transforms, args.layers, data=args.data, data_root=args.data_root,
                     image_size=args.image_size, num_samples=args.num_samples, metrics=metrics,
                     equivariance=args.equivariance, bootstrap=args.bootstrap, seed=args.seed, out=args.out,
                     progress=_show_progress(args), model_factory=args.model_factory, weights=args.weights,
                     input_size=args.input_size, mean=args.mean, std=args.std)
    if args.json:
        print(json.dumps(result, indent=2, default=float))
    else:
        print(f"{result['model']} on {result['data']} ({result['num_samples']} samples per transformation)\n")
        print(measure_tables(result))
        print(f"\nreport: {Path(result['out']) / 'measure.md'}")
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    from invlab.runs.config import read_recipe_file
    from invlab.runs.study import load_study, run_study, study_names, study_path
    from invlab.runtime import configure_cpu_allocator

    if not args.study:
        for name in study_names():
            desc = str(read_recipe_file(study_path(name)).get("description", "")).strip()
            print(f"{name}  {desc.split('. ')[0]}")
        return 0
    plan = load_study(args.study, list(args.overrides))
    out = args.out or f"studies/{Path(args.study).stem}"
    if args.dry_run:
        r = plan.recipe
        print(f"study {plan.source_file}: {len(r.sources)} sources x {len(r.targets)} targets x {len(r.seeds)} seeds "
              f"= {len({s for s, _ in plan.cells}) * len(r.seeds)} pretraining runs, {len(plan.cells) * len(r.seeds)} "
              f"evaluations; output in {out}/")
        for (source, seed), cfg in plan.configs.items():
            print(f"  {source} seed {seed}: {cfg.method}, {cfg.trainer.max_epochs} epochs")
        return 0
    configure_cpu_allocator()
    result = run_study(plan, out, progress=_show_progress(args))
    print(f"\n{(Path(out) / 'study.md').read_text()}")
    if not result["complete"]:
        return 1
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


def _cmd_shards(args: argparse.Namespace) -> int:
    from invlab.data.shards import write_array_shards, write_folder_shards

    if (args.recipe is None) == (args.folder is None):
        raise ConfigError("invlab shards needs exactly one of --recipe or --folder")
    if args.folder is not None:
        write_folder_shards(args.folder, args.out, args.split, args.samples_per_shard, args.channels, args.image_size)
        print(f"wrote {args.split} shards of {args.folder} to {args.out}")
        return 0
    from invlab.runs.config import load_recipe
    from invlab.runs.image import load_split

    cfg = load_recipe(args.recipe, args.overrides)
    if cfg.modality.name != "image" or cfg.data.format != "array":
        raise ConfigError("invlab shards --recipe: an image recipe reading decoded data (data.format=array)")
    for split in ("train", "test"):
        subset = cfg.data.train_subset if split == "train" else cfg.data.test_subset
        data = load_split(cfg, split, progress=_show_progress(args)).subset(subset, cfg.data.subset_seed)
        write_array_shards(data, args.out, split, args.samples_per_shard)
        print(f"wrote {len(data)} {split} images to {args.out}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from invlab.cli.demo import run_demo
    from invlab.runtime import configure_cpu_allocator

    configure_cpu_allocator()
    run_demo(args.out, quick=args.quick, progress=sys.stderr.isatty())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # argparse leaves key=value overrides typed after an option (`--out RUN k=v`) unparsed
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 2
    handlers = {"pretrain": _cmd_pretrain, "evaluate": _cmd_evaluate, "measure": _cmd_measure, "study": _cmd_study,
                "recipes": _cmd_recipes, "demo": _cmd_demo, "shards": _cmd_shards}
    try:
        return handlers[args.command](args)
    except InvlabError as err:
        print(f"invlab {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = ""
        if args.command == "pretrain":
            hint = f"; continue with `invlab pretrain --resume {args.resume or args.out or 'RUN'}`"
        elif args.command == "study":
            hint = "; run the same command again to continue (finished cells are kept)"
        print(f"invlab {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
