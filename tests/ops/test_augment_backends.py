"""The fused augmentation backends against the reference (fastssl.reference.augment, the specification).

Tolerance: on the [0, 1] scale — the normalised output times std — the mean |error| over a
view is at most 1/255 and the max |error| at most 3/255, nothing excluded. float32 outputs are also
held to a much tighter max error (FLOAT32_MAX), which catches any real divergence from the spec.
"""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from fastssl import recipes
from fastssl.ops.augment_params import AugmentParams
from fastssl.ops import augment_weights
from fastssl.ops.augment import AUGMENT, Augment, augment
from fastssl.ragged import RaggedImages
from helpers import require

MEAN_TOL, MAX_TOL = 1 / 255, 3 / 255
FLOAT32_MAX = 2e-4  # float32 rounding, amplified at most ~100x by the hue round trip and clamps


@pytest.fixture(autouse=True)
def _cpp_available():
    require("cpp", "cpu")


def random_batch(sizes, seed=0) -> RaggedImages:
    g = torch.Generator().manual_seed(seed)
    return RaggedImages.from_list([torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g) for h, w in sizes])


def unit_scale_errors(actual, expected, params):
    """(mean |error|, max |error|) on the [0, 1] scale (|error| of normalised values times std)."""
    std = torch.tensor(params.std, dtype=torch.float64).view(1, 3, 1, 1)
    error = (actual.double().cpu() - expected.double().cpu()).abs() * std  # CUDA outputs compared on the CPU
    return error.mean().item(), error.max().item()


def check(images, params, backend="cpp"):
    """Runs ``backend`` and the reference; asserts the tolerance; returns the errors."""
    out = augment(images, params, backend=backend)
    expected = augment(images, params, backend="reference")
    assert out.shape == expected.shape and out.dtype == expected.dtype == params.dtype
    mean_err, max_err = unit_scale_errors(out, expected, params)
    assert mean_err <= MEAN_TOL and max_err <= MAX_TOL, (mean_err, max_err)
    if params.dtype == torch.float32:
        assert max_err <= FLOAT32_MAX, max_err
    return mean_err, max_err


def make_params(B, size=(32, 32), **overrides) -> AugmentParams:
    """Identity parameters for B samples (whole-image crops must be set by the caller) with overrides."""
    base = dict(crop=torch.zeros(B, 4, dtype=torch.int64), flip=torch.zeros(B, dtype=torch.bool),
                brightness=torch.ones(B), contrast=torch.ones(B), saturation=torch.ones(B), hue=torch.zeros(B),
                order=torch.arange(4).repeat(B, 1), grayscale=torch.zeros(B, dtype=torch.bool),
                blur_sigma=torch.zeros(B), solarize=torch.zeros(B, dtype=torch.bool), size=size)
    base.update(overrides)
    return AugmentParams(**base)


IMAGENET_LIKE = [(375, 500), (500, 375), (333, 500), (240, 320), (96, 128), (500, 500)]
RECIPES = [recipes.simclr(), recipes.byol(), recipes.mocov2(), recipes.mae(), recipes.multicrop(2, 3)]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name.split("(")[0])
def test_recipes_match_reference(recipe):
    images = random_batch(IMAGENET_LIKE, seed=1)
    for params in recipes.draw(recipe, torch.arange(6) + 11, images.sizes, seed=5, epoch=3):
        check(images, params)


@pytest.mark.parametrize("seed", range(3))
def test_fresh_random_parameters_every_op_on(seed):
    """Jitter, grayscale, blur and solarize forced on for every sample, in random orders."""
    images = random_batch([(120, 90), (64, 200), (150, 150), (33, 47)], seed=seed)
    g = torch.Generator().manual_seed(seed)
    (p,) = recipes.draw(recipes.Recipe("all", (recipes.ViewRecipe(size=56, jitter_p=1.0, grayscale_p=0.5, blur_p=1.0,
                                                            solarize_p=0.5),)), torch.arange(4), images.sizes,
                      seed=seed)
    hue = torch.rand(4, generator=g) - 0.5
    check(images, replace(p, hue=hue))


