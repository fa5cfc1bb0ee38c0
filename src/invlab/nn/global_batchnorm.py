"""BatchNorm over the global batch of all processes (synchronised BatchNorm) on any device.

torch's ``nn.SyncBatchNorm`` only runs on CUDA (DDP refuses it on CPU modules), so it can
be neither used nor tested on a CPU cluster. :class:`GlobalBatchNorm` computes the training
statistics of the whole global batch with one autograd-aware all-reduce of the per-channel
``[sum, sum of squares, count]`` (:func:`invlab.distributed.all_reduce_sum`, whose backward
is an all-reduce too), so forward and gradients equal those of a plain BatchNorm on the
concatenated batch of every process (the variance as ``E[x^2] - E[x]^2`` in float32:
equal up to rounding). With one process, or in eval mode, it is exactly ``BatchNorm``.
Running statistics are updated as BatchNorm does (unbiased variance for ``running_var``),
identically on every process. The state dict has BatchNorm's keys, so checkpoints and
exported encoders do not change.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from invlab.distributed import all_reduce_sum, is_distributed

__all__ = ["GlobalBatchNorm", "convert_to_global_batchnorm"]


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm (1d/2d/3d: channels on dim 1) whose training statistics are those of the
    global batch across processes; see the module docstring."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"GlobalBatchNorm expects (N, C, ...) input, got shape {tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        if not (self.training and is_distributed()):
            return super().forward(x)
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # statistics in >= float32
        local = torch.cat([xf.sum(dims), (xf * xf).sum(dims), xf.new_full((1,), x.numel() // c)])
        stats = all_reduce_sum(local)
        count = stats[-1]
        mean = stats[:c] / count
        var = (stats[c:2 * c] / count - mean * mean).clamp_min(0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var * (count / (count - 1).clamp_min(1))
                self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)
        shape = [1, c] + [1] * (x.dim() - 2)
        scale = torch.rsqrt(var + self.eps)
        y = (xf - mean.view(shape)) * scale.view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_to_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm layer of ``module`` (in place for children) by a
    :class:`GlobalBatchNorm` with the same parameters and buffers; returns the module
    (a new one if ``module`` itself is a BatchNorm)."""
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats, device=_device(module), dtype=_dtype(module))
        with torch.no_grad():
            if module.affine:
                new.weight = module.weight
                new.bias = module.bias
            if module.track_running_stats:
                new.running_mean = module.running_mean
                new.running_var = module.running_var
                new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        converted = convert_to_global_batchnorm(child)
        if converted is not child:
            module.add_module(name, converted)
    return module


def _device(m: nn.Module) -> torch.device | None:
    t = next(iter(m.parameters()), None)
    if t is None:
        t = next(iter(m.buffers()), None)
    return t.device if t is not None else None


def _dtype(m: nn.Module) -> torch.dtype | None:
    t = next(iter(m.parameters()), None)
    return t.dtype if t is not None else None
