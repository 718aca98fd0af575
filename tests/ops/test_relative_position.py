"""relative_position_pairs: geometry recovered from labels, color dropping, determinism, backends, errors."""

import pytest
import torch

from fastssl.ops.relative_position import DIRECTIONS, relative_position_pairs
from fastssl.reference import relative_position as reference
from helpers import backend_cases, random_images, require

BACKENDS = backend_cases(("reference", "cpp", "triton"))
COMPARED = backend_cases(("reference", "cpp", "triton"), compared_with_reference=True)  # checked against the reference
SMALL = dict(patch=7, gap=3, jitter=2)  # images of >= 3*7 + 2*3 + 2*2 = 31 pixels


def test_directions_are_row_major_without_center():
    assert DIRECTIONS == ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def test_labels_recover_geometry_and_patches_are_image_content():
    x = random_images((64, 3, 41, 37), torch.uint8)
    out = relative_position_pairs(x, **SMALL, backend="reference")
    P, pitch = SMALL["patch"], SMALL["patch"] + SMALL["gap"]
    assert set(out.labels.tolist()) == set(range(8))  # 64 draws cover the 8 directions
    for b in range(64):
        (cy, cx), (ny, nx) = out.corners[b].tolist()
        dy, dx = DIRECTIONS[out.labels[b]]
        assert abs(ny - cy - dy * pitch) <= SMALL["jitter"] and abs(nx - cx - dx * pitch) <= SMALL["jitter"]
        assert torch.equal(out.patches[b, 0], x[b, :, cy:cy + P, cx:cx + P])
        assert torch.equal(out.patches[b, 1], x[b, :, ny:ny + P, nx:nx + P])
    assert (out.keep == -1).all()


def test_given_parameters_are_used_exactly():
    x = random_images((2, 3, 40, 40), torch.float32)
    labels, positions = torch.tensor([0, 7]), torch.tensor([[12, 13], [14, 12]])
    offsets = torch.tensor([[-2, 1], [2, 0]])
    out = relative_position_pairs(x, **SMALL, labels=labels, positions=positions, offsets=offsets,
                                  backend="reference")
    assert torch.equal(out.labels, labels)
    assert out.corners.tolist() == [[[12, 13], [0, 4]], [[14, 12], [26, 22]]]


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_color_drop_keeps_one_channel_and_fills_others_with_noise(dtype):
    x = random_images((32, 3, 64, 64), dtype)
    fill, std = ((100.0, 120.0, 140.0), 5.0) if dtype == torch.uint8 else ((0.2, 0.4, 0.6), 0.05)
    out = relative_position_pairs(x, patch=16, gap=4, jitter=3, color_drop=1.0, drop_fill=fill, drop_noise=std,
                                  backend="reference")
    assert (out.keep >= 0).all() and set(out.keep.flatten().tolist()) == {0, 1, 2}
    for b in range(32):
        for p in range(2):
            y, x0 = out.corners[b, p].tolist()
            kept = int(out.keep[b, p])
            assert torch.equal(out.patches[b, p, kept], x[b, kept, y:y + 16, x0:x0 + 16])
    noise = torch.stack([out.patches[b, p, c].double() for b in range(32) for p in range(2) for c in range(3)
                         if c != out.keep[b, p]])  # 128 dropped channels of 16 x 16
    channel = torch.tensor([c for b in range(32) for p in range(2) for c in range(3) if c != out.keep[b, p]])
    centered = noise - torch.tensor(fill, dtype=torch.float64)[channel].view(-1, 1, 1)
    assert abs(centered.mean().item()) < 0.05 * std
    assert centered.std().item() == pytest.approx(std, rel=0.05)
    off = relative_position_pairs(x, patch=16, gap=4, jitter=3, color_drop=0.0, backend="reference")
    assert (off.keep == -1).all()


def test_same_ids_same_pairs_whatever_the_batch():
    x = random_images((6, 3, 33, 35), torch.uint8)
    ids = torch.tensor([5, 9, 2, 40, 7, 1])
    full = relative_position_pairs(x, **SMALL, ids=ids, seed=3, epoch=2, color_drop=0.5, backend="reference")
    order = torch.tensor([4, 1, 3])
    part = relative_position_pairs(x[order], **SMALL, ids=ids[order], seed=3, epoch=2, color_drop=0.5,
                                   backend="reference")
    for field in ("patches", "labels", "corners", "keep"):
        assert torch.equal(getattr(part, field), getattr(full, field)[order]), field
    other_epoch = relative_position_pairs(x, **SMALL, ids=ids, seed=3, epoch=3, backend="reference")
    assert not torch.equal(other_epoch.corners, full.corners)


