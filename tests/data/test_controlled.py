"""Controlled data sets: seeds, twins, factors, the object-before-background contract,
caching, the wrapper for real data, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invlab.data.arrays import ImageArray
from invlab.data.assets import GLYPH_CHARACTERS, background_bank, load_foregrounds
from invlab.data.cache import cache_dir
from invlab.data.controlled import (
    ControlledImages,
    ControlledSpec,
    TransformedImages,
    apply_controlled,
    check_spec,
    choose_transforms,
    select_classes,
)
from invlab.errors import ConfigError, DataError

SMALL = dict(num_classes=6, num_backgrounds=20)


def test_generation_is_deterministic_given_the_seeds():
    a = ControlledImages(["rotate", "hue", "noise"], 40, **SMALL, structure_seed=1, content_seed=2, transform_seed=3)
    b = ControlledImages(["rotate", "hue", "noise"], 40, **SMALL, structure_seed=1, content_seed=2, transform_seed=3)
    assert torch.equal(a.images(range(40)), b.images(range(40)))
    for k, v in a.factors.items():
        np.testing.assert_array_equal(v, b.factors[k])
    # rendering in other batches gives the same pixels (parameters are per index)
    assert torch.equal(a.images([5, 1, 30]), a.images(range(40))[[5, 1, 30]])
    c = ControlledImages(["rotate", "hue", "noise"], 40, **SMALL, structure_seed=1, content_seed=2, transform_seed=4)
    assert not torch.equal(a.images(range(40)), c.images(range(40)))


def test_each_seed_controls_its_own_factor():
    base = dict(transforms=["rotate"], num_samples=60, num_classes=6, num_backgrounds=20)
    a = ControlledImages(**base, structure_seed=0, content_seed=0, transform_seed=0)
    other_structure = ControlledImages(**base, structure_seed=1, content_seed=0, transform_seed=0)
    assert a.classes != other_structure.classes  # which classes
    other_content = ControlledImages(**base, structure_seed=0, content_seed=1, transform_seed=0)
    assert a.classes == other_content.classes
    assert not np.array_equal(a.background_ids, other_content.background_ids)
    np.testing.assert_array_equal(a.params["rotate.angle"], other_content.params["rotate.angle"])
    other_params = ControlledImages(**base, structure_seed=0, content_seed=0, transform_seed=1)
    np.testing.assert_array_equal(a.labels, other_params.labels)
    np.testing.assert_array_equal(a.background_ids, other_params.background_ids)
    assert not np.allclose(a.params["rotate.angle"], other_params.params["rotate.angle"])


def test_twins_differ_only_in_the_measured_transformation():
    data = ControlledImages(["rotate", "hue", "blur"], 50, **SMALL)
    twin = data.variant(transform_seed=7, resample=["hue"])
    f, g = data.factors, twin.factors
    assert set(f) == set(g)
    for key in f:
        if key.startswith("hue."):
            assert not np.allclose(f[key], g[key]), key
        else:
            np.testing.assert_array_equal(f[key], g[key], err_msg=key)
    # so the images differ only where the hue shift shows, and the full twin redraws all
    diff = (data.render(range(50)) - twin.render(range(50))).abs()
    assert float(diff.max()) > 0.1
    full = data.variant(transform_seed=7)
    assert not np.allclose(f["rotate.angle"], full.factors["rotate.angle"])
    np.testing.assert_array_equal(f["background"], full.factors["background"])


def test_every_sample_carries_its_factors_and_classes_are_balanced():
    data = ControlledImages(["translate", "posterize", "elastic"], 60, **SMALL)
    f = data.factors
    for key in ("label", "object", "background", "translate.position", "posterize.fired", "posterize.bits",
                "elastic.fired", "elastic.field"):
        assert key in f and len(f[key]) == 60, key
    assert np.bincount(f["label"]).tolist() == [10] * 6
    assert len(data.classes) == 6 and set(data.classes) <= set(GLYPH_CHARACTERS)


def test_any_size_and_grey_output():
    for size in (20, 48):
        x = ControlledImages(["rotate"], 4, **SMALL, image_size=size).render(range(4))
        assert x.shape == (4, 3, size, size) and 0 <= float(x.min()) and float(x.max()) <= 1
    grey = ControlledImages(["rotate"], 4, **SMALL, channels=1).render(range(4))
    assert grey.shape == (4, 1, 32, 32)


def test_transformations_act_on_the_object_before_pasting():
    data = ControlledImages([{"name": "invert", "p": 1.0}], 8, **SMALL)
    plain = data.render(range(8), data.pipeline.identity_params(8))
    inverted = data.render(range(8))
    alpha = data._prototypes[torch.from_numpy(data.labels)][:, 3:]  # where the object is
    background = (alpha == 0).expand_as(plain)
    assert torch.equal(plain[background], inverted[background])  # the background is untouched
    # composite = bg (1 - a) + colour a: inverting the colour gives bg (1 - a) + (1 - colour) a
    bg = data._backgrounds[torch.from_numpy(data.background_ids)].float() / 255
    torch.testing.assert_close(inverted, 2 * bg * (1 - alpha) + alpha - plain, atol=1e-5, rtol=0)


def test_class_blocks_at_different_offsets_are_disjoint():
    a = ControlledImages([], 10, num_classes=20, class_offset=0, num_backgrounds=5)
    b = ControlledImages([], 10, num_classes=20, class_offset=20, num_backgrounds=5)
    assert not set(a.classes) & set(b.classes)
    with pytest.raises(ConfigError, match="cannot take num_classes=40"):
        ControlledImages([], 10, num_classes=40, class_offset=20, num_backgrounds=5)


def test_transforms_drawn_by_structure_seed():
    assert choose_transforms(3, 0) == choose_transforms(3, 0)
    assert len(choose_transforms(3, 0)) == 3
    assert any(choose_transforms(3, 0) != choose_transforms(3, s) for s in range(1, 5))
    with pytest.raises(ConfigError, match="cannot draw 19"):
        choose_transforms(19)


def test_image_array_is_cached_on_disk():
    data = ControlledImages(["hflip", "hue"], 30, **SMALL)
    first = data.to_image_array()
    entries = list(cache_dir().glob("images-*"))
    assert len(entries) == 1
    again = ControlledImages(["hflip", "hue"], 30, **SMALL).to_image_array()
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.labels, data.labels)
    assert first.images.dtype == np.uint8 and first.images.shape == (30, 3, 32, 32)
    assert len(list(cache_dir().glob("images-*"))) == 1


def test_unknown_transform_name_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown transform 'rotat' \\(did you mean 'rotate'\\?\\)"):
        ControlledImages(["rotat"], 4, **SMALL)
    with pytest.raises(ConfigError, match="listed twice"):
        ControlledImages(["hue", "hue"], 4, **SMALL)
    with pytest.raises(ConfigError, match="unknown option 'degree'"):
        ControlledImages([{"name": "rotate", "degree": 5}], 4, **SMALL)
    with pytest.raises(ConfigError, match="data.controlled.transforms"):
        check_spec(ControlledSpec(transforms=["nope"]), synthetic=True)


def _png(path, size=(40, 30), colour=(200, 30, 30, 255)):
    from PIL import Image

    Image.new("RGBA", size, colour).save(path)


def test_user_background_folder_with_an_unreadable_file_names_it(tmp_path):
    _png(tmp_path / "good.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match="broken.jpg.*cannot decode"):
        ControlledImages([], 4, num_classes=3, backgrounds=str(tmp_path), num_backgrounds=4)
    (tmp_path / "broken.jpg").unlink()
    data = ControlledImages([], 4, num_classes=3, backgrounds=str(tmp_path), num_backgrounds=4)
    bg = data._backgrounds
    assert bg.shape == (4, 3, 32, 32) and int(bg[:, 0].min()) >= 190  # crops of the red image


def test_user_foreground_folder(tmp_path):
    for i, colour in enumerate([(255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 255, 128)]):
        _png(tmp_path / f"obj{i}.png", (20, 10), colour)
    data = ControlledImages(["rotate"], 9, foregrounds=str(tmp_path), num_backgrounds=3)
    assert sorted(data.classes) == ["obj0", "obj1", "obj2"]
    (tmp_path / "obj3.png").write_text("garbage")
    with pytest.raises(DataError, match="obj3.png"):
        load_foregrounds(str(tmp_path))
    with pytest.raises(DataError, match="unknown foreground set 'glyph'"):
        load_foregrounds("glyph")
    with pytest.raises(DataError, match="does not exist"):
        ControlledImages([], 4, backgrounds=str(tmp_path / "missing"))


def test_builtin_assets():
    glyphs = load_foregrounds("glyphs")
    assert len(glyphs) >= 30 and len(set(glyphs.names)) == len(glyphs)
    cells = glyphs.cells
    assert cells.shape[1] == 4 and float(cells.min()) >= 0 and float(cells.max()) <= 1
    alpha = cells[:, 3]
    assert bool((alpha.flatten(1).max(1).values > 0.99).all())  # every prototype has an opaque object
    border = torch.cat([alpha[:, 0], alpha[:, -1], alpha[:, :, 0], alpha[:, :, -1]], 1)
    assert float(border.abs().max()) == 0  # ... inside its cell
    flat = alpha.flatten(1)
    assert torch.cdist(flat, flat).add(torch.eye(len(flat)) * 1e9).min() > 1.0  # one distinct prototype per class
    assert len(load_foregrounds("digits")) == 10 and len(load_foregrounds("glyphs+digits")) == len(glyphs) + 10
    bank = background_bank("photos", 16, 12)
    assert bank.shape == (12, 3, 16, 16) and bank.dtype == torch.uint8
    assert torch.equal(bank, background_bank("photos", 16, 12))
    assert float(bank.float().std()) > 10  # real photographs, not flat colour


def _real(n=40, classes=4):
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(n, 3, 16, 16, generator=g) * 255).to(torch.uint8).numpy()
    labels = np.arange(n) % classes
    return ImageArray(images, labels.astype(np.int64), [f"c{i}" for i in range(classes)], "toy")


def test_wrapper_records_parameters_and_makes_twins_of_real_images():
    base = _real()
    data = TransformedImages(base, ["rotate", "brightness"], transform_seed=0)
    assert set(data.factors) >= {"label", "index", "rotate.angle", "brightness.factor"}
    x = data.render(range(40))
    raw = torch.from_numpy(base.images).float() / 255
    expected = data.pipeline.apply(raw, data.params).clamp(0, 1)
    torch.testing.assert_close(x, expected)
    twin = data.variant(transform_seed=1)
    np.testing.assert_array_equal(twin.labels, data.labels)
    assert not np.allclose(twin.factors["rotate.angle"], data.factors["rotate.angle"])
    arr = data.to_image_array()
    assert arr.images.shape == base.images.shape and arr.classes == base.classes


def test_class_selection_and_the_recipe_wrapper():
    base = _real()
    a = select_classes(base, 2, 0, structure_seed=0)
    b = select_classes(base, 2, 2, structure_seed=0)
    assert len(a) == 20 and set(a.labels.tolist()) == {0, 1}
    assert not set(a.classes) & set(b.classes)
    spec = ControlledSpec(transforms=["hflip"], num_classes=2)
    out = apply_controlled(base, spec, "train")
    assert len(out) == 20 and out.images.dtype == np.uint8
    unlabelled = ImageArray(base.images, np.full(40, -1), [], "u")
    with pytest.raises(DataError, match="needs labels"):
        select_classes(unlabelled, 2)
