"""rgb_to_lab / lab_to_rgb: golden values, peers, every backend against the reference, autograd, errors."""

import math

import pytest
import torch

import fastssl
from fastssl.backends import BackendUnavailable
from fastssl.ops import lab_to_rgb, rgb_to_lab
from fastssl.reference import lab as reference
from helpers import assert_close_to_reference, backend_cases, random_images, require

LAB_ATOL = 2e-3  # Lab units (L in [0, 100]); the kernels compute in float32
RGB_ATOL = 1e-4


def hand_lab(r, g, b):
    """Lab of one sRGB color in [0, 1], written out with plain floats from the published constants."""

    def lin(c):
        return ((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92

    def f(t):
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    r, g, b = lin(r), lin(g), lin(b)
    x = (0.412453 * r + 0.357580 * g + 0.180423 * b) / 0.95047
    y = 0.212671 * r + 0.715160 * g + 0.072169 * b
    z = (0.019334 * r + 0.119193 * g + 0.950227 * b) / 1.08883
    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


GOLDEN_COLOURS = [(0, 0, 0), (1, 1, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0.5, 0.25, 0.75), (0.04045, 0.02, 0.01)]


def test_reference_matches_hand_computed_values():
    rgb = torch.tensor(GOLDEN_COLOURS, dtype=torch.float64).T.reshape(1, 3, 1, -1)
    lab = reference.rgb_to_lab(rgb)[0, :, 0].T
    for color, got in zip(GOLDEN_COLOURS, lab.tolist()):
        assert got == pytest.approx(hand_lab(*color), abs=1e-9), color
    # Pure red in the published tables: L = 53.24, a = 80.09, b = 67.20.
    assert [round(v, 2) for v in hand_lab(1, 0, 0)] == [53.24, 80.09, 67.2]


def test_reference_matches_scikit_image():
    skimage_color = pytest.importorskip("skimage.color")
    rgb = torch.rand(3, 17, 23, dtype=torch.float64)
    expected = torch.from_numpy(skimage_color.rgb2lab(rgb.permute(1, 2, 0).numpy())).permute(2, 0, 1)
    torch.testing.assert_close(reference.rgb_to_lab(rgb), expected, atol=1e-8, rtol=0)
    back = torch.from_numpy(skimage_color.lab2rgb(expected.permute(1, 2, 0).numpy())).permute(2, 0, 1)
    torch.testing.assert_close(reference.lab_to_rgb(expected), back, atol=1e-8, rtol=0)


def test_reference_matches_kornia():
    kornia = pytest.importorskip("kornia")
    rgb = torch.rand(2, 3, 19, 13)
    torch.testing.assert_close(reference.rgb_to_lab(rgb), kornia.color.rgb_to_lab(rgb), atol=1e-4, rtol=0)
    lab = reference.rgb_to_lab(rgb.double()).float()
    torch.testing.assert_close(reference.lab_to_rgb(lab), kornia.color.lab_to_rgb(lab), atol=1e-4, rtol=0)


def test_uint8_table_is_exact_linearization():
    levels = torch.arange(256, dtype=torch.float64) / 255
    expected = torch.tensor([hand_lab_lin(v) for v in levels.tolist()], dtype=torch.float64)
    torch.testing.assert_close(reference.srgb_table(torch.float64), expected, atol=1e-15, rtol=0)
    # The float32 table the kernels index is the double-precision value rounded once.
    assert torch.equal(reference.srgb_table(torch.float32), expected.float())


def hand_lab_lin(c):
    return ((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92


SHAPES = [(1, 3, 1, 1), (3, 3, 37, 53), (3, 5, 7), (2, 2, 3, 4, 9)]
IN_DTYPES = [torch.uint8, torch.float32, torch.float16, torch.bfloat16, torch.float64]


def _layout(x_cf, channels_last):
    return x_cf.movedim(-3, -1).contiguous() if channels_last else x_cf


@pytest.mark.parametrize("backend,device", backend_cases(compared_with_reference=True))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", IN_DTYPES, ids=str)
@pytest.mark.parametrize("channels_last", [False, True])
def test_rgb_to_lab_matches_reference(backend, device, shape, dtype, channels_last):
    require(backend, device)
    if backend == "triton" and device == "cpu" and dtype == torch.bfloat16:
        pytest.skip("Triton's interpreter has no bfloat16")
    x = _layout(random_images(shape, dtype), channels_last)
    expected = reference.rgb_to_lab(x if dtype == torch.uint8 else x.double(), channels_last=channels_last)
    if dtype == torch.float64 and backend != "reference":
        with pytest.raises(BackendUnavailable, match="computes in float32 and cannot take float64"):
            rgb_to_lab(x.to(device), channels_last=channels_last, backend=backend)
        return
    out = rgb_to_lab(x.to(device), channels_last=channels_last, backend=backend)
    assert out.dtype == (torch.float32 if dtype == torch.uint8 else dtype)
    assert out.device.type == device
    assert_close_to_reference(out, expected, LAB_ATOL)


@pytest.mark.parametrize("backend,device", backend_cases())
@pytest.mark.parametrize("out_dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64], ids=str)
def test_rgb_to_lab_output_dtypes(backend, device, out_dtype):
    require(backend, device)
    x = random_images((2, 3, 9, 11), torch.uint8)
    out = rgb_to_lab(x.to(device), dtype=out_dtype, backend=backend)
    assert out.dtype == out_dtype
    assert_close_to_reference(out, reference.rgb_to_lab(x), LAB_ATOL)


@pytest.mark.parametrize("backend,device", backend_cases(compared_with_reference=True))
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32], ids=str)
def test_non_contiguous_inputs(backend, device, dtype):
    require(backend, device)
    base = random_images((2, 3, 20, 30), dtype)
    for x in (base[:, :, ::2, 1::3], base.transpose(-1, -2), base.contiguous(memory_format=torch.channels_last)):
        assert not x.is_contiguous()
        expected = reference.rgb_to_lab(x if dtype == torch.uint8 else x.double())
        assert_close_to_reference(rgb_to_lab(x.to(device), backend=backend), expected, LAB_ATOL)


@pytest.mark.parametrize("backend,device", backend_cases(compared_with_reference=True))
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("clip", [True, False])
def test_lab_to_rgb_matches_reference(backend, device, channels_last, clip):
    require(backend, device)
    lab = torch.stack((torch.rand(3, 37, 53) * 100, torch.rand(3, 37, 53) * 200 - 100,
                       torch.rand(3, 37, 53) * 200 - 100), dim=1)  # out-of-gamut colors included
    lab = _layout(lab, channels_last)
    expected = reference.lab_to_rgb(lab.double(), channels_last=channels_last, clip=clip)
    out = lab_to_rgb(lab.to(device), channels_last=channels_last, clip=clip, backend=backend)
    assert_close_to_reference(out, expected, RGB_ATOL * (1 if clip else 10))


@pytest.mark.parametrize("backend,device", backend_cases())
def test_round_trip_in_gamut(backend, device):
    require(backend, device)
    rgb = random_images((4, 3, 31, 29), torch.float32)
    back = lab_to_rgb(rgb_to_lab(rgb.to(device), backend=backend), backend=backend)
    assert (back.cpu() - rgb).abs().max().item() <= 1e-4


@pytest.mark.parametrize("backend,device", backend_cases())
def test_nan_propagates_when_check_is_off(backend, device, monkeypatch):
    require(backend, device)
    monkeypatch.setenv("FASTSSL_CHECK_FINITE", "0")
    x = torch.rand(1, 3, 2, 2)
    x[0, 1, 0, 1] = float("nan")
    out = rgb_to_lab(x.to(device), backend=backend).cpu()
    assert torch.isnan(out[0, :, 0, 1]).all()
    assert torch.isfinite(out[0, :, 1]).all() and torch.isfinite(out[0, :, 0, 0]).all()


@pytest.mark.parametrize("backend,device", backend_cases(("cpp", "cuda", "triton")))
def test_float64_is_refused_by_float32_backends(backend, device):
    require(backend, device)
    rgb = torch.rand(1, 3, 4, 5, dtype=torch.float64, device=device)
    with pytest.raises(BackendUnavailable, match=f"rgb_to_lab: backend='{backend}' computes in float32"):
        rgb_to_lab(rgb, backend=backend)
    with pytest.raises(BackendUnavailable, match=f"lab_to_rgb: backend='{backend}' computes in float32"):
        lab_to_rgb(reference.rgb_to_lab(rgb), backend=backend)


def test_float64_under_auto_is_computed_in_float64(monkeypatch):
    """auto sends float64 to the reference, whatever the device's fast backend (FASTSSL_BACKEND included)."""
    rgb = torch.rand(2, 3, 5, 4, dtype=torch.float64)
    for preferred in (None, "cpp", "triton"):
        if preferred:
            monkeypatch.setenv("FASTSSL_BACKEND", preferred)
        lab = rgb_to_lab(rgb)
        torch.testing.assert_close(lab, reference.rgb_to_lab(rgb), rtol=0, atol=1e-12)
        torch.testing.assert_close(lab_to_rgb(lab, clip=False), reference.lab_to_rgb(lab, clip=False), rtol=0,
                                   atol=1e-12)
    x = (rgb[:1, :, :2, :2] * 0.9 + 0.05).requires_grad_()
    assert torch.autograd.gradcheck(rgb_to_lab, (x,))


@pytest.mark.parametrize("backend,device", backend_cases())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_float_images_outside_unit_range_are_refused(backend, device, dtype):
    """0..255 images passed as float: one line saying to divide by 255 or pass uint8; a tolerance of 1e-3."""
    require(backend, device)
    if device == "cuda":
        pytest.skip("on CUDA the check is a device-side assert (tests/test_validation.py)")
    x = random_images((1, 3, 6, 7), dtype)
    with pytest.raises(ValueError, match=r"images is a float image outside \[0, 1\] \(values in \[[\d.]+, [\d.]+\]\): "
                                         r"divide 0..255 images by 255, or pass them as uint8"):
        rgb_to_lab(x * 255, backend=backend)
    x[0, 0, 0, 0], x[0, 1, 0, 0] = -0.0009, 1.0009  # rounding slack: accepted
    assert torch.isfinite(rgb_to_lab(x.to(device), backend=backend)).all()
    x[0, 2, 0, 0] = 1.01
    with pytest.raises(ValueError, match="outside"):
        rgb_to_lab(x.to(device), backend=backend)
    x[0, 2, 0, 0] = -0.01
    with pytest.raises(ValueError, match="outside"):
        rgb_to_lab(x.to(device), backend=backend)


# --- autograd -------------------------------------------------------------------------------------

def test_gradcheck_float64():
    x = (torch.rand(1, 3, 3, 4, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: rgb_to_lab(t, backend="reference"), (x,))
    lab = reference.rgb_to_lab(x.detach()).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: lab_to_rgb(t, clip=False, backend="reference"), (lab,))


@pytest.mark.parametrize("backend,device", backend_cases(("reference", "cpp")))
def test_gradients_finite_at_zero_and_thresholds(backend, device):
    require(backend, device)
    # 0, 1, the linearization threshold, and the gray whose Y sits on f's threshold (t = 0.008856).
    gray_on_f_threshold = reference.linear_to_srgb(torch.tensor(0.008856, dtype=torch.float64)).item()
    values = [0.0, 0.04045, 1.0, gray_on_f_threshold]
    x = torch.tensor(values, dtype=torch.float32).repeat(3, 1).reshape(1, 3, 1, len(values)).requires_grad_()
    rgb_to_lab(x, backend=backend).sum().backward()
    assert torch.isfinite(x.grad).all()
    lab = torch.tensor([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [116 * 0.2068966 - 16, 0.0, 0.0]]).T.reshape(1, 3, 1, 3)
    lab.requires_grad_()
    lab_to_rgb(lab, backend=backend).sum().backward()
    assert torch.isfinite(lab.grad).all()


@pytest.mark.parametrize("backend,device", backend_cases(compared_with_reference=True))
def test_backward_agrees_with_reference_autograd(backend, device):
    require(backend, device)
    x = torch.rand(2, 3, 5, 6)
    grad = torch.randn(2, 3, 5, 6)
    xd = x.to(device).detach().clone().requires_grad_()
    rgb_to_lab(xd, backend=backend).backward(grad.to(device))
    xr = x.double().requires_grad_()
    reference.rgb_to_lab(xr).backward(grad.double())
    torch.testing.assert_close(xd.grad.cpu().double(), xr.grad, atol=1e-3, rtol=1e-4)


def test_uint8_input_has_no_gradient():
    out = rgb_to_lab(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), backend="reference")
    assert not out.requires_grad


# --- registration: opcheck and torch.compile ---------------------------------------------------------

@pytest.mark.parametrize("backend,device", backend_cases())
def test_opcheck(backend, device):
    require(backend, device)
    x = torch.rand(2, 3, 5, 7, device=device, requires_grad=True)
    torch.library.opcheck(torch.ops.fastssl.rgb_to_lab.default, (x, False, torch.float32, backend))
    u8 = torch.randint(0, 256, (2, 5, 7, 3), dtype=torch.uint8, device=device)
    torch.library.opcheck(torch.ops.fastssl.rgb_to_lab.default, (u8, True, torch.float16, backend))
    lab = reference.rgb_to_lab(torch.rand(2, 3, 5, 7)).to(device).requires_grad_()
    torch.library.opcheck(torch.ops.fastssl.lab_to_rgb.default, (lab, False, True, torch.float32, backend))


def test_torch_compile_fullgraph():
    fn = torch.compile(lambda x: lab_to_rgb(rgb_to_lab(x) * 1.0), fullgraph=True, backend="aot_eager")
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(fn(x), x, atol=1e-4, rtol=0)


# --- bad input -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "x,match",
    [
        (torch.rand(1, 2, 4, 4), "images must have 3 channels"),
        (torch.rand(1, 4, 4, 4), "images must have 3 channels"),
        (torch.zeros(1, 3, 4, 4, dtype=torch.int16), "images must have dtype"),
        (torch.rand(0, 3, 4, 4), "images is empty"),
        (torch.rand(3, 4), r"images must have shape \(\*, 3, H, W\)"),
    ],
)
def test_bad_images_are_named(x, match):
    with pytest.raises((ValueError, TypeError), match=match):
        rgb_to_lab(x)


def test_nan_and_inf_are_rejected_by_name():
    x = torch.rand(1, 3, 4, 4)
    x[0, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="images contains 1 NaN or infinite"):
        rgb_to_lab(x)
    lab = torch.zeros(1, 3, 2, 2)
    lab[0, 2, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="lab contains 1 NaN or infinite"):
        lab_to_rgb(lab)


def test_bad_lab_and_dtype_arguments():
    with pytest.raises(TypeError, match="lab must have dtype"):
        lab_to_rgb(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
    with pytest.raises(TypeError, match="dtype must be a floating dtype"):
        rgb_to_lab(torch.rand(1, 3, 2, 2), dtype=torch.int32)
    with pytest.raises(TypeError, match="images must be a torch.Tensor"):
        rgb_to_lab([[1, 2, 3]])


def test_wrong_layout_hint_in_error():
    with pytest.raises(ValueError, match="channels_last=True"):
        rgb_to_lab(torch.rand(1, 8, 8, 3))
    assert math.isfinite(rgb_to_lab(torch.rand(1, 8, 8, 3), channels_last=True).sum().item())


def test_public_namespace():
    assert fastssl.ops.rgb_to_lab is rgb_to_lab
