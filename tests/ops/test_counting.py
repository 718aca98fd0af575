"""counting_tiles: the tiles are the quadrants, the filter is torch's area interpolation, backends agree, errors."""

import pytest
import torch
import torch.nn.functional as F

from fastssl.ops.counting import counting_tiles
from fastssl.reference import counting as reference
from helpers import assert_close_to_reference, backend_cases, random_images, require

BACKENDS = backend_cases(("reference", "cpp", "triton"))
COMPARED = backend_cases(("reference", "cpp", "triton"), compared_with_reference=True)  # checked against the reference


def test_tiles_are_the_quadrants_and_whole_is_box_average():
    x = torch.rand(2, 3, 10, 14, dtype=torch.float64)
    out = reference.counting_tiles(x, 5)  # (10, 14) split in 5 x 7 tiles
    assert out.shape == (2, 5, 3, 5, 5)
    quadrants = [x[..., :5, :7], x[..., :5, 7:], x[..., 5:, :7], x[..., 5:, 7:]]
    for t, q in enumerate(quadrants, start=1):
        torch.testing.assert_close(out[:, t], F.interpolate(q, size=(5, 5), mode="area"), atol=1e-12, rtol=0)
    square = torch.rand(1, 2, 8, 8, dtype=torch.float64)
    tiles = reference.counting_tiles(square, 4)
    assert torch.equal(tiles[:, 1], square[..., :4, :4]) and torch.equal(tiles[:, 4], square[..., 4:, 4:])
    torch.testing.assert_close(tiles[:, 0], F.avg_pool2d(square, 2), atol=1e-12, rtol=0)


SHAPES = [((1, 1, 2, 2), 1), ((2, 3, 17, 23), 6), ((1, 3, 16, 16), 8), ((1, 2, 9, 7), 11)]


@pytest.mark.parametrize("backend,device", COMPARED)
@pytest.mark.parametrize("shape,size", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64], ids=str)
def test_backend_matches_reference(backend, device, shape, size, dtype):
    require(backend, device)
    x = random_images(shape, dtype)
    expected = reference.counting_tiles(x if dtype == torch.uint8 else x.double(), size)
    out = counting_tiles(x.to(device), size=size, backend=backend)
    assert out.dtype == (torch.float32 if dtype == torch.uint8 else dtype)
    assert out.shape == (shape[0], 5, shape[1], size, size)
    assert_close_to_reference(out, expected, 1e-3 if dtype == torch.uint8 else 1e-6)


@pytest.mark.parametrize("backend,device", COMPARED)
def test_non_contiguous_and_default_size(backend, device):
    require(backend, device)
    base = random_images((2, 3, 24, 40), torch.uint8)
    x = base[:, :, :, ::2]
    assert not x.is_contiguous()
    out = counting_tiles(x.to(device), backend=backend)
    assert out.shape == (2, 5, 3, 10, 10)
    assert_close_to_reference(out, reference.counting_tiles(x, 10), 1e-3)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_opcheck(backend, device):
    require(backend, device)
    x = torch.rand(2, 3, 6, 8, device=device)
    torch.library.opcheck(torch.ops.fastssl.counting_tiles.default, (x, 3, backend))
    u8 = torch.randint(0, 256, (1, 1, 5, 5), dtype=torch.uint8, device=device)
    torch.library.opcheck(torch.ops.fastssl.counting_tiles.default, (u8, 2, backend))


@pytest.mark.parametrize(
    "x,kwargs,error,match",
    [
        (torch.rand(3, 4, 4), {}, ValueError, r"images must have shape \(B, C, H, W\)"),
        (torch.rand(1, 3, 1, 4), {}, ValueError, "images must be at least 2 x 2"),
        (torch.zeros(1, 3, 4, 4, dtype=torch.int32), {}, TypeError, "images must have dtype"),
        (torch.rand(1, 3, 4, 4), {"size": 0}, ValueError, "size must be an integer >= 1"),
        (torch.full((1, 3, 4, 4), float("nan")), {}, ValueError, "images contains"),
    ],
)
def test_bad_input_is_named(x, kwargs, error, match):
    with pytest.raises(error, match=match):
        counting_tiles(x, **kwargs)


def test_docstring_example():
    out = counting_tiles(torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4), size=2)
    assert out[0, 0, 0].tolist() == [[2.5, 4.5], [10.5, 12.5]] and out[0, 2, 0].tolist() == [[2.0, 3.0], [6.0, 7.0]]
