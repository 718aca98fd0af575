"""The Triton backend of the fused augmentation against the reference (fastssl.reference.augment).

Same tolerance as tests/ops/test_augment_backends.py: on the [0, 1] scale, mean |error| <=
1/255 and max |error| <= 3/255 per view, nothing excluded; float32 outputs within FLOAT32_MAX.

Here (no GPU) the kernels run through Triton's interpreter on CPU tensors (TRITON_INTERPRET=1): the
shapes are small because the interpreter is slow. The interpreter has no bfloat16: bfloat16 outputs
are computed in float32 and cast after, so the kernel's own bfloat16 store is only tested on a GPU
(the ``cuda`` tests at the end, which also run ImageNet-like sizes).
"""

from dataclasses import replace

import pytest
import torch

from fastssl import recipes
from fastssl.ops import augment_weights
from fastssl.ops.augment import AUGMENT, Augment, augment
from fastssl.ragged import RaggedImages
from helpers import require, triton_device
from test_augment_backends import (assert_channels_last_is_the_same_view, assert_halves_agree, blur_case, check,
                                   extreme_factors_case, op_args, random_batch, tiny_crops_case, unit_scale_errors,
                                   whole_image_case)

pytestmark = pytest.mark.triton
DEVICE = triton_device()


@pytest.fixture(autouse=True)
def _triton_available():
    require("triton", DEVICE)


def on_device(images: RaggedImages) -> RaggedImages:
    return RaggedImages(images.data.to(DEVICE), images.offsets.to(DEVICE), images.sizes.to(DEVICE))


def check_triton(images, params):
    return check(on_device(images), params, backend="triton")


SMALL_RAGGED = [(40, 52), (33, 47), (1, 1), (20, 30), (45, 12)]
RECIPES = [recipes.simclr(size=24), recipes.byol(size=20), recipes.mocov2(size=16), recipes.mae(size=24),
           recipes.multicrop(1, 2, global_size=24, local_size=12)]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name.split("(")[0])
def test_recipes_match_reference(recipe):
    images = random_batch(SMALL_RAGGED, seed=1)
    for params in recipes.draw(recipe, torch.arange(5) + 7, images.sizes, seed=5, epoch=2):
        check_triton(images, params)


def test_every_op_on_in_random_orders():
    """Jitter, grayscale, blur and solarize forced on for every sample, hue over its whole range."""
    images = random_batch([(50, 40), (24, 70), (31, 31), (9, 13)], seed=2)
    (p,) = recipes.draw(recipes.Recipe("all", (recipes.ViewRecipe(size=20, jitter_p=1.0, grayscale_p=0.5, blur_p=1.0,
                                                            solarize_p=0.5),)), torch.arange(4), images.sizes,
                      seed=3)
    check_triton(images, replace(p, hue=torch.tensor([-0.5, 0.5, 0.37, -0.11])))


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_tiny_crops_upscaled(interpolation):
    check_triton(*tiny_crops_case(interpolation, (20, 16)))


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_whole_image_crops_downscaled(interpolation):
    check_triton(*whole_image_case([(120, 160), (37, 200), (24, 24), (100, 17)], interpolation, (24, 24)))


@pytest.mark.parametrize("op", range(4), ids=("brightness", "contrast", "saturation", "hue"))
def test_extreme_colour_factors(op):
    """Factor 0 (and hue +-0.5) for the op under test, the others mid-range, random orders."""
    check_triton(*extreme_factors_case(op, (16, 18), (12, 14)))


@pytest.mark.parametrize("size", [(24, 24), (1, 9), (5, 2)], ids=str)
@pytest.mark.parametrize("sigma", [0.1, 2.0])
def test_blur_and_solarize(sigma, size):
    """Blur at both ends of SimCLR's sigma range; outputs smaller than half the kernel (23 taps) use the
    reflect-then-replicate padding of the reference; a sample without blur in the same batch."""
    check_triton(*blur_case(sigma, size, [(12, 16), (20, 20), (9, 14)], unblurred=True))


def test_ragged_batch_with_one_pixel_images():
    sizes = [(1, 1), (2, 3), (75, 100), (17, 90), (90, 17), (1, 1), (3, 3)]
    images = random_batch(sizes, seed=6)
    (p,) = recipes.draw(recipes.Recipe("r", (recipes.ViewRecipe(size=16, blur_p=0.5),)), torch.arange(7), images.sizes,
                      seed=9)
    check_triton(images, p)


@pytest.mark.parametrize("channels_last", [False, True])
def test_float16_output_is_the_float32_view_rounded(channels_last):
    images = random_batch(SMALL_RAGGED[:4], seed=7)
    (p, _) = recipes.draw(recipes.simclr(size=20), torch.arange(4), images.sizes, seed=2, dtype=torch.float16,
                        channels_last=channels_last)
    check_triton(images, p)
    batch = on_device(images)
    out = augment(batch, p, backend="triton")
    assert out.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    assert torch.equal(out, augment(batch, replace(p, dtype=torch.float32), backend="triton").to(torch.float16))


