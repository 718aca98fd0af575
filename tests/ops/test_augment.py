"""fastssl.ops.augment: the specification (the reference against torchvision), the recipes' parameters, and every
backend against the reference (fastssl.reference.augment).

Tolerance of a backend: on the [0, 1] scale — the normalized output times std — the mean |error| over a view
is at most 1/255 and the max |error| at most 3/255, nothing excluded; float32 outputs are also held to a much
tighter max error (FLOAT32_MAX), which catches any real divergence from the spec.

Without a GPU the Triton kernels run through Triton's interpreter on CPU tensors (TRITON_INTERPRET=1), which is
slow: those cases use smaller images and outputs (``interpreted``). The interpreter has no bfloat16: bfloat16
outputs are computed in float32 and cast after, so the kernel's own bfloat16 store is tested on a GPU only (the
``cuda`` tests at the end, which also run ImageNet-like batches).
"""

import importlib
import math
import sys
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from fastssl import BackendUnavailable, recipes
from fastssl.ops import augment_weights
from fastssl.ops.augment import AUGMENT, Augment, augment
from fastssl.ops.augment_params import COLOR_OPS, AugmentParams
from fastssl.ragged import RaggedImages
from fastssl.reference import augment as reference
from helpers import backend_cases, require, triton_device

NATIVE = backend_cases(("cpp", "triton"))  # compared with the reference
EVERY_BACKEND = backend_cases(("reference", "cpp", "triton"))
MEAN_TOL, MAX_TOL = 1 / 255, 3 / 255
FLOAT32_MAX = 2e-4  # float32 rounding, amplified at most ~100x by the hue round trip and clamps
# torchvision weighs red 0.2989 in its grayscale, fastssl 0.299: a 1e-4 difference at most.
GRAY_DELTA = 2e-4
IMAGENET_LIKE = [(375, 500), (500, 375), (333, 500), (240, 320), (96, 128), (500, 500)]
SMALL_RAGGED = [(40, 52), (33, 47), (1, 1), (20, 30), (45, 12)]  # the interpreter's batches


@pytest.fixture
def tvF():
    return pytest.importorskip("torchvision.transforms.v2.functional")


@pytest.fixture
def image():
    return torch.randint(0, 256, (3, 45, 67), dtype=torch.uint8)


def interpreted(backend: str, device: str) -> bool:
    """True for the Triton interpreter (slow: small cases)."""
    return backend == "triton" and device == "cpu"


def random_batch(sizes, seed=0) -> RaggedImages:
    g = torch.Generator().manual_seed(seed)
    return RaggedImages.from_list([torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g) for h, w in sizes])


def on_device(images: RaggedImages, device: str) -> RaggedImages:
    """The batch on ``device``, with its host copies (as a decoder hands it over)."""
    return RaggedImages(images.data.to(device), images.offsets.to(device), images.sizes.to(device),
                        host_offsets=images.host_offsets, host_sizes=images.host_sizes)


def unit_scale_errors(actual, expected, params):
    """(mean |error|, max |error|) on the [0, 1] scale (|error| of normalized values times std)."""
    std = torch.tensor(params.std, dtype=torch.float64).view(1, 3, 1, 1)
    error = (actual.double().cpu() - expected.double().cpu()).abs() * std  # CUDA outputs compared on the CPU
    return error.mean().item(), error.max().item()


def check(images, params, backend, device="cpu"):
    """Runs ``backend`` on the batch on ``device`` and the reference; asserts the tolerance; returns the errors."""
    images = on_device(images, device)
    out = augment(images, params, backend=backend)
    expected = augment(images, params, backend="reference")
    assert out.shape == expected.shape and out.dtype == expected.dtype == params.dtype
    assert out.device == images.device
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


def whole(sizes):
    return torch.tensor([[0, 0, h, w] for h, w in sizes], dtype=torch.int64)


# ------------------------------------------------------------------ the specification against torchvision


def torchvision_color_op(tvF, op: int):
    return getattr(tvF, f"adjust_{COLOR_OPS[op]}")


@pytest.mark.parametrize("op", range(4), ids=COLOR_OPS)
@pytest.mark.parametrize("factor", [0.0, 0.3, 1.0, 1.8])
def test_color_ops_match_torchvision(tvF, image, op, factor):
    x = image.float() / 255
    factor = factor - 1 if op == 3 else factor  # hue in [-0.5, 0.5]
    factor = max(min(factor, 0.5), -0.5) if op == 3 else factor
    torch.testing.assert_close(reference.adjust(x, op, factor), torchvision_color_op(tvF, op)(x, factor),
                               atol=GRAY_DELTA, rtol=0)


@pytest.mark.parametrize("hue", [-0.5, -0.2, 0.0, 0.25, 0.5])
def test_hue_round_trip_is_a_true_hsv_shift(tvF, image, hue):
    x = image.float() / 255
    torch.testing.assert_close(reference.adjust(x, 3, hue), tvF.adjust_hue(x, hue), atol=1e-5, rtol=0)


@pytest.mark.parametrize("sigma", [0.1, 1.0, 2.0])
def test_blur_matches_torchvision(tvF, image, sigma):
    x = image.float() / 255
    torch.testing.assert_close(reference.blur(x, sigma, 23), tvF.gaussian_blur(x, [23, 23], [sigma, sigma]),
                               atol=1e-5, rtol=0)


def test_blur_of_images_smaller_than_the_kernel_is_defined():
    x = torch.rand(3, 2, 3)
    out = reference.blur(x, 2.0, 23)
    assert out.shape == x.shape and torch.isfinite(out).all()
    torch.testing.assert_close(reference.blur(torch.full((3, 1, 1), 0.25), 1.0, 23), torch.full((3, 1, 1), 0.25))


