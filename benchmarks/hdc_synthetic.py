"""Evidence for issue 15: HDC's decoupling on controlled videos whose appearance class
(the glyph) and motion class (8 motions) are independent labels.

Arms, all the same code (:class:`invlab.methods.hdc.HDC`), the same backbone, data,
augmentations, optimiser and number of epochs:

- ``sc_only``: spatial contrast alone (views share the spatial augmentation, differ in
  start time and speed), heads on res3/res4/res5 with invariance-estimated weights;
- ``tc_only``: temporal contrast alone (views share the frames, differ in crop and
  colour), same heads and weights;
- ``hdc``: both subtasks (the method);
- ``baseline``: clip SimCLR (two independently augmented clips, one head on res5).
- ``random_init``: the untrained encoder (reference for the probes).

Test of decoupling (METHODS.md section 6): SC features should predict appearance
better than motion, TC features the reverse. Features: the pooled representation of
frozen encoders; probes: logistic regression, C chosen by CV on the training split; the
appearance and motion labels of the held-out split (other instances, other trajectories),
3 uniform clips per test video averaged (video level; clip level kept too).

Per arm and seed the trained weights go to ``--work`` so a rerun only evaluates what is
missing. Also recorded: HDC's per-stage weights (from its running invariance
estimates), per-stage invariance of each encoder to the two view families (temporal
crop, spatial crop + colour) measured with ``invlab.evaluation.invariance_score``, and
training time per epoch with clips/s against the raw backbone's forward+backward rate
measured in the same process.

    nice -n 10 python benchmarks/hdc_synthetic.py [--seeds 0 1 2] [--epochs 6]

Writes benchmarks/results/hdc_synthetic.json and .md. Hyperparameters were fixed before
any run (none tuned, on test or otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ARMS = ("sc_only", "tc_only", "hdc", "baseline")
STAGES = ("res3", "res4", "res5")

CONFIG = {
    "data": {"train_videos": 256, "test_videos": 192, "num_frames": 8, "image_size": 16, "object_scale": 0.6,
             "num_classes": 8,
             "motions": ["right", "left", "up", "down", "rotate_ccw", "rotate_cw", "grow", "shrink"]},
    "clip": {"length": 4, "strides": [1, 2]},
    "spatial": [{"name": "crop", "size": 16, "scale": [0.5, 1.0]},
                {"name": "jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1, "p": 0.8}],
    "model": {"arch": "r3d_18", "width": 8, "stem_stride": 1, "head_hidden": 128, "head_out": 64},
    "train": {"batch_size": 32, "optimizer": "adamw", "lr": 2e-3, "weight_decay": 1e-4, "warmup_epochs": 1,
              "temperature": 0.5},
    "eval": {"clip_len": 4, "stride": 1, "test_clips": 3, "probe_grid": [0.01, 0.1, 1.0], "probe_folds": 3,
             "invariance_samples": 128},
}


def arm_kwargs(arm: str) -> dict:
    if arm == "sc_only":
        return {"subtasks": {"sc": ["spatial"]}}
    if arm == "tc_only":
        return {"subtasks": {"tc": ["temporal"]}}
    if arm == "hdc":
        return {"subtasks": {"sc": ["spatial"], "tc": ["temporal"]}}
    raise KeyError(arm)


def build(arm: str, seed: int):
    from invlab.methods.hdc import HDC, ClipSimCLR
    from invlab.methods.optim import OptimSpec
    from invlab.nn import Encoder, build_backbone
    from invlab.transforms.video import build_video_pipeline

    torch.manual_seed(seed)
    m = CONFIG["model"]
    encoder = Encoder(build_backbone(m["arch"], width=m["width"], stem_stride=m["stem_stride"]), [0.5] * 3, [0.25] * 3)
    pairs = build_video_pipeline([{"name": "temporal_crop", **CONFIG["clip"]}], CONFIG["spatial"])
    t = CONFIG["train"]
    optim = OptimSpec(name=t["optimizer"], lr=t["lr"], weight_decay=t["weight_decay"], warmup_epochs=t["warmup_epochs"])
    common = dict(head_hidden=m["head_hidden"], head_out=m["head_out"], temperature=t["temperature"], optim=optim,
                  seed=seed)
    if arm == "baseline":
        return ClipSimCLR(encoder, pairs, **common)
    return HDC(encoder, pairs, stages=STAGES, **arm_kwargs(arm), **common)


def data_sets(seed: int):
    from invlab.data.video import ControlledVideos

    d = CONFIG["data"]
    common = dict(num_frames=d["num_frames"], image_size=d["image_size"], num_classes=d["num_classes"],
                  object_scale=d["object_scale"], appearance=d.get("appearance", ["object"]),
                  num_colours=d.get("num_colours", 6),
                  motions=d["motions"], structure_seed=0, content_seed=seed, motion_seed=seed)
    return (ControlledVideos(d["train_videos"], split="train", **common),
            ControlledVideos(d["test_videos"], split="test", **common))


class EpochTimer:
    def __init__(self):
        self.times: list[float] = []

    def callback(self):
        import lightning as L

        timer = self

        class _Cb(L.Callback):
            def on_train_epoch_start(self, trainer, module):
                self.t0 = time.perf_counter()

            def on_train_epoch_end(self, trainer, module):
                timer.times.append(time.perf_counter() - self.t0)

        return _Cb()


def raw_rate(method, batch: int, steps: int = 3) -> float:
    """Clips/s of the bare encoder's forward + backward on clips of the training shape."""
    enc = method.encoder
    enc.train()
    s, t = CONFIG["data"]["image_size"], CONFIG["clip"]["length"]
    x = torch.rand(batch, 3, t, s, s)
    enc(x).sum().backward()
    t0 = time.perf_counter()
    for _ in range(steps):
        enc(x).sum().backward()
    enc.zero_grad(set_to_none=True)
    return steps * batch / (time.perf_counter() - t0)