def test_bfloat16_output_matches_reference():
    """Under the interpreter the kernels write float32 and the launcher casts (no bfloat16 there)."""
    images = random_batch(SMALL_RAGGED[:3], seed=8)
    (p, _) = recipes.draw(recipes.simclr(size=16), torch.arange(3), images.sizes, seed=4, dtype=torch.bfloat16)
    check_triton(images, p)


def test_channels_last_is_the_same_view():
    images = on_device(random_batch(SMALL_RAGGED[:3], seed=10))
    (p, _) = recipes.draw(recipes.byol(size=18), torch.arange(3), images.sizes, seed=1)
    assert_channels_last_is_the_same_view(images, p, "triton")


def test_a_batch_and_its_halves_agree_exactly():
    """A sample's view does not depend on the batch (its own tap counts, its own contrast mean)."""
    images_list = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8).to(DEVICE) for h, w in SMALL_RAGGED]
    (p, _) = recipes.draw(recipes.simclr(size=16), torch.arange(5), torch.tensor(SMALL_RAGGED), seed=4)
    assert_halves_agree(images_list, p, "triton", 2)


def test_close_to_cpp():
    require("cpp", "cpu")
    images = random_batch(SMALL_RAGGED, seed=12)
    (p, _) = recipes.draw(recipes.simclr(size=16), torch.arange(5), images.sizes, seed=6)
    cpp = augment(images, p, backend="cpp")
    mean_err, max_err = unit_scale_errors(augment(on_device(images), p, backend="triton").cpu(), cpp, p)
    assert max_err <= 2e-4, (mean_err, max_err)


def test_auto_takes_triton_on_cuda():
    """No cuda kernel for augment: auto goes to triton on CUDA tensors (resolution only, no GPU needed)."""
    assert AUGMENT.resolve("auto", torch.device("cuda")) == "triton"


@pytest.mark.parametrize("channels_last", [False, True])
def test_opcheck(channels_last):
    images = on_device(random_batch([(14, 18), (11, 9)], seed=11))
    (p, _) = recipes.draw(recipes.simclr(size=6), torch.arange(2), images.sizes, seed=0, channels_last=channels_last)
    torch.library.opcheck(torch.ops.fastssl.augment.default, op_args(images, p.to(DEVICE), "triton"))


def test_views_times_batch_beyond_the_grid_limit_launch_in_parts(monkeypatch):
    """Augment repeats the batch once per view: 2 views x 5 images pass MAX_BATCH (lowered to 4 here, the
    grid's second axis on a GPU): the launcher launches at most MAX_BATCH samples at a time, same views."""
    from fastssl.triton import augment as kernels
    from fastssl.triton._common import watch_launches

    images = on_device(random_batch(SMALL_RAGGED, seed=13))
    transform = Augment(recipes.Recipe("v", (recipes.ViewRecipe(size=16, jitter_p=1.0, blur_p=0.5),) * 2), seed=3,
                        backend="triton")
    whole, _ = transform(images, torch.arange(5))
    monkeypatch.setattr(kernels, "MAX_BATCH", 4)
    with watch_launches() as launches:
        parts, _ = transform(images, torch.arange(5))
    assert max(launch.grid[1] for launch in launches) == 4
    assert all(torch.equal(a, b) for a, b in zip(parts, whole, strict=True))


# ---------------------------------------------------------------------------------------- bad input


def launcher_args(**changes):
    """Valid arguments of fastssl.triton.augment.augment for a 2-image batch, with ``changes`` applied."""
    images = on_device(random_batch([(30, 40), (25, 19)], seed=12))
    crop = torch.tensor([[0, 0, 30, 40], [5, 3, 10, 10]], device=DEVICE)
    ys, yw, yt = augment_weights.axis_weights(crop[:, 2], 6, "bilinear")
    xs, xw, xt = augment_weights.axis_weights(crop[:, 3], 6, "bilinear")
    args = dict(data=images.data, offsets=images.offsets, sizes=images.sizes, crop=crop, y_start=ys, y_weights=yw,
                taps=torch.stack((yt, xt), 1), x_start=xs, x_weights=xw, factors=torch.ones(2, 4, device=DEVICE),
                order=torch.arange(4, device=DEVICE).repeat(2, 1), grayscale=torch.zeros(2, dtype=torch.bool,
                                                                                       device=DEVICE),
                blur_sigma=torch.zeros(2, device=DEVICE), solarize=torch.zeros(2, dtype=torch.bool, device=DEVICE),
                blur_kernel=3, mean=[0.5] * 3, std=[0.25] * 3, clamp=False, dtype=torch.float32,
                channels_last=False)
    args.update(changes)
    return args