def torchvision_view(tvF, image, p, b):
    """The same view made with torchvision's functional ops, one sample at a time."""
    x = image.float() / 255
    top, left, h, w = p.crop[b].tolist()
    y = tvF.resized_crop(x, top, left, h, w, list(p.size), antialias=True)
    if p.flip[b]:
        y = tvF.horizontal_flip(y)
    factors = [p.brightness[b].item(), p.contrast[b].item(), p.saturation[b].item(), p.hue[b].item()]
    for op in p.order[b].tolist():
        y = torchvision_color_op(tvF, op)(y, factors[op])
    if p.grayscale[b]:
        y = tvF.rgb_to_grayscale(y, 3)
    if p.blur_sigma[b] > 0:
        y = tvF.gaussian_blur(y, [p.blur_kernel] * 2, [p.blur_sigma[b].item()] * 2)
    if p.solarize[b]:
        y = tvF.solarize(y, 0.5)
    return tvF.normalize(y, list(p.mean), list(p.std))


@pytest.mark.parametrize("recipe", [recipes.simclr(size=32), recipes.byol(size=32), recipes.mocov2(size=32)],
                         ids=lambda r: r.name)
def test_views_match_torchvision_per_sample(tvF, recipe):
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in [(50, 70), (41, 33), (64, 64), (20, 90)]]
    sizes = torch.tensor([list(im.shape[1:]) for im in images])
    for p in recipes.draw(recipe, torch.arange(4) + 100, sizes, seed=3, epoch=2):
        out = augment(images, p, backend="reference")
        for b, im in enumerate(images):
            expected = torchvision_view(tvF, im, p, b)
            # On the [0, 1] scale (times std): the grayscale constant is the only difference.
            error = ((out[b] - expected).abs() * torch.tensor(p.std).view(3, 1, 1)).max().item()
            assert error <= 3 * GRAY_DELTA, (b, error)


# ------------------------------------------------------------------------------ recipes and parameters


def test_parameters_depend_only_on_seed_epoch_id_view():
    sizes = torch.tensor([[375, 500]] * 8)
    full = recipes.draw(recipes.simclr(), torch.arange(8), sizes, seed=7, epoch=1)
    part = recipes.draw(recipes.simclr(), torch.tensor([5, 2]), sizes[:2], seed=7, epoch=1)
    for v in range(2):
        for name, value in part[v].per_sample().items():
            assert torch.equal(value, full[v].per_sample()[name][[5, 2]]), name
    other_epoch = recipes.draw(recipes.simclr(), torch.arange(8), sizes, seed=7, epoch=2)
    assert not torch.equal(other_epoch[0].crop, full[0].crop)
    assert not torch.equal(full[0].crop, full[1].crop), "the two views differ"


@pytest.mark.parametrize("recipe", [recipes.simclr(), recipes.byol(), recipes.multicrop(2, 3)], ids=lambda r: r.name)
def test_views_of_equal_recipes_drawn_together_equal_views_drawn_one_by_one(recipe):
    ids, sizes = torch.tensor([3, 17, 4, 90, 5]), torch.tensor([[375, 500], [64, 48], [500, 333], [31, 700], [224, 224]])
    together = recipes.draw(recipe, ids, sizes, seed=11, epoch=4)
    for v, view in enumerate(recipe.views):
        alone = recipes.draw_view(view, ids, sizes, seed=11, epoch=4, view_index=v)
        assert together[v].settings() == alone.settings()
        for name, value in alone.per_sample().items():
            assert torch.equal(together[v].per_sample()[name], value), (v, name)


def test_recipe_distributions():
    n = 20000
    sizes = torch.tensor([[375, 500]]).expand(n, 2)
    p = recipes.draw(recipes.simclr(), torch.arange(n), sizes, seed=0)[0]
    assert abs(p.flip.float().mean().item() - 0.5) < 0.02
    assert abs((p.brightness != 1).float().mean().item() - 0.8) < 0.02
    assert abs(p.grayscale.float().mean().item() - 0.2) < 0.02
    assert abs((p.blur_sigma > 0).float().mean().item() - 0.5) < 0.02
    on = p.blur_sigma > 0
    assert p.blur_sigma[on].min() >= 0.1 and p.blur_sigma[on].max() <= 2.0
    jittered = p.brightness != 1
    assert p.brightness[jittered].min() >= 0.2 and p.brightness[jittered].max() <= 1.8
    assert p.hue.abs().max() <= 0.2
    area = (p.crop[:, 2] * p.crop[:, 3]).double() / (375 * 500)
    assert area.min() >= 0.079 and area.max() <= 1.0
    aspect = p.crop[:, 3].double() / p.crop[:, 2]
    assert aspect.min() >= 3 / 4 - 0.02 and aspect.max() <= 4 / 3 + 0.02
    # Every one of the 24 orders of the color ops occurs about equally often.
    codes = (p.order * torch.tensor([64, 16, 4, 1])).sum(1)
    counts = torch.unique(codes, return_counts=True)[1]
    assert len(counts) == 24 and counts.min() > n / 24 * 0.85
    assert p.blur_kernel == 23 and p.size == (224, 224)
    p.validate(sizes)


def test_byol_views_are_asymmetric():
    n = 20000
    p1, p2 = recipes.draw(recipes.byol(), torch.arange(n), torch.tensor([[256, 256]]).expand(n, 2), seed=1)
    assert (p1.blur_sigma > 0).all() and not p1.solarize.any()
    assert abs((p2.blur_sigma > 0).float().mean().item() - 0.1) < 0.01
    assert abs(p2.solarize.float().mean().item() - 0.2) < 0.015


