"""Time-series transforms: the contract (identity, replay, batch = per-sample, gradients,
shapes, registry) and each transform's semantics against an independent numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invlab.errors import ConfigError
from invlab.transforms import (
    Compose,
    Jitter,
    MagnitudeWarp,
    Masking,
    RandomApply,
    Scaling,
    SegmentPermutation,
    TimeWarp,
    WindowCrop,
    WindowSlice,
    build_pipeline,
    build_transform,
)
from invlab.transforms.base import select_params

ALL = {
    "jitter": lambda: Jitter((0.05, 0.2)),
    "scaling": lambda: Scaling(0.2),
    "scaling_shared": lambda: Scaling(0.2, per_channel=False),
    "magnitude_warp": lambda: MagnitudeWarp(0.3, 4),
    "magnitude_warp_channels": lambda: MagnitudeWarp(0.3, 3, per_channel=True),
    "time_warp": lambda: TimeWarp(0.3, 4),
    "window_slice": lambda: WindowSlice((0.5, 0.9)),
    "window_crop": lambda: WindowCrop((0.3, 0.8)),
    "permutation": lambda: SegmentPermutation((1, 5)),
    "masking": lambda: Masking((0.1, 0.5)),
    "random_apply_warp": lambda: RandomApply(TimeWarp(0.3), 0.5),
    "compose": lambda: Compose([Jitter(0.1), Scaling(0.1), RandomApply(MagnitudeWarp(0.2), 0.5), SegmentPermutation()]),
}


@pytest.fixture
def series() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 6.28, 40)
    base = torch.stack([torch.sin(t * (c + 1)) for c in range(3)])
    return base.expand(5, 3, 40) + 0.1 * torch.randn(5, 3, 40, generator=g)


@pytest.mark.parametrize("name", sorted(ALL))
def test_identity_params_leave_series_unchanged(name, series):
    t = ALL[name]()
    out = t.apply(series, t.identity_params(len(series)))
    torch.testing.assert_close(out, series, atol=5e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(ALL))
def test_replay_shapes_and_batch_equals_per_sample(name, series):
    t = ALL[name]()
    g = torch.Generator().manual_seed(1)
    out, params = t(series, g)
    assert out.shape == series.shape and torch.isfinite(out).all()
    torch.testing.assert_close(t.apply(series, params), out)  # parameters replay the view exactly
    for i in range(len(series)):
        one = t.apply(series[i : i + 1], select_params(params, slice(i, i + 1)))
        torch.testing.assert_close(one, out[i : i + 1], atol=1e-6, rtol=0)
    for key, spec in t.param_specs().items():  # listed parameters have the declared per-sample shape
        assert params[key].shape == (len(series), *spec.shape), key


@pytest.mark.parametrize("name", sorted(ALL))
def test_gradient_reaches_the_series(name, series):
    t = ALL[name]()
    params = t.sample(len(series), torch.Generator().manual_seed(2), size=tuple(series.shape[-2:]))
    x = series.clone().requires_grad_(True)
    t.apply(x, params).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("cls, key", [(TimeWarp, "knots"), (MagnitudeWarp, "knots"), (WindowSlice, "start")])
def test_gradient_reaches_continuous_parameters(cls, key, series):
    t = cls()
    params = t.sample(len(series), torch.Generator().manual_seed(3), size=tuple(series.shape[-2:]))
    params = {k: v.double().requires_grad_(True) if k == key else v for k, v in params.items()}
    t.apply(series.double(), params).pow(2).sum().backward()
    assert params[key].grad is not None and params[key].grad.abs().sum() > 0


def test_jitter_and_scaling_semantics(series):
    p = Jitter(0.1).sample(5, torch.Generator().manual_seed(0), size=(3, 40))
    torch.testing.assert_close(Jitter(0.1).apply(series, p), series + 0.1 * p["noise"])
    s = Scaling(0.2).sample(5, torch.Generator().manual_seed(0), size=(3, 40))
    assert s["factor"].shape == (5, 3)
    torch.testing.assert_close(Scaling(0.2).apply(series, s), series * s["factor"][:, :, None])


def test_segment_permutation_matches_numpy_reference(series):
    t = SegmentPermutation((1, 5))
    for length in (40, 37):
        x = series[..., :length]
        params = t.sample(5, torch.Generator().manual_seed(4), size=(3, length))
        out = t.apply(x, params).numpy()
        for i in range(5):
            k = int(params["segments"][i])
            order = params["order"][i].tolist()
            assert sorted(order[:k]) == list(range(k)) and order[k:] == list(range(k, 5))
            segments = np.array_split(np.arange(length), k)
            index = np.concatenate([segments[j] for j in order[:k]])
            np.testing.assert_array_equal(out[i], x[i].numpy()[:, index])


def test_window_slice_matches_numpy_interp(series):
    x = series[:1]
    params = {"start": torch.tensor([0.25]), "length": torch.tensor([0.5])}
    out = WindowSlice().apply(x, params)[0].numpy()
    positions = (0.25 + 0.5 * np.linspace(0, 1, 40)) * 39
    for c in range(3):
        np.testing.assert_allclose(out[c], np.interp(positions, np.arange(40), x[0, c].numpy()), atol=1e-5)


def test_window_crop_zeroes_outside_the_window(series):
    params = {"start": torch.tensor([0.25]), "length": torch.tensor([0.5])}
    out = WindowCrop().apply(series[:1], params)[0]
    assert (out[:, :10] == 0).all() and (out[:, 30:] == 0).all()
    torch.testing.assert_close(out[:, 10:30], series[0, :, 10:30])


def test_time_warp_is_monotone_with_fixed_ends():
    knots = 1 + 0.4 * torch.randn(8, 6, generator=torch.Generator().manual_seed(5))
    pos = TimeWarp.positions(knots, 50)
    assert (pos[:, 1:] >= pos[:, :-1]).all()
    torch.testing.assert_close(pos[:, 0], torch.zeros(8))
    torch.testing.assert_close(pos[:, -1], torch.full((8,), 49.0))


def test_masking_ratio_and_magnitude_warp_smoothness(series):
    params = Masking(0.3).sample(64, torch.Generator().manual_seed(6), size=(3, 200))
    assert abs(1 - params["keep"].float().mean().item() - 0.3) < 0.02
    warp = MagnitudeWarp(0.2, 4)
    p = warp.sample(5, torch.Generator().manual_seed(7), size=(3, 40))
    curve = warp.apply(torch.ones(5, 3, 40), p)
    assert (curve[:, 0] == curve[:, 1]).all()  # shared across channels by default
    torch.testing.assert_close(curve[:, 0, 0], p["knots"][:, 0])  # the curve passes through the end knots
    assert curve.diff(dim=-1).abs().max() < 0.2  # smooth: no jumps between neighbouring steps


def test_bad_inputs_are_refused(series):
    with pytest.raises(ValueError, match=r"expected a batch of series \(N, C, T\)"):
        Jitter().apply(series[0], Jitter().identity_params(1))
    with pytest.raises(ValueError, match="needs size=\\(channels, length\\)"):
        Jitter().sample(2, torch.Generator())
    with pytest.raises(KeyError, match="'noise' is missing"):
        Jitter().apply(series, {"sigma": torch.zeros(5)})
    with pytest.raises(ValueError, match="segments must be a range"):
        SegmentPermutation((3, 2))
    with pytest.raises(ValueError, match="scale must be > 0"):
        WindowSlice(0.0)


def test_registry_builds_time_series_transforms(series):
    pipe = build_pipeline([{"name": "ts_jitter", "sigma": 0.05}, {"name": "time_warp", "p": 0.5},
                           "segment_permutation", {"name": "ts_masking", "ratio": 0.1}])
    out, params = pipe(series, torch.Generator().manual_seed(8))
    assert out.shape == series.shape
    assert {"ts_jitter.noise", "time_warp.fired", "time_warp.knots", "segment_permutation.order", "ts_masking.keep"} <= set(params)
    assert isinstance(build_transform("ts_jitter"), Jitter)
    assert not isinstance(build_transform("gaussian_noise"), Jitter)  # the image noise keeps its name
    with pytest.raises(ConfigError, match="unknown option 'sigmaa' for transform 'time_warp'"):
        build_transform({"name": "time_warp", "sigmaa": 1})
