"""The Transforms-2D catalogue: all 18 transformations, the paper's ranges, which channels
each acts on, option overrides and errors."""

from __future__ import annotations

import pytest
import torch

from invlab.errors import ConfigError
from invlab.transforms import ColourChannels, RandomApply
from invlab.transforms.transforms2d import (
    APPLY_ORDER,
    FAMILIES,
    TRANSFORMS_2D,
    build_transform_2d,
    pipeline_2d,
    transform_2d_names,
)


def _layer(n=6, size=16):
    x = torch.zeros(n, 4, size, size)
    x[:, :3] = torch.rand(n, 3, size, size)
    x[:, 3, 4:12, 5:11] = 1.0  # an opaque object in a transparent layer
    return x


def test_all_eighteen_in_three_families():
    assert len(TRANSFORMS_2D) == 18 and sorted(APPLY_ORDER) == sorted(transform_2d_names())
    assert {k: len(v) for k, v in FAMILIES.items()} == {"geometric": 6, "photometric": 6, "corruption": 6}


@pytest.mark.parametrize("name", transform_2d_names())
def test_each_acts_on_an_rgba_layer_replayably(name):
    t = build_transform_2d(name)
    assert t.name == name
    x = _layer()
    p = t.sample(6, torch.Generator().manual_seed(0), size=(16, 16))
    y = t.apply(x, p)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert float(y.min()) >= 0 and float(y.max()) <= 1 + 1e-6
    torch.testing.assert_close(t.apply(x, p), y, atol=0, rtol=0)
    ident = t.identity_params(6)
    torch.testing.assert_close(t.apply(x, ident), x, atol=1e-5, rtol=0)
    if TRANSFORMS_2D[name].colour_only:
        assert isinstance(t, ColourChannels)
        assert torch.equal(y[:, 3], x[:, 3])  # alpha untouched: the background stays as it is


def test_paper_ranges():
    g = torch.Generator().manual_seed(0)
    angle = build_transform_2d("rotate").sample(4000, g)["angle"]
    assert float(angle.min()) >= 0 and float(angle.max()) <= 360 and float(angle.max()) > 350
    scale = build_transform_2d("scale").sample(4000, g)["factor"]
    assert float(scale.min()) >= 0.4 and float(scale.max()) <= 1.0
    shear = build_transform_2d("shear").sample(4000, g)["angle"]
    assert float(shear[:, 0].abs().max()) <= 50 and float(shear[:, 0].abs().max()) > 45
    assert float(shear[:, 1].abs().max()) == 0
    hue = build_transform_2d("hue").sample(4000, g)["factor"]
    assert float(hue.min()) >= -0.5 and float(hue.max()) <= 0.5
    bright = build_transform_2d("brightness").sample(4000, g)["factor"]
    assert float(bright.min()) >= 0 and float(bright.max()) <= 2
    blur = build_transform_2d("blur")
    assert blur.kernel_size == 7 and blur.sigma == (0.1, 1.5)
    for name in ("posterize", "sharpen", "noise", "pixelate", "elastic", "erasing"):
        t = build_transform_2d(name)
        inner = t.transform if isinstance(t, ColourChannels) else t
        assert isinstance(inner, RandomApply) and inner.p == 0.5, name
    fired = build_transform_2d("grayscale").sample(4000, g)["gray"].float().mean()
    assert abs(float(fired) - 0.5) < 0.05


def test_options_override_the_paper_and_registry_names_work_too():
    t = build_transform_2d({"name": "rotate", "degrees": [0, 90]})
    assert float(t.sample(500, torch.Generator().manual_seed(0))["angle"].max()) <= 90
    assert build_transform_2d({"name": "pixelate", "p": 1.0}).p == 1.0
    solarize = build_transform_2d({"name": "solarize", "threshold": 0.5})  # not in the catalogue
    assert isinstance(solarize, ColourChannels) and solarize.name == "solarize"


def test_whole_image_target_uses_a_shift_for_translate():
    from invlab.transforms import PlaceObject, Translate

    assert isinstance(build_transform_2d("translate"), PlaceObject)
    assert isinstance(build_transform_2d("translate", target="image"), Translate)


def test_pipeline_applies_in_a_fixed_order_and_keys_by_name():
    a = pipeline_2d(["translate", "hue", "rotate", {"name": "solarize"}])
    b = pipeline_2d(["rotate", {"name": "solarize"}, "hue", "translate"])
    assert a.names == b.names == ["rotate", "hue", "solarize", "translate"]
    params = a.sample(3, torch.Generator().manual_seed(0))
    assert {k.split(".")[0] for k in params} == {"rotate", "hue", "solarize", "translate"}


@pytest.mark.parametrize(
    "specs, match",
    [
        (["rotat"], "unknown transform 'rotat' \\(did you mean 'rotate'\\?\\)"),
        (["hue", "hue"], "listed twice"),
        ([{"name": "blur", "sigmaa": 1}], "unknown option 'sigmaa'.*did you mean 'sigma'"),
        ([{"name": "scale", "factor": [1.0, 0.5]}], "low <= high"),
        ("rotate", "expected a list"),
    ],
)
def test_bad_specs_are_clear_errors(specs, match):
    with pytest.raises(ConfigError, match=match):
        pipeline_2d(specs)
