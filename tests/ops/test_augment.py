"""Augmentation groundwork: the reference against torchvision, recipes, counter-based parameters, ragged batches.

The fused kernels do not exist yet; these tests pin down the specification they will be checked against.
"""

import math

import pytest
import torch

from fastssl import BackendUnavailable, recipes
from fastssl.ops.augment_params import AugmentParams
from fastssl.ops.augment import Augment, augment
from fastssl.ragged import RaggedImages
from fastssl.reference import augment as reference

tvF = pytest.importorskip("torchvision.transforms.v2.functional")
COLOUR = [(0, tvF.adjust_brightness), (1, tvF.adjust_contrast), (2, tvF.adjust_saturation), (3, tvF.adjust_hue)]
# torchvision weighs red 0.2989 in its grayscale, FIELD.md (and fastssl) 0.299: a 1e-4 difference at most.
GRAY_DELTA = 2e-4


@pytest.fixture
def image():
    return torch.randint(0, 256, (3, 45, 67), dtype=torch.uint8)


@pytest.mark.parametrize("op,tv", COLOUR, ids=["brightness", "contrast", "saturation", "hue"])
@pytest.mark.parametrize("factor", [0.0, 0.3, 1.0, 1.8])
def test_colour_ops_match_torchvision(image, op, tv, factor):
    x = image.float() / 255
    factor = factor - 1 if op == 3 else factor  # hue in [-0.5, 0.5]
    factor = max(min(factor, 0.5), -0.5) if op == 3 else factor
    torch.testing.assert_close(reference.adjust(x, op, factor), tv(x, factor), atol=GRAY_DELTA, rtol=0)


@pytest.mark.parametrize("hue", [-0.5, -0.2, 0.0, 0.25, 0.5])
def test_hue_round_trip_is_a_true_hsv_shift(image, hue):
    x = image.float() / 255
    torch.testing.assert_close(reference.adjust(x, 3, hue), tvF.adjust_hue(x, hue), atol=1e-5, rtol=0)


@pytest.mark.parametrize("sigma", [0.1, 1.0, 2.0])
def test_blur_matches_torchvision(image, sigma):
    x = image.float() / 255
    torch.testing.assert_close(reference.blur(x, sigma, 23), tvF.gaussian_blur(x, [23, 23], [sigma, sigma]),
                               atol=1e-5, rtol=0)


def test_blur_of_images_smaller_than_the_kernel_is_defined():
    x = torch.rand(3, 2, 3)
    out = reference.blur(x, 2.0, 23)
    assert out.shape == x.shape and torch.isfinite(out).all()
    torch.testing.assert_close(reference.blur(torch.full((3, 1, 1), 0.25), 1.0, 23), torch.full((3, 1, 1), 0.25))


def torchvision_view(image, p, b):
    """The same view made with torchvision's functional ops, one sample at a time."""
    x = image.float() / 255
    top, left, h, w = p.crop[b].tolist()
    y = tvF.resized_crop(x, top, left, h, w, list(p.size), antialias=True)
    if p.flip[b]:
        y = tvF.horizontal_flip(y)
    factors = [p.brightness[b].item(), p.contrast[b].item(), p.saturation[b].item(), p.hue[b].item()]
    for op in p.order[b].tolist():
        y = COLOUR[op][1](y, factors[op])
    if p.grayscale[b]:
        y = tvF.rgb_to_grayscale(y, 3)
    if p.blur_sigma[b] > 0:
        y = tvF.gaussian_blur(y, [p.blur_kernel] * 2, [p.blur_sigma[b].item()] * 2)
    if p.solarize[b]:
        y = tvF.solarize(y, 0.5)
    return tvF.normalize(y, list(p.mean), list(p.std))


@pytest.mark.parametrize("recipe", [recipes.simclr(size=32), recipes.byol(size=32), recipes.mocov2(size=32)],
                         ids=lambda r: r.name)
def test_views_match_torchvision_per_sample(recipe):
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in [(50, 70), (41, 33), (64, 64), (20, 90)]]
    sizes = torch.tensor([list(im.shape[1:]) for im in images])
    for p in recipes.draw(recipe, torch.arange(4) + 100, sizes, seed=3, epoch=2):
        out = augment(images, p, backend="reference")
        for b, im in enumerate(images):
            expected = torchvision_view(im, p, b)
            # On the [0, 1] scale (times std): the grayscale constant is the only difference.
            error = ((out[b] - expected).abs() * torch.tensor(p.std).view(3, 1, 1)).max().item()
            assert error <= 3 * GRAY_DELTA, (b, error)


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
    # Every one of the 24 orders of the colour ops occurs about equally often.
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


def test_bad_parameters_are_named():
    images = torch.randint(0, 256, (2, 3, 30, 40), dtype=torch.uint8)
    (p,) = recipes.draw(recipes.mae(size=16), torch.arange(2), torch.tensor([[30, 40]] * 2), seed=0)
    bad_crop = p.crop.clone()
    bad_crop[1] = torch.tensor([25, 0, 10, 10])
    with pytest.raises(ValueError, match=r"params.crop\[1\].*outside image 1"):
        augment(images, AugmentParams(**{**p.per_sample(), "crop": bad_crop}, size=p.size))
    with pytest.raises(ValueError, match="params describe 1 samples, the batch has 2"):
        augment(images, p.select(slice(0, 1)))
    with pytest.raises(ValueError, match="params.hue must be in"):
        augment(images, AugmentParams(**{**p.per_sample(), "hue": torch.full((2,), 0.7)}, size=p.size))
    for name in ("brightness", "contrast", "saturation", "hue", "blur_sigma"):
        for value in (float("nan"), float("inf")):
            bad = getattr(p, name).clone().float()
            bad[1] = value
            with pytest.raises(ValueError, match=f"params.{name} must be finite"):
                augment(images, AugmentParams(**{**p.per_sample(), name: bad}, size=p.size))
    with pytest.raises(ValueError, match="params.mean and params.std must be finite"):
        augment(images, AugmentParams(**p.per_sample(), size=p.size, mean=(0.5, float("nan"), 0.5)))
    with pytest.raises(ValueError, match="params.order rows must be permutations"):
        augment(images, AugmentParams(**{**p.per_sample(), "order": torch.zeros(2, 4, dtype=torch.int64)}))
    with pytest.raises(ValueError, match="images must be a uint8"):
        augment(images.float(), p)
    with pytest.raises(ValueError, match=r"images\[1\] must be a 3-D uint8"):
        augment([images[0], images[1].float()], p)
    with pytest.raises(BackendUnavailable, match="the cuda backend runs on CUDA tensors"):
        augment(images, p, backend="cuda")