def train_arm(arm: str, seed: int, epochs: int, work: Path) -> dict:
    import lightning as L

    from invlab.data.video import DecodedVideos, VideoDataModule

    folder = work / f"{arm}-seed{seed}"
    if (folder / "done.json").exists():
        return json.loads((folder / "done.json").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    train, _ = data_sets(seed)
    videos = DecodedVideos.from_array(train.to_video_array("motion"))
    method = build(arm, seed)
    dm = VideoDataModule(videos, None, clip_len=CONFIG["data"]["num_frames"], stride=1,
                         batch_size=CONFIG["train"]["batch_size"], seed=seed)
    timer = EpochTimer()
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=0, callbacks=[timer.callback()], deterministic=False)
    L.seed_everything(seed, workers=True, verbose=False)
    t0 = time.perf_counter()
    trainer.fit(method, datamodule=dm)
    wall = time.perf_counter() - t0
    if trainer.interrupted or trainer.current_epoch < epochs:
        raise SystemExit(f"{arm} seed {seed}: training stopped early (epoch {trainer.current_epoch}); nothing saved")
    steps_per_epoch = len(videos) // CONFIG["train"]["batch_size"]
    forwards = 2 * len(method.subtasks)  # clip forwards per video per step
    epoch = float(np.median(timer.times))
    raw = raw_rate(method, CONFIG["train"]["batch_size"])
    info = {
        "arm": arm, "seed": seed, "epochs": epochs, "wall_s": wall, "epoch_s_median": epoch,
        "videos_per_s": steps_per_epoch * CONFIG["train"]["batch_size"] / epoch,
        "clip_forwards_per_s": steps_per_epoch * CONFIG["train"]["batch_size"] * forwards / epoch,
        "raw_backbone_clips_per_s": raw,
        "final_loss": float(trainer.callback_metrics.get("train/loss", torch.tensor(float("nan")))),
        "stage_weights": {k: dict(zip(method.stages, w.weights().tolist())) for k, w in method.stage_weights.items()},
    }
    torch.save(method.state_dict(), folder / "method.pt")
    (folder / "done.json").write_text(json.dumps(info, indent=1))
    return info


def evaluate_arm(arm: str, seed: int, work: Path) -> dict:
    from invlab.data.video import DecodedVideos
    from invlab.evaluation.video import encode_clips, video_probe

    folder = work / f"{arm}-seed{seed}"
    cached = folder / "eval.json"
    if cached.exists():
        return json.loads(cached.read_text())
    method = build("hdc" if arm == "random_init" else arm, seed)
    if arm != "random_init":
        method.load_state_dict(torch.load(folder / "method.pt", weights_only=True))
    enc = method.encoder.eval()
    train, test = data_sets(seed)
    e = CONFIG["eval"]
    out: dict = {}
    tr_v = DecodedVideos.from_array(train.to_video_array("motion"))
    te_v = DecodedVideos.from_array(test.to_video_array("motion"))
    feats_tr = encode_clips(enc, tr_v, e["clip_len"], e["stride"], 1)
    feats_te = encode_clips(enc, te_v, e["clip_len"], e["stride"], e["test_clips"])
    for label in ("appearance", "motion"):
        ytr, yte = train.labels[label], test.labels[label]
        feats_tr.labels, feats_te.labels = ytr[feats_tr.video], yte[feats_te.video]
        r = video_probe(feats_tr, feats_te, grid=e["probe_grid"], folds=e["probe_folds"], seed=seed)
        out[label] = r.video_top1
        out[f"{label}_clip"] = r.clip_top1
    out["invariance"] = measure_invariance(enc, test, seed)
    folder.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(out, indent=1))
    return out