def whole(sizes):
    return torch.tensor([[0, 0, h, w] for h, w in sizes], dtype=torch.int64)


# Cases shared with tests/ops/test_augment_triton.py (which runs them at smaller sizes).


def tiny_crops_case(interpolation, size):
    """1x1 and 2x2 crops (one of a 1x1 image) and a 7x1 column, upscaled to ``size``, some flipped."""
    images = random_batch([(1, 1), (50, 60), (3, 2), (7, 1)], seed=2)
    crop = torch.tensor([[0, 0, 1, 1], [20, 30, 1, 1], [1, 0, 2, 2], [0, 0, 7, 1]])
    return images, make_params(4, size, crop=crop, interpolation=interpolation,
                               flip=torch.tensor([False, True, True, False]))


def whole_image_case(sizes, interpolation, size):
    """Whole-image crops of 4 images of ``sizes`` resized to ``size``, half of them flipped."""
    images = random_batch(sizes, seed=3)
    return images, make_params(4, size, crop=whole(sizes), interpolation=interpolation,
                               flip=torch.tensor([True, False, True, False]))


def extreme_factors_case(op, source, size):
    """Six images of ``source`` size: op ``op`` at 0 and extreme factors (hue +-0.5), the others mid-range,
    random orders."""
    sizes = [source] * 6
    images = random_batch(sizes, seed=4)
    name = ("brightness", "contrast", "saturation", "hue")[op]
    values = torch.tensor([-0.5, 0.5, 0.25, -0.25, 0.0, 0.1]) if op == 3 else torch.tensor([0.0, 2.0, 0.5, 1.0,
                                                                                          1.8, 0.2])
    order = torch.stack([torch.randperm(4, generator=torch.Generator().manual_seed(i)) for i in range(6)])
    others = dict(brightness=torch.full((6,), 1.3), contrast=torch.full((6,), 0.6),
                  saturation=torch.full((6,), 1.5), hue=torch.full((6,), 0.2))
    others[name] = values
    return images, make_params(6, size, crop=whole(sizes), order=order, **others)


def blur_case(sigma, size, sizes, unblurred=False):
    """Blur ``sigma`` (and solarize, grayscale, brightness) on whole-image crops of ``sizes`` to ``size``;
    with ``unblurred`` the last sample has no blur."""
    n = len(sizes)
    images = random_batch(sizes, seed=5)
    sigmas = torch.full((n,), sigma)
    if unblurred:
        sigmas[-1] = 0.0
    flags = torch.arange(n)
    return images, make_params(n, size, crop=whole(sizes), blur_sigma=sigmas, solarize=flags % 2 == 0,
                               grayscale=flags % 2 == 1, brightness=1.4 - 0.6 * (flags % 2))


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_tiny_crops_upscaled(interpolation):
    check(*tiny_crops_case(interpolation, (64, 48)))


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_whole_image_and_large_sources(interpolation):
    check(*whole_image_case([(1200, 1600), (37, 1000), (224, 224), (512, 97)], interpolation, (224, 224)))


@pytest.mark.parametrize("op", range(4))
def test_extreme_colour_factors(op):
    check(*extreme_factors_case(op, (40, 50), (24, 28)))


@pytest.mark.parametrize("size", [(224, 224), (8, 8), (1, 9), (5, 2)], ids=str)
@pytest.mark.parametrize("sigma", [0.1, 1.0, 2.0])
def test_blur_and_solarize(sigma, size):
    """Outputs smaller than half the kernel use the reflect-then-replicate padding of the reference."""
    check(*blur_case(sigma, size, [(300, 400), (20, 20)]))