def test_crop_fallback_on_extreme_aspect():
    p = recipes.draw(recipes.simclr(), torch.arange(50), torch.tensor([[4, 400]]).expand(50, 2), seed=0)[0]
    p.validate(torch.tensor([[4, 400]]).expand(50, 2))
    aspect = p.crop[:, 3].double() / p.crop[:, 2]
    assert math.isclose(aspect.max().item(), 4 / 3, rel_tol=0.5)


def test_multicrop_and_mae_recipes():
    mc = recipes.draw(recipes.multicrop(2, 4), torch.arange(3), torch.tensor([[300, 400]] * 3), seed=0)
    assert [p.size for p in mc] == [(224, 224)] * 2 + [(96, 96)] * 4
    (m,) = recipes.draw(recipes.mae(), torch.arange(3), torch.tensor([[300, 400]] * 3), seed=0)
    assert m.interpolation == "bicubic" and not m.grayscale.any() and (m.blur_sigma == 0).all()
    assert (m.brightness == 1).all() and (m.hue == 0).all()


def test_params_concatenate_only_with_equal_settings():
    images = random_batch(IMAGENET_LIKE[:2], seed=3)
    a, b = recipes.draw(recipes.byol(size=24), torch.arange(2), images.sizes, seed=0)
    both = AugmentParams.cat([a, b])
    assert len(both) == 4 and torch.equal(both.crop, torch.cat([a.crop, b.crop]))
    with pytest.raises(ValueError, match=r"params\[1\] has other batch-wide settings"):
        AugmentParams.cat([a, replace(b, size=(16, 16))])
    repeated = images.repeat(2)
    assert len(repeated) == 4 and repeated.data is images.data and torch.equal(repeated.sizes[2:], images.sizes)


def test_views_module_is_a_deprecated_alias(monkeypatch):
    """fastssl.views (one release): importing it warns, its names are the new modules' own objects and each use
    warns with the new home."""
    import fastssl.ops.augment_params as augment_params

    monkeypatch.delitem(sys.modules, "fastssl.views", raising=False)  # imported before (doctest collection)?
    with pytest.warns(FutureWarning, match="fastssl.views is deprecated"):
        views = importlib.import_module("fastssl.views")
    with pytest.warns(FutureWarning, match=r"fastssl.views.simclr is deprecated .*: use fastssl.recipes.simclr"):
        assert views.simclr is recipes.simclr
    with pytest.warns(FutureWarning, match=r"use fastssl.ops.augment_params.AugmentParams"):
        assert views.AugmentParams is AugmentParams
    with pytest.warns(FutureWarning, match=r"fastssl.views.COLOUR_OPS is deprecated .*: use "
                                           r"fastssl.ops.augment_params.COLOR_OPS"):
        assert views.COLOUR_OPS is augment_params.COLOR_OPS
    with pytest.warns(FutureWarning, match="fastssl.recipes.IMAGENET_MEAN"):
        assert views.IMAGENET_MEAN == recipes.IMAGENET_MEAN == (0.485, 0.456, 0.406)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        views.nope


# ---------------------------------------------------------------------------- every backend against the reference


RECIPES = {  # name: (the recipe at full size, the recipe at the interpreter's sizes)
    "simclr": (recipes.simclr(), recipes.simclr(size=24)),
    "byol": (recipes.byol(), recipes.byol(size=20)),
    "mocov2": (recipes.mocov2(), recipes.mocov2(size=16)),
    "mae": (recipes.mae(), recipes.mae(size=24)),
    "multicrop": (recipes.multicrop(2, 3), recipes.multicrop(1, 2, global_size=24, local_size=12)),
}


@pytest.mark.parametrize("name", RECIPES)
@pytest.mark.parametrize("backend,device", NATIVE)
def test_recipes_match_reference(backend, device, name):
    require(backend, device)
    small = interpreted(backend, device)
    images = random_batch(SMALL_RAGGED if small else IMAGENET_LIKE, seed=1)
    for params in recipes.draw(RECIPES[name][small], torch.arange(len(images)) + 11, images.sizes, seed=5, epoch=3):
        check(images, params, backend, device)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("backend,device", NATIVE)
def test_every_op_on_in_random_orders(backend, device, seed):
    """Jitter, grayscale, blur and solarize forced on for every sample, in random orders; hue at both ends of its
    range and at random."""
    small = interpreted(backend, device)
    require(backend, device)
    images = random_batch([(50, 40), (24, 70), (31, 31), (9, 13)] if small else [(120, 90), (64, 200), (150, 150),
                                                                                  (33, 47)], seed=seed)
    view = recipes.ViewRecipe(size=20 if small else 56, jitter_p=1.0, grayscale_p=0.5, blur_p=1.0, solarize_p=0.5)
    (p,) = recipes.draw(recipes.Recipe("all", (view,)), torch.arange(4), images.sizes, seed=seed)
    hue = torch.cat((torch.tensor([-0.5, 0.5]), torch.rand(2, generator=torch.Generator().manual_seed(seed)) - 0.5))
    check(images, replace(p, hue=hue), backend, device)


def tiny_crops_case(interpolation, size):
    """1x1 and 2x2 crops (one of a 1x1 image) and a 7x1 column, upscaled to ``size``, some flipped."""
    images = random_batch([(1, 1), (50, 60), (3, 2), (7, 1)], seed=2)
    crop = torch.tensor([[0, 0, 1, 1], [20, 30, 1, 1], [1, 0, 2, 2], [0, 0, 7, 1]])
    return images, make_params(4, size, crop=crop, interpolation=interpolation,
                               flip=torch.tensor([False, True, True, False]))


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("backend,device", NATIVE)
def test_tiny_crops_upscaled(backend, device, interpolation):
    require(backend, device)
    check(*tiny_crops_case(interpolation, (20, 16) if interpreted(backend, device) else (64, 48)), backend, device)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("backend,device", NATIVE)
