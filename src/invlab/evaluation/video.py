"""Action-recognition evaluation of frozen video encoders: clip features and a linear
probe scored per clip and per video (averaging the class probabilities of several
uniformly spaced clips of each video).

>>> train = encode_clips(encoder, train_videos, clip_len=8, num_clips=1)
>>> test = encode_clips(encoder, test_videos, clip_len=8, num_clips=5)
>>> video_probe(train, test)    # {"clip_top1": ..., "video_top1": ..., "c": ...}
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from invlab.data.video.clips import ClipDataset
from invlab.data.video.decoded import DecodedVideos
from invlab.evaluation.classification import DEFAULT_C_GRID

__all__ = ["ClipFeatures", "encode_clips", "video_probe", "VideoProbeResult", "finetune", "FinetuneResult"]


@dataclass
class ClipFeatures:
    """``features``: ``{stage: (N * K, D_s)}``; ``video``: which video each row is from;
    ``labels``: that video's label."""

    features: dict[str, np.ndarray]
    video: np.ndarray
    labels: np.ndarray

    def stage(self, name: str) -> np.ndarray:
        if name not in self.features:
            raise KeyError(f"no features of stage {name!r}; encoded: {sorted(self.features)}")
        return self.features[name]


@torch.no_grad()
def encode_clips(encoder: nn.Module, videos: DecodedVideos, clip_len: int, stride: int = 1, num_clips: int = 1,
                 stages: Sequence[str] = ("pool",), batch_size: int = 64, labels: np.ndarray | None = None,
                 transform=None, device: str | torch.device | None = None) -> ClipFeatures:
    """Features of ``num_clips`` uniformly spaced clips per video (``stages``: ``pool`` or
    stage maps, globally averaged; needs ``encoder.forward_features`` for stages other
    than ``pool``). ``labels`` replaces the videos' own labels (e.g. another factor of a
    controlled set). ``transform``: a deterministic clip transform applied first (e.g.
    :class:`~invlab.transforms.video.Spatial` of a resize), with its identity parameters."""
    was_training = encoder.training
    encoder.eval()
    if device is None:
        first = next(iter(encoder.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    ds = ClipDataset(videos, clip_len, stride, "uniform", num_clips)
    feats: dict[str, list[np.ndarray]] = {s: [] for s in stages}
    rows: list[np.ndarray] = []
    for s in range(0, len(ds), batch_size):
        batch = ds.__getitems__(list(range(s, min(len(ds), s + batch_size))))
        x = batch["video"].to(device).float().div_(255.0)
        if transform is not None:
            x = transform.apply(x, transform.identity_params(x.shape[0], x.device))
        if list(stages) == ["pool"]:
            out = {"pool": encoder(x)}
        else:
            out = encoder.forward_features(x, list(stages))
        for name in stages:
            f = out[name]
            feats[name].append((f.flatten(2).mean(2) if f.dim() > 2 else f).float().cpu().numpy())
        rows.append(batch["index"].numpy())
    encoder.train(was_training)
    video = np.concatenate(rows)
    y = videos.labels if labels is None else np.asarray(labels, dtype=np.int64)
    return ClipFeatures({k: np.concatenate(v) for k, v in feats.items()}, video, y[video])


@dataclass
class VideoProbeResult:
    clip_top1: float
    video_top1: float
    c: float
    cv_accuracy: dict[float, float] = field(default_factory=dict)


def video_probe(train: ClipFeatures, test: ClipFeatures, stage: str = "pool", grid: Sequence[float] = DEFAULT_C_GRID,
                folds: int = 5, seed: int = 0) -> VideoProbeResult:
    """Logistic-regression probe (standardised features): ``C`` chosen by cross-validation
    on the training split with folds grouped by video (clips of one video never sit on
    both sides), refit on all training clips; test accuracy per clip and per video (mean
    class probability over the video's clips)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, ytr, gtr = train.stage(stage).astype(np.float64), train.labels, train.video
    xte, yte = test.stage(stage).astype(np.float64), test.labels
    if len(np.unique(ytr)) < 2:
        raise ValueError("the probe needs at least two classes in the training split")

    def fit(x, y, c):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(x, y)
        return model

    counts = np.bincount(ytr)
    k = min(folds, int(counts[counts > 0].min()))
    cv: dict[float, float] = {}
    if k >= 2:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        for c in grid:
            correct = 0
            for a, b in splitter.split(xtr, ytr, gtr):
                correct += int((fit(xtr[a], ytr[a], c).predict(xtr[b]) == ytr[b]).sum())
            cv[float(c)] = correct / len(ytr)
        best = max(cv, key=lambda c: (cv[c], -abs(np.log10(c))))
    else:
        best = 1.0
    model = fit(xtr, ytr, best)
    proba = model.predict_proba(xte)
    classes = model.classes_
    clip_top1 = float((classes[proba.argmax(1)] == yte).mean())
    vids, inverse = np.unique(test.video, return_inverse=True)
    mean = np.zeros((len(vids), proba.shape[1]))
    np.add.at(mean, inverse, proba)
    video_label = np.zeros(len(vids), dtype=np.int64)
    video_label[inverse] = yte
    video_top1 = float((classes[mean.argmax(1)] == video_label).mean())
    return VideoProbeResult(clip_top1, video_top1, best, cv)


@dataclass
class FinetuneResult:
    clip_top1: float
    video_top1: float
    train_top1: float
    epochs: int
    history: list[float] = field(default_factory=list)


def finetune(encoder: nn.Module, train: DecodedVideos, test: DecodedVideos, clip_len: int, stride: int = 1,
             num_clips: int = 1, epochs: int = 10, lr: float = 0.01, weight_decay: float = 1e-4, batch_size: int = 16,
             seed: int = 0, transform=None, device: str | torch.device | None = None) -> FinetuneResult:
    """Fine-tune a copy of ``encoder`` with a linear head end to end (SGD with momentum,
    cosine schedule, cross-entropy) on one random clip per training video per epoch
    (offsets a function of ``(seed, epoch, video)``), then score ``num_clips`` uniform clips
    per test video: clip level and video level (mean softmax). The last epoch's model is
    scored (nothing is selected on test). ``transform``: a deterministic clip transform
    applied first (e.g. a resize to the pretraining size)."""
    import copy
    import math

    import torch.nn.functional as F

    from invlab.data.video.clips import ClipDataset

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if device is None:
        first = next(iter(encoder.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    torch.manual_seed(seed)
    model = copy.deepcopy(encoder).to(device).train()
    feature_dim = getattr(model, "feature_dim", None)
    if feature_dim is None:
        raise ValueError("fine-tuning needs an encoder with a feature_dim")
    head = nn.Linear(feature_dim, train.num_classes).to(device)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    n = len(train)
    steps = epochs * math.ceil(n / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    ds = ClipDataset(train, clip_len, stride, "random", seed=seed)

    def prep(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device).float().div_(255.0)
        return transform.apply(x, transform.identity_params(x.shape[0], x.device)) if transform is not None else x

    history = []
    correct = 0
    for epoch in range(epochs):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)).numpy()
        total, correct = 0.0, 0
        for s in range(0, n, batch_size):
            batch = ds.__getitems__((order[s: s + batch_size] + epoch * n).tolist())
            logits = head(model(prep(batch["video"])))
            y = batch["label"].to(device)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
        history.append(total / n)
    model.eval()
    test_ds = ClipDataset(test, clip_len, stride, "uniform", num_clips)
    probs, rows = [], []
    with torch.no_grad():
        for s in range(0, len(test_ds), batch_size):
            batch = test_ds.__getitems__(list(range(s, min(len(test_ds), s + batch_size))))
            probs.append(torch.softmax(head(model(prep(batch["video"]))), 1).cpu().numpy())
            rows.append(batch["index"].numpy())
    p, video = np.concatenate(probs), np.concatenate(rows)
    y = test.labels[video]
    clip_top1 = float((p.argmax(1) == y).mean())
    vids, inverse = np.unique(video, return_inverse=True)
    mean = np.zeros((len(vids), p.shape[1]))
    np.add.at(mean, inverse, p)
    video_top1 = float((mean.argmax(1) == test.labels[vids]).mean())
    return FinetuneResult(clip_top1, video_top1, correct / n, epochs, history)