def test_ragged_batch_mixing_sizes():
    sizes = [(1, 1), (2, 3), (375, 500), (17, 900), (900, 17), (64, 64), (3, 3), (250, 251)]
    images = random_batch(sizes, seed=6)
    (p,) = recipes.draw(recipes.Recipe("r", (recipes.ViewRecipe(size=48),)), torch.arange(8), images.sizes, seed=9)
    check(images, p)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_half_precision_outputs(dtype, channels_last):
    images = random_batch(IMAGENET_LIKE[:4], seed=7)
    (p, _) = recipes.draw(recipes.simclr(size=64), torch.arange(4), images.sizes, seed=2, dtype=dtype,
                        channels_last=channels_last)
    check(images, p)
    out = augment(images, p, backend="cpp")
    # Rounding agrees with torch's float32 -> bf16/fp16 conversion: the same view in float32, cast.
    f32 = augment(images, replace(p, dtype=torch.float32), backend="cpp")
    assert torch.equal(out, f32.to(dtype))


def test_half_conversion_covers_subnormals_and_overflow():
    """fp16 stores of tiny and huge normalised values (std chosen to reach them) round like torch."""
    images = random_batch([(20, 20)] * 2, seed=8)
    for std in ((1e4, 1e4, 1e4), (1e-5, 1e-5, 1e-5), (3e-6, 1.0, 7e4)):
        p = make_params(2, (8, 8), crop=whole([(20, 20)] * 2), std=std, mean=(0.5, 0.25, 0.0))
        f32 = augment(images, p, backend="cpp")
        half = augment(images, replace(p, dtype=torch.float16), backend="cpp")
        assert torch.equal(half, f32.to(torch.float16)), std


def assert_channels_last_is_the_same_view(images, params, backend):
    dense = augment(images, params, backend=backend)
    last = augment(images, replace(params, channels_last=True), backend=backend)
    assert last.is_contiguous(memory_format=torch.channels_last) and not last.is_contiguous()
    assert torch.equal(dense, last)


def assert_halves_agree(images_list, params, backend, split):
    """A batch and its two parts (at ``split``) give the same views, bit for bit."""
    B = len(images_list)
    full = augment(images_list, params, backend=backend)
    first = augment(images_list[:split], params.select(slice(0, split)), backend=backend)
    second = augment(images_list[split:], params.select(slice(split, B)), backend=backend)
    assert torch.equal(full, torch.cat((first, second)))


def test_channels_last_is_the_same_view():
    images = random_batch(IMAGENET_LIKE[:3], seed=10)
    (p, _) = recipes.draw(recipes.byol(size=40), torch.arange(3), images.sizes, seed=1)
    assert_channels_last_is_the_same_view(images, p, "cpp")


def test_a_batch_and_its_halves_agree_exactly():
    images_list = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in IMAGENET_LIKE]
    (p, _) = recipes.draw(recipes.simclr(size=32), torch.arange(6), RaggedImages.from_list(images_list).sizes, seed=4)
    assert_halves_agree(images_list, p, "cpp", 3)


def test_dense_list_and_ragged_inputs_agree():
    dense = torch.randint(0, 256, (3, 3, 50, 60), dtype=torch.uint8)
    (p, _) = recipes.draw(recipes.simclr(size=24), torch.arange(3), torch.tensor([[50, 60]] * 3), seed=0)
    out = augment(dense, p, backend="cpp")
    assert torch.equal(out, augment(list(dense), p, backend="cpp"))
    assert torch.equal(out, augment(RaggedImages.from_dense(dense), p, backend="cpp"))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("backend", ["cpp", "reference"])
def test_transform_groups_views_without_changing_them(backend, channels_last):
    """Augment makes runs of views with equal settings in one call on the repeated batch: each view equals
    its own call exactly, is contiguous, and views of other sizes (multi-crop) stay apart."""
    images = random_batch(IMAGENET_LIKE[:4], seed=21)
    recipe = recipes.multicrop(global_views=2, local_views=3, global_size=40, local_size=16)
    transform = Augment(recipe, seed=5, channels_last=channels_last, backend=backend)
    out, params = transform(images, torch.arange(10, 14), epoch=2)
    assert [v.shape[-1] for v in out] == [40, 40, 16, 16, 16]
    memory = torch.channels_last if channels_last else torch.contiguous_format
    for view, p in zip(out, params):
        assert view.shape[0] == 4 and view.is_contiguous(memory_format=memory)
        assert torch.equal(view, augment(images, p, backend=backend))