def test_whole_image_crops_and_large_sources(backend, device, interpolation):
    """Whole-image crops of 4 images resized (mostly down), half of them flipped."""
    require(backend, device)
    if interpreted(backend, device):
        sizes, size = [(120, 160), (37, 200), (24, 24), (100, 17)], (24, 24)
    else:
        sizes, size = [(1200, 1600), (37, 1000), (224, 224), (512, 97)], (224, 224)
    params = make_params(4, size, crop=whole(sizes), interpolation=interpolation,
                         flip=torch.tensor([True, False, True, False]))
    check(random_batch(sizes, seed=3), params, backend, device)


@pytest.mark.parametrize("op", range(4), ids=COLOR_OPS)
@pytest.mark.parametrize("backend,device", NATIVE)
def test_extreme_color_factors(backend, device, op):
    """Factor 0 and extreme factors (hue +-0.5) for the op under test, the others mid-range, random orders."""
    require(backend, device)
    source, size = ((16, 18), (12, 14)) if interpreted(backend, device) else ((40, 50), (24, 28))
    sizes = [source] * 6
    values = torch.tensor([-0.5, 0.5, 0.25, -0.25, 0.0, 0.1]) if op == 3 else torch.tensor([0.0, 2.0, 0.5, 1.0,
                                                                                          1.8, 0.2])
    order = torch.stack([torch.randperm(4, generator=torch.Generator().manual_seed(i)) for i in range(6)])
    factors = dict(brightness=torch.full((6,), 1.3), contrast=torch.full((6,), 0.6),
                   saturation=torch.full((6,), 1.5), hue=torch.full((6,), 0.2))
    factors[COLOR_OPS[op]] = values
    check(random_batch(sizes, seed=4), make_params(6, size, crop=whole(sizes), order=order, **factors), backend,
          device)


@pytest.mark.parametrize("size", ["large", (8, 8), (1, 9), (5, 2)], ids=str)
@pytest.mark.parametrize("sigma", [0.1, 1.0, 2.0])
@pytest.mark.parametrize("backend,device", NATIVE)
def test_blur_and_solarize(backend, device, sigma, size):
    """Blur (and solarize, grayscale, brightness) on whole-image crops; outputs smaller than half the kernel
    (23 taps) use the reflect-then-replicate padding of the reference; the last sample does not blur."""
    require(backend, device)
    small = interpreted(backend, device)
    if size == "large":
        size = (24, 24) if small else (224, 224)
    sizes = [(12, 16) if small else (300, 400), (20, 20), (9, 14)]
    sigmas = torch.tensor([sigma, sigma, 0.0])
    flags = torch.arange(3)
    params = make_params(3, size, crop=whole(sizes), blur_sigma=sigmas, solarize=flags % 2 == 0,
                         grayscale=flags % 2 == 1, brightness=1.4 - 0.6 * (flags % 2))
    check(random_batch(sizes, seed=5), params, backend, device)


@pytest.mark.parametrize("backend,device", NATIVE)
def test_ragged_batch_mixing_sizes(backend, device):
    """One-pixel images among large ones in one ragged batch."""
    require(backend, device)
    if interpreted(backend, device):
        sizes, size = [(1, 1), (2, 3), (75, 100), (17, 90), (90, 17), (1, 1), (3, 3)], 16
    else:
        sizes, size = [(1, 1), (2, 3), (375, 500), (17, 900), (900, 17), (64, 64), (3, 3), (250, 251)], 48
    images = random_batch(sizes, seed=6)
    (p,) = recipes.draw(recipes.Recipe("r", (recipes.ViewRecipe(size=size, blur_p=0.5),)), torch.arange(len(sizes)),
                        images.sizes, seed=9)
    check(images, p, backend, device)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("backend,device", NATIVE)
def test_half_precision_outputs(backend, device, dtype, channels_last):
    """Close to the reference, in the asked layout, and rounded like torch's float32 -> bfloat16/float16 conversion:
    the same view in float32, cast."""
    require(backend, device)
    small = interpreted(backend, device)
    images = random_batch((SMALL_RAGGED if small else IMAGENET_LIKE)[:4], seed=7)
    (p, _) = recipes.draw(recipes.simclr(size=20 if small else 64), torch.arange(4), images.sizes, seed=2, dtype=dtype,
                          channels_last=channels_last)
    check(images, p, backend, device)
    batch = on_device(images, device)
    out = augment(batch, p, backend=backend)
    assert out.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    assert torch.equal(out, augment(batch, replace(p, dtype=torch.float32), backend=backend).to(dtype))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # the interpreter's float16 inf
@pytest.mark.parametrize("backend,device", NATIVE)
def test_half_conversion_covers_subnormals_and_overflow(backend, device):
    """float16 stores of tiny and huge normalized values (std chosen to reach them) round like torch."""
    require(backend, device)
    images = on_device(random_batch([(20, 20)] * 2, seed=8), device)
    for std in ((1e4, 1e4, 1e4), (1e-5, 1e-5, 1e-5), (3e-6, 1.0, 7e4)):
        p = make_params(2, (8, 8), crop=whole([(20, 20)] * 2), std=std, mean=(0.5, 0.25, 0.0))
        f32 = augment(images, p, backend=backend)
        half = augment(images, replace(p, dtype=torch.float16), backend=backend)
        assert torch.equal(half, f32.to(torch.float16)), std


