"""Evidence for issue 15: does HDC decouple appearance from motion? Controlled videos
whose appearance class (the object's colour) and motion class (its direction of travel)
are independent labels.

Arms, all the same code (:class:`invlab.methods.hdc.HDC`), backbone, data,
augmentations, optimiser and number of epochs:

- ``sc_only``: spatial contrast alone (the two views share the spatial augmentation,
  crop + colour jitter, and differ in start time and playback speed), heads on
  res3/res4/res5 with invariance-estimated stage weights;
- ``tc_only``: temporal contrast alone (the views share the frames and differ in crop and
  colour), same heads and weights;
- ``hdc``: both subtasks (the method);
- ``baseline``: clip SimCLR (two independently augmented clips, one head on res5);
- ``random_init``: the untrained encoder (the floor of the probes).

Negatives in every arm are the other videos of the batch (NT-Xent over 2B views), as in
METHODS.md section 6, which specifies the subtasks only by what their *positives* share.

The test (METHODS.md section 6): SC features should predict appearance better than
motion, TC features the reverse. What makes it a test here (protocol v2; v1 is kept in
``hdc_synthetic_v1.*``): the appearance class is a factor that the spatial family
changes (colour, with hue jitter over the whole colour wheel), so SC, whose positives
share it, may keep it and TC, whose positives differ in it, must drop it; the motion
classes are four directions, which no single frame (no static feature) can predict; the
glyph (4 shapes) and the background (8 photo crops) are nuisances drawn independently of
both labels, so neither offers a per-video shortcut.

Protocol: features are the pooled representation of the frozen encoder; probes are
logistic regression (standardised), C chosen by grouped CV on the training videos; 3
uniform clips per video, video-level accuracy (clip level kept too). The number of
epochs is chosen with ``--select`` on a *validation* split (independent videos, own
content and motion streams; never the test split) from snapshots of one run per arm
(constant learning rate after a one-epoch warmup, so the snapshot at epoch e is an
e-epoch run); criterion: mean validation accuracy over the four trained arms and both
labels, the smallest epoch count within 0.01 of the best. The final run trains every
arm for that many epochs on 3 seeds and reports the test split.

Each arm-seed is a cached cell under ``--work/<config hash>/`` (trained weights, training
info, evaluation), so an interrupted run resumes. Also recorded: HDC's per-stage weights
(its running invariance estimates), per-stage invariance of every encoder to the two view
families (temporal crop; spatial crop + colour) with ``invlab.evaluation.invariance_score``
(what ``invlab measure`` reports), and training time per epoch, clips/s against the raw
backbone's forward+backward rate measured in the same process.

    nice -n 10 python benchmarks/hdc_synthetic.py --select        # choose the epochs (validation)
    nice -n 10 python benchmarks/hdc_synthetic.py [--seeds 0 1 2]  # the result (test)

Writes benchmarks/results/hdc_synthetic_selection.json and hdc_synthetic.json / .md.
"""

from __future__ import annotations

