"""Image transforms: the contract (identity, replay, batch = per-sample, gradients, range)
and each transform's semantics against an independent reference."""

from __future__ import annotations

import math

import kornia
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from invlab.transforms import (
    Brightness,
    ColorJitter,
    ColourChannels,
    Compose,
    Contrast,
    ElasticWarp,
    Erase,
    GaussianBlur,
    GaussianNoise,
    Grayscale,
    HorizontalFlip,
    Hue,
    Invert,
    Pixelate,
    PlaceObject,
    Posterize,
    RandomApply,
    RandomResizedCrop,
    Resize,
    Rotate,
    Rotate90,
    Saturation,
    Scale,
    Sharpen,
    Shear,
    Solarize,
    Translate,
    VerticalFlip,
)
from invlab.transforms.base import select_params
from invlab.transforms.image.kernels import adjust_hue

ALL = {
    "crop": lambda: RandomResizedCrop(16, scale=(0.08, 1.0)),
    "crop_small_out": lambda: RandomResizedCrop(8, scale=(0.2, 1.0)),
    "hflip": lambda: HorizontalFlip(0.5),
    "vflip": lambda: VerticalFlip(0.5),
    "rot90": lambda: Rotate90(),
    "rotate": lambda: Rotate(180),
    "translate": lambda: Translate(0.2),
    "scale": lambda: Scale((0.5, 1.5)),
    "shear": lambda: Shear(30, 10),
    "brightness": lambda: Brightness((0.2, 1.8)),
    "contrast": lambda: Contrast((0.2, 1.8)),
    "saturation": lambda: Saturation((0.0, 2.0)),
    "hue": lambda: Hue((-0.5, 0.5)),
    "jitter": lambda: ColorJitter(0.8, 0.8, 0.8, 0.2),
    "grayscale": lambda: Grayscale(0.5),
    "blur": lambda: GaussianBlur((0.1, 2.0)),
    "solarize": lambda: Solarize((0.2, 0.9)),
    "invert": lambda: Invert(0.5),
    "random_apply_jitter": lambda: RandomApply(ColorJitter(0.4, 0.4, 0.4, 0.1), 0.5),
    "random_apply_rotate": lambda: RandomApply(Rotate(30), 0.5),
    "random_apply_hflip": lambda: RandomApply(HorizontalFlip(1.0), 0.5),
    "posterize": lambda: Posterize((1, 8)),
    "sharpen": lambda: Sharpen((0.0, 7.0)),
    "noise": lambda: GaussianNoise((0.0, 0.3)),
    "pixelate": lambda: Pixelate((0.2, 0.6)),
    "elastic": lambda: ElasticWarp(),
    "erase": lambda: Erase(0.4),
    "place_object": lambda: PlaceObject(),
    "colour_channels_hue": lambda: ColourChannels(Hue((-0.5, 0.5))),
    "random_apply_pixelate": lambda: RandomApply(Pixelate(0.3), 0.5),
    "compose": lambda: Compose([RandomResizedCrop(16), HorizontalFlip(), RandomApply(ColorJitter(0.8, 0.8, 0.8, 0.2), 0.8), Grayscale(0.2)]),
}


@pytest.fixture(params=sorted(ALL))
def transform(request):
    return ALL[request.param]()


@pytest.mark.parametrize("name", sorted(n for n in ALL if n != "crop_small_out"))  # size changes have no identity
def test_identity_params_give_the_input_back(name, images):
    transform = ALL[name]()
    out = transform.apply(images, transform.identity_params(len(images)))
    assert out.shape == images.shape
    torch.testing.assert_close(out, images, atol=2e-5, rtol=0)


def test_same_params_same_output_and_seeded_sampling(transform, images):
    p1 = transform.sample(len(images), torch.Generator().manual_seed(3), size=(16, 16))
    p2 = transform.sample(len(images), torch.Generator().manual_seed(3), size=(16, 16))
    assert p1.keys() == p2.keys()
    for k in p1:
        assert torch.equal(p1[k], p2[k])
        assert p1[k].shape[0] == len(images), f"{k} must have leading dim n"
    torch.testing.assert_close(transform.apply(images, p1), transform.apply(images, p1), atol=0, rtol=0)


