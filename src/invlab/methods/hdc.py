"""HDC: hierarchically decoupled spatial-temporal contrast (Zhang & Crandall, WACV 2022),
and the undecoupled clip-SimCLR baseline in the same code.

    for each batch of windows x (B, C, L, H, W):
        for each subtask k in (SC, TC):
            draw two views v1, v2 of x; the families shared[k] get the same draw
                SC shares the spatial augmentation, differs in time (start, speed)
                TC shares the frames, differs in the spatial augmentation
            for each stage s in stages (res3, res4, res5):
                z1, z2 = head[k][s](GAP(f_s(v1))), head[k][s](GAP(f_s(v2)))   2-layer MLP
                L[k][s] = NT-Xent(z1, z2; temperature)
            L[k] = sum_s w[k][s] * L[k][s]       w from StageWeights: sums to one (default:
                                                 running estimate of stage invariance)
        loss = sum_k lambda_k * L[k]

Clip-SimCLR (the baseline HDC is compared with) is one subtask that shares nothing (two
independently augmented clips of the video) at one stage (the final one).
``subtasks={"sc": ["spatial"]}`` alone is the SC-only ablation, ``{"tc": ["temporal"]}``
TC-only. Which families each subtask shares is configurable (any of ``temporal``,
``spatial`` or single step names, see :class:`~invlab.transforms.video.ClipPairs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from invlab.errors import ConfigError
from invlab.losses.hdc import (
    WEIGHTINGS,
    StageWeights,
    global_pool,
    multi_stage_nt_xent,
    positive_similarity,
)
from invlab.methods.base import StepOutput
from invlab.methods.spec import MethodSpec, check_choice
from invlab.methods.video_base import VideoSSLMethod
from invlab.nn.heads import MLP

__all__ = ["HDC", "ClipSimCLR", "DEFAULT_SUBTASKS", "HDCParams", "ClipSimCLRParams", "SPECS"]

DEFAULT_SUBTASKS = {"sc": ["spatial"], "tc": ["temporal"]}


class HDC(VideoSSLMethod):
    """Args (beyond :class:`~invlab.methods.video_base.VideoSSLMethod`'s):
        subtasks: name -> families/steps the two views share.
        subtask_weights: name -> lambda (default 1 each).
        stages: backbone stages with a head (``pool`` = the pooled representation).
        head_hidden, head_out: the 2-layer MLP head (GAP -> Linear -> BN -> ReLU -> Linear).
        temperature: NT-Xent temperature.
        weighting, momentum, fixed_weights: per-stage weights (:class:`~invlab.losses.hdc.StageWeights`).
        gather: gather negatives across processes (default: when distributed).
    """

    def __init__(self, encoder, pairs, *, subtasks: Mapping[str, Sequence[str]] | None = None,
                 subtask_weights: Mapping[str, float] | None = None, stages: Sequence[str] = ("res3", "res4", "res5"),
                 head_hidden: int = 512, head_out: int = 128, temperature: float = 0.5, weighting: str = "invariance",
                 momentum: float = 0.9, fixed_weights: Sequence[float] | None = None, gather: bool | None = None,
                 **kwargs):
        super().__init__(encoder, pairs, **kwargs)
        self.subtasks = {k: list(v) for k, v in (subtasks if subtasks is not None else DEFAULT_SUBTASKS).items()}
        if not self.subtasks:
            raise ValueError("HDC needs at least one subtask")
        self.subtask_weights = {k: float((subtask_weights or {}).get(k, 1.0)) for k in self.subtasks}
        unknown = set(subtask_weights or {}) - set(self.subtasks)
        if unknown:
            raise ValueError(f"subtask_weights names unknown subtasks {sorted(unknown)}; subtasks: {list(self.subtasks)}")
        channels = getattr(encoder.backbone, "stage_channels", {})
        missing = [s for s in stages if s not in channels]
        if missing or not stages:
            raise ValueError(f"stages {list(missing) or list(stages)} are not stages of the backbone ({list(channels)})")
        for shared in self.subtasks.values():  # fail at construction, not at the first step
            pairs.sample_pair(2, torch.Generator().manual_seed(0), (16, 16), shared)
        self.stages = list(stages)
        self.temperature, self.gather = temperature, gather
        self.heads = nn.ModuleDict({k: nn.ModuleDict({s: MLP(channels[s], [head_hidden], head_out) for s in self.stages})
                                    for k in self.subtasks})
        self.stage_weights = nn.ModuleDict({k: StageWeights(self.stages, weighting, momentum, fixed_weights)
                                            for k in self.subtasks})

    def clip_loss(self, x: Tensor, generator: torch.Generator) -> StepOutput:
        b = x.shape[0]
        total = x.new_zeros(())
        terms: dict[str, Tensor] = {}
        features = None
        taps = list(dict.fromkeys(self.stages + ["pool"]))
        for k, shared in self.subtasks.items():
            p1, p2 = self.pairs.sample_pair(b, generator, tuple(x.shape[-2:]), shared)
            p1, p2 = ({n: v.to(x.device) for n, v in p.items()} for p in (p1, p2))
            views = torch.cat([self.pairs.apply(x, p1), self.pairs.apply(x, p2)])
            f = self.encoder.forward_features(views, taps)  # one pass: BatchNorm sees both views
            z1, z2 = {}, {}
            for s in self.stages:
                z1[s], z2[s] = self.heads[k][s](global_pool(f[s])).chunk(2)
            losses = multi_stage_nt_xent(z1, z2, self.temperature, self.gather)
            sims = torch.stack([positive_similarity(z1[s], z2[s]) for s in self.stages])
            loss_k, w = self.stage_weights[k](torch.stack([losses[s] for s in self.stages]), sims)
            total = total + self.subtask_weights[k] * loss_k
            terms[k] = loss_k.detach()
            for i, s in enumerate(self.stages):
                terms[f"{k}_{s}"] = losses[s].detach()
                terms[f"{k}_w_{s}"] = w[i].detach()
                terms[f"{k}_pos_{s}"] = sims[i]
            if features is None:
                features = f["pool"][:b]
        return StepOutput(total, terms, features)


class ClipSimCLR(HDC):
    """The undecoupled baseline: SimCLR on whole clips, two independently augmented
    clips (nothing shared) of each video, one head on the final stage."""

    def __init__(self, encoder, pairs, *, stage: str = "res5", **kwargs):
        kwargs.setdefault("weighting", "fixed")
        super().__init__(encoder, pairs, subtasks={"clip": []}, stages=(stage,), **kwargs)


@dataclass
class HDCParams:
    """The ``params`` section of ``method: hdc`` (keyword arguments of :class:`HDC`)."""

    subtasks: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_SUBTASKS.items()})
    subtask_weights: dict[str, float] | None = None  # default 1 each
    stages: list[str] = field(default_factory=lambda: ["res3", "res4", "res5"])
    head_hidden: int = 512
    head_out: int = 128
    temperature: float = 0.5
    weighting: str = "invariance"  # invariance | fixed | learned
    momentum: float = 0.9  # of the running invariance estimate
    fixed_weights: list[float] | None = None  # weighting=fixed: one per stage (normalised)
    gather: bool | None = None


@dataclass
class ClipSimCLRParams:
    """The ``params`` section of ``method: clip_simclr`` (the undecoupled baseline)."""

    stage: str = "res5"
    head_hidden: int = 512
    head_out: int = 128
    temperature: float = 0.5
    gather: bool | None = None


def _validate(cfg) -> None:
    p = cfg.params
    if p.temperature <= 0:
        raise ConfigError(f"recipe key 'params.temperature' must be > 0, got {p.temperature}")
    if p.head_hidden < 1 or p.head_out < 1:
        raise ConfigError("recipe keys 'params.head_hidden' and 'params.head_out' must be >= 1")
    if isinstance(p, HDCParams):
        check_choice("params.weighting", p.weighting, WEIGHTINGS)
        if not p.subtasks:
            raise ConfigError("recipe key 'params.subtasks' names no subtask")
        for k, shared in p.subtasks.items():
            if not isinstance(shared, list) or not all(isinstance(v, str) for v in shared):
                raise ConfigError(f"recipe key 'params.subtasks.{k}' must be a list of family or step names, "
                                  f"got {shared!r}")
        if not p.stages:
            raise ConfigError("recipe key 'params.stages' names no stage")
        if p.weighting == "fixed" and p.fixed_weights is not None and len(p.fixed_weights) != len(p.stages):
            raise ConfigError(f"recipe key 'params.fixed_weights' has {len(p.fixed_weights)} values for "
                              f"{len(p.stages)} stages")
        if not 0 <= p.momentum < 1:
            raise ConfigError(f"recipe key 'params.momentum' must lie in [0, 1), got {p.momentum}")
        unknown = set(p.subtask_weights or {}) - set(p.subtasks)
        if unknown:
            raise ConfigError(f"recipe key 'params.subtask_weights' names unknown subtasks {sorted(unknown)}")


SPECS = (
    MethodSpec(name="hdc", modality="video", cls=HDC, params=HDCParams, validate=_validate),
    MethodSpec(name="clip_simclr", modality="video", cls=ClipSimCLR, params=ClipSimCLRParams, validate=_validate,
               sync_batchnorm=True),  # SimCLR's global BN
)
