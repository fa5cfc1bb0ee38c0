"""Learned augmentation: InstaAug (Miao et al., ICML 2023, "Learning Instance-Specific
Augmentations by Capturing Local Invariances") and Augerino (Benton et al., NeurIPS 2020),
on top of supervised training or SimCLR.

InstaAug (``kind="instaaug"``): an invariance module ``m`` maps each input to its own
augmentation distribution (crops and/or per-input ranges of continuous parameters).
Updates alternate::

    for each batch x (labels y):
        if not frozen:                            (frozen for `freeze_fraction` of training)
            f.eval(); a_1..a_K ~ p_m(. | x)       fresh samples (their own random stream)
            L_k = loss(f(t_{a_k}(x)), y)          per input and sample
            module step on  SF(L; leave-one-out)  (crops: score function, K >= 2)
                          + mean L                (ranges: pathwise through t)
                          + entropy control       (adaptive bonus, or pull to a ramped target)
            module lr warmed up linearly over `module_warmup_steps`
        a ~ p_m(. | x)                            module in eval mode, no grad: samples only
        model step: loss(f(t_a(x)), y)            (SimCLR: two views, each from its own a)

(The module step comes first within a training step so that both updates are in the
step's checkpoint; over steps the updates alternate exactly as in the paper.)

Augerino (``kind="augerino"``, supervised only): one global uniform distribution over
affine Lie-algebra coordinates with widths ``softplus(theta)``, trained jointly with the
model on ``CE - reg * ||w||``. ``kind="none"`` is the base method with the recipe's fixed
pipeline (the baselines "no augmentation" and "fixed augmentation").

The learned transformation is applied first, then the recipe's ``augment.pipeline`` (flips,
colour jitter, ...). Module weights are part of the LightningModule; its optimiser state,
the adaptive entropy weight and the epoch's per-input entropies are in the checkpoint, and
every draw comes from :func:`~invlab.methods.base.step_generator`, so kill-and-resume is exact.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from invlab.errors import ConfigError
from invlab.losses.instaaug import (
    AdaptiveEntropyWeight,
    EntropyTarget,
    augerino_loss,
    categorical_entropy,
    nt_xent_per_sample,
    score_function_loss,
    uniform_entropy,
)
from invlab.methods.base import EpochAverages, StepOutput, step_generator
from invlab.methods.optim import build_optimizer, param_groups
from invlab.methods.simclr import SimCLR, SimCLRParams, validate_simclr
from invlab.methods.spec import MethodSpec
from invlab.methods.supervised import Supervised, SupervisedParams
from invlab.methods.training import per_step_schedule
from invlab.nn.invariance_module import AugerinoWidths, InvarianceModule
from invlab.transforms.learned import (
    DEFAULT_CROP_SCALES,
    CropCandidates,
    LearnedRange,
    LieAffine,
    sample_categorical,
)
from invlab.transforms.registry import build_pipeline
from invlab.transforms.views import View, Views

__all__ = ["LearnedAugmentSpec", "LearnedAugmentation", "InstaAugSupervised", "InstaAugSimCLR", "check_spec",
           "augmentation_pictures", "InstaAugParams", "AugerinoParams", "InstaAugSimCLRParams", "SPECS"]

_MODULE_STREAM, _TEST_STREAM = 1, 2


def _stream_generator(stream: int, seed: int, rank: int, epoch: int, batch_idx: int) -> torch.Generator:
    """A random stream separate from :func:`step_generator`'s (the module step's fresh
    samples, test-time draws), equally a pure function of where the run is."""
    key = f"instaaug/{stream}/{seed}/{rank}/{epoch}/{batch_idx}".encode()
    g = torch.Generator()
    g.manual_seed(int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1)
    return g


@dataclass
class LearnedAugmentSpec:
    """The ``params.augmentation`` section.

    kind: ``instaaug`` | ``augerino`` | ``none``.
    crops, crop_scales, full_image_prob: InstaAug's crop distribution (``(grid, side)``
        pairs, see :class:`~invlab.transforms.learned.CropCandidates`).
    ranges: transform specs (like ``augment.pipeline``) whose continuous parameters get
        per-input ranges, e.g. ``[{name: rotate, degrees: [-180, 180]}]`` (``None``: none).
    init_fraction: initial range as a fraction of its maximum.
    module_widths: channels of the tiny pre-activation ResNet.
    samples: K, samples per input in the module step (>= 2 with crops: the baseline).
    module_optimizer, module_lr, module_warmup_steps: the module's own optimiser (the paper:
        SGD 1e-5 with warm-up).
    entropy: ``adaptive`` (supervised: bonus weight x/ ``entropy_factor`` per epoch to keep
        the mean entropy in ``entropy_band``), ``target`` (contrastive:
        ``entropy_strength * (H - target)^2``, target ramped from ``entropy_target[0]`` to
        ``[1]`` after the freeze) or ``none``.
    freeze_fraction: the module is not updated during this first fraction of training.
    augerino_generators, augerino_reg, augerino_init_width: Augerino.
    test_samples: test-time averaging over this many samples (0: off); reported
        separately as ``test/tta_top1`` (supervised).
    """

    kind: str = "instaaug"
    crops: bool = True
    crop_scales: list[list[float]] = field(default_factory=lambda: [list(s) for s in DEFAULT_CROP_SCALES])
    full_image_prob: float = 0.8
    ranges: list[dict[str, Any]] | None = None
    init_fraction: float = 0.1
    module_widths: list[int] = field(default_factory=lambda: [8, 8, 16, 32])
    samples: int = 2
    module_optimizer: str = "sgd"
    module_lr: float = 1e-5
    module_warmup_steps: int = 0
    entropy: str = "adaptive"
    entropy_band: list[float] = field(default_factory=lambda: [1.0, 1.5])
    entropy_weight: float = 0.1
    entropy_factor: float = 1.2
    entropy_target: list[float] = field(default_factory=lambda: [2.0, 1.0])
    entropy_strength: float = 0.3
    freeze_fraction: float = 0.0
    augerino_generators: list[str] = field(default_factory=lambda: ["tx", "ty", "rotation", "scale", "stretch", "shear"])
    augerino_reg: float = 0.01
    augerino_init_width: float = 0.6931471805599453
    test_samples: int = 0


def _is_crop_scale(pair) -> bool:
    """``[grid, side]``: an integer grid >= 1 and a side in (0, 1]."""
    try:
        grid, side = pair
        return float(grid) == int(grid) >= 1 and 0.0 < float(side) <= 1.0
    except (TypeError, ValueError):
        return False


def check_spec(spec: LearnedAugmentSpec, where: str = "params.augmentation") -> None:
    """Raise :class:`ConfigError` naming the key for an impossible configuration."""
    if spec.kind not in ("instaaug", "augerino", "none"):
        raise ConfigError(f"recipe key '{where}.kind' must be instaaug, augerino or none, got {spec.kind!r}")
    if spec.kind == "instaaug":
        if not spec.crops and not spec.ranges:
            raise ConfigError(f"recipe section '{where}': instaaug needs crops: true or a ranges list (or both)")
        if spec.crops and spec.samples < 2:
            raise ConfigError(f"recipe key '{where}.samples' must be >= 2 with learned crops (leave-one-out baseline), got {spec.samples}")
        if spec.samples < 1:
            raise ConfigError(f"recipe key '{where}.samples' must be >= 1, got {spec.samples}")
        if spec.module_optimizer not in ("sgd", "adam"):
            raise ConfigError(f"recipe key '{where}.module_optimizer' must be sgd or adam, got {spec.module_optimizer!r}")
        if spec.module_lr <= 0:
            raise ConfigError(f"recipe key '{where}.module_lr' must be > 0, got {spec.module_lr}")
        if spec.entropy not in ("adaptive", "target", "none"):
            raise ConfigError(f"recipe key '{where}.entropy' must be adaptive, target or none, got {spec.entropy!r}")
        if len(spec.entropy_band) != 2 or not spec.entropy_band[0] < spec.entropy_band[1]:
            raise ConfigError(f"recipe key '{where}.entropy_band' must be [low, high] with low < high, got {spec.entropy_band}")
        if not 0.0 <= spec.freeze_fraction < 1.0:
            raise ConfigError(f"recipe key '{where}.freeze_fraction' must lie in [0, 1), got {spec.freeze_fraction}")
        if spec.crops:
            if not spec.crop_scales:
                raise ConfigError(f"recipe key '{where}.crop_scales' is empty: learned crops need at least one "
                                  "[grid, side] scale besides the full image")
            for pair in spec.crop_scales:
                if not _is_crop_scale(pair):
                    raise ConfigError(f"recipe key '{where}.crop_scales': each scale is [grid, side] with an integer "
                                      f"grid >= 1 and side in (0, 1], got {pair!r}")
            if not 0.0 < spec.full_image_prob < 1.0:
                raise ConfigError(f"recipe key '{where}.full_image_prob' must lie in (0, 1), got {spec.full_image_prob}")
        if not 0.0 < spec.init_fraction < 1.0:
            raise ConfigError(f"recipe key '{where}.init_fraction' must lie in (0, 1), got {spec.init_fraction}")
        if len(spec.module_widths) < 2 or any(w < 1 for w in spec.module_widths):
            raise ConfigError(f"recipe key '{where}.module_widths' needs >= 2 positive channel counts, "
                              f"got {spec.module_widths}")
        if spec.module_warmup_steps < 0:
            raise ConfigError(f"recipe key '{where}.module_warmup_steps' must be >= 0, got {spec.module_warmup_steps}")
        if spec.entropy == "adaptive":
            if spec.entropy_weight <= 0:
                raise ConfigError(f"recipe key '{where}.entropy_weight' must be > 0, got {spec.entropy_weight}")
            if spec.entropy_factor <= 1:
                raise ConfigError(f"recipe key '{where}.entropy_factor' must be > 1, got {spec.entropy_factor}")
        if spec.entropy == "target":
            if len(spec.entropy_target) != 2 or min(spec.entropy_target) < 0:
                raise ConfigError(f"recipe key '{where}.entropy_target' must be [start, end] in nats (>= 0), "
                                  f"got {spec.entropy_target}")
            if spec.entropy_strength < 0:
                raise ConfigError(f"recipe key '{where}.entropy_strength' must be >= 0, got {spec.entropy_strength}")
        if spec.ranges:
            try:
                LearnedRange(build_pipeline(spec.ranges, f"{where}.ranges"))
            except (ValueError, KeyError) as err:
                raise ConfigError(f"recipe key '{where}.ranges': {err}") from None
    if spec.kind == "augerino":
        try:
            LieAffine(spec.augerino_generators)
        except ValueError as err:
            raise ConfigError(f"recipe key '{where}.augerino_generators': {err}") from None
        if spec.augerino_reg < 0:  # a negative weight would penalise, not reward, the widths
            raise ConfigError(f"recipe key '{where}.augerino_reg' must be >= 0, got {spec.augerino_reg}")
        if spec.augerino_init_width <= 0:
            raise ConfigError(f"recipe key '{where}.augerino_init_width' must be > 0, got {spec.augerino_init_width}")
    if spec.test_samples < 0:
        raise ConfigError(f"recipe key '{where}.test_samples' must be >= 0, got {spec.test_samples}")


class LearnedAugmentation:
    """Mixin: put before a base method (``class InstaAugSupervised(LearnedAugmentation,
    Supervised)``). Subclasses give :meth:`per_sample_loss` (the base objective per input,
    used by the module step)."""

    def __init__(self, encoder, views, *, augmentation: LearnedAugmentSpec | None = None, **kwargs):
        super().__init__(encoder, views, **kwargs)
        spec = augmentation or LearnedAugmentSpec()
        try:
            check_spec(spec)
        except ConfigError as err:
            raise ValueError(str(err)) from None
        self.aug_spec = spec
        self.learned_crops = self.learned_ranges = self.invariance = None
        self.augerino = self.lie = None
        channels = encoder.backbone.config.get("in_channels", 3) if hasattr(encoder.backbone, "config") else 3
        if spec.kind == "instaaug":
            if spec.crops:
                self.learned_crops = CropCandidates([tuple(s) for s in spec.crop_scales])
            if spec.ranges:
                self.learned_ranges = LearnedRange(build_pipeline(spec.ranges, "params.augmentation.ranges"))
            self.invariance = InvarianceModule(
                channels, crops=self.learned_crops, ranges=self.learned_ranges, widths=spec.module_widths,
                full_image_prob=spec.full_image_prob, init_fraction=spec.init_fraction,
            )
            if spec.entropy == "adaptive":
                low, high = spec.entropy_band
                self.entropy_control = AdaptiveEntropyWeight(low, high, spec.entropy_weight, spec.entropy_factor)
            self.entropy_target = (
                EntropyTarget(*spec.entropy_target, strength=spec.entropy_strength, warmup=spec.freeze_fraction)
                if spec.entropy == "target" else None
            )
        elif spec.kind == "augerino":
            self.lie = LieAffine(spec.augerino_generators)
            self.augerino = AugerinoWidths(len(spec.augerino_generators), spec.augerino_init_width)
        self._module_optimizer: torch.optim.Optimizer | None = None
        self._pending_optimizer_state: dict | None = None
        self._entropies: list[Tensor] = []  # per-input entropies of this epoch (checkpointed)
        self.module_averages = EpochAverages()  # the module step's terms (checkpointed)

    # -- the learned transformation ------------------------------------------------------
    def distribution(self, x: Tensor) -> dict[str, Tensor]:
        """The invariance module's output for ``x`` plus ``entropy (N,)``."""
        out = self.invariance(x)
        h = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        if "crop_logits" in out:
            h = h + categorical_entropy(out["crop_logits"])
        if "a_minus" in out:
            h = h + uniform_entropy(out["a_minus"], out["a_plus"])
        out["entropy"] = h
        return out

    def transform_with(self, x: Tensor, dist: dict[str, Tensor], k: int, generator: torch.Generator,
                       replacement: bool = True) -> tuple[Tensor, Tensor]:
        """``k`` augmented copies of ``x`` (sample-major: ``(k N, C, H, W)``) and the
        log-probability of each crop drawn ``(k, N)`` (zeros without crops)."""
        n = x.shape[0]
        xs = x.repeat(k, *([1] * (x.dim() - 1)))
        log_prob = torch.zeros(k, n, device=x.device, dtype=x.dtype)
        if "crop_logits" in dist:
            logits = dist["crop_logits"]
            idx = sample_categorical(logits, k, generator, replacement=replacement).t()  # (k, N)
            log_prob = torch.log_softmax(logits, -1).gather(1, idx.t()).t()
            xs = self.learned_crops.apply(xs, idx.reshape(-1))
        if "a_minus" in dist:
            am, ap = dist["a_minus"].repeat(k, 1), dist["a_plus"].repeat(k, 1)
            xs, _ = self.learned_ranges.apply(xs, am, ap, generator)
        return xs, log_prob

    def learned_views(self, x: Tensor, num: int, generator: torch.Generator) -> tuple[Tensor, dict]:
        """``num`` augmented copies of ``x`` for the model step (no gradient to the module,
        except Augerino's widths, which train with the model)."""
        info: dict[str, Tensor] = {}
        if self.invariance is not None:
            # sampling only: eval mode, so BatchNorm statistics move only when the module
            # is trained (a frozen module stays exactly as it is)
            was_training = self.invariance.training
            self.invariance.eval()
            try:
                with torch.no_grad():
                    dist = self.distribution(x)
                    xs, _ = self.transform_with(x, dist, num, generator)
            finally:
                self.invariance.train(was_training)
            info["entropy"] = dist["entropy"]
            return xs, info
        xs = x.repeat(num, *([1] * (x.dim() - 1)))
        if self.augerino is not None:
            coords = self.augerino.sample(xs.shape[0], generator)
            xs = self.lie.apply(xs, {"coords": coords})
        return xs, info

    def make_views(self, batch: dict[str, Tensor], batch_idx: int) -> Views:
        x = batch["image"]
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        g = step_generator(self.seed, self.global_rank, self.current_epoch, batch_idx)
        v, n = self.views.num_views, x.shape[0]
        xs, info = self.learned_views(x, v, g)
        if "entropy" in info:
            self._entropies.append(info["entropy"].detach().float())  # stays on the device: no sync per step
        out = []
        for i, t in enumerate(self.views.transforms):
            xi = xs[i * n : (i + 1) * n]
            params = t.sample(n, g, device=x.device, size=tuple(xi.shape[-2:]))
            out.append(View(t.apply(xi, params), params, t))
        return Views(out, index=batch.get("index"), label=batch.get("label"), extra=info)

    # -- model step (Augerino's regulariser) ---------------------------------------------
    def training_loss(self, views: Views) -> StepOutput:
        out = super().training_loss(views)
        if self.augerino is not None:
            widths = self.augerino.widths
            loss = augerino_loss(out.loss, widths, self.aug_spec.augerino_reg)
            terms = {**out.terms, "augerino_width_norm": widths.norm().detach()}
            return StepOutput(loss, terms, out.features)
        return out

    def optimizer_groups(self) -> list[dict]:
        """The model optimiser's parameter groups: everything but the invariance module
        (it has its own optimiser); Augerino's widths train here, without weight decay."""
        spec = self.optim_spec
        exclude = [m for m in (self.probe, self.invariance, self.augerino) if m is not None]
        groups = param_groups(self, spec, exclude=exclude)
        if self.probe is not None:
            groups.append({"params": list(self.probe.parameters()), "lr": spec.probe_lr, "weight_decay": 0.0,
                           "lars_exclude": True})
        if self.augerino is not None:  # trained with the model, never decayed
            groups.append({"params": list(self.augerino.parameters()), "weight_decay": 0.0, "lars_exclude": True})
        return groups

    def configure_optimizers(self):
        return per_step_schedule(self, build_optimizer(self.optimizer_groups(), self.optim_spec), self.optim_spec)

    # -- module step ---------------------------------------------------------------------
    copies_per_sample = 1  # augmented copies one sample of the objective needs (SimCLR: 2)

    def per_sample_loss(self, xs: Tensor, k: int, label: Tensor | None) -> Tensor:
        """The base objective per input for ``k`` samples, ``(k, N)``, from the augmented
        copies ``xs (k * copies_per_sample * N, ...)`` (sample-major)."""
        raise NotImplementedError

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.invariance is not None and self.trainer.world_size > 1:
            raise RuntimeError("InstaAug's alternating module step runs on one process only for now "
                               "(its gradients are not synchronised); use trainer.devices=1")

    def progress(self) -> float:
        """Fraction of training done (0 outside a Trainer)."""
        if self._trainer is None:
            return 0.0
        total = max(1, int(self.trainer.estimated_stepping_batches))
        return self.global_step / total

    def module_frozen(self) -> bool:
        return self.progress() < self.aug_spec.freeze_fraction

    def module_optimizer(self) -> torch.optim.Optimizer:
        if self._module_optimizer is None:
            params = list(self.invariance.parameters())
            lr = self.aug_spec.module_lr
            if self.aug_spec.module_optimizer == "adam":
                self._module_optimizer = torch.optim.Adam(params, lr=lr)
            else:
                self._module_optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9)
            if self._pending_optimizer_state is not None:
                self._module_optimizer.load_state_dict(self._pending_optimizer_state)
                self._pending_optimizer_state = None
        return self._module_optimizer

    def module_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, float]:
        """One update of the invariance module on fresh samples, the model in eval mode."""
        spec = self.aug_spec
        x = batch["image"]
        if x.dtype == torch.uint8:
            x = x.float().div(255.0)
        g = _stream_generator(_MODULE_STREAM, self.seed, self.global_rank, self.current_epoch, batch_idx)
        k = spec.samples
        c = self.copies_per_sample
        modes = {m: m.training for m in self.children() if m is not self.invariance}
        for m in modes:
            m.eval()
        try:
            dist = self.distribution(x)
            xs, log_prob = self.transform_with(x, dist, k * c, g)
            # crops alone train by the score function only (the losses are constants): no
            # graph through the model; learned ranges need it (pathwise gradients)
            with torch.set_grad_enabled("a_minus" in dist):
                losses = self.per_sample_loss(xs, k, batch.get("label"))  # (k, N)
            log_prob = log_prob.view(k, c, -1).sum(1)  # a sample's copies are drawn together
        finally:
            for m, was_training in modes.items():
                m.train(was_training)
        loss = losses.mean()  # pathwise part (ranges); constant in the crop logits
        if "crop_logits" in dist:
            loss = loss + score_function_loss(log_prob, losses, "leave_one_out")
        entropy = dist["entropy"]
        if spec.entropy == "adaptive":
            loss = loss + self.entropy_control.loss(entropy)
        elif spec.entropy == "target":
            loss = loss + self.entropy_target.loss(entropy, self.progress())
        params = [p for p in self.invariance.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        opt = self.module_optimizer()
        warm = spec.module_warmup_steps
        scale = min(1.0, (self.global_step + 1) / warm) if warm > 0 else 1.0
        for group in opt.param_groups:
            group["lr"] = spec.module_lr * scale
        for p, gr in zip(params, grads):
            p.grad = gr
        opt.step()
        opt.zero_grad(set_to_none=True)
        return {"module_loss": losses.mean().detach(), "module_entropy": entropy.mean().detach()}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        # The module's update comes first within a step, then the model's (alternation is
        # the same over steps): both then land in the step's checkpoint, which Lightning's
        # callbacks write before the module's own on_train_batch_end would run.
        if self.invariance is not None and not self.module_frozen():
            terms = self.module_step(batch, batch_idx)
            self.module_averages.add(terms, batch["image"].shape[0])
        return super().training_step(batch, batch_idx)

    # -- entropy: control per epoch, distribution logged ----------------------------------
    def on_train_epoch_start(self) -> None:
        # the finished epoch's entropies adapt the weight here rather than at its end, so a
        # checkpoint written at the end of an epoch resumes into the same update
        if self._entropies and self.aug_spec.entropy == "adaptive" and self.invariance is not None:
            self.entropy_control.update(float(torch.cat([e.cpu() for e in self._entropies]).mean()))
        self._entropies = []
        self.module_averages.reset()
        super().on_train_epoch_start()

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        for name, value in self.module_averages.means().items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True)
        if self._entropies:
            h = torch.cat([e.cpu() for e in self._entropies])
            q = torch.quantile(h, torch.tensor([0.1, 0.5, 0.9]))
            self.log_dict({"train/entropy_mean": float(h.mean()), "train/entropy_p10": float(q[0]),
                           "train/entropy_p50": float(q[1]), "train/entropy_p90": float(q[2])},
                          on_step=False, on_epoch=True)
            if self.aug_spec.entropy == "adaptive":
                self.log("train/entropy_weight", float(self.entropy_control.weight), on_step=False, on_epoch=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        state = checkpoint.setdefault("invlab", {})
        state["augment_module_averages"] = self.module_averages.state_dict()
        state["augment_entropies"] = torch.cat([e.cpu() for e in self._entropies]) if self._entropies else torch.zeros(0)
        if self._module_optimizer is not None:
            state["augment_optimizer"] = self._module_optimizer.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("invlab", {})
        self.module_averages.load_state_dict(state.get("augment_module_averages", {}))
        ent = state.get("augment_entropies")
        self._entropies = [ent] if ent is not None and ent.numel() else []
        if "augment_optimizer" in state:
            self._module_optimizer = None
            self._pending_optimizer_state = state["augment_optimizer"]

    # -- prediction with test-time averaging ---------------------------------------------
    @torch.no_grad()
    def augmented_logits(self, x: Tensor, samples: int, generator: torch.Generator) -> Tensor:
        """Class probabilities averaged over ``samples`` draws of the learned distribution
        (supervised only)."""
        if self.invariance is not None:
            xs, _ = self.learned_views(x, samples, generator)
        else:
            xs, _ = self.learned_views(x, samples, generator)
        probs = torch.softmax(self.classifier(self.encoder(xs)), -1)
        return probs.view(samples, x.shape[0], -1).mean(0)


class InstaAugSupervised(LearnedAugmentation, Supervised):
    """Supervised training with a learned augmentation (InstaAug, Augerino or none)."""

    def __init__(self, encoder, views, *, augmentation: LearnedAugmentSpec | None = None, **kwargs):
        super().__init__(encoder, views, augmentation=augmentation, **kwargs)
        self._tta_correct = self._tta_total = 0

    def per_sample_loss(self, xs: Tensor, k: int, label: Tensor | None) -> Tensor:
        y = label.repeat(k)
        return F.cross_entropy(self.classifier(self.encoder(xs)), y, reduction="none").view(k, -1)

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._tta_correct = self._tta_total = 0

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        super().validation_step(batch, batch_idx, dataloader_idx)
        k = self.aug_spec.test_samples
        if dataloader_idx == 1 and k > 0 and self.aug_spec.kind != "none":
            x = batch["image"]
            x = x.float().div(255.0) if x.dtype == torch.uint8 else x
            g = _stream_generator(_TEST_STREAM, self.seed, self.global_rank, self.current_epoch, batch_idx)
            pred = self.augmented_logits(x, k, g).argmax(1)
            self._tta_correct += int((pred == batch["label"]).sum())
            self._tta_total += int(batch["label"].numel())

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self._tta_total:
            self.log("test/tta_top1", self._tta_correct / self._tta_total, rank_zero_only=True)


class InstaAugSimCLR(LearnedAugmentation, SimCLR):
    """SimCLR whose two views come from the invariance module's crops (set the recipe's
    pipeline without a random crop); the module minimises the contrastive loss too."""

    def __init__(self, encoder, views, *, augmentation: LearnedAugmentSpec | None = None, **kwargs):
        spec = augmentation or LearnedAugmentSpec(entropy="target", freeze_fraction=0.1)
        if spec.kind == "augerino":
            raise ValueError("Augerino is defined for supervised training only (its regulariser has nothing "
                             "to balance it in a contrastive loss); use kind instaaug or none")
        super().__init__(encoder, views, augmentation=spec, **kwargs)

    copies_per_sample = 2

    def per_sample_loss(self, xs: Tensor, k: int, label: Tensor | None) -> Tensor:
        # copies (2i, 2i + 1) are the two views of sample i
        n = xs.shape[0] // (2 * k)
        z = self.projector(self.encoder(xs)).view(k, 2, n, -1)
        return torch.stack([nt_xent_per_sample(z[i, 0], z[i, 1], self.temperature) for i in range(k)])


@torch.no_grad()
def augmentation_pictures(method: LearnedAugmentation, x: Tensor, folder, prefix: str = "augmentation") -> dict[str, Any]:
    """Pictures of what ``method`` learned, for the images ``x (N, C, H, W)`` in ``[0, 1]``:
    ``<prefix>_crops.png`` (each input above its crop heat-map: the probability that a pixel
    is inside the sampled crop) and ``<prefix>_ranges.png`` (each input's learned range of
    every continuous component). Returns the file names and the numbers drawn."""
    from pathlib import Path

    from invlab.report.plots import crop_heatmaps, learned_range_plot

    folder = Path(folder)
    out: dict[str, Any] = {"kind": method.aug_spec.kind}
    images = x.detach().cpu().numpy()
    if method.invariance is not None:
        was = method.invariance.training
        method.invariance.eval()
        try:
            dist = method.distribution(x)
        finally:
            method.invariance.train(was)
        out["entropy"] = dist["entropy"].cpu().tolist()
        if "crop_logits" in dist:
            probs = torch.softmax(dist["crop_logits"], -1)
            heat = method.learned_crops.coverage(probs, tuple(x.shape[-2:]))
            crop_heatmaps(images, heat.cpu().numpy(), folder / f"{prefix}_crops.png")
            out["crops_png"] = f"{prefix}_crops.png"
            out["full_image_prob"] = probs[:, -1].cpu().tolist() if method.learned_crops.full_image else None
        if "a_minus" in dist:
            names = method.learned_ranges.component_names()
            out["ranges"] = {}
            for j, name in enumerate(names):
                am, ap = dist["a_minus"][:, j].cpu().numpy(), dist["a_plus"][:, j].cpu().numpy()
                file = f"{prefix}_ranges_{name.replace('.', '_').replace('[', '').replace(']', '')}.png"
                learned_range_plot(images, am, ap, [f"#{i}" for i in range(len(images))], folder / file,
                                   unit="" if "angle" not in name else "deg")
                out["ranges"][name] = {"a_minus": am.tolist(), "a_plus": ap.tolist(), "png": file}
    elif method.augerino is not None:
        out["augerino_widths"] = dict(zip(method.aug_spec.augerino_generators, method.augerino.widths.cpu().tolist()))
    return out


# -- recipes: `method: instaaug | augerino | instaaug_simclr`, section `params.augmentation` --
@dataclass
class InstaAugParams(SupervisedParams):
    """``params`` of ``method: instaaug`` (supervised; ``augmentation.kind`` may also be
    ``augerino`` or ``none``, the baselines in the same harness)."""

    augmentation: LearnedAugmentSpec = field(default_factory=LearnedAugmentSpec)


@dataclass
class AugerinoParams(SupervisedParams):
    """``params`` of ``method: augerino`` (the same class, Augerino's defaults)."""

    augmentation: LearnedAugmentSpec = field(default_factory=lambda: LearnedAugmentSpec(kind="augerino"))


@dataclass
class InstaAugSimCLRParams(SimCLRParams):
    """``params`` of ``method: instaaug_simclr``: SimCLR's plus the learned crops (entropy
    pulled to a ramped target, module frozen for the first 10% by default)."""

    augmentation: LearnedAugmentSpec = field(
        default_factory=lambda: LearnedAugmentSpec(entropy="target", freeze_fraction=0.1))


def _validate_supervised(cfg) -> None:
    if not 0 <= cfg.params.label_smoothing < 1:
        raise ConfigError("recipe key 'params.label_smoothing' must lie within [0, 1)")
    check_spec(cfg.params.augmentation)


def _validate_simclr(cfg) -> None:
    validate_simclr(cfg)
    check_spec(cfg.params.augmentation)
    if cfg.params.augmentation.kind == "augerino":
        raise ConfigError("recipe key 'params.augmentation.kind': augerino is for supervised training only")


SPECS = (
    MethodSpec(name="instaaug", modality="image", cls=InstaAugSupervised, params=InstaAugParams, views=1,
               needs_labels=True, validate=_validate_supervised),
    MethodSpec(name="augerino", modality="image", cls=InstaAugSupervised, params=AugerinoParams, views=1,
               needs_labels=True, validate=_validate_supervised),
    MethodSpec(name="instaaug_simclr", modality="image", cls=InstaAugSimCLR, params=InstaAugSimCLRParams, views=2,
               validate=_validate_simclr),
)
