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
encoder is the reference. Mined pairs are scored by precision: the fraction joining two
frames of the same category (labels used for this measurement only).

    python benchmarks/transitive_tracks.py [--seeds 0 1 2] [--tracks 300] [--steps 150]

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


def build_method(seed: int, lr: float, steps: int) -> TransitiveInvariance:
    torch.manual_seed(seed)
    enc = Encoder(resnet18(width=8), [0.5] * 3, [0.25] * 3)
    # colour augmentation, so that matching two frames cannot rest on colour alone
    pipe = Compose([RandomResizedCrop(32, scale=(0.5, 1.0)), RandomApply(ColorJitter(0.4, 0.4, 0.4, 0.1), p=0.8),
                    Grayscale(p=0.2)])
    views = MultiViewSampler(pipe, num_views=1)
    optim = OptimSpec(name="sgd", lr=lr, momentum=0.9, weight_decay=5e-4, warmup_epochs=0)
    return TransitiveInvariance(enc, views, projector=HeadSpec([], 64), margin=0.5, num_negatives=4,
                                optim=optim, seed=seed)


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


def run_seed(seed: int, args) -> dict:
    world = {"num_backgrounds": args.num_backgrounds, "object_scale": args.object_scale}
    train_data, track = track_frames(args.tracks, args.frames, args.classes, "train", seed, **world)
    probe_train, _ = track_frames(args.probe_tracks, args.frames, args.classes, "val", seed, **world)
    probe_test, _ = track_frames(args.probe_tracks, args.frames, args.classes, "test", seed, **world)
    out: dict = {"seed": seed}
    untrained = build_method(seed, args.lr, args.steps)
    out["untrained"] = probe(untrained.encoder, probe_train, probe_test, args.classes, seed)
    # 1. intra-only; its features are the feature space of the inter edges
    intra_method = build_method(seed, args.lr, args.steps)
    graph0 = mine_pairs(torch.zeros(len(track), 1), track, ["intra"])
    out["train_s"] = {"intra_only": train(intra_method, train_data, graph0["intra"], track, args.steps, args.batch, seed)}
    out["intra_only"] = probe(intra_method.encoder, probe_train, probe_test, args.classes, seed)
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
        method = build_method(seed, args.lr, args.steps)
        pairs = mine_pairs(feats, track, KINDS[arm], k=1, threshold=threshold)["pairs"]
        out["train_s"][arm] = train(method, train_data, pairs, track, args.steps, args.batch, seed)
        out[arm] = probe(method.encoder, probe_train, probe_test, args.classes, seed)
    return out


def _stats(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def markdown(res: dict, key: str) -> str:
    seeds = res["seeds"]
    lines = [
        f"# Transitive Invariance on controlled object tracks ({key})",
        "",
        f"{res['config']['tracks']} training tracks x {res['config']['frames']} frames, {res['config']['classes']} categories, "
        f"{res['config']['num_backgrounds']} background crops, object scale {res['config']['object_scale']}; "
        f"ResNet-18/8, Triplet-Siamese (margin 0.5, 4 negatives: 2 hardest + 2 random; views: crop 0.5-1, colour jitter, "
        f"grayscale), {res['config']['steps']} steps "
        f"of {res['config']['batch']} pairs per arm; linear probe for the category on frames of held-out instances "
        f"({res['config']['probe_tracks']} tracks to train it, {res['config']['probe_tracks']} other tracks to test). "
        f"{len(seeds)} seeds.",
        "",
        "| training edges | probe top-1 (mean +- sd) | per seed |",
        "|---|---|---|",
    ]
    for arm in ("untrained",) + ARMS:
        vals = res[arm]
        m, s = _stats(vals)
        lines.append(f"| {arm} | {m:.3f} +- {s:.3f} | {', '.join(f'{v:.3f}' for v in vals)} |")
    lines += ["", "| mined pairs | count (mean) | precision: same category (mean +- sd) |", "|---|---|---|"]
    for kind in ("intra", "inter", "transitive"):
        counts = [r["edges"][kind] for r in res["per_seed"]]
        precs = [r["precision"][kind] for r in res["per_seed"] if r["precision"][kind] is not None]
        pm, ps = _stats(precs) if precs else (float("nan"), 0.0)
        lines.append(f"| {kind} | {statistics.mean(counts):.0f} | {pm:.3f} +- {ps:.3f} |")
    chance = 1.0 / res["config"]["classes"]
    lines.append("")
    t, i, e = (res[a] for a in ("transitive", "intra_only", "inter_only"))
    wins_i = sum(a > b for a, b in zip(t, i))
    wins_e = sum(a > b for a, b in zip(t, e))
    lines.append(
        f"- transitive minus intra-only: {_stats([a - b for a, b in zip(t, i)])[0]:+.3f} "
        f"(transitive higher in {wins_i} of {len(t)} seeds); transitive minus inter-only: "
        f"{_stats([a - b for a, b in zip(t, e)])[0]:+.3f} (higher in {wins_e} of {len(t)} seeds)."
    )
    means = {arm: _stats(res[arm]) for arm in ("untrained",) + ARMS}
    gap = max(abs(m - chance) for m, _ in means.values())
    sd = max(s for _, s in means.values())
    verdict = ("no arm is distinguishable from chance at this budget" if gap < 2 * sd
               else "at least one arm is further from chance than two seed standard deviations")
    lines.append(f"- Every arm's mean probe accuracy is within {gap:.3f} of chance ({chance:.3f}), with seed standard "
                 f"deviations up to {sd:.3f}: {verdict}.")
    best = max(ARMS, key=lambda arm: means[arm][0])
    lines.append(f"- The best trained arm ({best}) is {means[best][0] - means['untrained'][0]:+.3f} relative to the "
                 "untrained encoder.")
    inter_prec = [r["precision"]["inter"] for r in res["per_seed"]]
    trans_prec = [r["precision"]["transitive"] for r in res["per_seed"] if r["precision"]["transitive"] is not None]
    lines.append(
        f"- mined inter-instance pairs join the same category {statistics.mean(inter_prec):.3f} of the time and "
        f"transitive pairs {statistics.mean(trans_prec) if trans_prec else float('nan'):.3f} (chance {chance:.3f})."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tracks", type=int, default=300)
    parser.add_argument("--probe-tracks", type=int, default=200)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--keep-fraction", type=float, default=0.5)
    parser.add_argument("--num-backgrounds", type=int, default=867, help="1: every instance on the same background")
    parser.add_argument("--object-scale", type=float, default=0.5)
    parser.add_argument("--key", default="default", help="result block; 'default' also fills the top-level lists")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    per_seed = []
    for seed in args.seeds:
        per_seed.append(run_seed(seed, args))
        print(json.dumps(per_seed[-1]), flush=True)
    block = {
        "seeds": args.seeds, "per_seed": per_seed,
        **{arm: [r[arm] for r in per_seed] for arm in ("untrained",) + ARMS},
        "config": {k: v for k, v in vars(args).items() if k not in ("out", "seeds", "key")},
        "load_before": load_before, "load_after": os.getloadavg(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "transitive_tracks.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    res[args.key] = block
    if args.key == "default":
        res.update({arm: block[arm] for arm in ("untrained",) + ARMS})
    path.write_text(json.dumps(res, indent=2) + "\n")
    md = "\n".join(markdown(res[k], k) for k in res if isinstance(res[k], dict) and "per_seed" in res[k])
    (out / "transitive_tracks.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