@pytest.mark.parametrize("backend,device", NATIVE)
def test_channels_last_is_the_same_view(backend, device):
    require(backend, device)
    small = interpreted(backend, device)
    images = on_device(random_batch((SMALL_RAGGED if small else IMAGENET_LIKE)[:3], seed=10), device)
    (p, _) = recipes.draw(recipes.byol(size=18 if small else 40), torch.arange(3), images.host_sizes, seed=1)
    dense = augment(images, p, backend=backend)
    last = augment(images, replace(p, channels_last=True), backend=backend)
    assert last.is_contiguous(memory_format=torch.channels_last) and not last.is_contiguous()
    assert torch.equal(dense, last)


@pytest.mark.parametrize("backend,device", NATIVE)
def test_a_batch_and_its_halves_agree_exactly(backend, device):
    """A sample's view does not depend on the batch (its own tap counts, its own contrast mean), bit for bit."""
    require(backend, device)
    small = interpreted(backend, device)
    sizes, split = (SMALL_RAGGED, 2) if small else (IMAGENET_LIKE, 3)
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8).to(device) for h, w in sizes]
    (p, _) = recipes.draw(recipes.simclr(size=16 if small else 32), torch.arange(len(sizes)), torch.tensor(sizes),
                          seed=4)
    full = augment(images, p, backend=backend)
    first = augment(images[:split], p.select(slice(0, split)), backend=backend)
    second = augment(images[split:], p.select(slice(split, len(sizes))), backend=backend)
    assert torch.equal(full, torch.cat((first, second)))


@pytest.mark.parametrize("backend,device", NATIVE)
def test_dense_list_and_ragged_inputs_agree(backend, device):
    require(backend, device)
    small = interpreted(backend, device)
    dense = torch.randint(0, 256, (3, 3, 30, 40) if small else (3, 3, 50, 60), dtype=torch.uint8).to(device)
    (p, _) = recipes.draw(recipes.simclr(size=12 if small else 24), torch.arange(3),
                          torch.tensor([list(dense.shape[2:])] * 3), seed=0)
    out = augment(dense, p, backend=backend)
    assert torch.equal(out, augment(list(dense), p, backend=backend))
    assert torch.equal(out, augment(RaggedImages.from_dense(dense), p, backend=backend))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("backend,device", EVERY_BACKEND)
def test_transform_groups_views_without_changing_them(backend, device, channels_last):
    """Augment makes runs of views with equal settings in one call on the repeated batch: each view equals
    its own call exactly, is contiguous, and views of other sizes (multi-crop) stay apart."""
    require(backend, device)
    small = interpreted(backend, device)
    images = on_device(random_batch((SMALL_RAGGED if small else IMAGENET_LIKE)[:4], seed=21), device)
    sizes = (24, 12) if small else (40, 16)
    recipe = recipes.multicrop(global_views=2, local_views=3, global_size=sizes[0], local_size=sizes[1])
    transform = Augment(recipe, seed=5, channels_last=channels_last, backend=backend)
    out, params = transform(images, torch.arange(10, 14), epoch=2)
    assert [v.shape[-1] for v in out] == [sizes[0]] * 2 + [sizes[1]] * 3
    memory = torch.channels_last if channels_last else torch.contiguous_format
    for view, p in zip(out, params):
        assert view.shape[0] == 4 and view.is_contiguous(memory_format=memory)
        assert torch.equal(view, augment(images, p, backend=backend))


def test_ragged_batches_and_module():
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in [(1, 1), (40, 31), (90, 120)]]
    ragged = RaggedImages.from_list(images)
    for b, im in enumerate(images):
        assert torch.equal(ragged.image(b), im)
    dense = torch.randint(0, 256, (2, 3, 8, 9), dtype=torch.uint8)
    assert torch.equal(RaggedImages.from_dense(dense).image(1), dense[1])
    out, params = Augment(recipes.simclr(size=16), seed=0)(ragged, torch.tensor([3, 4, 5]), epoch=1)
    assert [o.shape for o in out] == [(3, 3, 16, 16)] * 2
    again = augment(images, params[1], backend="reference")
    torch.testing.assert_close(out[1], again)


def test_output_dtype_and_layout():
    images = torch.randint(0, 256, (2, 3, 30, 40), dtype=torch.uint8)
    (p,) = recipes.draw(recipes.mae(size=16), torch.arange(2), torch.tensor([[30, 40]] * 2), seed=0,
                        dtype=torch.bfloat16, channels_last=True)
    out = augment(images, p)
    assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.triton
def test_triton_close_to_cpp():
    device = triton_device()
    require("cpp", "cpu")
    require("triton", device)
    images = random_batch(SMALL_RAGGED, seed=12)
    (p, _) = recipes.draw(recipes.simclr(size=16), torch.arange(5), images.sizes, seed=6)
    cpp = augment(images, p, backend="cpp")
    mean_err, max_err = unit_scale_errors(augment(on_device(images, device), p, backend="triton").cpu(), cpp, p)
    assert max_err <= 2e-4, (mean_err, max_err)


@pytest.mark.parametrize("device,expected", [pytest.param("cpu", "cpp", id="cpu"),
                                             pytest.param("cuda", "triton", marks=pytest.mark.triton, id="cuda")])
def test_auto_takes_cpp_on_cpu_and_triton_on_cuda(device, expected):
    """No cuda kernel for augment: auto goes to triton on CUDA tensors (resolution only, no GPU needed)."""
    require(expected, "cpu" if expected == "cpp" else triton_device())
    assert AUGMENT.resolve("auto", torch.device(device)) == expected


