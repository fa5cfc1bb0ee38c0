from __future__ import annotations

import pytest
import torch

from invlab.errors import ConfigError
from invlab.transforms import (
    RandomApply,
    Transform,
    build_pipeline,
    build_transform,
    transform_names,
)


@pytest.mark.parametrize("name", transform_names())
def test_every_registered_transform_builds_a_pure_batched_transform(name):
    """Built with its defaults, each transform draws parameters with the batch as leading
    dimension, as a function of the generator only; applies them keeping the batch and
    shape; and its identity parameters leave the input unchanged."""
    spec = {"name": name, "size": 8} if name == "resize" else {"name": name}
    t = build_transform(spec)
    assert isinstance(t, Transform)
    series = name in transform_names("series")
    x = torch.randn(5, 2, 32) if series else torch.rand(5, 3, 16, 16)
    size = (2, 32) if series else (16, 16)
    params = t.sample(5, torch.Generator().manual_seed(3), size=size)
    again = t.sample(5, torch.Generator().manual_seed(3), size=size)
    assert params.keys() == again.keys()
    for key, value in params.items():
        assert value.shape[0] == 5, key
        assert torch.equal(value, again[key]), key
    y = t.apply(x, params)
    assert torch.isfinite(y).all() and torch.equal(y, t.apply(x, params))
    expected = (5, 3, 8, 8) if name == "resize" else x.shape
    assert y.shape == expected
    if name != "resize":
        torch.testing.assert_close(t.apply(x, t.identity_params(5)), x, atol=1e-5, rtol=0)


def test_p_wraps_in_random_apply_unless_the_transform_draws_its_own():
    assert isinstance(build_transform({"name": "jitter", "p": 0.8}), RandomApply)
    flip = build_transform({"name": "hflip", "p": 0.3})
    assert not isinstance(flip, RandomApply) and flip.p == 0.3


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"name": "jiter"}, "unknown transform 'jiter' \\(did you mean 'jitter'\\?\\)"),
        ({"name": "jitter", "brightnes": 0.2}, "unknown option 'brightnes'.*did you mean 'brightness'"),
        ({"name": "crop", "scale": [1.0, 0.5]}, r"pipeline\[1\]: crop: scale must be"),
        ({"size": 3}, "needs a 'name'"),
    ],
)
def test_bad_specs_name_the_key(spec, match):
    with pytest.raises(ConfigError, match=match):
        build_pipeline([{"name": "hflip"}, spec])


def test_pipeline_must_be_a_list():
    with pytest.raises(ConfigError, match="list"):
        build_pipeline({"name": "hflip"})


def test_names_are_unique_and_kinds_split_images_from_series():
    from invlab.transforms.image import Invert
    from invlab.transforms.registry import register_transform

    with pytest.raises(ValueError, match="already registered"):
        register_transform("hflip", Invert)
    image, series = set(transform_names("image")), set(transform_names("series"))
    assert not image & series and image | series == set(transform_names())
    assert {"hflip", "gaussian_noise", "place_object"} <= image
    assert {"ts_jitter", "time_warp", "window_crop"} <= series