def test_batch_equals_per_sample(transform, images):
    params = transform.sample(len(images), torch.Generator().manual_seed(1), size=(16, 16))
    batched = transform.apply(images, params)
    for i in range(len(images)):
        single = transform.apply(images[i : i + 1], select_params(params, slice(i, i + 1)))
        torch.testing.assert_close(batched[i : i + 1], single, atol=1e-5, rtol=0)


def test_outputs_stay_in_range(transform, images):
    extreme = torch.cat([images, torch.zeros(1, 3, 16, 16), torch.ones(1, 3, 16, 16)])
    for seed in range(5):
        out, params = transform(extreme, torch.Generator().manual_seed(seed))
        assert torch.isfinite(out).all()
        assert out.min() >= -1e-6 and out.max() <= 1 + 1e-6


def test_runs_on_the_inputs_device_and_dtype(transform, images):
    out, _ = transform(images.double(), torch.Generator().manual_seed(0))
    assert out.dtype == torch.float64


CONTINUOUS = {
    "crop": (lambda: RandomResizedCrop(16), "box"),
    "rotate": (lambda: Rotate(45), "angle"),
    "translate": (lambda: Translate(0.2), "shift"),
    "scale": (lambda: Scale((0.5, 1.5)), "factor"),
    "shear": (lambda: Shear(30), "angle"),
    "brightness": (lambda: Brightness((0.5, 0.9)), "factor"),
    "contrast": (lambda: Contrast((0.5, 1.5)), "factor"),
    "saturation": (lambda: Saturation((0.5, 1.5)), "factor"),
    "hue": (lambda: Hue((-0.3, 0.3)), "factor"),
    "blur": (lambda: GaussianBlur((0.5, 2.0)), "sigma"),
    "sharpen": (lambda: Sharpen((0.5, 3.0)), "factor"),
    "noise": (lambda: GaussianNoise((0.05, 0.2)), "std"),
    "elastic": (lambda: ElasticWarp(0.1), "field"),
}