BAD_LAUNCHER = [  # the launcher checks metadata only: the values are the public op's to check (next test)
    (dict(data=torch.zeros(100)), TypeError, "data must be a 1-D uint8 tensor"),
    (dict(sizes=torch.tensor([[30, 40]])), ValueError, r"sizes must have shape \(2, 2\)"),
    (dict(y_start=torch.zeros(2, 6, dtype=torch.int64)), TypeError, "y_start must be torch.int32"),
    (dict(x_weights=torch.zeros(2, 5, 3)), ValueError, r"x_weights must have shape \(2, 6, -1\)"),
    (dict(factors=torch.ones(2, 3)), ValueError, r"factors must have shape \(2, 4\)"),
    (dict(grayscale=torch.zeros(2)), TypeError, "grayscale must be torch.bool"),
]


@pytest.mark.parametrize("changes,error,message", BAD_LAUNCHER, ids=[m.split(" ")[0] for _, _, m in BAD_LAUNCHER])
def test_bad_launcher_arguments_are_named(changes, error, message):
    from fastssl.triton.augment import augment as launch

    changes = {k: v.to(DEVICE) if isinstance(v, torch.Tensor) else v for k, v in changes.items()}
    with pytest.raises(error, match=message):
        launch(**launcher_args(**changes))


def test_bad_public_arguments_are_named():
    images = torch.randint(0, 256, (2, 3, 30, 40), dtype=torch.uint8, device=DEVICE)
    (p,) = recipes.draw(recipes.mae(size=8), torch.arange(2), torch.tensor([[30, 40]] * 2), seed=0)
    bad = p.crop.clone()
    bad[1, 2] = 31
    with pytest.raises(ValueError, match=r"params.crop\[1\].*outside image 1"):
        augment(images, replace(p, crop=bad), backend="triton")
    with pytest.raises(ValueError, match=r"params.order rows must be permutations of 0..3, got params.order\[0\]"):
        augment(images, replace(p, order=torch.zeros(2, 4, dtype=torch.int64)), backend="triton")
    with pytest.raises(ValueError, match=r"params.blur_sigma must be >= 0, got params.blur_sigma\[1\] = -1.0"):
        augment(images, replace(p, blur_sigma=torch.tensor([0.0, -1.0])), backend="triton")
    with pytest.raises(ValueError, match=r"params.mean and params.std must have 3 values each"):
        augment(images, replace(p, mean=(0.5, 0.5)), backend="triton")


# ------------------------------------------------------------------------------- the real GPU (cuda)


def imagenet_like(count: int, seed: int) -> RaggedImages:
    g = torch.Generator().manual_seed(seed)
    shapes = [(375, 500), (500, 375), (333, 500), (500, 500), (240, 320), (1200, 1600), (64, 80), (1, 1)]
    return random_batch([shapes[int(i)] for i in torch.randint(0, len(shapes), (count,), generator=g)], seed=seed)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=str)
def test_gpu_simclr_256_images_to_224(dtype):
    """256 ImageNet-like images (375 x 500 and others, ragged) -> two SimCLR views of 224 x 224."""
    images = random_batch([(375, 500)] * 192, seed=20)
    images = RaggedImages.from_list([images.image(b) for b in range(len(images))]
                                    + [imagenet_like(64, 21).image(b) for b in range(64)])
    for p in recipes.draw(recipes.simclr(size=224), torch.arange(256), images.sizes, seed=1, dtype=dtype):
        check(on_device(images), p, backend="triton")


@pytest.mark.cuda
@pytest.mark.parametrize("recipe", [recipes.byol(), recipes.mae(), recipes.multicrop(2, 4)], ids=("byol", "mae", "multicrop"))
def test_gpu_recipes_bfloat16_channels_last(recipe):
    images = imagenet_like(48, 22)
    for p in recipes.draw(recipe, torch.arange(48), images.sizes, seed=3, dtype=torch.bfloat16, channels_last=True):
        check(on_device(images), p, backend="triton")


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_gpu_half_outputs_round_like_torch(dtype):
    """The kernel's own bfloat16 / float16 stores (not available in the interpreter) round to nearest even."""
    images = on_device(imagenet_like(16, 23))
    (p, _) = recipes.draw(recipes.simclr(size=96), torch.arange(16), images.sizes, seed=5, dtype=dtype)
    out = augment(images, p, backend="triton")
    assert torch.equal(out, augment(images, replace(p, dtype=torch.float32), backend="triton").to(dtype))


@pytest.mark.cuda
def test_gpu_every_op_on_large_sources():
    images = imagenet_like(32, 24)
    (p,) = recipes.draw(recipes.Recipe("all", (recipes.ViewRecipe(size=224, jitter_p=1.0, grayscale_p=0.5, blur_p=1.0,
                                                            solarize_p=0.5),)), torch.arange(32), images.sizes,
                      seed=6)
    check(on_device(images), p, backend="triton")
