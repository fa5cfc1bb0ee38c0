"""Compose / RandomApply carry the parameters of every step; fusion changes nothing."""

from __future__ import annotations

import pytest
import torch

from invlab.transforms import (
    Brightness,
    ColorJitter,
    Compose,
    Grayscale,
    HorizontalFlip,
    Identity,
    RandomApply,
    RandomResizedCrop,
    Rotate,
    Rotate90,
    Scale,
    cat_params,
    select_params,
)


def test_compose_keys_are_prefixed_and_unique():
    t = Compose([HorizontalFlip(), HorizontalFlip(), RandomApply(Brightness(), 0.5)])
    params = t.sample(4, torch.Generator().manual_seed(0))
    assert set(params) == {"hflip.flip", "hflip_2.flip", "brightness.fired", "brightness.factor"}
    assert set(t.param_specs()) == set(params)


def test_compose_equals_applying_steps_in_sequence(images):
    steps = [RandomResizedCrop(12), Rotate(30), HorizontalFlip(), RandomApply(ColorJitter(), 0.7), Grayscale(0.3)]
    t = Compose(steps)
    params = t.sample(len(images), torch.Generator().manual_seed(2), size=(16, 16))
    fused = t.apply(images, params)
    x = images
    for name, step in t.steps():
        x = step.apply(x, {k[len(name) + 1 :]: v for k, v in params.items() if k.startswith(name + ".")})
    # crop | rotate + hflip (canvas-preserving, fused) | jitter | grey: the fused run
    # samples the same points as the sequential one
    assert fused.shape == x.shape == (6, 3, 12, 12)
    torch.testing.assert_close(fused, x, atol=1e-4, rtol=0)


def test_fusion_never_brings_outside_pixels_into_view(images):
    # crop then rotate: the rotation's corners must be zeros as in sequential application,
    # not pixels from outside the crop box
    t = Compose([RandomResizedCrop(16, scale=(0.2, 0.2)), Rotate((45, 45))])
    params = t.sample(len(images), torch.Generator().manual_seed(0), size=(16, 16))
    out = t.apply(images, params)
    assert (out[..., 0, 0] == 0).all() and (out[..., -1, -1] == 0).all()


def test_fused_crop_flip_rot90_equals_sequential(images):
    t = Compose([RandomResizedCrop(12), HorizontalFlip(p=1.0), Rotate90()])
    params = t.sample(len(images), torch.Generator().manual_seed(5), size=(16, 16))
    fused = t.apply(images, params)
    x = RandomResizedCrop(12).apply(images, {"box": params["crop.box"]})
    x = x.flip(-1)
    x = torch.stack([torch.rot90(xi, int(k), dims=(-2, -1)) for xi, k in zip(x, params["rot90.k"])])
    torch.testing.assert_close(fused, x, atol=1e-5, rtol=0)


def test_non_canvas_preserving_steps_are_not_fused(images):
    # zoom in then out: the border cut away by the first step stays lost
    t = Compose([Scale((2.0, 2.0)), Scale((0.5, 0.5))])
    out = t.apply(images, t.sample(len(images)))
    assert (out[..., 0, 0] == 0).all() and not torch.allclose(out, images)


def test_random_apply_records_whether_it_fired(images):
    t = RandomApply(Brightness((0.0, 0.0)), p=0.5)  # fired samples turn black
    params = t.sample(len(images), torch.Generator().manual_seed(0))
    out = t.apply(images, params)
    fired = params["fired"]
    assert fired.dtype == torch.bool and 0 < fired.sum() < len(images)
    assert torch.equal(out[~fired], images[~fired])
    assert (out[fired] == 0).all()


def test_random_apply_draws_inner_params_for_every_sample():
    t = RandomApply(Brightness(), p=0.1)
    params = t.sample(50, torch.Generator().manual_seed(0))
    assert params["factor"].shape == (50,)


def test_random_apply_of_affine_is_fused_and_exact(images):
    t = Compose([RandomApply(HorizontalFlip(p=1.0), p=0.5)])
    params = t.sample(len(images), torch.Generator().manual_seed(4))
    out = t.apply(images, params)
    fired = params["hflip.fired"] & params["hflip.flip"]
    assert torch.equal(out[fired], images[fired].flip(-1))
    assert torch.equal(out[~fired], images[~fired])


def test_random_apply_refuses_size_changing_transforms():
    with pytest.raises(ValueError, match="changes the image size"):
        RandomApply(RandomResizedCrop(8), 0.5).output_size((16, 16))


def test_select_and_cat_params_roundtrip():
    t = Compose([RandomResizedCrop(8), HorizontalFlip()])
    p = t.sample(10, torch.Generator().manual_seed(0))
    back = cat_params([select_params(p, slice(0, 4)), select_params(p, slice(4, 10))])
    assert all(torch.equal(back[k], p[k]) for k in p)
    with pytest.raises(KeyError):
        cat_params([p, {"other": torch.zeros(1)}])


def test_identity_transform_and_type_checks(images):
    assert torch.equal(Identity().apply(images, {}), images)
    with pytest.raises(TypeError):
        Compose([lambda x: x])  # type: ignore[list-item]


def test_sampling_is_on_cpu_and_moved_to_device(images):
    p = Compose([RandomResizedCrop(8), HorizontalFlip()]).sample(3, torch.Generator().manual_seed(0), device="cpu")
    assert all(v.device.type == "cpu" for v in p.values())
