from __future__ import annotations

import pytest

from invlab.errors import ConfigError
from invlab.transforms import RandomApply, build_pipeline, build_transform, transform_names


def test_builds_every_registered_transform_with_defaults():
    for name in transform_names():
        spec = {"name": name}
        if name == "resize":
            spec["size"] = 8
        build_transform(spec)


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
