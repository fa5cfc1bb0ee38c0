"""Linear forecasting on a frozen, channel-independent encoder (TimeDRL's linear evaluation).

Each window ``x (C, L)`` is encoded once (encoder in eval mode, so dropout is off and one
pass equals TimeDRL's two); every channel gives a row of features ``f`` = its ``T_p``
timestamp tokens flattened (``T_p * D`` values). The head is linear per channel and its
output is de-normalised with the window's instance statistics ``(m, s)``::

    y_hat = s * (f W + b) + m              (H,) forecast of one channel, standardised scale

Two ways to fit ``W, b`` on the training windows, both scored on the standardised scale
(MSE, MAE over windows, channels and steps) and both selected on the **validation** split:

- :func:`fit_ridge` (default): the exact minimiser of the training MSE of ``y_hat`` plus
  ``alpha ||W||^2`` (the bias is not penalised), for a grid of ``alpha``; the ``alpha``
  with the lowest validation MSE is kept. Rows are weighted by ``s`` so the fit minimises
  the error of the de-normalised forecast, exactly TimeDRL's training loss.
- :func:`fit_sgd` (TimeDRL's head): ``Flatten -> Dropout -> Linear``, AdamW with the
  authors' warm-up schedule; the epoch with the lowest validation MSE is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invlab.progress import progress as progress_bar

__all__ = [
    "EncodedWindows", "encode_windows", "forecast_errors", "RidgeProblem", "RidgeFit", "fit_ridge", "tail_gram",
    "gram_matrix", "target_rows",
    "SGDFit", "fit_sgd", "DEFAULT_RIDGE_GRID",
]

DEFAULT_RIDGE_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)  # alpha / mean diagonal of the Gram matrix


@dataclass
class EncodedWindows:
    """``features (N * C, F)`` float32 (window-major, channel-minor rows), ``mean`` and
    ``std`` ``(N * C,)`` (the instance statistics of each row)."""

    features: Tensor
    mean: Tensor
    std: Tensor
    channels: int

    @property
    def rows(self) -> int:
        return int(self.features.shape[0])

    def head(self, windows: int) -> EncodedWindows:
        """The first ``windows`` windows (rows ``[0, windows * C)``)."""
        n = windows * self.channels
        return EncodedWindows(self.features[:n], self.mean[:n], self.std[:n], self.channels)


@torch.no_grad()
def encode_windows(encoder, inputs, batch_size: int = 256, show_progress: bool = False, desc: str = "windows") -> EncodedWindows:
    """Encode windows ``inputs`` (an ``(N, C, L)`` array, tensor or anything indexable by a
    slice that returns one) with a channel-independent :class:`PatchTransformer`."""
    if not getattr(encoder, "channel_independent", False):
        raise ValueError("forecasting evaluation needs a channel-independent encoder (model.channel_independent=true)")
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    feats, means, stds = [], [], []
    try:
        starts = range(0, len(inputs), batch_size)
        for s in progress_bar(starts, desc, len(starts), show_progress, "batch"):
            x = torch.as_tensor(np.asarray(inputs[s : s + batch_size]), dtype=torch.float32).to(device)
            tokens, stats = encoder.encode(x)
            feats.append(tokens[:, 1:].flatten(1).float().cpu())
            means.append(stats.mean.flatten().cpu())
            stds.append(stats.std.flatten().cpu())
    finally:
        encoder.train(was_training)
    return EncodedWindows(torch.cat(feats), torch.cat(means), torch.cat(stds), encoder.in_channels)


def forecast_errors(pred: Tensor, target: Tensor) -> dict[str, float]:
    """MSE and MAE over every element (windows, channels, steps)."""
    if pred.shape != target.shape:
        raise ValueError(f"predictions {tuple(pred.shape)} and targets {tuple(target.shape)} differ in shape")
    diff = (pred.double() - target.double())
    return {"mse": float(diff.pow(2).mean()), "mae": float(diff.abs().mean())}


def target_rows(targets: Tensor | np.ndarray) -> Tensor:
    """``(N, C, H)`` targets -> ``(N * C, H)`` rows (the order of the encoded rows)."""
    t = torch.as_tensor(np.asarray(targets), dtype=torch.float32)
    return t.reshape(-1, t.shape[-1])


# -- ridge ---------------------------------------------------------------------------------
def _design_chunks(enc: EncodedWindows, chunk: int = 4096):
    """Rows ``s * [f, 1]`` in float32 chunks (the de-normalised design matrix)."""
    for start in range(0, enc.rows, chunk):
        f = enc.features[start : start + chunk]
        s = enc.std[start : start + chunk].unsqueeze(1)
        yield start, torch.cat([f * s, s], dim=1)


def gram_matrix(enc: EncodedWindows) -> Tensor:
    """``A^T A`` in float64 for the de-normalised design ``A = s [f, 1]``."""
    g = torch.zeros(enc.features.shape[1] + 1, enc.features.shape[1] + 1, dtype=torch.float64)
    for _, a in _design_chunks(enc):
        g += (a.T @ a).double()
    return g


def _cross(enc: EncodedWindows, residual: Tensor) -> Tensor:
    r = torch.zeros(enc.features.shape[1] + 1, residual.shape[1], dtype=torch.float64)
    for start, a in _design_chunks(enc):
        r += (a.T @ residual[start : start + a.shape[0]]).double()
    return r


def _predict(enc: EncodedWindows, weight: Tensor) -> Tensor:
    w = weight.float()
    out = []
    for start, a in _design_chunks(enc):
        out.append(a @ w + enc.mean[start : start + a.shape[0]].unsqueeze(1))
    return torch.cat(out)


@dataclass
class RidgeFit:
    """The selected solution: ``weight (F + 1, H)`` (last row: bias), its relative penalty
    ``alpha``, the validation MSE of every ``alpha`` tried, and the selected errors."""

    weight: Tensor
    alpha: float
    val_mse_by_alpha: dict[float, float]
    val: dict[str, float]
    train_rows: int
    val_rows: int

    def predict(self, enc: EncodedWindows) -> Tensor:
        return _predict(enc, self.weight)


class RidgeProblem:
    """Sufficient statistics of one split for one horizon: ``G = A^T A``, ``R = A^T T``,
    ``||T||^2`` with ``A = s [f, 1]`` and ``T = y - m``. Built once per split and
    horizon; a shorter prefix of rows (a longer horizon) is obtained by subtracting the
    tail rows (:meth:`drop_tail`)."""

    def __init__(self, enc: EncodedWindows, targets: Tensor, gram: Tensor | None = None):
        if targets.shape[0] != enc.rows:
            raise ValueError(f"{targets.shape[0]} target rows for {enc.rows} encoded rows")
        self.enc = enc
        self.residual = targets - enc.mean.unsqueeze(1)
        self.gram = gram_matrix(enc) if gram is None else gram
        self.cross = _cross(enc, self.residual)
        self.total = float(self.residual.double().pow(2).sum())
        self.elements = self.residual.numel()

    def mse(self, weight: Tensor) -> float:
        """MSE of ``y_hat`` for ``weight (F + 1, H)``, from the statistics alone."""
        quad = float((self.gram @ weight * weight).sum())
        lin = float((self.cross * weight).sum())
        return (quad - 2 * lin + self.total) / self.elements


def tail_gram(enc: EncodedWindows, full_gram: Tensor, keep_rows: int) -> Tensor:
    """Gram matrix of the first ``keep_rows`` rows, from the Gram of all rows."""
    if keep_rows >= enc.rows:
        return full_gram
    tail = EncodedWindows(enc.features[keep_rows:], enc.mean[keep_rows:], enc.std[keep_rows:], enc.channels)
    return full_gram - gram_matrix(tail)


def _solve(gram: Tensor, cross: Tensor, alpha: float) -> Tensor:
    penalty = torch.full((gram.shape[0],), alpha, dtype=gram.dtype)
    penalty[-1] = 0.0  # the bias is not penalised
    system = gram + torch.diag(penalty)
    factor, info = torch.linalg.cholesky_ex(system)
    if int(info) != 0:  # singular without penalty on the bias only when a column is constant
        return torch.linalg.lstsq(system, cross).solution
    return torch.cholesky_solve(cross, factor)


def fit_ridge(train: RidgeProblem, val: RidgeProblem, grid: Sequence[float] = DEFAULT_RIDGE_GRID,
              extend_edges: int = 3) -> RidgeFit:
    """Solve for every relative penalty in ``grid`` (times the mean diagonal of the
    training Gram matrix) and keep the one with the lowest validation MSE. When the best
    lies on an edge of the grid, up to ``extend_edges`` further decades are tried beyond it."""
    scale = float(torch.diagonal(train.gram)[:-1].mean())
    tried: dict[float, float] = {}
    solutions: dict[float, Tensor] = {}

    def attempt(rel: float) -> None:
        w = _solve(train.gram, train.cross, rel * scale)
        tried[rel] = val.mse(w)
        solutions[rel] = w

    for rel in grid:
        attempt(float(rel))
    for _ in range(extend_edges):
        best = min(tried, key=tried.get)
        if best == min(tried):
            attempt(best / 10)
        elif best == max(tried):
            attempt(best * 10)
        else:
            break
    best = min(tried, key=tried.get)
    weight = solutions[best]
    val_pred = _predict(val.enc, weight)
    val_err = forecast_errors(val_pred, val.residual + val.enc.mean.unsqueeze(1))
    return RidgeFit(weight, best, dict(sorted(tried.items())), val_err, train.enc.rows, val.enc.rows)


# -- TimeDRL's trained head ------------------------------------------------------------------
@dataclass
class SGDFit:
    head: nn.Linear
    epoch: int  # 1-based epoch selected on validation
    val: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)

    @torch.no_grad()
    def predict(self, enc: EncodedWindows) -> Tensor:
        return _sgd_predict(self.head, enc)


@torch.no_grad()
def _sgd_predict(head: nn.Linear, enc: EncodedWindows, chunk: int = 8192) -> Tensor:
    out = []
    for s in range(0, enc.rows, chunk):
        out.append(head(enc.features[s : s + chunk]) * enc.std[s : s + chunk, None] + enc.mean[s : s + chunk, None])
    return torch.cat(out)


def _warmup_factor(epoch: int) -> float:
    """TimeDRL's "warmup" schedule: the lr factor set after ``epoch`` (1-based) epochs."""
    return (epoch + 1) / 5 if epoch < 5 else 0.9 ** (epoch - 5)