import argparse
import hashlib
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
    "protocol": 2,
    "data": {"train_videos": 512, "val_videos": 256, "test_videos": 256, "num_frames": 8, "image_size": 16,
             "object_scale": 0.7, "appearance": ["colour"], "num_colours": 4, "num_glyphs": 4, "num_backgrounds": 8,
             "motions": ["right", "left", "up", "down"]},
    "clip": {"length": 4, "strides": [1, 2]},
    "spatial": [{"name": "crop", "size": 16, "scale": [0.5, 1.0]},
                {"name": "jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.5, "p": 0.8}],
    "model": {"conv": "r3d", "layers": [2, 2, 2, 2], "width": 8, "stem_stride": 1, "head_hidden": 128,
              "head_out": 64},
    "train": {"batch_size": 32, "optimizer": "adamw", "lr": 2e-3, "weight_decay": 1e-4, "warmup_epochs": 1,
              "schedule": "constant", "temperature": 0.5},
    "eval": {"clip_len": 4, "stride": 1, "clips": 3, "probe_grid": [0.01, 0.1, 1.0], "probe_folds": 3,
             "invariance_samples": 128},
    "selection": {"seed": 100, "epochs": [5, 10, 15, 20], "tolerance": 0.01},
}


def config_key() -> str:
    text = json.dumps({k: v for k, v in CONFIG.items() if k != "selection"}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


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
    from invlab.nn import Encoder
    from invlab.nn.video_resnet import VideoResNet
    from invlab.transforms.video import build_video_pipeline

    torch.manual_seed(seed)
    m = CONFIG["model"]
    backbone = VideoResNet(m["conv"], tuple(m["layers"]), m["width"], 3, m["stem_stride"])
    encoder = Encoder(backbone, [0.5] * 3, [0.25] * 3)
    pairs = build_video_pipeline([{"name": "temporal_crop", **CONFIG["clip"]}], CONFIG["spatial"])
    t = CONFIG["train"]
    optim = OptimSpec(name=t["optimizer"], lr=t["lr"], weight_decay=t["weight_decay"], warmup_epochs=t["warmup_epochs"],
                      schedule=t["schedule"])
    common = dict(head_hidden=m["head_hidden"], head_out=m["head_out"], temperature=t["temperature"], optim=optim,
                  seed=seed)
    if arm == "baseline":
        return ClipSimCLR(encoder, pairs, **common)
    return HDC(encoder, pairs, stages=STAGES, **arm_kwargs(arm), **common)


def data_set(seed: int, split: str):
    from invlab.data.video import ControlledVideos

    d = CONFIG["data"]
    return ControlledVideos(d[f"{split}_videos"], split=split, num_frames=d["num_frames"], image_size=d["image_size"],
                            num_classes=d["num_glyphs"], object_scale=d["object_scale"], appearance=d["appearance"],
                            num_colours=d["num_colours"], num_backgrounds=d["num_backgrounds"], motions=d["motions"],
                            structure_seed=0, content_seed=seed, motion_seed=seed)


class Snapshots:
    """Epoch times, and the method's weights after the chosen epochs."""

    def __init__(self, folder: Path, epochs: list[int]):
        self.folder, self.epochs, self.times, self.losses = folder, set(epochs), [], []

    def callback(self):
        import lightning as L

        snap = self

        class _Cb(L.Callback):
            def on_train_epoch_start(self, trainer, module):
                self.t0 = time.perf_counter()

            def on_train_epoch_end(self, trainer, module):
                snap.times.append(time.perf_counter() - self.t0)
                # this epoch's mean (Lightning's logged metrics lag one epoch in a callback)
                snap.losses.append(float(module.epoch_averages.means().get("loss", float("nan"))))
                epoch = trainer.current_epoch + 1
                if epoch in snap.epochs:
                    torch.save(module.state_dict(), snap.folder / f"method-e{epoch}.pt")

        return _Cb()


def raw_rate(method, batch: int, steps: int = 5) -> float:
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


def cell(work: Path, arm: str, seed: int) -> Path:
    return work / config_key() / f"{arm}-seed{seed}"


def train_arm(arm: str, seed: int, epochs: int, work: Path, snapshots: list[int] | None = None) -> dict:
    import lightning as L

    from invlab.data.video import DecodedVideos, VideoDataModule

    folder = cell(work, arm, seed)
    done = folder / f"train-e{epochs}.json"
    if done.exists():
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    train = data_set(seed, "train")
    videos = DecodedVideos.from_array(train.to_video_array("motion"))
    method = build(arm, seed)
    t = CONFIG["train"]
    dm = VideoDataModule(videos, None, clip_len=CONFIG["data"]["num_frames"], stride=1, batch_size=t["batch_size"],
                         seed=seed)
    snap = Snapshots(folder, sorted(set(snapshots or []) | {epochs}))
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=0, callbacks=[snap.callback()], deterministic=False)
    L.seed_everything(seed, workers=True, verbose=False)
    t0 = time.perf_counter()
    trainer.fit(method, datamodule=dm)
    wall = time.perf_counter() - t0
    if trainer.interrupted or trainer.current_epoch < epochs:
        raise SystemExit(f"{arm} seed {seed}: training stopped early (epoch {trainer.current_epoch}); nothing saved")
    steps = len(videos) // t["batch_size"]
    forwards = 2 * len(method.subtasks)  # clip forwards (and backwards) per video per step
    epoch = float(np.median(snap.times))
    raw = raw_rate(method, t["batch_size"])
    info = {
        "arm": arm, "seed": seed, "epochs": epochs, "wall_s": wall, "epoch_s_median": epoch,
        "epoch_s": snap.times, "loss_per_epoch": snap.losses,
        "videos_per_s": steps * t["batch_size"] / epoch,
        "clip_forwards_per_s": steps * t["batch_size"] * forwards / epoch,
        "raw_backbone_clips_per_s": raw,
        "final_loss": snap.losses[-1],
        "stage_weights": {k: dict(zip(method.stages, w.weights().tolist())) for k, w in method.stage_weights.items()},
        "stage_invariance_estimate": {k: dict(zip(method.stages, w.invariance.tolist()))
                                      for k, w in method.stage_weights.items()},
    }
    done.write_text(json.dumps(info, indent=1))
    return info


def encoder_at(arm: str, seed: int, epochs: int, work: Path):
    method = build("hdc" if arm == "random_init" else arm, seed)
    if arm != "random_init":
        method.load_state_dict(torch.load(cell(work, arm, seed) / f"method-e{epochs}.pt", weights_only=True))
    return method.encoder.eval()


def evaluate_arm(arm: str, seed: int, epochs: int, split: str, work: Path, invariance: bool) -> dict:
    from invlab.data.video import DecodedVideos
    from invlab.evaluation.video import encode_clips, video_probe

    folder = cell(work, arm, seed)
    cached = folder / f"eval-{split}-e{0 if arm == 'random_init' else epochs}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    enc = encoder_at(arm, seed, epochs, work)
    train, test = data_set(seed, "train"), data_set(seed, split)
    e = CONFIG["eval"]
    out: dict = {}
    tr_v = DecodedVideos.from_array(train.to_video_array("motion"))
    te_v = DecodedVideos.from_array(test.to_video_array("motion"))
    with torch.no_grad():
        feats_tr = encode_clips(enc, tr_v, e["clip_len"], e["stride"], e["clips"])
        feats_te = encode_clips(enc, te_v, e["clip_len"], e["stride"], e["clips"])
    for label in ("appearance", "motion"):
        feats_tr.labels, feats_te.labels = train.labels[label][feats_tr.video], test.labels[label][feats_te.video]
        r = video_probe(feats_tr, feats_te, grid=e["probe_grid"], folds=e["probe_folds"], seed=seed)
        out[label] = r.video_top1
        out[f"{label}_clip"] = r.clip_top1
    if invariance:
        out["invariance"] = measure_invariance(enc, test, seed)
    folder.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(out, indent=1))
    return out


