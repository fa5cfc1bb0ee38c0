"""Invariance versus equivariance per transformation on CIFAR-10 (the E-SSL paper's study; issue 6).

A thin wrapper over ``invlab study``: it runs the sources, targets and contrasts of the
shipped study ``essl-controlled`` (for each of h-flip, v-flip, rot90, grayscale, colour
inversion, blur and jigsaw: the base, base + T as augmentation, base + predicting T) with
the pretraining recipe ``e-simclr-cifar10`` at a CIFAR budget instead of the controlled one:

    base views     resized crop 32 px scale (0.2, 1) + colour jitter (0.4, 0.4, 0.4, 0.1) p=0.8
                   (the E-SSL CIFAR recipe without its h-flip and grayscale: none of the seven)
    extra view     the same at 16 px; lambda 0.4 (base and invariance runs: lambda 0 = SimCLR)
    budget         5k CIFAR-10 training images (subset seed 0), ResNet-18 CIFAR stem width 16,
                   batch 256, 10 epochs, SGD lr 0.06, 1 warm-up epoch then cosine, one seed
    targets        the study's linear probe and invariance / equivariance measurement (here
                   T acts on whole test images), plus kNN (k=200, t=0.1) on the 10k test images

Resumable like any study (finished cells are skipped). Writes the study into --work and
copies study.json / study.md, with the paper's verdict per transformation, to
benchmarks/results/essl_study.{json,md}.

    python benchmarks/essl_study.py [--data ...] [--work /tmp/invlab-essl-study] [--only rot90 ...]
    python benchmarks/essl_study.py --print-study      # the CIFAR study as a recipe for `invlab study`
    python benchmarks/essl_study.py --controlled       # the shipped study as is (controlled data, ~20 min)
                                                       # -> benchmarks/results/essl_controlled_study.{json,md}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from invlab.runs.config import read_recipe_file
from invlab.runs.study import collect_study, load_study, run_study, study_path, write_study_report
from invlab.runtime import configure_cpu_allocator

HERE = Path(__file__).resolve().parent
JITTER = {"name": "jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1, "p": 0.8}
# the paper's finding (CIFAR-10, Figure 2 of Dangovski et al. 2022)
PAPER_BETTER = {"hflip": "invariance", "grayscale": "invariance", "vflip": "equivariance", "rot90": "equivariance",
                "invert": "equivariance", "blur": "equivariance", "jigsaw": "equivariance"}


def cifar_study(data: str, seed: int, epochs: int, subset: int, only: list[str] | None, smoke: bool) -> dict[str, Any]:
    """The ``essl-controlled`` study recipe with the CIFAR pretraining recipe and budget."""
    study = read_recipe_file(study_path("essl-controlled"))
    study["description"] = __doc__.split("\n\n")[0] + f" {subset} training images, {epochs} epochs, seed {seed}."
    study["pretrain"] = "e-simclr-cifar10"
    study["overrides"] = {
        "data": {"root": data, "train_subset": subset, "subset_seed": 0, "batch_size": 256},
        "model": {"width": 16},
        "augment": {"pipeline": [{"name": "crop", "size": 32, "scale": [0.2, 1.0]}, dict(JITTER)]},
        "params": {"equivariance": {"view": [{"name": "crop", "size": 16, "scale": [0.2, 1.0]}, dict(JITTER)]}},
        "optim": {"lr": 0.06, "warmup_epochs": 1},
        "trainer": {"max_epochs": 1 if smoke else epochs, "check_val_every_n_epoch": 1 if smoke else epochs,
                    "enable_progress_bar": False, **({"limit_train_batches": 2} if smoke else {})},
        "monitor": {"knn": False, "probe": False},
    }
    if smoke:
        study["overrides"]["data"]["test_subset"] = 1000
    study["seeds"], study["seed_keys"] = [seed], ["seed"]
    study["targets"]["knn"] = {"protocol": "knn", "metric": "top1", "options": {"k": 200, "temperature": 0.1}}
    study["cells"] += [[s, "knn"] for s in study["sources"]]
    if only:
        keep = lambda source: source.split("-")[0] in only  # noqa: E731  ("base" or a transformation)
        study["sources"] = {k: v for k, v in study["sources"].items() if keep(k)}
        study["cells"] = [c for c in study["cells"] if keep(c[0])]
        study["contrasts"] = {k: c for k, c in study["contrasts"].items()
                              if all(keep(side.split("/")[0]) for side in (c["plus"], c["minus"]))}
    return study


def verdicts(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per transformation: which of invariance / equivariance gave the better linear probe here."""
    rows = []
    for t, paper in PAPER_BETTER.items():
        c = result["contrasts"].get(f"{t}-equivariance-minus-invariance", {})
        row: dict[str, Any] = {"transformation": t, "paper_better": paper}
        if c.get("values"):
            row["equivariance_minus_invariance_linear"] = c["mean"]
            row["better"] = "equivariance" if c["mean"] > 0 else "invariance"
            row["agrees_with_paper"] = row["better"] == paper
        rows.append(row)
    return rows


