"""rotations: exactness against torch.rot90, orders and labels, every backend against the reference, errors."""

import pytest
import torch

from fastssl.ops.rotations import rotations
from fastssl.reference import rotations as reference
from helpers import backend_cases, random_images, require

BACKENDS = backend_cases(("reference", "cpp", "triton"))
COMPARED = backend_cases(("reference", "cpp", "triton"), compared_with_reference=True)  # checked against the reference
SHAPES = [(1, 1, 1, 1), (2, 3, 7, 7), (3, 2, 33, 33)]
DTYPES = [torch.uint8, torch.float32, torch.float16, torch.int64, torch.bool]


def _images(shape, dtype):
    if dtype == torch.bool:
        return torch.rand(shape) < 0.5
    if dtype == torch.int64:
        return torch.randint(-2**62, 2**62, shape)
    return random_images(shape, dtype)


@pytest.mark.parametrize("order", ["image", "rotation"])
def test_reference_is_rot90_and_labels_undo_it(order):
    x = torch.randint(0, 256, (3, 2, 5, 5), dtype=torch.uint8)
    out, labels = reference.rotations(x, order)
    assert out.shape == (12, 2, 5, 5) and labels.dtype == torch.int64
    for row in range(12):
        b = row // 4 if order == "image" else row % 3
        k = int(labels[row])
        assert k == (row % 4 if order == "image" else row // 3)
        assert torch.equal(out[row], torch.rot90(x[b], k, dims=(-2, -1)))
        assert torch.equal(torch.rot90(out[row], -k, dims=(-2, -1)), x[b])


@pytest.mark.parametrize("backend,device", COMPARED)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("order", ["image", "rotation"])
def test_backend_matches_reference_exactly(backend, device, shape, dtype, order):
    require(backend, device)
    x = _images(shape, dtype)
    expected, expected_labels = reference.rotations(x, order)
    out, labels = rotations(x.to(device), order=order, backend=backend)
    assert out.dtype == dtype and out.device.type == device
    assert torch.equal(out.cpu(), expected)  # bit-exact: a permutation of the elements
    assert torch.equal(labels.cpu(), expected_labels)


@pytest.mark.parametrize("backend,device", COMPARED)
def test_non_contiguous_and_nan_bits_preserved(backend, device):
    require(backend, device)
    base = torch.rand(2, 3, 20, 40)
    base[0, 1, 2, 3] = float("nan")
    x = base[:, :, :, ::2]  # 20 x 20, non-contiguous
    assert not x.is_contiguous()
    out, _ = rotations(x.to(device), backend=backend)
    expected, _ = reference.rotations(x)
    assert torch.equal(out.cpu().view(torch.int32), expected.view(torch.int32))


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_opcheck(backend, device):
    require(backend, device)
    x = torch.rand(2, 3, 6, 6, device=device)
    torch.library.opcheck(torch.ops.fastssl.rotations.default, (x, True, backend))
    u8 = torch.randint(0, 256, (1, 1, 5, 5), dtype=torch.uint8, device=device)
    torch.library.opcheck(torch.ops.fastssl.rotations.default, (u8, False, backend))


@pytest.mark.parametrize(
    "x,kwargs,error,match",
    [
        (torch.rand(1, 3, 4, 5), {}, ValueError, "images must be square"),
        (torch.rand(3, 4, 4), {}, ValueError, r"images must have shape \(B, C, S, S\)"),
        (torch.rand(0, 3, 4, 4), {}, ValueError, "images is empty"),
        (torch.rand(1, 3, 4, 4), {"order": "interleaved"}, ValueError, "order must be one of"),
        ([[1.0]], {}, TypeError, "images must be a torch.Tensor"),
    ],
)
def test_bad_input_is_named(x, kwargs, error, match):
    with pytest.raises(error, match=match):
        rotations(x, **kwargs)


def test_docstring_example():
    out, labels = rotations(torch.arange(4, dtype=torch.uint8).view(1, 1, 2, 2))
    assert out[1, 0].tolist() == [[1, 3], [0, 2]] and labels.tolist() == [0, 1, 2, 3]
