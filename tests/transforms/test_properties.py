"""Property-based tests: any parameters inside a transform's declared ranges give finite
outputs in the valid range, and composition carries every step's parameters."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invlab.transforms import Compose, ParamSpec, build_transform, transform_names
from invlab.transforms.base import select_params

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
IMAGE_TRANSFORMS = [n for n in transform_names("image") if n != "resize"]


def _value(spec: ParamSpec, draw) -> torch.Tensor:
    shape = spec.shape
    count = 1
    for d in shape:
        count *= d
    if spec.kind in ("continuous", "angle"):
        vals = draw(st.lists(st.floats(spec.low, spec.high, allow_nan=False), min_size=count, max_size=count))
        return torch.tensor(vals, dtype=torch.float32).view(shape)
    if spec.kind == "binary":
        return torch.tensor(draw(st.lists(st.booleans(), min_size=count, max_size=count))).view(shape)
    vals = draw(st.lists(st.integers(0, spec.num_classes - 1), min_size=count, max_size=count))
    return torch.tensor(vals, dtype=torch.long).view(shape)


@st.composite
def params_for(draw, transform, n, size):
    # undeclared auxiliary parameters (e.g. the noise transform's replay seed) come from sample()
    params = transform.sample(n, torch.Generator().manual_seed(draw(st.integers(0, 2**16))), size=size)
    for key, spec in transform.param_specs().items():
        params[key] = torch.stack([_value(spec, draw) for _ in range(n)])
    if "box" in [k.split(".")[-1] for k in params]:  # crop boxes must be ordered (x0 < x1, y0 < y1)
        for key in [k for k in params if k.endswith("box")]:
            b = params[key]
            lo, hi = torch.minimum(b[:, :2], b[:, 2:]), torch.maximum(b[:, :2], b[:, 2:])
            params[key] = torch.cat([lo, torch.maximum(hi, lo + 0.05).clamp(max=1.0)], 1)
            params[key][:, :2] = torch.minimum(params[key][:, :2], params[key][:, 2:] - 0.05)
    return params


@st.composite
def image_batch(draw):
    n = draw(st.integers(1, 3))
    size = draw(st.sampled_from([8, 12]))
    seed = draw(st.integers(0, 2**16))
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
    extremes = draw(st.sampled_from(["none", "zeros", "ones"]))
    if extremes == "zeros":
        x[0] = 0
    elif extremes == "ones":
        x[0] = 1
    return x


@SETTINGS
@given(name=st.sampled_from(IMAGE_TRANSFORMS), x=image_batch(), data=st.data())
def test_declared_ranges_give_finite_outputs_in_range(name, x, data):
    t = build_transform({"name": name})
    params = data.draw(params_for(t, x.shape[0], tuple(x.shape[-2:])))
    out = t.apply(x, params)
    assert torch.isfinite(out).all()
    assert out.min() >= -1e-5 and out.max() <= 1 + 1e-5


@SETTINGS
@given(
    names=st.lists(st.sampled_from(IMAGE_TRANSFORMS), min_size=1, max_size=5),
    x=image_batch(),
    seed=st.integers(0, 2**16),
    p=st.floats(0.0, 1.0),
)
def test_composition_carries_every_steps_parameters(names, x, seed, p):
    steps = [build_transform({"name": n, "p": p} if n in ("jitter", "blur", "solarize") else {"name": n}) for n in names]
    t = Compose(steps)
    params = t.sample(x.shape[0], torch.Generator().manual_seed(seed), size=tuple(x.shape[-2:]))
    assert set(t.param_specs()) <= set(params)  # every declared parameter is carried
    assert all(v.shape[0] == x.shape[0] for v in params.values())
    for name, step in t.steps():
        prefix = name + "."
        own = {k[len(prefix):] for k in params if k.startswith(prefix)}
        assert set(step.param_specs()) <= own
    out = t.apply(x, params)
    assert torch.isfinite(out).all()
    # replay, and rows are independent of the rest of the batch
    torch.testing.assert_close(t.apply(x, params), out, atol=0, rtol=0)
    torch.testing.assert_close(t.apply(x[:1], select_params(params, slice(0, 1))), out[:1], atol=1e-5, rtol=0)