def op_args(images, params, backend):
    factors = torch.stack((params.brightness, params.contrast, params.saturation, params.hue), 1).float()
    return (images.data, images.offsets, images.sizes, images.host_offsets, images.host_sizes, list(images.max_size),
            params.crop, params.flip, factors, params.order,
            params.grayscale, params.blur_sigma, params.solarize, list(params.size), params.blur_kernel,
            list(params.mean), list(params.std), params.dtype, params.channels_last, params.interpolation,
            params.may_blur, params.may_change_contrast, backend)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("backend,device", NATIVE)
def test_opcheck(backend, device, channels_last):
    require(backend, device)
    small = interpreted(backend, device)
    images = on_device(random_batch([(14, 18), (11, 9)] if small else [(30, 40), (25, 19)], seed=11), device)
    (p, _) = recipes.draw(recipes.simclr(size=6 if small else 12), torch.arange(2), images.host_sizes, seed=0,
                          channels_last=channels_last)
    torch.library.opcheck(torch.ops.fastssl.augment.default, op_args(images, p.to(device), backend))


@pytest.mark.triton
def test_views_times_batch_beyond_the_grid_limit_launch_in_parts(monkeypatch):
    """Augment repeats the batch once per view: 2 views x 5 images pass MAX_BATCH (lowered to 4 here, the
    grid's second axis on a GPU): the launcher launches at most MAX_BATCH samples at a time, same views."""
    device = triton_device()
    require("triton", device)
    from fastssl.triton import augment as kernels
    from fastssl.triton._common import watch_launches

    images = on_device(random_batch(SMALL_RAGGED, seed=13), device)
    transform = Augment(recipes.Recipe("v", (recipes.ViewRecipe(size=16, jitter_p=1.0, blur_p=0.5),) * 2), seed=3,
                        backend="triton")
    whole_batch, _ = transform(images, torch.arange(5))
    monkeypatch.setattr(kernels, "MAX_BATCH", 4)
    with watch_launches() as launches:
        parts, _ = transform(images, torch.arange(5))
    assert max(launch.grid[1] for launch in launches) == 4
    assert all(torch.equal(a, b) for a, b in zip(parts, whole_batch, strict=True))


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("backend,device", EVERY_BACKEND)
def test_bad_parameters_are_named(backend, device):
    """The public op checks parameters and batch once, on every backend, before any kernel runs (the kernels
    trust the values); the parameters' own shapes and settings are checked when they are made."""
    require(backend, device)
    images = torch.randint(0, 256, (2, 3, 30, 40), dtype=torch.uint8, device=device)
    (p,) = recipes.draw(recipes.mae(size=8), torch.arange(2), torch.tensor([[30, 40]] * 2), seed=0)

    def run(params, batch=images):
        return augment(batch, params, backend=backend)

    for b, box in ((1, [25, 0, 10, 10]), (0, [0, 0, 30, 41])):
        bad_crop = p.crop.clone()
        bad_crop[b] = torch.tensor(box)
        with pytest.raises(ValueError, match=fr"params.crop\[{b}\].*outside image {b}"):
            run(replace(p, crop=bad_crop))
    with pytest.raises(ValueError, match="params describe 1 samples, the batch has 2"):
        run(p.select(slice(0, 1)))
    with pytest.raises(ValueError, match="params.hue must be in"):
        run(replace(p, hue=torch.full((2,), 0.7)))
    for name in (*COLOR_OPS, "blur_sigma"):
        for value in (float("nan"), float("inf")):
            bad = getattr(p, name).clone().float()
            bad[1] = value
            with pytest.raises(ValueError, match=f"params.{name} must be finite"):
                run(replace(p, **{name: bad}))
    with pytest.raises(ValueError, match=r"params.blur_sigma must be >= 0, got params.blur_sigma\[1\] = -1.0"):
        run(replace(p, blur_sigma=torch.tensor([0.0, -1.0])))
    with pytest.raises(ValueError, match=r"params.order rows must be permutations of 0..3, got params.order\[0\]"):
        run(replace(p, order=torch.zeros(2, 4, dtype=torch.int64)))
    settings = [(dict(mean=(0.5, float("nan"), 0.5)), "params.mean and params.std must be finite"),
                (dict(mean=(0.5, 0.5)), "params.mean and params.std must have 3 values each"),
                (dict(std=(0.5, 0.0, 0.5)), r"params.std must be > 0"),
                (dict(blur_kernel=4), "params.blur_kernel must be odd"),
                (dict(size=(0, 8)), r"params.size must be \(H, W\) >= 1"),
                (dict(interpolation="nearest"), "params.interpolation must be one of"),
                (dict(dtype=torch.int32), "params.dtype must be float32, bfloat16 or float16"),
                (dict(crop=torch.zeros(2, 3, dtype=torch.int64)), r"params.crop must have shape \(2, 4\)"),
                (dict(flip=torch.zeros(3, dtype=torch.bool)), "params.flip has 3 rows, params.crop has 2")]
    for changes, message in settings:
        with pytest.raises(ValueError, match=message):
            run(replace(p, **changes))
    with pytest.raises(TypeError, match="params.flip must be a tensor"):
        replace(p, flip=[True, False])
    with pytest.raises(ValueError, match="images must be a uint8"):
        run(p, images.float())
    with pytest.raises(ValueError, match=r"images\[1\] must be a 3-D uint8"):
        run(p, [images[0], images[1].float()])
    with pytest.raises(TypeError, match="images must be a tensor"):
        run(p, "not images")
    if device == "cpu":
        with pytest.raises(BackendUnavailable, match="the cuda backend runs on CUDA tensors"):
            augment(images, p, backend="cuda")


