"""inpainting_masks: hole geometry per mode, fill inside / original outside, determinism, backends, errors."""

import pytest
import torch

from fastssl.ops.inpainting import inpainting_masks
from fastssl.reference import inpainting as reference
from helpers import backend_cases, random_images, require

BACKENDS = backend_cases(("reference", "cpp", "triton"))
COMPARED = backend_cases(("reference", "cpp", "triton"), compared_with_reference=True)  # checked against the reference


def _check_fill(out, images, fill):
    fill = torch.as_tensor(fill, dtype=images.dtype).expand(images.shape[1]).view(1, -1, 1, 1)
    hole = out.mask.expand_as(images)
    assert torch.equal(out.masked[hole], fill.expand_as(images)[hole])
    assert torch.equal(out.masked[~hole], images[~hole])
    assert out.target is images


def test_center_is_a_quarter_of_the_area_with_overlap():
    x = random_images((2, 3, 16, 24), torch.float32)
    out = inpainting_masks(x, "center", fill=(0.1, 0.2, 0.3), backend="reference")
    assert out.mask.shape == (2, 1, 16, 24) and out.mask.dtype == torch.bool
    assert out.mask.float().mean().item() == 0.25
    assert out.mask[0, 0, 4:12, 6:18].all()
    _check_fill(out, x, (0.1, 0.2, 0.3))
    shrunk = inpainting_masks(x, "center", overlap=2, backend="reference")
    assert shrunk.mask[0, 0].sum().item() == (8 - 4) * (12 - 4) and shrunk.mask[0, 0, 6:10, 8:16].all()


def test_random_blocks_lie_inside_with_bounded_sides():
    x = random_images((50, 3, 30, 40), torch.uint8)
    out = inpainting_masks(x, "random_block", blocks=3, min_fraction=0.1, max_fraction=0.3, fill=127,
                           backend="reference")
    top, left, h, w = out.boxes.unbind(-1)
    assert out.boxes.shape == (50, 3, 4)
    assert (h >= 3).all() and (h <= 9).all() and (w >= 4).all() and (w <= 12).all()
    assert (top >= 0).all() and (top + h <= 30).all() and (left >= 0).all() and (left + w <= 40).all()
    assert h.unique().numel() > 3 and top.unique().numel() > 10  # really random
    assert torch.equal(out.mask, reference.boxes_mask(out.boxes, 30, 40))
    assert (out.mask.flatten(1).sum(1) <= (out.boxes[..., 2] * out.boxes[..., 3]).sum(1)).all()
    _check_fill(out, x, 127)


def test_random_region_has_the_requested_area():
    x = random_images((8, 3, 32, 48), torch.float32)
    out = inpainting_masks(x, "random_region", fraction=0.2, grid=5, fill=0.0, backend="reference")
    area = out.mask.float().mean((1, 2, 3))
    assert ((area - 0.2).abs() < 0.01).all()
    assert out.boxes is None
    _check_fill(out, x, 0.0)
    assert not torch.equal(out.mask[0], out.mask[1])


@pytest.mark.parametrize("mode", ["random_block", "random_region"])
def test_same_ids_same_holes_whatever_the_batch(mode):
    x = random_images((5, 3, 20, 20), torch.uint8)
    ids = torch.tensor([3, 8, 13, 21, 34])
    full = inpainting_masks(x, mode, ids=ids, seed=1, epoch=4, view=1, backend="reference")
    order = torch.tensor([3, 0])
    part = inpainting_masks(x[order], mode, ids=ids[order], seed=1, epoch=4, view=1, backend="reference")
    assert torch.equal(part.mask, full.mask[order]) and torch.equal(part.masked, full.masked[order])
    other_view = inpainting_masks(x, mode, ids=ids, seed=1, epoch=4, view=2, backend="reference")
    assert not torch.equal(other_view.mask, full.mask)


@pytest.mark.parametrize("backend,device", COMPARED)
@pytest.mark.parametrize("mode", ["center", "random_block", "random_region"])
@pytest.mark.parametrize("shape", [(1, 1, 2, 2), (3, 3, 19, 27)], ids=str)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float16], ids=str)
def test_backend_matches_reference_exactly(backend, device, mode, shape, dtype):
    require(backend, device)
    x = random_images(shape, dtype)
    fill = [0.25 * (c + 1) for c in range(shape[1])]
    expected = inpainting_masks(x, mode, fill=fill, blocks=2, backend="reference")
    out = inpainting_masks(x.to(device), mode, fill=fill, blocks=2, backend=backend)
    assert torch.equal(out.masked.cpu(), expected.masked) and torch.equal(out.mask.cpu(), expected.mask)


@pytest.mark.parametrize("backend,device", COMPARED)
def test_non_contiguous(backend, device):
    require(backend, device)
    x = random_images((2, 3, 20, 44), torch.float32)[..., ::2]
    assert not x.is_contiguous()
    expected = inpainting_masks(x.contiguous(), "random_block", backend="reference")
    out = inpainting_masks(x.to(device), "random_block", backend=backend)
    assert torch.equal(out.masked.cpu(), expected.masked) and torch.equal(out.mask.cpu(), expected.mask)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_opcheck(backend, device):
    require(backend, device)
    x = torch.rand(2, 3, 9, 11, device=device)
    boxes = torch.tensor([[[1, 2, 3, 4], [5, 0, 2, 11]], [[0, 0, 9, 1], [8, 10, 1, 1]]], device=device)
    torch.library.opcheck(torch.ops.fastssl.inpainting_masks.default, (x, boxes, torch.zeros(3, device=device), backend))


@pytest.mark.parametrize(
    "x,args,kwargs,error,match",
    [
        (torch.rand(1, 3, 8, 8), ("ring",), {}, ValueError, "mode must be one of"),
        (torch.rand(1, 3, 8, 8), (), {"fill": (1.0, 2.0)}, ValueError, "fill must be a number or 3 numbers"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.int32), (), {}, TypeError, "images must have dtype"),
        (torch.rand(3, 8, 8), (), {}, ValueError, r"images must have shape \(B, C, H, W\)"),
        (torch.rand(1, 3, 8, 8), (), {"overlap": 2}, ValueError, "overlap must be an integer"),
        (torch.rand(1, 3, 8, 8), ("random_block",), {"blocks": 0}, ValueError, "blocks must be an integer >= 1"),
        (torch.rand(1, 3, 8, 8), ("random_block",), {"max_fraction": 1.5}, ValueError, "max_fraction must be"),
        (torch.rand(1, 3, 8, 8), ("random_region",), {"fraction": -0.1}, ValueError, "fraction must be"),
        (torch.rand(2, 3, 8, 8), ("random_block",), {"ids": torch.arange(3)}, ValueError, "ids must have one id"),
    ],
)
def test_bad_input_is_named(x, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        inpainting_masks(x, *args, **kwargs)