def test_params_concatenate_only_with_equal_settings():
    images = random_batch(IMAGENET_LIKE[:2], seed=3)
    a, b = recipes.draw(recipes.byol(size=24), torch.arange(2), images.sizes, seed=0)
    both = AugmentParams.cat([a, b])
    assert len(both) == 4 and torch.equal(both.crop, torch.cat([a.crop, b.crop]))
    with pytest.raises(ValueError, match=r"params\[1\] has other batch-wide settings"):
        AugmentParams.cat([a, replace(b, size=(16, 16))])
    repeated = images.repeat(2)
    assert len(repeated) == 4 and repeated.data is images.data and torch.equal(repeated.sizes[2:], images.sizes)


def test_auto_takes_cpp_on_cpu():
    assert AUGMENT.resolve("auto", torch.device("cpu")) == "cpp"


def op_args(images, params, backend):
    factors = torch.stack((params.brightness, params.contrast, params.saturation, params.hue), 1).float()
    return (images.data, images.offsets, images.sizes, images.host_offsets, images.host_sizes, list(images.max_size),
            params.crop, params.flip, factors, params.order,
            params.grayscale, params.blur_sigma, params.solarize, list(params.size), params.blur_kernel,
            list(params.mean), list(params.std), params.dtype, params.channels_last, params.interpolation, backend)


@pytest.mark.parametrize("channels_last", [False, True])
def test_opcheck(channels_last):
    images = random_batch([(30, 40), (25, 19)], seed=11)
    (p, _) = recipes.draw(recipes.simclr(size=12), torch.arange(2), images.sizes, seed=0,
                        channels_last=channels_last)
    torch.library.opcheck(torch.ops.fastssl.augment.default, op_args(images, p, "cpp"))


def native_args(**changes):
    """Valid arguments of fastssl_C::augment for a 2-image batch, with ``changes`` applied."""
    images = random_batch([(30, 40), (25, 19)], seed=12)
    crop = torch.tensor([[0, 0, 30, 40], [5, 3, 10, 10]])
    ys, yw, yt = augment_weights.axis_weights(crop[:, 2], 8, "bilinear")
    xs, xw, xt = augment_weights.axis_weights(crop[:, 3], 8, "bilinear")
    args = dict(data=images.data, offsets=images.offsets, sizes=images.sizes, crop=crop, y_start=ys, y_weights=yw,
                taps=torch.stack((yt, xt), 1), x_start=xs, x_weights=xw, factors=torch.ones(2, 4), order=torch.arange(4).repeat(2, 1),
                grayscale=torch.zeros(2, dtype=torch.bool), blur_sigma=torch.zeros(2),
                solarize=torch.zeros(2, dtype=torch.bool), blur_kernel=3, mean=[0.5] * 3, std=[0.25] * 3,
                clamp=False, dtype=torch.float32, channels_last=False)
    args.update(changes)
    return args