def native_args(**changes):
    """Valid arguments of fastssl_C::augment for a 2-image batch, with ``changes`` applied."""
    images = random_batch([(30, 40), (25, 19)], seed=12)
    crop = torch.tensor([[0, 0, 30, 40], [5, 3, 10, 10]])
    ys, yw, yt = augment_weights.axis_weights(crop[:, 2], 8, "bilinear")
    xs, xw, xt = augment_weights.axis_weights(crop[:, 3], 8, "bilinear")
    args = dict(data=images.data, offsets=images.offsets, sizes=images.sizes, crop=crop, y_start=ys, y_weights=yw,
                taps=torch.stack((yt, xt), 1), x_start=xs, x_weights=xw, factors=torch.ones(2, 4),
                order=torch.arange(4).repeat(2, 1), grayscale=torch.zeros(2, dtype=torch.bool),
                blur_sigma=torch.zeros(2), solarize=torch.zeros(2, dtype=torch.bool), blur_kernel=3, mean=[0.5] * 3,
                std=[0.25] * 3, clamp=False, dtype=torch.float32, channels_last=False)
    args.update(changes)
    return args


BAD_NATIVE = [  # the binding checks metadata only: the values are the public op's to check (test above)
    (dict(data=torch.zeros(100)), "data must be Byte"),
    (dict(offsets=torch.zeros(0, dtype=torch.int64)), "offsets is empty"),
    (dict(sizes=torch.tensor([[30, 40]])), r"sizes must have shape \[2, 2\]"),
    (dict(crop=torch.zeros(2, 4, dtype=torch.int32)), "crop must be Long"),
    (dict(y_start=torch.zeros(2, 8, dtype=torch.int64)), "y_start must be Int"),
    (dict(x_weights=torch.zeros(2, 7, 3)), r"x_weights must have shape \[2, 8, -1\]"),
    (dict(taps=torch.ones(2, 3, dtype=torch.int32)), r"taps must have shape \[2, 2\]"),
    (dict(factors=torch.ones(2, 3)), r"factors must have shape \[2, 4\]"),
    (dict(order=torch.zeros(2, 4, dtype=torch.int32)), "order must be Long"),
    (dict(grayscale=torch.zeros(2)), "grayscale must be Bool"),
    (dict(blur_kernel=4), "blur_kernel must be odd"),
    (dict(mean=[0.5, 0.5]), "mean must have 3 values"),
    (dict(std=[0.5, 0.5]), "std must have 3 values"),
    (dict(dtype=torch.int32), "dtype must be float32, bfloat16 or float16"),
]


class _Recording:
    """A Triton kernel whose launches (``kernel[grid](...)``) are recorded by name, then run."""

    def __init__(self, kernel, name, launched):
        self.kernel, self.name, self.launched = kernel, name, launched

    def __getitem__(self, grid):
        self.launched.append(self.name)
        return self.kernel[grid]