@pytest.mark.parametrize("name", sorted(CONTINUOUS))
def test_gradients_reach_continuous_parameters(name, images):
    t, key = CONTINUOUS[name][0](), CONTINUOUS[name][1]
    params = t.sample(len(images), torch.Generator().manual_seed(0), size=(16, 16))
    params[key] = params[key].clone().double().requires_grad_(True)
    out = t.apply(images.double(), params)
    weights = torch.rand(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    (out * weights).sum().backward()
    grad = params[key].grad
    assert grad is not None and torch.isfinite(grad).all()
    assert grad.abs().sum() > 0, f"no gradient reaches {name}.{key}"


def test_gradcheck_rotation_angle():
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    t = Rotate(30)

    def f(angle):
        return t.apply(x, {"angle": angle})

    angle = torch.tensor([10.0, -20.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (angle,), eps=1e-4, atol=1e-3)


def test_gradcheck_brightness_and_hue():
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64) * 0.5 + 0.2  # away from clamp edges
    f_b = lambda f: Brightness().apply(x, {"factor": f})  # noqa: E731
    f_h = lambda s: Hue().apply(x, {"factor": s})  # noqa: E731
    assert torch.autograd.gradcheck(f_b, (torch.tensor([0.9, 1.1], dtype=torch.float64, requires_grad=True),))
    assert torch.autograd.gradcheck(f_h, (torch.tensor([0.013, -0.021], dtype=torch.float64, requires_grad=True),), eps=1e-6, atol=1e-4)


# -- semantics against independent references -----------------------------------------
def test_flips_and_rot90_are_exact_pixel_permutations(images):
    n = len(images)
    on = torch.ones(n, dtype=torch.bool)
    assert torch.equal(HorizontalFlip().apply(images, {"flip": on}), images.flip(-1))
    assert torch.equal(VerticalFlip().apply(images, {"flip": on}), images.flip(-2))
    for k in range(4):
        out = Rotate90().apply(images, {"k": torch.full((n,), k)})
        torch.testing.assert_close(out, torch.rot90(images, k, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_rotate_by_90_matches_rot90(images):
    out = Rotate().apply(images, {"angle": torch.full((len(images),), 90.0)})
    torch.testing.assert_close(out, torch.rot90(images, 1, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_rot90_refuses_non_square_images():
    with pytest.raises(ValueError, match="square"):
        Rotate90().apply(torch.rand(1, 3, 8, 6), {"k": torch.ones(1, dtype=torch.long)})


def test_crop_matches_slice_then_bilinear_resize():
    x = torch.rand(1, 3, 16, 16)
    # integer box: columns 4..12, rows 2..10 (fractions of 16)
    box = torch.tensor([[4 / 16, 2 / 16, 12 / 16, 10 / 16]])
    out = RandomResizedCrop(16).apply(x, {"box": box})
    ref = F.interpolate(x[:, :, 2:10, 4:12], size=(16, 16), mode="bilinear", align_corners=False)
    # interpolate clamps at the crop's own border, the warp reads the neighbouring pixels:
    # compare the interior, where both see the same samples
    torch.testing.assert_close(out[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5, rtol=0)


def test_crop_sampling_respects_scale_and_ratio():
    t = RandomResizedCrop(32, scale=(0.2, 0.5), ratio=(0.75, 1.333))
    box = t.sample(2000, torch.Generator().manual_seed(0), size=(32, 32))["box"]
    w, h = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
    area = w * h
    assert (box >= 0).all() and (box <= 1).all()
    assert area.min() >= 0.2 - 1e-5 and area.max() <= 0.5 + 1e-5
    ratio = w / h
    assert ratio.min() >= 0.75 - 1e-4 and ratio.max() <= 1.333 + 1e-4


def test_crop_sampling_on_wide_images_keeps_pixel_aspect():
    t = RandomResizedCrop(16, scale=(0.3, 0.3), ratio=(1.0, 1.0))
    box = t.sample(100, torch.Generator().manual_seed(0), size=(10, 40))["box"]
    w_px, h_px = (box[:, 2] - box[:, 0]) * 40, (box[:, 3] - box[:, 1]) * 10
    torch.testing.assert_close(w_px, h_px, atol=1e-4, rtol=1e-4)


def test_photometric_kernels_match_definitions(images):
    n = len(images)
    f = torch.linspace(0.3, 1.7, n)
    gray = (0.2989 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]).unsqueeze(1)
    fb = f.view(-1, 1, 1, 1)
    torch.testing.assert_close(Brightness().apply(images, {"factor": f}), (images * fb).clamp(0, 1))
    mean = gray.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(Contrast().apply(images, {"factor": f}), (fb * images + (1 - fb) * mean).clamp(0, 1))
    torch.testing.assert_close(Saturation().apply(images, {"factor": f}), (fb * images + (1 - fb) * gray).clamp(0, 1))
    on = torch.ones(n, dtype=torch.bool)
    torch.testing.assert_close(Grayscale().apply(images, {"gray": on}), gray.expand_as(images))
    torch.testing.assert_close(Invert().apply(images, {"invert": on}), 1 - images)
    t = torch.full((n,), 0.5)
    torch.testing.assert_close(Solarize().apply(images, {"threshold": t}), torch.where(images >= 0.5, 1 - images, images))


def test_hue_matches_kornia_hsv_rotation(images):
    shift = torch.linspace(-0.5, 0.5, len(images))
    ours = Hue().apply(images, {"factor": shift})
    ref = kornia.enhance.adjust_hue(images, shift * 2 * math.pi)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def _hue_by_max_index(x, shift):
    """adjust_hue written with ``x.max(dim)``'s arg-max (the kernel's earlier form)."""
    maxc, argmax = x.max(dim=-3, keepdim=True)
    delta = maxc - x.amin(dim=-3, keepdim=True)
    diff = x.roll(-1, dims=-3) - x.roll(-2, dims=-3)
    h = diff.gather(-3, argmax) / torch.where(delta > 0, delta, torch.ones_like(delta))
    h = h + (2.0 * argmax.to(x.dtype) + 6.0 * shift.to(x.dtype).view(-1, 1, 1, 1))
    q = torch.remainder(h + torch.tensor([5.0, 3.0, 1.0], dtype=x.dtype).view(3, 1, 1), 6.0)
    return maxc - delta * (2.0 - (q - 2.0).abs()).clamp(0.0, 1.0)


def test_hue_arg_max_ties_and_gradients_as_with_max_index():
    # 8-bit images have many equal channels (grey pixels, r == g > b, ...): the kernel's
    # arg-max by comparisons must pick the first maximum, as x.max(dim) does
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (16, 3, 8, 8), generator=g).double() / 3  # 4 levels: ties everywhere
    shift = torch.rand(16, generator=g, dtype=torch.float64) - 0.5
    assert torch.equal(adjust_hue(x, shift), _hue_by_max_index(x, shift))  # in-place path
    xr, sr = x.clone().requires_grad_(), shift.clone().requires_grad_()
    w = torch.randn(16, 3, 8, 8, generator=g, dtype=torch.float64)
    ours = torch.autograd.grad((adjust_hue(xr, sr) * w).sum(), (xr, sr))
    ref = torch.autograd.grad((_hue_by_max_index(xr, sr) * w).sum(), (xr, sr))
    assert torch.equal(ours[0], ref[0]) and torch.equal(ours[1], ref[1])


def test_blur_matches_kornia(images):
    sigma = torch.linspace(0.3, 2.0, len(images))
    ours = GaussianBlur(kernel_size=5).apply(images, {"sigma": sigma})
    ref = torch.cat([
        kornia.filters.gaussian_blur2d(images[i : i + 1], (5, 5), (float(s), float(s)), border_type="reflect")
        for i, s in enumerate(sigma)
    ])
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_resize_and_crop_output_sizes(images):
    assert Resize(8).apply(images, {}).shape == (6, 3, 8, 8)
    assert Resize((4, 12)).apply(images, {}).shape == (6, 3, 4, 12)
    out, params = RandomResizedCrop(8)(images)
    assert out.shape == (6, 3, 8, 8) and params["box"].shape == (6, 4)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: RandomResizedCrop(16, scale=(0.5, 0.1)), "low <= high"),
        (lambda: RandomResizedCrop(16, scale=(0.5, 1.5)), "within"),
        (lambda: HorizontalFlip(p=1.5), "probability"),
        (lambda: ColorJitter(hue=0.7), "hue"),
        (lambda: ColorJitter(brightness=-1), ">= 0"),
        (lambda: GaussianBlur(kernel_size=4), "odd"),
        (lambda: Rotate90(ks=()), "at least one"),
    ],
)
def test_bad_ranges_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_missing_or_misaligned_params_are_clear_errors(images):
    with pytest.raises(KeyError, match="missing"):
        Brightness().apply(images, {})
    with pytest.raises(ValueError, match="leading dim"):
        Brightness().apply(images, {"factor": torch.ones(2)})


def test_grey_images_pass_through_colour_ops():
    x = torch.rand(3, 1, 8, 8)
    out, _ = ColorJitter(0.4, 0.4, 0.4, 0.1)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.equal(Grayscale().apply(x, {"gray": torch.ones(3, dtype=torch.bool)}), x)


# -- the corruption and object transforms of Transforms-2D --------------------------------
def test_posterize_keeps_the_top_bits_like_uint8_masking():
    x8 = torch.randint(0, 256, (4, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    x = x8.float() / 255
    for bits in (1, 3, 8):
        out = Posterize(bits).apply(x, {"bits": torch.full((4,), bits)})
        ref = (x8 & (256 - 2 ** (8 - bits))).float() / 255
        torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    one_bit = Posterize(1).apply(x, {"bits": torch.ones(4, dtype=torch.long)})
    assert set(torch.unique(torch.round(one_bit * 255)).tolist()) <= {0.0, 128.0}


def test_sharpen_matches_pil_sharpness():
    from PIL import Image, ImageEnhance

    x8 = torch.randint(0, 256, (1, 3, 12, 12), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    pil = Image.fromarray(x8[0].permute(1, 2, 0).numpy())
    ref = torch.from_numpy(np.array(ImageEnhance.Sharpness(pil).enhance(3.0))).permute(2, 0, 1)
    out = Sharpen().apply(x8.float() / 255, {"factor": torch.tensor([3.0])})
    assert (torch.round(out[0] * 255) - ref.float()).abs().max() <= 1


def test_noise_is_a_replayable_function_of_its_seed(images):
    t = GaussianNoise(0.1)
    p = t.sample(6, torch.Generator().manual_seed(0))
    a = t.apply(images * 0 + 0.5, p)
    b = t.apply(images * 0 + 0.5, {k: v.clone() for k, v in p.items()})
    assert torch.equal(a, b)
    from invlab.transforms.image import seeded_normal

    z = seeded_normal(torch.arange(4), (20000,))
    assert abs(float(z.mean())) < 0.02 and abs(float(z.std()) - 1) < 0.02
    corr = torch.corrcoef(z)
    assert (corr - torch.eye(4)).abs().max() < 0.03  # different seeds: independent noise


def test_pixelate_makes_constant_blocks():
    x = torch.rand(2, 3, 16, 16)
    out = Pixelate(0.5).apply(x, {"factor": torch.tensor([0.5, 0.25])})
    blocks = out[0].unfold(1, 2, 2).unfold(2, 2, 2)  # (3, 8, 8, 2, 2)
    assert torch.equal(blocks, blocks[..., :1, :1].expand_as(blocks))
    assert torch.unique(out[1, 0]).numel() <= 16


def test_erase_sets_exactly_the_box_in_every_channel():
    x = torch.rand(1, 4, 32, 32) + 0.1
    out = Erase().apply(x, {"box": torch.tensor([[4 / 32, 8 / 32, 18 / 32, 22 / 32]])})
    zero = (out == 0).all(1)[0]
    assert int(zero.sum()) == 14 * 14 and bool(zero[8:22, 4:18].all())
    params = Erase().sample(50, torch.Generator().manual_seed(0))
    box = params["box"]
    assert (box[:, :2] >= 0).all() and (box[:, 2:] <= 1 + 1e-6).all()


def test_place_object_moves_the_alpha_box_by_whole_pixels_to_where_it_fits():
    x = torch.zeros(3, 4, 16, 16)
    x[:, :, 6:10, 5:9] = torch.rand(3, 4, 4, 4) + 0.1  # a 4x4 object
    pos = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]])
    out = PlaceObject().apply(x, {"position": pos})
    torch.testing.assert_close(out[0, :, 0:4, 0:4], x[0, :, 6:10, 5:9], atol=0, rtol=0)
    torch.testing.assert_close(out[1, :, 12:16, 12:16], x[1, :, 6:10, 5:9], atol=0, rtol=0)
    assert float(out[0].sum()) == pytest.approx(float(x[0].sum()))
    rgb = torch.rand(2, 3, 16, 16)
    assert torch.equal(PlaceObject().apply(rgb, {"position": torch.rand(2, 2)}), rgb)


def test_colour_channels_leave_alpha_alone():
    x = torch.rand(3, 4, 8, 8)
    t = ColourChannels(Invert(1.0))
    out = t.apply(x, {"invert": torch.ones(3, dtype=torch.bool)})
    assert torch.equal(out[:, 3], x[:, 3]) and torch.equal(out[:, :3], 1 - x[:, :3])
    assert t.name == "invert" and t.param_specs() == Invert().param_specs()


def test_elastic_displacement_has_the_documented_strength():
    t = ElasticWarp(magnitude=0.1, grid=5)
    x = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(200, 1, 64, 64).contiguous()  # a ramp in x
    out = t.apply(x, t.sample(200, torch.Generator().manual_seed(0)))
    inner = (out - x)[..., 8:-8, 8:-8] * 64  # displacement in pixels along x
    assert 0.7 * 0.1 * 64 < float(inner.std()) / 1.0 < 1.1 * 0.1 * 64
