"""Transitive Invariance on controlled object tracks: which training edges teach categories?

Object tracks come from the controlled video generator (``invlab.data.video``,
``motions=["track"]``): each track is one object instance (glyph category x colour x
texture x background) rotating, scaling and changing brightness over its frames; many
instances per category. Frames are the samples; a track is an instance.

Per seed:

1. ``intra_only``: a Triplet-Siamese network trained on intra-instance pairs (two frames
   of one track). Its features are also the self-supervised feature space in which
   inter-instance edges are mined (each frame's nearest frame of another track; the
   more similar half of those edges kept).
2. ``inter_only``: trained from scratch on the inter-instance pairs only.
3. ``transitive``: trained from scratch on intra + inter + transitive pairs
   (``A-B`` inter, ``A-A'`` and ``B-B'`` intra give ``<A,B'>``, ``<A',B>``, ``<A',B'>``).

Every run has the same number of steps and batch size. Evaluation: a linear probe for the
object category, trained on frames of held-out instances (the generator's ``val``
split) and tested on frames of other held-out instances (``test`` split); an untrained
encoder is the lower reference and an encoder trained with category labels (cross-entropy,
same views, steps and batch of images) the upper one. Mined pairs are scored by precision:
the fraction joining two frames of the same category (labels used for this measurement
only). ``embedding_cos``: the mean cosine between the embeddings of two different probe
frames, a collapse check (1 = every frame maps to one point).

The projector ends in BatchNorm by default (``--projector-norm batch``): with a plain linear
head the Triplet-Siamese loss with hardest negatives collapsed on these tracks (every
embedding within cosine ~0.98 of every other, the loss stuck at the margin; the
``previous_*`` blocks of the results keep those runs).

Protocol selection (``--select``): a fixed list of candidate settings (:data:`CANDIDATES`)
is run on the ``val`` split only (probe trained on one half of the val tracks, tested on
the other half; the test split is never read) and scored by the mean gain of the three
trained arms over the untrained encoder, a criterion blind to which arm wins; the result
goes to the ``selection`` block.

    python benchmarks/transitive_tracks.py --select --seeds 10
    python benchmarks/transitive_tracks.py --seeds 0 1 2 --key final

A block is saved after every seed, and a rerun with more seeds and the same settings keeps
the seeds already in it.

Writes benchmarks/results/transitive_tracks.json and .md (sentences computed from the
numbers). Runs on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from invlab.data.arrays import ImageArray
from invlab.data.pairs import PairDataset, pair_loader
from invlab.evaluation.features import extract_features
from invlab.evaluation.linear_probe import linear_probe
from invlab.losses.transitive import inter_instance_edges
from invlab.methods.optim import OptimSpec
from invlab.methods.transitive_invariance import TransitiveInvariance, mine_pairs
from invlab.nn import Encoder, HeadSpec, resnet18
from invlab.transforms import (
    ColorJitter,
    Compose,
    Grayscale,
    MultiViewSampler,
    RandomApply,
    RandomResizedCrop,
)

HERE = Path(__file__).resolve().parent
ARMS = ("intra_only", "inter_only", "transitive")
KINDS = {"intra_only": ["intra"], "inter_only": ["inter"], "transitive": ["intra", "inter", "transitive"]}


def track_frames(num_tracks: int, num_frames: int, num_classes: int, split: str, seed: int = 0,
                 num_backgrounds: int = 867, object_scale: float = 0.5):
    """Frames of ``num_tracks`` object tracks as an ImageArray (labels = category) and the
    track (instance) of every frame."""
    from invlab.data.video import ControlledVideos

    videos = ControlledVideos(num_tracks, motions=["track"], num_classes=num_classes, num_frames=num_frames,
                              image_size=32, split=split, structure_seed=0, content_seed=seed, motion_seed=seed,
                              num_backgrounds=num_backgrounds, object_scale=object_scale)
    clips = videos.videos(range(num_tracks))  # uint8 (B, C, T, H, W)
    frames = clips.transpose(1, 2).reshape(-1, *clips.shape[1:2], *clips.shape[3:]).numpy()
    labels = np.repeat(np.asarray(videos.factors["appearance"], dtype=np.int64), num_frames)
    track = np.repeat(np.arange(num_tracks), num_frames)
    return ImageArray(np.ascontiguousarray(frames), labels, source=f"controlled tracks ({split})"), torch.from_numpy(track)


def build_method(seed: int, args) -> TransitiveInvariance:
    torch.manual_seed(seed)
    enc = Encoder(resnet18(width=8), [0.5] * 3, [0.25] * 3)
    # colour augmentation, so that matching two frames cannot rest on colour alone
    pipe = Compose([RandomResizedCrop(32, scale=(0.5, 1.0)), RandomApply(ColorJitter(0.4, 0.4, 0.4, args.hue), p=0.8),
                    Grayscale(p=args.grayscale)])
    views = MultiViewSampler(pipe, num_views=1)
    optim = OptimSpec(name="sgd", lr=args.lr, momentum=0.9, weight_decay=5e-4, warmup_epochs=0)
    # a BatchNorm at the end of the projector centres the embeddings: without it the
    # hardest-negative ranking loss collapsed here (see the module docstring)
    return TransitiveInvariance(enc, views, projector=HeadSpec([], 64, last_norm=args.projector_norm), margin=0.5,
                                num_negatives=4, optim=optim, seed=seed)


def train_supervised(method: TransitiveInvariance, data: ImageArray, steps: int, batch: int, lr: float,
                     seed: int) -> float:
    """Upper reference: the same encoder and views trained with the category labels
    (cross-entropy through a linear head), ``steps`` steps of ``2 * batch`` frames (the
    images a pair batch holds)."""
    enc = method.encoder
    head = torch.nn.Linear(enc.feature_dim, int(data.labels.max()) + 1)
    opt = torch.optim.SGD([*enc.parameters(), *head.parameters()], lr=lr, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(seed)
    labels = torch.from_numpy(data.labels)
    enc.train()
    t = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(len(data), (2 * batch,), generator=g)
        x = torch.from_numpy(data.images[idx.numpy()]).float().div_(255.0)
        loss = torch.nn.functional.cross_entropy(head(enc(method.views(x, g)[0].x)), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t


@torch.no_grad()
def embedding_cos(method: TransitiveInvariance, data: ImageArray, n: int = 512) -> float:
    """Mean cosine between the embeddings of two different frames (collapse check)."""
    method.eval()
    x = torch.from_numpy(data.images[:n]).float().div_(255.0)
    z = torch.nn.functional.normalize(method.projector(method.encoder(x)), dim=1)
    sim = z @ z.T
    m = len(z)
    return float((sim.sum() - sim.diagonal().sum()) / (m * (m - 1)))


def train(method, data: ImageArray, pairs: torch.Tensor, track: torch.Tensor, steps: int, batch: int, seed: int) -> float:
    loader = pair_loader(PairDataset(data, pairs.numpy(), groups=track.numpy()), batch, seed=seed)
    trainer = L.Trainer(max_steps=steps, max_epochs=10_000, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=0)
    t = time.perf_counter()
    trainer.fit(method, train_dataloaders=loader)
    return time.perf_counter() - t


def probe(encoder, probe_train: ImageArray, probe_test: ImageArray, num_classes: int, seed: int) -> float:
    xtr, ytr = extract_features(encoder, probe_train, show_progress=False)
    xte, yte = extract_features(encoder, probe_test, show_progress=False)
    return linear_probe(xtr, ytr, xte, yte, num_classes, epochs=100, seed=seed).top1


def precision(pairs: torch.Tensor, labels: np.ndarray) -> float | None:
    if len(pairs) == 0:
        return None
    lab = torch.from_numpy(labels)
    return float((lab[pairs[:, 0]] == lab[pairs[:, 1]]).float().mean())


def probe_sets(args, seed: int, world: dict) -> tuple[ImageArray, ImageArray]:
    """Probe training and test frames: val and test tracks, or (``--select``) the two
    halves of ``2 * probe_tracks`` val tracks, so that selection never reads the test split."""
    if not args.select:
        probe_train, _ = track_frames(args.probe_tracks, args.frames, args.classes, "val", seed, **world)
        probe_test, _ = track_frames(args.probe_tracks, args.frames, args.classes, "test", seed, **world)
        return probe_train, probe_test
    val, _ = track_frames(2 * args.probe_tracks, args.frames, args.classes, "val", seed, **world)
    half = args.probe_tracks * args.frames
    return val.select(np.arange(half)), val.select(np.arange(half, len(val)))


def run_seed(seed: int, args) -> dict:
    world = {"num_backgrounds": args.num_backgrounds, "object_scale": args.object_scale}
    train_data, track = track_frames(args.tracks, args.frames, args.classes, "train", seed, **world)
    probe_train, probe_test = probe_sets(args, seed, world)
    out: dict = {"seed": seed, "embedding_cos": {}}
    untrained = build_method(seed, args)
    out["untrained"] = probe(untrained.encoder, probe_train, probe_test, args.classes, seed)
    out["embedding_cos"]["untrained"] = embedding_cos(untrained, probe_train)
    out["train_s"] = {}
    if args.supervised:
        sup = build_method(seed, args)
        out["train_s"]["supervised"] = train_supervised(sup, train_data, args.steps, args.batch, args.lr, seed)
        out["supervised"] = probe(sup.encoder, probe_train, probe_test, args.classes, seed)
    # 1. intra-only; its features are the feature space of the inter edges
    intra_method = build_method(seed, args)
    graph0 = mine_pairs(torch.zeros(len(track), 1), track, ["intra"])
    out["train_s"]["intra_only"] = train(intra_method, train_data, graph0["intra"], track, args.steps, args.batch, seed)
    out["intra_only"] = probe(intra_method.encoder, probe_train, probe_test, args.classes, seed)
    out["embedding_cos"]["intra_only"] = embedding_cos(intra_method, probe_train)
    feats, _ = extract_features(intra_method.encoder, train_data, show_progress=False)
    candidates = inter_instance_edges(feats, track, k=1)
    f = torch.nn.functional.normalize(feats, dim=1)
    sims = (f[candidates[:, 0]] * f[candidates[:, 1]]).sum(1)
    threshold = float(sims.quantile(1.0 - args.keep_fraction))
    graph = mine_pairs(feats, track, ["intra", "inter", "transitive"], k=1, threshold=threshold)
    out["edges"] = {kind: int(len(graph[kind])) for kind in ("intra", "inter", "transitive")}
    out["precision"] = {kind: precision(graph[kind], train_data.labels) for kind in ("intra", "inter", "transitive")}
    out["inter_threshold"] = threshold
    # 2. and 3. from scratch on the other edge sets, same budget
    for arm in ("inter_only", "transitive"):
        method = build_method(seed, args)
        pairs = mine_pairs(feats, track, KINDS[arm], k=1, threshold=threshold)["pairs"]
        out["train_s"][arm] = train(method, train_data, pairs, track, args.steps, args.batch, seed)
        out[arm] = probe(method.encoder, probe_train, probe_test, args.classes, seed)
        out["embedding_cos"][arm] = embedding_cos(method, probe_train)
    return out


CANDIDATES: dict[str, dict] = {
    # world (backgrounds, object scale) x colour augmentation; BatchNorm-ended projector, 300 steps
    "one_background_scale08_hue01": {"num_backgrounds": 1, "object_scale": 0.8, "hue": 0.1, "grayscale": 0.2},
    "one_background_scale08_hue05": {"num_backgrounds": 1, "object_scale": 0.8, "hue": 0.5, "grayscale": 0.5},
    "photo_backgrounds_scale05_hue01": {"num_backgrounds": 867, "object_scale": 0.5, "hue": 0.1, "grayscale": 0.2},
    "photo_backgrounds_scale05_hue05": {"num_backgrounds": 867, "object_scale": 0.5, "hue": 0.5, "grayscale": 0.5},
}
SELECTION_CRITERION = "mean over intra_only, inter_only, transitive of (arm - untrained) probe top-1 on val"


# two-sided 5% critical values of Student's t by degrees of freedom (seeds - 1); from 10
# degrees of freedom on, 2.23 (the value at 10) is used: it bounds every later one from above
T_CRIT = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}
T_CRIT_FROM_10 = 2.23


def _paired(diff: list[float]) -> str:
    """``mean +- sd (higher in k of n seeds; paired t ...)`` for per-seed differences."""
    dm, ds = _stats(diff)
    n = len(diff)
    text = f"{dm:+.3f} +- {ds:.3f} (higher in {sum(d > 0 for d in diff)} of {n} seeds"
    if n > 1 and ds > 0:
        t = dm / (ds / n**0.5)
        crit = T_CRIT.get(n - 1, T_CRIT_FROM_10)
        text += f"; paired t = {t:+.1f}, {'beyond' if abs(t) > crit else 'within'} seed noise at the two-sided 5% level"
    return text + ")"


def _stats(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _config_line(cfg: dict) -> str:
    norm = cfg.get("projector_norm", "none")
    return (
        f"{cfg['tracks']} training tracks x {cfg['frames']} frames, {cfg['classes']} categories, "
        f"{cfg['num_backgrounds']} background crops, object scale {cfg['object_scale']}; ResNet-18/8, projector linear"
        f"{' + BatchNorm' if norm == 'batch' else ''}, Triplet-Siamese (margin 0.5, 4 negatives: 2 hardest + 2 random; "
        f"views: crop 0.5-1, colour jitter hue {cfg.get('hue', 0.1)}, grayscale p {cfg.get('grayscale', 0.2)}), "
        f"{cfg['steps']} steps of {cfg['batch']} pairs per arm, SGD lr {cfg['lr']}; inter edges: nearest frame of "
        f"another track in the intra-only encoder's features, the most similar {cfg['keep_fraction']:.0%} kept"
    )


def markdown(res: dict, key: str) -> str:
    seeds = res["seeds"]
    cfg = res["config"]
    probe_desc = ("halves of the val tracks (selection)" if cfg.get("select") else
                  f"{cfg['probe_tracks']} val tracks to train it, {cfg['probe_tracks']} test tracks to test")
    lines = [
        f"# Transitive Invariance on controlled object tracks ({key})",
        "",
        f"{_config_line(cfg)}; linear probe for the category on frames of held-out instances ({probe_desc}). "
        f"{len(seeds)} seeds.",
        "",
        "| training edges | probe top-1 (mean +- sd) | per seed | embedding cosine (collapse: 1) |",
        "|---|---|---|---|",
    ]
    refs = ("untrained",) + (("supervised",) if "supervised" in res else ())
    for arm in refs + ARMS:
        vals = res[arm]
        m, s = _stats(vals)
        cos = [r.get("embedding_cos", {}).get(arm) for r in res["per_seed"]]
        cos_txt = f"{statistics.mean(cos):.3f}" if all(c is not None for c in cos) else "-"
        name = "supervised (upper reference, labels)" if arm == "supervised" else arm
        lines.append(f"| {name} | {m:.3f} +- {s:.3f} | {', '.join(f'{v:.3f}' for v in vals)} | {cos_txt} |")
    lines += ["", "| mined pairs | count (mean) | precision: same category (mean +- sd) |", "|---|---|---|"]
    for kind in ("intra", "inter", "transitive"):
        counts = [r["edges"][kind] for r in res["per_seed"]]
        precs = [r["precision"][kind] for r in res["per_seed"] if r["precision"][kind] is not None]
        pm, ps = _stats(precs) if precs else (float("nan"), 0.0)
        lines.append(f"| {kind} | {statistics.mean(counts):.0f} | {pm:.3f} +- {ps:.3f} |")
    chance = 1.0 / cfg["classes"]
    lines.append("")
    means = {arm: _stats(res[arm]) for arm in refs + ARMS}
    untrained = res["untrained"]
    if key.startswith("previous"):
        lines.append("- (Run before the fix that keeps both pair members' instances out of the negatives, with the "
                     "projector shown above.)")
    for arm in ARMS:
        lines.append(f"- {arm} minus untrained: {_paired([a - b for a, b in zip(res[arm], untrained)])}.")
    for a_arm, b_arm in (("transitive", "intra_only"), ("transitive", "inter_only"), ("intra_only", "inter_only")):
        lines.append(f"- {a_arm} minus {b_arm}: {_paired([a - b for a, b in zip(res[a_arm], res[b_arm])])}.")
    best = max(ARMS, key=lambda arm: means[arm][0])
    lines.append(f"- The best trained arm ({best}) is {means[best][0] - means['untrained'][0]:+.3f} relative to the "
                 f"untrained encoder; chance is {chance:.3f}.")
    if "supervised" in res:
        lines.append(f"- The supervised upper reference reaches {means['supervised'][0]:.3f}: "
                     f"{means['supervised'][0] - means[best][0]:+.3f} above the best self-supervised arm.")
    inter_prec = [r["precision"]["inter"] for r in res["per_seed"]]
    trans_prec = [r["precision"]["transitive"] for r in res["per_seed"] if r["precision"]["transitive"] is not None]
    lines.append(
        f"- mined inter-instance pairs join the same category {statistics.mean(inter_prec):.3f} of the time and "
        f"transitive pairs {statistics.mean(trans_prec) if trans_prec else float('nan'):.3f} (chance {chance:.3f})."
    )
    return "\n".join(lines) + "\n"


def selection_markdown(sel: dict) -> str:
    lines = [
        "# Protocol selection (val split only)",
        "",
        f"Criterion: {sel['criterion']}. Seeds {sel['seeds']}. Chosen: **{sel['chosen']}**.",
        "",
        "| candidate | untrained | intra_only | inter_only | transitive | inter precision | score |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, block in sel["candidates"].items():
        cells = [f"{statistics.mean(block[a]):.3f}" for a in ("untrained",) + ARMS]
        prec = statistics.mean(r["precision"]["inter"] for r in block["per_seed"])
        lines.append(f"| {name} | {' | '.join(cells)} | {prec:.3f} | {block['score']:+.3f} |")
    return "\n".join(lines) + "\n"


def _config(args) -> dict:
    return {k: v for k, v in vars(args).items() if k not in ("out", "seeds", "key")}


def run_block(args, on_seed=None, previous: dict | None = None) -> dict:
    """Every seed of ``args``; ``on_seed(block so far)`` after each (partial results saved).
    Seeds already in ``previous`` (a block of the same config) are kept, not rerun."""
    load_before = os.getloadavg()
    done = {}
    if previous is not None and previous.get("config") == _config(args):
        done = {r["seed"]: r for r in previous["per_seed"]}
        load_before = previous.get("load_before", load_before)
    per_seed = []
    arms = ("untrained",) + (("supervised",) if args.supervised else ()) + ARMS
    for seed in args.seeds:
        if seed in done:
            per_seed.append(done[seed])
        else:
            per_seed.append(run_seed(seed, args))
            print(json.dumps(per_seed[-1]), flush=True)
        block = {
            "seeds": [r["seed"] for r in per_seed], "per_seed": per_seed,
            **{arm: [r[arm] for r in per_seed] for arm in arms},
            "config": _config(args), "load_before": load_before, "load_after": os.getloadavg(),
        }
        if on_seed is not None:
            on_seed(block)
    return block


def write_results(res: dict, out: Path) -> None:
    (out / "transitive_tracks.json").write_text(json.dumps(res, indent=2) + "\n")
    order = ["final"] + [k for k in res if k not in ("final", "selection")]
    md = "\n".join(markdown(res[k], k) for k in order if isinstance(res.get(k), dict) and "per_seed" in res[k])
    if "selection" in res:
        md += "\n" + selection_markdown(res["selection"])
    (out / "transitive_tracks.md").write_text(md)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tracks", type=int, default=300)
    parser.add_argument("--probe-tracks", type=int, default=200)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--keep-fraction", type=float, default=0.5)
    parser.add_argument("--num-backgrounds", type=int, default=1, help="1: every instance on the same background")
    parser.add_argument("--object-scale", type=float, default=0.8)
    parser.add_argument("--hue", type=float, default=0.5, help="colour jitter hue range of the views")
    parser.add_argument("--grayscale", type=float, default=0.5, help="probability of a grey view")
    parser.add_argument("--projector-norm", choices=["batch", "none"], default="batch")
    parser.add_argument("--no-supervised", dest="supervised", action="store_false",
                        help="skip the supervised upper reference")
    parser.add_argument("--select", action="store_true",
                        help="run the CANDIDATES on the val split and write the selection block")
    parser.add_argument("--key", default="final", help="result block; 'final' also fills the top-level lists")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "transitive_tracks.json"  # read once: blocks of other keys are kept
    res = json.loads(path.read_text()) if path.exists() else {}
    if args.select:
        args.supervised = False  # a reference, not a criterion: not needed to choose
        candidates = {}
        for name, setting in CANDIDATES.items():
            for k, v in setting.items():
                setattr(args, k, v)
            block = run_block(args)
            block["score"] = statistics.mean(
                statistics.mean(b - u for b, u in zip(block[arm], block["untrained"])) for arm in ARMS)
            candidates[name] = block
            res["selection"] = {"criterion": SELECTION_CRITERION, "split": "val (probe: two halves of val tracks)",
                                "seeds": args.seeds, "candidates": candidates,
                                "chosen": max(candidates, key=lambda n: candidates[n]["score"])}
            write_results(res, out)  # one candidate at a time
    else:
        def save(block: dict) -> None:
            res[args.key] = block
            if args.key == "final":
                res.update({arm: block[arm] for arm in ("untrained", "supervised") + ARMS if arm in block})
                res["precision"] = {kind: [r["precision"][kind] for r in block["per_seed"]]
                                    for kind in ("inter", "transitive")}  # same category, one value per seed
            write_results(res, out)

        run_block(args, on_seed=save, previous=res.get(args.key))
    print((out / "transitive_tracks.md").read_text())


if __name__ == "__main__":
    main()