def test_a_gpu_launches_only_the_passes_the_recipe_may_need(monkeypatch):
    """On a GPU nothing is read back, so the blur and contrast passes run unless the parameters promise they are
    not needed: a recipe without blur or contrast jitter makes one launch; SimCLR's all four."""
    require("triton", triton_device())
    from fastssl import _validation
    from fastssl.triton import augment as triton_augment

    launched = []
    for name in ("_augment_kernel", "_contrast_kernel", "_blur_kernel"):
        monkeypatch.setattr(triton_augment, name, _Recording(getattr(triton_augment, name), name, launched))
    images = torch.randint(0, 256, (2, 3, 30, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    sizes = torch.tensor([[30, 40]] * 2)
    (plain,) = recipes.draw(recipes.mae(size=8), torch.arange(2), sizes, seed=0)
    simclr = recipes.draw(recipes.simclr(size=8), torch.arange(2), sizes, seed=0)[0]
    assert (plain.may_blur, plain.may_change_contrast, simclr.may_blur, simclr.may_change_contrast) == (
        False, False, True, True)
    with _validation.asynchronous_checks():  # as on a GPU
        quick = augment(images.to(triton_device()), plain, backend="triton")
        assert launched == ["_augment_kernel"]
        launched.clear()
        augment(images.to(triton_device()), simclr, backend="triton")
        assert launched == ["_augment_kernel", "_contrast_kernel", "_blur_kernel", "_blur_kernel"]
    assert torch.equal(quick, augment(images.to(triton_device()), plain, backend="triton"))  # passes read
    with pytest.raises(ValueError, match=r"params.may_blur is False but params.blur_sigma\[1\] = 1.5"):
        augment(images, replace(plain, blur_sigma=torch.tensor([0.0, 1.5])), backend="reference")
    with pytest.raises(ValueError, match=r"params.may_change_contrast is False but params.contrast\[0\] = 0.5"):
        augment(images, replace(plain, contrast=torch.tensor([0.5, 1.0])), backend="reference")


def test_parameters_are_checked_at_run_time_inside_a_compiled_graph():
    """The values are checked in the op's body: a compiled graph, traced on good parameters, refuses bad ones of
    the same shapes at run time instead of handing them to a kernel that indexes memory with them."""
    images = torch.randint(0, 256, (2, 3, 30, 40), dtype=torch.uint8)
    (p,) = recipes.draw(recipes.mae(size=8), torch.arange(2), torch.tensor([[30, 40]] * 2), seed=0)
    compiled = torch.compile(lambda crop: augment(images, replace(p, crop=crop)), backend="aot_eager",
                             fullgraph=False)
    assert torch.equal(compiled(p.crop), augment(images, p))
    bad_crop = p.crop.clone()
    bad_crop[1] = torch.tensor([0, 0, 30, 400])
    with pytest.raises(ValueError, match=r"params.crop\[1\].*outside image 1"):
        compiled(bad_crop)


@pytest.mark.parametrize("changes,message", BAD_NATIVE, ids=[m.split(" ")[0] for _, m in BAD_NATIVE])
def test_bad_native_arguments_are_named(changes, message):
    require("cpp", "cpu")
    torch.ops.fastssl_C.augment(**native_args())  # the valid call runs
    with pytest.raises(RuntimeError, match=message):
        torch.ops.fastssl_C.augment(**native_args(**changes))


def launcher_args(device, **changes):
    """Valid arguments of fastssl.triton.augment.augment for a 2-image batch on ``device``, with ``changes``."""
    images = on_device(random_batch([(30, 40), (25, 19)], seed=12), device)
    crop = torch.tensor([[0, 0, 30, 40], [5, 3, 10, 10]], device=device)
    ys, yw, yt = augment_weights.axis_weights(crop[:, 2], 6, "bilinear")
    xs, xw, xt = augment_weights.axis_weights(crop[:, 3], 6, "bilinear")
    args = dict(data=images.data, offsets=images.offsets, sizes=images.sizes, crop=crop, y_start=ys, y_weights=yw,
                taps=torch.stack((yt, xt), 1), x_start=xs, x_weights=xw, factors=torch.ones(2, 4, device=device),
                order=torch.arange(4, device=device).repeat(2, 1),
                grayscale=torch.zeros(2, dtype=torch.bool, device=device), blur_sigma=torch.zeros(2, device=device),
                solarize=torch.zeros(2, dtype=torch.bool, device=device), blur_kernel=3, mean=[0.5] * 3,
                std=[0.25] * 3, clamp=False, dtype=torch.float32, channels_last=False)
    args.update({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in changes.items()})
    return args


BAD_LAUNCHER = [  # the launcher checks metadata only: the values are the public op's to check
    (dict(data=torch.zeros(100)), TypeError, "data must be a 1-D uint8 tensor"),
    (dict(sizes=torch.tensor([[30, 40]])), ValueError, r"sizes must have shape \(2, 2\)"),
    (dict(y_start=torch.zeros(2, 6, dtype=torch.int64)), TypeError, "y_start must be torch.int32"),
    (dict(x_weights=torch.zeros(2, 5, 3)), ValueError, r"x_weights must have shape \(2, 6, -1\)"),
    (dict(factors=torch.ones(2, 3)), ValueError, r"factors must have shape \(2, 4\)"),
    (dict(grayscale=torch.zeros(2)), TypeError, "grayscale must be torch.bool"),
]


@pytest.mark.triton
@pytest.mark.parametrize("changes,error,message", BAD_LAUNCHER, ids=[m.split(" ")[0] for _, _, m in BAD_LAUNCHER])
def test_bad_launcher_arguments_are_named(changes, error, message):
    device = triton_device()
    require("triton", device)
    from fastssl.triton.augment import augment as launch

    with pytest.raises(error, match=message):
        launch(**launcher_args(device, **changes))


# ------------------------------------------------------------------------------------------- resize weights


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_axis_weights_reproduce_interpolate(interpolation):
    """Weights applied separably == F.interpolate(antialias=True) on random crops, down and up, in float64; every
    tap inside the crop.

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


# ----------------------------------------------------------------------------------- the real GPU (cuda)


def imagenet_like(count: int, seed: int) -> RaggedImages:
    g = torch.Generator().manual_seed(seed)
    shapes = [(375, 500), (500, 375), (333, 500), (500, 500), (240, 320), (1200, 1600), (64, 80), (1, 1)]
    return random_batch([shapes[int(i)] for i in torch.randint(0, len(shapes), (count,), generator=g)], seed=seed)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=str)
def test_gpu_simclr_256_images_to_224(dtype):
    """256 ImageNet-like images (375 x 500 and others, ragged) -> two SimCLR views of 224 x 224."""
    require("triton", "cuda")
    images = random_batch([(375, 500)] * 192, seed=20)
    images = RaggedImages.from_list([images.image(b) for b in range(len(images))]
                                    + [imagenet_like(64, 21).image(b) for b in range(64)])
    for p in recipes.draw(recipes.simclr(size=224), torch.arange(256), images.sizes, seed=1, dtype=dtype):
        check(images, p, "triton", "cuda")


@pytest.mark.cuda
@pytest.mark.parametrize("recipe", [recipes.byol(), recipes.mae(), recipes.multicrop(2, 4)],
                         ids=("byol", "mae", "multicrop"))
def test_gpu_recipes_bfloat16_channels_last(recipe):
    require("triton", "cuda")
    images = imagenet_like(48, 22)
    for p in recipes.draw(recipe, torch.arange(48), images.sizes, seed=3, dtype=torch.bfloat16, channels_last=True):
        check(images, p, "triton", "cuda")


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_gpu_half_outputs_round_like_torch(dtype):
    """The kernel's own bfloat16 / float16 stores (not available in the interpreter) round to nearest even."""
    require("triton", "cuda")
    images = on_device(imagenet_like(16, 23), "cuda")
    (p, _) = recipes.draw(recipes.simclr(size=96), torch.arange(16), images.host_sizes, seed=5, dtype=dtype)
    out = augment(images, p, backend="triton")
    assert torch.equal(out, augment(images, replace(p, dtype=torch.float32), backend="triton").to(dtype))


@pytest.mark.cuda
def test_gpu_every_op_on_large_sources():
    require("triton", "cuda")
    images = imagenet_like(32, 24)
    view = recipes.ViewRecipe(size=224, jitter_p=1.0, grayscale_p=0.5, blur_p=1.0, solarize_p=0.5)
    (p,) = recipes.draw(recipes.Recipe("all", (view,)), torch.arange(32), images.sizes, seed=6)
    check(images, p, "triton", "cuda")
