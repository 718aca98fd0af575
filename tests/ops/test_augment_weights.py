"""fastssl_C::axis_weights (the cpp backend's resize weights) against fastssl.ops.augment_weights.axis_weights,
the torch code whose weights tests/ops/test_augment.py checks against F.interpolate."""

import pytest
import torch

from fastssl.ops import augment_weights
from helpers import require


@pytest.fixture(autouse=True)
def _cpp_available():
    require("cpp", "cpu")


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("out", [1, 7, 96, 224])
def test_native_weights_equal_the_torch_weights(interpolation, out):
    g = torch.Generator().manual_seed(out)
    lengths = torch.cat([torch.randint(1, 1200, (61,), generator=g), torch.tensor([1, 2, out, 3 * out, 5000])])
    flip = torch.rand(len(lengths), generator=g) < 0.5
    for f in (None, flip):
        expected = augment_weights.axis_weights(lengths, out, interpolation, flip=f)
        actual = augment_weights.native_axis_weights(lengths, out, interpolation, flip=f)
        # The same double operations in the same order, rounded to float32 once: equal bit for bit.
        for name, a, e in zip(("start", "weights", "taps"), actual, expected):
            assert a.dtype == e.dtype and a.shape == e.shape, name
            torch.testing.assert_close(a, e, rtol=0, atol=0, msg=name)


def test_a_sample_gets_the_same_weights_in_any_batch():
    lengths = torch.tensor([333, 17, 480, 90])
    start, weights, taps = augment_weights.native_axis_weights(lengths, 224, "bicubic")
    for b in range(len(lengths)):
        s, w, t = augment_weights.native_axis_weights(lengths[b:b + 1], 224, "bicubic")
        assert torch.equal(s[0], start[b]) and torch.equal(t[0], taps[b])
        assert torch.equal(w[0], weights[b, :, :w.shape[2]]) and not weights[b, :, w.shape[2]:].any()


def test_bad_arguments_are_named():
    with pytest.raises(RuntimeError, match="length must be a"):
        augment_weights.native_axis_weights(torch.tensor([[3]]), 4, "bilinear")
    with pytest.raises(RuntimeError, match=r"length\[1\] must be >= 1"):
        augment_weights.native_axis_weights(torch.tensor([3, 0]), 4, "bilinear")
    with pytest.raises(RuntimeError, match="out must be >= 1"):
        augment_weights.native_axis_weights(torch.tensor([3]), 0, "bilinear")
    with pytest.raises(RuntimeError, match="flip must be a"):
        augment_weights.native_axis_weights(torch.tensor([3, 4]), 4, "bilinear", flip=torch.tensor([True]))
    with pytest.raises(ValueError, match="interpolation must be"):
        augment_weights.native_axis_weights(torch.tensor([3]), 4, "nearest")