def measure_invariance(encoder, test, seed: int) -> dict:
    """Per-stage invariance (0 = invariant, ~1 = as far apart as two different videos) to
    the temporal view family (start + speed) and to the spatial one (crop + colour)."""
    from invlab.evaluation import invariance_score
    from invlab.transforms.registry import build_pipeline
    from invlab.transforms.video import Spatial

    n = CONFIG["eval"]["invariance_samples"]
    clips = test.render(range(min(n, len(test))))  # whole videos
    t = CONFIG["clip"]["length"]
    start = (clips.shape[2] - t) // 2
    centred = clips[:, :, start:start + t].contiguous()
    families = {"temporal": (clips, {"name": "temporal_crop", **CONFIG["clip"]}),
                "spatial": (centred, Spatial(build_pipeline(CONFIG["spatial"])))}
    res = {}
    for fam, (x, transform) in families.items():
        scores = invariance_score(encoder, x, transform, layers=[*STAGES, "output"], pool="mean", seed=seed,
                                  bootstrap=200)
        res[fam] = {k: round(v.score, 4) for k, v in scores.items()}
    return res


def ms(v) -> tuple[float, float]:
    v = np.asarray(v, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def select(work: Path) -> dict:
    """Train every arm once (selection seed) with snapshots; pick the epochs on validation."""
    s = CONFIG["selection"]
    seed, candidates = s["seed"], s["epochs"]
    rows: dict = {"seed": seed, "candidates": candidates, "config_key": config_key(), "val": {}, "train": {}}
    for arm in ARMS:
        rows["train"][arm] = train_arm(arm, seed, max(candidates), work, snapshots=candidates)
        print(f"selection: trained {arm} ({rows['train'][arm]['wall_s']:.0f}s)", flush=True)
    rows["val"]["random_init"] = evaluate_arm("random_init", seed, 0, "val", work, invariance=False)
    for arm in ARMS:
        rows["val"][arm] = {e: evaluate_arm(arm, seed, e, "val", work, invariance=False) for e in candidates}
    score = {e: float(np.mean([rows["val"][a][e][lab] for a in ARMS for lab in ("appearance", "motion")]))
             for e in candidates}
    best = max(score.values())
    chosen = min(e for e in candidates if score[e] >= best - s["tolerance"])
    rows.update(score=score, chosen_epochs=chosen)
    lines = [f"selection (seed {seed}, validation split): mean accuracy over arms and labels per epoch count"]
    lines += [f"  {e:>3} epochs: {score[e]:.3f}  " + "  ".join(
        f"{a} {rows['val'][a][e]['appearance']:.2f}/{rows['val'][a][e]['motion']:.2f}" for a in ARMS)
        for e in candidates]
    ri = rows["val"]["random_init"]
    lines.append(f"  random_init: {ri['appearance']:.2f}/{ri['motion']:.2f}   chosen: {chosen} epochs")
    print("\n".join(lines), flush=True)
    return rows


def summarise(results: dict, train_info: dict, selection: dict | None) -> str:
    d, m, t = CONFIG["data"], CONFIG["model"], CONFIG["train"]
    seeds = results["seeds"]
    n_app, n_mot = d["num_colours"], len(d["motions"])
    lines = ["# HDC on controlled videos: appearance (object colour) and motion (direction) as independent labels",
             ""]
    lines.append(f"Protocol {CONFIG['protocol']} (the earlier protocol's results, motion at chance for every arm, are kept in "
                 "`hdc_synthetic_v1.md` and `hdc_synthetic_colour_v1.md`: 8 glyphs or 8 colours x 8 motions, 867 "
                 "photo backgrounds, 256 videos, no validation-chosen budget). Seeds "
                 f"{seeds}; probes on frozen pooled features, test split (other objects, other trajectories), video "
                 f"level (mean over {CONFIG['eval']['clips']} uniform clips). Chance: appearance {1 / n_app:.3f}, "
                 f"motion {1 / n_mot:.3f}.")
    lines.append("")
    lines.append(f"Setting: {d['train_videos']} training / {d['test_videos']} test videos of {d['num_frames']} frames at "
                 f"{d['image_size']} px; appearance = colour of the object ({n_app} colours), motion = "
                 f"{', '.join(d['motions'])}; nuisances: {d['num_glyphs']} glyphs, {d['num_backgrounds']} photo "
                 f"backgrounds, object scale {d['object_scale']}. Views: {CONFIG['clip']['length']} frames at speed "
                 f"{CONFIG['clip']['strides']}; spatial family: crop (scale {CONFIG['spatial'][0]['scale']}) + colour "
                 f"jitter (hue ±{CONFIG['spatial'][1]['hue']}, p {CONFIG['spatial'][1]['p']}). "
                 f"{m['conv'].upper()}-{2 + 2 * sum(m['layers'])} (blocks {m['layers']}) width {m['width']}, stem "
                 f"stride {m['stem_stride']}; batch {t['batch_size']}, {t['optimizer']} lr {t['lr']} "
                 f"({t['schedule']} after {t['warmup_epochs']} warmup epoch), {results['epochs']} epochs for every arm "
                 "(HDC runs both subtasks, so twice the clip forwards per step). One CPU thread on a machine shared "
                 "with other jobs.")
    lines += ["", "Pairs (as METHODS.md section 6): SC's two views share the spatial draw (crop and jitter) and differ "
              "in start and speed; TC's share the frames and differ in the spatial draw; clip SimCLR's share nothing. "
              "Negatives: in every arm the views of the batch's other videos (NT-Xent over 2B views; "
              "`tests/methods/test_hdc.py` checks this against a naive loop). Another time window of the same video "
              "is never a negative (such negatives would ask the features to tell moments of one video apart, e.g. by the "
              "object's position; the motion class, the same in every window of a video, cannot do that)."]
    if selection is not None:
        sc = ", ".join(f"{e}: {v:.3f}" for e, v in selection["score"].items())
        lines += ["", f"Budget chosen on the validation split (seed {selection['seed']}, independent videos, never the "
                  f"test split): mean validation accuracy over the four trained arms and both labels per epoch count "
                  f"{{{sc}}}; chosen: {selection['chosen_epochs']} epochs (smallest within "
                  f"{CONFIG['selection']['tolerance']} of the best)."]
    else:
        lines += ["", f"Budget: {results['epochs']} epochs, given on the command line (not selected for this "
                  "configuration; the main protocol's validation choice)."]
    lines += ["", "| arm | appearance | motion | appearance - motion | final loss |", "|---|---|---|---|---|"]
    for arm in (*ARMS, "random_init"):
        a, mo = results[arm]["appearance"], results[arm]["motion"]
        ma, sa = ms(a)
        mm, sm = ms(mo)
        md, sd = ms(np.subtract(a, mo))
        loss = "" if arm == "random_init" else "{:.2f} ± {:.2f}".format(
            *ms([train_info[f"{arm}-{s}"]["final_loss"] for s in seeds]))
        lines.append(f"| {arm} | {ma:.3f} ± {sa:.3f} | {mm:.3f} ± {sm:.3f} | {md:+.3f} ± {sd:.3f} | {loss} |")
    lines.append("")
    lines.append("Means ± standard deviations over seeds (video level). Per-seed values, clip-level accuracies and "
                 "the per-epoch losses are in the JSON. Losses: NT-Xent with a batch of 32 starts near ln 63 = 4.14 "
                 "per subtask and stage; HDC's is the sum over its two subtasks.")
    sc, tc, ri = results["sc_only"], results["tc_only"], results["random_init"]
    gap_sc = np.subtract(sc["appearance"], sc["motion"])
    gap_tc = np.subtract(tc["motion"], tc["appearance"])
    app = np.subtract(sc["appearance"], tc["appearance"])
    mot = np.subtract(tc["motion"], sc["motion"])
    n = len(seeds)
    lines += ["", "## Findings (computed from the numbers above)", ""]
    lines.append(f"- Within each arm: SC alone predicts appearance better than motion in {int((gap_sc > 0).sum())} of "
                 f"{n} seeds (mean gap {gap_sc.mean():+.3f}); TC alone predicts motion better than appearance in "
                 f"{int((gap_tc > 0).sum())} of {n} seeds (mean gap {gap_tc.mean():+.3f}).")
    lines.append(f"- Across the two arms (same encoder, data and budget): SC beats TC on appearance in "
                 f"{int((app > 0).sum())} of {n} seeds (mean {app.mean():+.3f}); TC beats SC on motion in "
                 f"{int((mot > 0).sum())} of {n} seeds (mean {mot.mean():+.3f}).")
    within = bool((gap_sc > 0).all() and (gap_tc > 0).all())
    across = bool((app > 0).all() and (mot > 0).all())
    if within:
        verdict = "decoupling shows in the strict sense of METHODS.md section 6 (both within-arm gaps in every seed)"
    elif across:
        verdict = ("decoupling shows across arms (SC is the better appearance encoder and TC the better motion "
                   "encoder in every seed) but not in the strict within-arm sense of METHODS.md section 6")
    else:
        verdict = "decoupling does not show consistently at this budget"
    lines.append(f"- Verdict: {verdict}.")
    for arm in ARMS:
        parts = []
        for label in ("appearance", "motion"):
            diff = np.subtract(results[arm][label], ri[label])
            parts.append(f"{label} {diff.mean():+.3f} (above it in {int((diff > 0).sum())} of {n} seeds)")
        lines.append(f"- {arm} vs the untrained encoder: " + "; ".join(parts) + ".")
    for label, other in (("appearance", "sc_only"), ("motion", "tc_only")):
        diff = np.subtract(results["hdc"][label], results[other][label])
        lines.append(f"- HDC (both subtasks, one backbone) vs {other} on {label}: {diff.mean():+.3f} (better in "
                     f"{int((diff > 0).sum())} of {n} seeds).")
    inv = {arm: {fam: np.mean([results[arm]["invariance"][i][fam]["output"] for i in range(n)])
                 for fam in ("temporal", "spatial")} for arm in (*ARMS, "random_init")}
    lines.append(f"- Invariance of the output (0 = invariant) to the spatial family (crop + colour): SC "
                 f"{inv['sc_only']['spatial']:.3f}, TC {inv['tc_only']['spatial']:.3f}, HDC {inv['hdc']['spatial']:.3f}, "
                 f"clip SimCLR {inv['baseline']['spatial']:.3f}, untrained {inv['random_init']['spatial']:.3f}; to the "
                 f"temporal family (start + speed): SC {inv['sc_only']['temporal']:.3f}, TC "
                 f"{inv['tc_only']['temporal']:.3f}, HDC {inv['hdc']['temporal']:.3f}, clip SimCLR "
                 f"{inv['baseline']['temporal']:.3f}, untrained {inv['random_init']['temporal']:.3f}.")
    for k in ("sc", "tc"):
        w = {s: np.mean([train_info[f"hdc-{seed}"]["stage_weights"][k][s] for seed in seeds]) for s in STAGES}
        dev = max(abs(v - 1 / len(STAGES)) for v in w.values())
        lines.append(f"- HDC's {k.upper()} stage weights at the end (mean over seeds): "
                     + ", ".join(f"{s} {w[s]:.3f}" for s in STAGES)
                     + f"; at most {dev:.3f} from equal weights ({1 / len(STAGES):.3f}).")
    for label in ("appearance", "motion"):
        diff = np.subtract(results["hdc"][label], results["baseline"][label])
        lines.append(f"- HDC vs clip SimCLR on {label}: {diff.mean():+.3f} (better in {int((diff > 0).sum())} of {n} "
                     "seeds) at the same number of epochs.")
    lines += ["", "## HDC's per-stage weights and the running invariance estimates they come from (end of training)",
              "", "Estimate: moving average of the mean cosine similarity of the stage's positive pairs (head outputs); "
              "weight: the estimate normalised over the stages.", "",
              "| seed | subtask | " + " | ".join(f"{s} weight" for s in STAGES) + " | "
              + " | ".join(f"{s} estimate" for s in STAGES) + " |", "|---|---|" + "---|" * (2 * len(STAGES))]
    for seed in seeds:
        info = train_info[f"hdc-{seed}"]
        for k, w in info["stage_weights"].items():
            est = info["stage_invariance_estimate"][k]
            lines.append(f"| {seed} | {k} | " + " | ".join(f"{w[s]:.3f}" for s in STAGES) + " | "
                         + " | ".join(f"{est[s]:.3f}" for s in STAGES) + " |")
    lines += ["", "## Per-stage invariance (invlab's invariance score, 0 = invariant; mean over seeds, test videos)", "",
              "| arm | family | " + " | ".join([*STAGES, "output"]) + " |", "|---|---|" + "---|" * (len(STAGES) + 1)]
    for arm in (*ARMS, "random_init"):
        for fam in ("temporal", "spatial"):
            vals = [np.mean([results[arm]["invariance"][i][fam][s] for i in range(n)]) for s in [*STAGES, "output"]]
            lines.append(f"| {arm} | {fam} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    lines += ["", "## Cost (CPU, 1 thread, shared machine)", "",
              "| arm | epoch s (median) | training videos/s | clip fwd+bwd/s | raw backbone clips/s (fwd+bwd, same run) "
              "| ratio |", "|---|---|---|---|---|---|"]
    for arm in ARMS:
        rows = [train_info[f"{arm}-{s}"] for s in seeds]
        ep = np.mean([r["epoch_s_median"] for r in rows])
        vps = np.mean([r["videos_per_s"] for r in rows])
        cps = np.mean([r["clip_forwards_per_s"] for r in rows])
        raw = np.mean([r["raw_backbone_clips_per_s"] for r in rows])
        lines.append(f"| {arm} | {ep:.1f} | {vps:.1f} | {cps:.1f} | {raw:.1f} | {cps / raw:.2f} |")
    lines.append("")
    lines.append("ratio = clip forwards+backwards per second in training (augmentation, heads, loss, optimiser and "
                 "Lightning included) over the bare encoder's forward+backward rate on clips of the same shape.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="default: the epochs chosen by --select")
    p.add_argument("--select", action="store_true", help="choose the epochs on the validation split")
    p.add_argument("--work", default="runs/hdc-synthetic")
    p.add_argument("--arms", nargs="+", default=list(ARMS), help="train only these (for splitting a run)")
    p.add_argument("--train-only", action="store_true")
    p.add_argument("--out", default=None, help="default: results/hdc_synthetic (with --hue 0.1: hdc_synthetic_hue0p1)")
    p.add_argument("--hue", type=float, default=None,
                   help="a variant: the spatial family's hue jitter (protocol: 0.5, the whole colour wheel)")
    args = p.parse_args(argv)
    if args.hue is not None:
        CONFIG["spatial"][1]["hue"] = args.hue
    if args.out is None:
        args.out = str(HERE / "results" / ("hdc_synthetic" if args.hue is None else f"hdc_synthetic_hue{args.hue:g}".replace(".", "p")))
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from invlab.runtime import configure_cpu_allocator

    configure_cpu_allocator()
    work = Path(args.work)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sel_path = out.parent / f"{out.name}_selection.json"
    if args.select:
        rows = select(work)
        sel_path.write_text(json.dumps({"config": CONFIG, **rows}, indent=1))
        return
    selection = json.loads(sel_path.read_text()) if sel_path.exists() else None
    if selection is not None and selection.get("config_key") != config_key():
        selection = None
    epochs = args.epochs or (selection or {}).get("chosen_epochs")
    if epochs is None:
        raise SystemExit("no epochs: run --select first (or pass --epochs)")
    train_info = {}
    for seed in args.seeds:
        for arm in args.arms:
            info = train_arm(arm, seed, epochs, work)
            if "stage_invariance_estimate" not in info:  # cells trained before it was recorded: from the weights
                state = torch.load(cell(work, arm, seed) / f"method-e{epochs}.pt", weights_only=True)
                info["stage_invariance_estimate"] = {
                    k: dict(zip(STAGES, state[f"stage_weights.{k}.invariance"].tolist())) for k in info["stage_weights"]}
            train_info[f"{arm}-{seed}"] = info
            print(f"trained {arm} seed {seed}: {info['wall_s']:.0f}s, epoch {info['epoch_s_median']:.1f}s, "
                  f"loss {info['final_loss']:.3f}", flush=True)
    if args.train_only:
        return
    results: dict = {"seeds": args.seeds, "config": CONFIG, "config_key": config_key(), "epochs": epochs,
                     "selection": selection,
                     "machine": {"platform": platform.platform(), "torch": torch.__version__,
                                 "threads": torch.get_num_threads()}}
    for arm in (*ARMS, "random_init"):
        results[arm] = {"appearance": [], "motion": [], "appearance_clip": [], "motion_clip": [], "invariance": []}
        for seed in args.seeds:
            r = evaluate_arm(arm, seed, epochs, "test", work, invariance=True)
            for k in results[arm]:
                results[arm][k].append(r[k])
            print(f"evaluated {arm} seed {seed}: appearance {r['appearance']:.3f} motion {r['motion']:.3f}", flush=True)
    results["train"] = train_info
    md = summarise(results, train_info, selection)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