def measure_invariance(encoder, test, seed: int) -> dict:
    """Per-stage invariance (0 = invariant, ~1 = as far as another video) to the
    temporal view family (start + speed) and to the spatial one (crop + colour)."""
    from invlab.evaluation import invariance_score
    from invlab.transforms.registry import build_pipeline
    from invlab.transforms.video import Spatial

    n = CONFIG["eval"]["invariance_samples"]
    clips = test.render(range(min(n, len(test))))  # whole videos (8 frames)
    t = CONFIG["clip"]["length"]
    centred = clips[:, :, (clips.shape[2] - t) // 2:(clips.shape[2] - t) // 2 + t].contiguous()
    families = {"temporal": (clips, {"name": "temporal_crop", **CONFIG["clip"]}),
                "spatial": (centred, Spatial(build_pipeline(CONFIG["spatial"])))}
    res = {}
    for fam, (x, transform) in families.items():
        scores = invariance_score(encoder, x, transform, layers=[*STAGES, "output"], pool="mean", seed=seed,
                                  bootstrap=200)
        res[fam] = {k: round(v.score, 4) for k, v in scores.items()}
    return res


def summarise(results: dict, train_info: dict) -> tuple[dict, str]:
    def ms(v):
        return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0

    app = CONFIG["data"].get("appearance", ["object"])
    lines = [f"# HDC on controlled videos (appearance = {'+'.join(app)}, and motion, as independent labels)", ""]
    n_app = CONFIG["data"]["num_classes"] if app == ["object"] else CONFIG["data"].get("num_colours", 6)
    lines.append(f"Seeds: {results['seeds']}. Probes on frozen pooled features, held-out split, video level "
                 f"(mean over {CONFIG['eval']['test_clips']} clips). Chance: appearance "
                 f"{1 / n_app:.3f}, motion {1 / len(CONFIG['data']['motions']):.3f}.")
    d, m, t = CONFIG["data"], CONFIG["model"], CONFIG["train"]
    lines.append(f"Setting: {d['train_videos']} training / {d['test_videos']} test videos of {d['num_frames']} frames "
                 f"at {d['image_size']} px ({n_app} appearance classes ({'+'.join(app)}) x {len(d['motions'])} motions; "
                 f"{d['num_classes']} glyphs), views of "
                 f"{CONFIG['clip']['length']} frames at speed {CONFIG['clip']['strides']}, {m['arch']} width "
                 f"{m['width']}, batch {t['batch_size']}, {t['optimizer']} lr {t['lr']}, {results['epochs']} epochs, "
                 "same for every arm (HDC runs two subtasks, so it does twice the forward passes per step).")
    lines += ["", "| arm | appearance | motion | appearance - motion |", "|---|---|---|---|"]
    for arm in (*ARMS, "random_init"):
        a, m = results[arm]["appearance"], results[arm]["motion"]
        ma, sa = ms(a)
        mm, sm = ms(m)
        md, sd = ms(np.subtract(a, m))
        lines.append(f"| {arm} | {ma:.3f} ± {sa:.3f} | {mm:.3f} ± {sm:.3f} | {md:+.3f} ± {sd:.3f} |")
    sc, tc = results["sc_only"], results["tc_only"]
    gap_sc = np.subtract(sc["appearance"], sc["motion"])
    gap_tc = np.subtract(tc["motion"], tc["appearance"])
    sc_vs_tc_app = np.subtract(sc["appearance"], tc["appearance"])
    tc_vs_sc_mot = np.subtract(tc["motion"], sc["motion"])
    lines += ["", "## Findings (computed from the numbers above)", ""]
    lines.append(f"- SC alone predicts appearance better than motion in {int((gap_sc > 0).sum())} of {len(gap_sc)} "
                 f"seeds (mean gap {gap_sc.mean():+.3f}); TC alone predicts motion better than appearance in "
                 f"{int((gap_tc > 0).sum())} of {len(gap_tc)} seeds (mean gap {gap_tc.mean():+.3f}).")
    lines.append(f"- Relative to each other: SC beats TC on appearance in {int((sc_vs_tc_app > 0).sum())} of "
                 f"{len(sc_vs_tc_app)} seeds (mean {sc_vs_tc_app.mean():+.3f}); TC beats SC on motion in "
                 f"{int((tc_vs_sc_mot > 0).sum())} of {len(tc_vs_sc_mot)} seeds (mean {tc_vs_sc_mot.mean():+.3f}).")
    for label in ("appearance", "motion"):
        diff = np.subtract(results["hdc"][label], results["baseline"][label])
        lines.append(f"- HDC vs clip SimCLR on {label}: {diff.mean():+.3f} (better in {int((diff > 0).sum())} of "
                     f"{len(diff)} seeds) at the same number of epochs.")
    losses = {arm: np.mean([train_info[f"{arm}-{s}"]["final_loss"] for s in results["seeds"]]) for arm in ARMS}
    lines.append("- Final training loss (last epoch's mean; NT-Xent over a batch of 32 starts near ln 63 = 4.14 per "
                 "subtask): " + ", ".join(f"{arm} {v:.2f}" for arm, v in losses.items()) + ".")
    lines += ["", "## HDC's per-stage weights (from its running invariance estimates, end of training)", "",
              "| seed | subtask | " + " | ".join(STAGES) + " |", "|---|---|" + "---|" * len(STAGES)]
    for seed in results["seeds"]:
        for k, w in train_info[f"hdc-{seed}"]["stage_weights"].items():
            lines.append(f"| {seed} | {k} | " + " | ".join(f"{w[s]:.3f}" for s in STAGES) + " |")
    lines += ["", "## Per-stage invariance (invlab's invariance score, 0 = invariant; mean over seeds)", "",
              "| arm | family | " + " | ".join([*STAGES, "output"]) + " |", "|---|---|" + "---|" * (len(STAGES) + 1)]
    for arm in (*ARMS, "random_init"):
        for fam in ("temporal", "spatial"):
            vals = [np.mean([results[arm]["invariance"][i][fam][s] for i in range(len(results["seeds"]))])
                    for s in [*STAGES, "output"]]
            lines.append(f"| {arm} | {fam} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    lines += ["", "## Cost (CPU, 1 thread, shared machine)", "",
              "| arm | epoch s (median) | training videos/s | clip forwards/s | raw backbone clips/s (fwd+bwd) | ratio |",
              "|---|---|---|---|---|---|"]
    for arm in ARMS:
        rows = [train_info[f"{arm}-{s}"] for s in results["seeds"]]
        ep = np.mean([r["epoch_s_median"] for r in rows])
        vps = np.mean([r["videos_per_s"] for r in rows])
        cps = np.mean([r["clip_forwards_per_s"] for r in rows])
        raw = np.mean([r["raw_backbone_clips_per_s"] for r in rows])
        lines.append(f"| {arm} | {ep:.1f} | {vps:.1f} | {cps:.1f} | {raw:.1f} | {cps / raw:.2f} |")
    return results, "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--work", default="runs/hdc-synthetic")
    p.add_argument("--train-only", action="store_true")
    p.add_argument("--out", default=str(HERE / "results" / "hdc_synthetic"))
    p.add_argument("--smoke", action="store_true", help="tiny data, for checking the script (results not meaningful)")
    p.add_argument("--appearance", default="object", choices=["object", "colour"],
                   help="what the appearance class is: the glyph (default) or its colour (8 colours; the glyph is "
                        "then a nuisance)")
    args = p.parse_args(argv)
    if args.appearance == "colour":
        CONFIG["data"].update(appearance=["colour"], num_colours=8)
        if args.out == str(HERE / "results" / "hdc_synthetic"):
            args.out = str(HERE / "results" / "hdc_synthetic_colour")
    if args.smoke:
        CONFIG["data"].update(train_videos=64, test_videos=48)
        CONFIG["eval"].update(invariance_samples=16)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from invlab.runtime import configure_cpu_allocator

    configure_cpu_allocator()
    work = Path(args.work)
    train_info = {}
    for seed in args.seeds:
        for arm in ARMS:
            info = train_arm(arm, seed, args.epochs, work)
            train_info[f"{arm}-{seed}"] = info
            print(f"trained {arm} seed {seed}: {info['wall_s']:.0f}s, epoch {info['epoch_s_median']:.1f}s", flush=True)
    if args.train_only:
        return
    results: dict = {"seeds": args.seeds, "config": CONFIG, "epochs": args.epochs,
                     "machine": {"platform": platform.platform(), "torch": torch.__version__,
                                 "threads": torch.get_num_threads()}}
    for arm in (*ARMS, "random_init"):
        results[arm] = {"appearance": [], "motion": [], "appearance_clip": [], "motion_clip": [], "invariance": []}
        for seed in args.seeds:
            r = evaluate_arm(arm, seed, work)
            for k in ("appearance", "motion", "appearance_clip", "motion_clip", "invariance"):
                results[arm][k].append(r[k])
            print(f"evaluated {arm} seed {seed}: appearance {r['appearance']:.3f} motion {r['motion']:.3f}", flush=True)
    results["train"] = train_info
    results, md = summarise(results, train_info)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