def fit_sgd(
    train: EncodedWindows,
    train_targets: Tensor,
    val: EncodedWindows,
    val_targets: Tensor,
    epochs: int = 30,
    lr: float = 2.1e-4,
    weight_decay: float = 1.6e-5,
    dropout: float = 0.2,
    batch_windows: int = 32,
    patience: int = 10,
    seed: int = 0,
    show_progress: bool = False,
) -> SGDFit:
    """TimeDRL's linear head ``Dropout -> Linear(T_p * D, H)`` on the frozen features,
    AdamW with the authors' warm-up schedule and early stopping on validation MSE; the
    epoch with the lowest validation MSE is returned (never one picked on test)."""
    g = torch.Generator().manual_seed(seed)
    horizon = train_targets.shape[1]
    head = nn.Linear(train.features.shape[1], horizon)
    bound = 1 / math.sqrt(train.features.shape[1])
    with torch.no_grad():
        head.weight.uniform_(-bound, bound, generator=g)
        head.bias.uniform_(-bound, bound, generator=g)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    c = train.channels
    windows = train.rows // c
    best_state, best_epoch, best_val, waited = None, 0, float("inf"), 0
    history = []
    for epoch in progress_bar(range(1, epochs + 1), "linear head", epochs, show_progress, "epoch"):
        order = torch.randperm(windows, generator=g)
        head.train()
        total = 0.0
        for s in range(0, windows - batch_windows + 1, batch_windows):  # drop_last, as the authors' loader
            rows = (order[s : s + batch_windows, None] * c + torch.arange(c)).flatten()
            f = train.features[rows]
            if dropout > 0:
                keep = torch.rand(f.shape, generator=g) >= dropout
                f = f * keep / (1 - dropout)
            pred = head(f) * train.std[rows, None] + train.mean[rows, None]
            loss = F.mse_loss(pred, train_targets[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(rows)
        head.eval()
        val_err = forecast_errors(_sgd_predict(head, val), val_targets)
        history.append({"epoch": epoch, "train_mse": total / max(1, (windows // batch_windows) * batch_windows * c),
                        "val_mse": val_err["mse"]})
        if val_err["mse"] < best_val:
            best_val, best_epoch, waited = val_err["mse"], epoch, 0
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
        for group in opt.param_groups:  # the authors adjust the lr after each epoch
            group["lr"] = lr * _warmup_factor(epoch)
    head.load_state_dict(best_state)
    head.eval()
    return SGDFit(head, best_epoch, forecast_errors(_sgd_predict(head, val), val_targets), history)