BAD_NATIVE = [
    (dict(data=torch.zeros(100)), "data must be Byte"),
    (dict(offsets=torch.tensor([0, 100000])), r"offsets\[1\] = 100000 .* points outside data"),
    (dict(sizes=torch.tensor([[30, 40]])), r"sizes must have shape \[2, 2\]"),
    (dict(crop=torch.tensor([[0, 0, 30, 40], [20, 3, 10, 10]])), r"crop\[1\] = \(20, 3, 10, 10\).*outside image 1"),
    (dict(y_start=torch.zeros(2, 8, dtype=torch.int64)), "y_start must be Int"),
    (dict(x_start=torch.full((2, 8), 39, dtype=torch.int32)), r"x_start\[0, 0\] = 39 must be in"),
    (dict(x_weights=torch.zeros(2, 7, 3)), r"x_weights must have shape \[2, 8, -1\]"),
    (dict(taps=torch.tensor([[1, 1], [1, 11]], dtype=torch.int32)), r"taps\[1, 1\] = 11 must be in \[1, "),
    (dict(factors=torch.ones(2, 3)), r"factors must have shape \[2, 4\]"),
    (dict(order=torch.zeros(2, 4, dtype=torch.int64)), r"order\[0\] must be a permutation"),
    (dict(grayscale=torch.zeros(2)), "grayscale must be Bool"),
    (dict(blur_sigma=torch.tensor([1.0, -1.0])), r"blur_sigma\[1\] must be finite and >= 0"),
    (dict(factors=torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, float("nan"), 0.0]])),
     r"factors\[1\]\[2\] \(saturation\) must be finite"),
    (dict(factors=torch.tensor([[float("inf"), 1.0, 1.0, 0.0], [1.0] * 3 + [0.0]])),
     r"factors\[0\]\[0\] \(brightness\) must be finite"),
    (dict(blur_kernel=4), "blur_kernel must be odd"),
    (dict(mean=[0.5, 0.5]), "mean must have 3 values"),
    (dict(std=[0.5, 0.0, 0.5]), r"std must be > 0, got std\[1\]"),
    (dict(dtype=torch.int32), "dtype must be float32, bfloat16 or float16"),
]


@pytest.mark.parametrize("changes,message", BAD_NATIVE, ids=[m.split(" ")[0] for _, m in BAD_NATIVE])
def test_bad_native_arguments_are_named(changes, message):
    torch.ops.fastssl_C.augment(**native_args())  # the valid call runs
    with pytest.raises(RuntimeError, match=message):
        torch.ops.fastssl_C.augment(**native_args(**changes))


def test_bad_public_arguments_are_named():
    images = torch.randint(0, 256, (2, 3, 30, 40), dtype=torch.uint8)
    (p,) = recipes.draw(recipes.mae(size=16), torch.arange(2), torch.tensor([[30, 40]] * 2), seed=0)
    bad = p.crop.clone()
    bad[0, 3] = 41
    with pytest.raises(ValueError, match=r"params.crop\[0\].*outside image 0"):
        augment(images, replace(p, crop=bad), backend="cpp")
    with pytest.raises(TypeError, match="images must be a tensor"):
        augment("not images", p, backend="cpp")


# ------------------------------------------------------------------------------------ resize weights


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_axis_weights_reproduce_interpolate(interpolation):
    """Weights applied separably == F.interpolate(antialias=True) on random crops, down and up, in float64.

    Output width 1 is left out: PyTorch's CPU kernel is wrong there (the height pass of a width-1 image
    differs from F.interpolate on the transposed image by up to ~0.5); the recipes never ask for it.
    """
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    for trial in range(60):
        H, W = (int(v) for v in torch.randint(1, 400, (2,), generator=g))
        if trial % 4 == 0:
            H, W = (int(v) for v in torch.randint(1, 5, (2,), generator=g))
        oh, ow = int(torch.randint(1, 250, (1,), generator=g)), int(torch.randint(2, 250, (1,), generator=g))
        x = torch.rand(3, H, W, generator=g, dtype=torch.float64)
        expected = F.interpolate(x[None], size=(oh, ow), mode=interpolation, align_corners=False, antialias=True)[0]
        flip = torch.tensor([trial % 2 == 1])
        ys, yw, yt = augment_weights.axis_weights(torch.tensor([H]), oh, interpolation)
        xs, xw, xt = augment_weights.axis_weights(torch.tensor([W]), ow, interpolation, flip=flip)
        assert int(ys.min()) >= 0 and int(ys.max()) + int(yt) <= H and int(xs.max()) + int(xt) <= W
        y = augment_weights.apply_axis_weights(x, ys[0], yw[0].double(), yt[0], 1)
        y = augment_weights.apply_axis_weights(y, xs[0], xw[0].double(), xt[0], 2)
        worst = max(worst, (y.flip(-1) if flip else y).sub(expected).abs().max().item())
    assert worst <= 1e-6, worst