def write_results(result: dict[str, Any], work: Path, out: Path, name: str = "essl_study") -> None:
    rows = verdicts(result)
    decided = [r for r in rows if "better" in r]
    agreement = f"{sum(r['agrees_with_paper'] for r in decided)}/{len(decided)}" if decided else None
    out.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": name, **result, "verdicts": rows, "agreement_with_paper": agreement,
              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    (out / f"{name}.json").write_text(json.dumps(record, indent=2, default=float) + "\n")
    lines = [(work / "study.md").read_text().replace("![matrix](study.png)", "").rstrip(), "",
             "## Which is better here (linear probe) vs the paper", "",
             "| transformation | equivariance − invariance | better here | paper |", "|---|---|---|---|"]
    for r in rows:
        diff = r.get("equivariance_minus_invariance_linear")
        lines.append(f"| {r['transformation']} | {'–' if diff is None else f'{diff:+.4f}'} | {r.get('better', '–')} | "
                     f"{r['paper_better']} |")
    if agreement:
        lines += ["", f"Agreement with the paper's verdicts: {agreement} (one seed at a small budget: differences "
                      "under ~1 point are within seed noise; see essl_cifar10.md for the seed spread)."]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "cifar10-jpg.tar.gz"))
    parser.add_argument("--work", default="/tmp/invlab-essl-study")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--only", nargs="*", help="transformation names (and/or 'base') to run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--subset", type=int, default=5000)
    parser.add_argument("--print-study", action="store_true", help="print the study recipe (YAML) and exit")
    parser.add_argument("--controlled", action="store_true",
                        help="run the shipped study essl-controlled as is (controlled data) instead of CIFAR-10")
    parser.add_argument("--report-only", action="store_true", help="rewrite the results from finished cells")
    parser.add_argument("--smoke", action="store_true", help="2 batches, 1 epoch per run, 1k test images: checks the script only")
    args = parser.parse_args()
    if args.controlled and (args.only or args.smoke or args.seed != 0 or args.epochs != 10 or args.subset != 5000):
        parser.error("--controlled runs the shipped study as is; --only, --seed, --epochs, --subset and --smoke "
                     "apply to the CIFAR-10 study (override the shipped one with `invlab study essl-controlled key=value`)")
    if args.controlled:
        study, name = read_recipe_file(study_path("essl-controlled")), "essl_controlled_study"
    else:
        study, name = cifar_study(args.data, args.seed, args.epochs, args.subset, args.only, args.smoke), "essl_study"
    if args.print_study:
        print(yaml.safe_dump(study, sort_keys=False, default_flow_style=None, width=120))
        return 0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    recipe = work / ("essl-controlled.yaml" if args.controlled else "essl-cifar10-study.yaml")
    recipe.write_text(yaml.safe_dump(study, sort_keys=False))
    plan = load_study(str(recipe))
    if args.report_only:
        result = collect_study(plan, work)
        write_study_report(result, work)
    else:
        configure_cpu_allocator()
        result = run_study(plan, work, progress=False)
    write_results(result, work, Path(args.out), name)
    print((Path(args.out) / f"{name}.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