@pytest.mark.parametrize("backend,device", COMPARED)
@pytest.mark.parametrize("shape", [(1, 3, 31, 31), (5, 3, 45, 38)], ids=str)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float16, torch.float64], ids=str)
def test_backend_matches_reference_exactly(backend, device, shape, dtype):
    require(backend, device)
    x = random_images(shape, dtype)
    kwargs = dict(SMALL, ids=torch.arange(10, 10 + shape[0]), color_drop=0.6)
    expected = relative_position_pairs(x, **kwargs, backend="reference")
    out = relative_position_pairs(x.to(device), **kwargs, backend=backend)
    assert out.patches.dtype == dtype
    assert torch.equal(out.patches.cpu(), expected.patches)  # copies and table lookups: bit-exact
    assert torch.equal(out.labels.cpu(), expected.labels) and torch.equal(out.keep.cpu(), expected.keep)


@pytest.mark.parametrize("backend,device", COMPARED)
def test_non_contiguous(backend, device):
    require(backend, device)
    x = random_images((3, 40, 36, 3), torch.uint8).permute(0, 3, 1, 2)  # channels-last strides
    assert not x.is_contiguous()
    expected = relative_position_pairs(x.contiguous(), **SMALL, color_drop=0.5, backend="reference")
    out = relative_position_pairs(x.to(device), **SMALL, color_drop=0.5, backend=backend)
    assert torch.equal(out.patches.cpu(), expected.patches)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_opcheck(backend, device):
    require(backend, device)
    x = torch.rand(2, 3, 31, 33, device=device)
    ids = torch.arange(2, device=device)
    p = reference.draw(ids, 31, 33, 7, 3, 2, 0.5, seed=0, epoch=0, view=0)
    corners = reference.patch_corners(p["positions"], p["offsets"], p["labels"], 7, 3)
    table = reference.noise_table(0.5, 0.01, torch.float32, device)
    torch.library.opcheck(torch.ops.fastssl.relative_position_pairs.default,
                          (x, corners, p["keep"], p["keys"], table, 7, backend))


@pytest.mark.parametrize(
    "x,kwargs,error,match",
    [
        (torch.rand(1, 3, 30, 40), SMALL, ValueError, "images of 30 x 40 are too small for patch=7, gap=3, jitter=2"),
        (torch.rand(1, 4, 40, 40), SMALL, ValueError, "images must have 3 channels"),
        (torch.zeros(1, 3, 40, 40, dtype=torch.int16), SMALL, TypeError, "images must have dtype"),
        (torch.rand(1, 3, 40, 40), dict(SMALL, patch=0), ValueError, "patch must be an integer >= 1"),
        (torch.rand(1, 3, 40, 40), dict(SMALL, labels=torch.tensor([8])), ValueError, "labels out of range"),
        (torch.rand(1, 3, 40, 40), dict(SMALL, offsets=torch.tensor([[3, 0]])), ValueError, "offsets out of range"),
        (torch.rand(1, 3, 40, 40), dict(SMALL, positions=torch.tensor([[1, 12]])), ValueError, "positions"),
        (torch.rand(1, 3, 40, 40), dict(SMALL, labels=torch.tensor([1.0])), TypeError, "labels must be an integer"),
        (torch.rand(1, 3, 40, 40), dict(SMALL, color_drop=1.5), ValueError, "color_drop must be a probability"),
        (torch.rand(2, 3, 40, 40), dict(SMALL, ids=torch.arange(3)), ValueError, "ids must have one id per image"),
    ],
)
def test_bad_input_is_named(x, kwargs, error, match):
    with pytest.raises(error, match=match):
        relative_position_pairs(x, **kwargs)


def test_native_binding_keeps_patches_inside_the_image():
    # The binding reads no values: corners past the edge are clamped into the image, never read outside it.
    require("cpp", "cpu")
    from fastssl import _native

    x = random_images((1, 3, 12, 12), torch.uint8)
    keep, keys = torch.tensor([[-1, -1]]), torch.tensor([3])
    table = reference.noise_table(128.0, 2.55, torch.uint8)
    out = _native.ops().relative_position_pairs(x, torch.tensor([[[-2, 9], [11, 0]]]), keep, keys, table, 5)
    expected = reference.relative_position_pairs(x, torch.tensor([[[0, 7], [7, 0]]]), keep, keys, table, 5)
    assert torch.equal(out, expected)


def test_colour_drop_still_works_with_a_future_warning():
    x = random_images((2, 3, 40, 40), torch.uint8)
    expected = relative_position_pairs(x, **SMALL, color_drop=0.5, backend="reference")
    with pytest.warns(FutureWarning, match=r"relative_position_pairs\(colour_drop=...\) is deprecated .*: use color_drop="):
        out = relative_position_pairs(x, **SMALL, colour_drop=0.5, backend="reference")
    assert torch.equal(out.patches, expected.patches) and torch.equal(out.keep, expected.keep)
