"""sRGB <-> CIE Lab in Triton: one program converts a block of pixels of one image.

The maths is that of kernels/common/lab.h (specification: fastssl.reference.lab), computed in
float32: the white point is folded into the RGB -> XYZ matrix and into the columns of its
inverse, powers are exp2/log2 of arguments clamped to their branch thresholds (so the branch not
taken stays finite), and NaN in any channel gives NaN in all three.

The per-pixel helpers (``_load_linear``, ``_linear_rgb_to_lab``, ``_pixel_offsets``) are shared with
the colorization kernel.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from ..backends import triton_interpreter
from ..reference import lab as reference
from ._common import device_guard, kernel_output_dtype

BLOCK = 1024
NUM_WARPS = 4


def _folded_matrices() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(M / white row-wise, M^-1 * white column-wise), row-major, from the reference constants in float64."""
    m = torch.tensor(reference.RGB_TO_XYZ, dtype=torch.float64)
    white = torch.tensor(reference.WHITE_D65, dtype=torch.float64)
    to_xyzn = m / white[:, None]
    to_rgb = torch.linalg.inv(m) * white[None, :]
    return tuple(to_xyzn.flatten().tolist()), tuple(to_rgb.flatten().tolist())


_RGB_TO_XYZN_VALUES, _XYZN_TO_RGB_VALUES = _folded_matrices()
RGB_TO_XYZN = tl.constexpr(_RGB_TO_XYZN_VALUES)
XYZN_TO_RGB = tl.constexpr(_XYZN_TO_RGB_VALUES)

LINEAR_THRESHOLD = tl.constexpr(reference.LINEAR_THRESHOLD)
LINEAR_BASE_MIN = tl.constexpr((reference.LINEAR_THRESHOLD + 0.055) / 1.055)
GAMMA_THRESHOLD = tl.constexpr(reference.GAMMA_THRESHOLD)
F_THRESHOLD = tl.constexpr(reference.F_THRESHOLD)
F_INV_THRESHOLD = tl.constexpr(reference.F_INV_THRESHOLD)
F_SLOPE = tl.constexpr(7.787)
F_OFFSET = tl.constexpr(16 / 116)


# --- per-pixel maths ------------------------------------------------------------------------------


@triton.jit
def _cbrt(x):
    # x > 0. exp2/log2 are the hardware approximations on the GPU (relative error ~1e-7 after /3);
    # one Newton step y <- (2y + x / y^2) / 3 squares that error away.
    y = tl.exp2(tl.log2(x) * (1.0 / 3.0))
    return (2.0 * y + x / (y * y)) * (1.0 / 3.0)


@triton.jit
def _srgb_to_linear(x):
    # ((x + 0.055) / 1.055)^2.4 above the threshold, x / 12.92 below; the power's base is clamped to
    # its value at the threshold so that it never sees 0 or a negative number.
    base = tl.maximum((x + 0.055) * (1.0 / 1.055), LINEAR_BASE_MIN)
    return tl.where(x > LINEAR_THRESHOLD, tl.exp2(2.4 * tl.log2(base)), x * (1.0 / 12.92))


@triton.jit
def _linear_to_srgb(x):
    # 1.055 x^(1/2.4) - 0.055 above the threshold, 12.92 x below (base clamped as above).
    base = tl.maximum(x, GAMMA_THRESHOLD)
    return tl.where(x > GAMMA_THRESHOLD, 1.055 * tl.exp2(tl.log2(base) * (1.0 / 2.4)) - 0.055, 12.92 * x)


@triton.jit
def _lab_f(t):
    return tl.where(t > F_THRESHOLD, _cbrt(tl.maximum(t, F_THRESHOLD)), F_SLOPE * t + F_OFFSET)


@triton.jit
def _lab_f_inv(f):
    return tl.where(f > F_INV_THRESHOLD, f * f * f, (f - F_OFFSET) * (1.0 / F_SLOPE))


@triton.jit
def _mix(m: tl.constexpr, row: tl.constexpr, x, y, z):
    return m[3 * row] * x + m[3 * row + 1] * y + m[3 * row + 2] * z


@triton.jit
def _linear_rgb_to_lab(r, g, b):
    """Linear RGB -> (L, a, b); NaN in any channel gives NaN in all three."""
    fx = _lab_f(_mix(RGB_TO_XYZN, 0, r, g, b))
    fy = _lab_f(_mix(RGB_TO_XYZN, 1, r, g, b))
    fz = _lab_f(_mix(RGB_TO_XYZN, 2, r, g, b))
    nan = (r != r) | (g != g) | (b != b)
    L = tl.where(nan, float("nan"), 116.0 * fy - 16.0)
    A = tl.where(nan, float("nan"), 500.0 * (fx - fy))
    B = tl.where(nan, float("nan"), 200.0 * (fy - fz))
    return L, A, B


@triton.jit
def _lab_to_srgb(L, A, B, CLIP: tl.constexpr):
    """(L, a, b) -> sRGB, clamped to [0, 1] when CLIP; NaN in any channel gives NaN in all three."""
    fy = (L + 16.0) * (1.0 / 116.0)
    x = _lab_f_inv(fy + A * (1.0 / 500.0))
    y = _lab_f_inv(fy)
    z = _lab_f_inv(fy - B * (1.0 / 200.0))
    r = _linear_to_srgb(_mix(XYZN_TO_RGB, 0, x, y, z))
    g = _linear_to_srgb(_mix(XYZN_TO_RGB, 1, x, y, z))
    b = _linear_to_srgb(_mix(XYZN_TO_RGB, 2, x, y, z))
    if CLIP:
        r = tl.minimum(tl.maximum(r, 0.0), 1.0)
        g = tl.minimum(tl.maximum(g, 0.0), 1.0)
        b = tl.minimum(tl.maximum(b, 0.0), 1.0)
    # min/max may drop NaN: put it back.
    nan = (L != L) | (A != A) | (B != B)
    return tl.where(nan, float("nan"), r), tl.where(nan, float("nan"), g), tl.where(nan, float("nan"), b)


# --- addressing and loads -------------------------------------------------------------------------


@triton.jit
def _pixel_offsets(image, p, pixels, CHANNELS_LAST: tl.constexpr):
    """Element offset of the first channel of pixels ``p`` (int64) of image ``image``, and the channel step.

    Images are contiguous (*, 3, H, W) (planar: step H*W) or (*, H, W, 3) (interleaved: step 1).
    """
    base = image.to(tl.int64) * 3 * pixels
    if CHANNELS_LAST:
        offset = base + 3 * p
        step = 1
    else:
        offset = base + p
        step = pixels
    return offset, step


@triton.jit
def _load_linear(ptr, mask, table_ptr, UINT8: tl.constexpr):
    """Linear-light value of the sRGB samples at ``ptr``: uint8 by table lookup (exact), floats by formula.

    ``mask`` may be None: every pointer is valid."""
    if mask is None:
        sample = tl.load(ptr)
    else:
        sample = tl.load(ptr, mask=mask, other=0)
    if UINT8:
        value = tl.load(table_ptr + sample.to(tl.int32))
    else:
        value = _srgb_to_linear(sample.to(tl.float32))
    return value


# --- kernels --------------------------------------------------------------------------------------

# rgb -> lab. Per pixel: rgb_lin = linearize(rgb) (uint8: table[v], float: the sRGB curve);
# (X/Xn, Y/Yn, Z/Zn) = RGB_TO_XYZN rgb_lin, where RGB_TO_XYZN = diag(1 / white) M;
# L = 116 f(Y/Yn) - 16, a = 500 (f(X/Xn) - f(Y/Yn)), b = 200 (f(Y/Yn) - f(Z/Zn)),
# f(t) = cbrt(t) above 0.008856, 7.787 t + 16/116 below.
@triton.jit
def _rgb_to_lab_kernel(x_ptr, table_ptr, out_ptr, pixels, blocks_per_image,
                       CHANNELS_LAST: tl.constexpr, UINT8: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    image = pid // blocks_per_image
    p = (pid % blocks_per_image) * BLOCK + tl.arange(0, BLOCK)
    mask = p < pixels
    offset, step = _pixel_offsets(image, p.to(tl.int64), pixels, CHANNELS_LAST)
    r = _load_linear(x_ptr + offset, mask, table_ptr, UINT8)
    g = _load_linear(x_ptr + offset + step, mask, table_ptr, UINT8)
    b = _load_linear(x_ptr + offset + 2 * step, mask, table_ptr, UINT8)
    L, A, B = _linear_rgb_to_lab(r, g, b)
    out_type = out_ptr.dtype.element_ty
    tl.store(out_ptr + offset, L.to(out_type), mask=mask)
    tl.store(out_ptr + offset + step, A.to(out_type), mask=mask)
    tl.store(out_ptr + offset + 2 * step, B.to(out_type), mask=mask)


# lab -> rgb, the inverse. Per pixel: fy = (L + 16) / 116, fx = fy + a / 500, fz = fy - b / 200;
# (X/Xn, Y/Yn, Z/Zn) = f^-1 of each (cube above 0.2068966, (f - 16/116) / 7.787 below);
# rgb_lin = XYZN_TO_RGB (X/Xn, Y/Yn, Z/Zn), where XYZN_TO_RGB = M^-1 diag(white);
# rgb = 1.055 rgb_lin^(1/2.4) - 0.055 above 0.0031308, 12.92 rgb_lin below; clamped when CLIP.
@triton.jit
def _lab_to_rgb_kernel(x_ptr, out_ptr, pixels, blocks_per_image,
                       CHANNELS_LAST: tl.constexpr, CLIP: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    image = pid // blocks_per_image
    p = (pid % blocks_per_image) * BLOCK + tl.arange(0, BLOCK)
    mask = p < pixels
    offset, step = _pixel_offsets(image, p.to(tl.int64), pixels, CHANNELS_LAST)
    L = tl.load(x_ptr + offset, mask=mask, other=0.0).to(tl.float32)
    A = tl.load(x_ptr + offset + step, mask=mask, other=0.0).to(tl.float32)
    B = tl.load(x_ptr + offset + 2 * step, mask=mask, other=0.0).to(tl.float32)
    r, g, b = _lab_to_srgb(L, A, B, CLIP)
    out_type = out_ptr.dtype.element_ty
    tl.store(out_ptr + offset, r.to(out_type), mask=mask)
    tl.store(out_ptr + offset + step, g.to(out_type), mask=mask)
    tl.store(out_ptr + offset + 2 * step, b.to(out_type), mask=mask)


# --- launchers ------------------------------------------------------------------------------------


@functools.cache
def srgb_table(device: torch.device) -> torch.Tensor:
    """(256,) float32 linearized uint8 levels on ``device``, computed once per device."""
    return reference.srgb_table(torch.float32, device)


def kernel_input(x: torch.Tensor) -> torch.Tensor:
    """Contiguous, and float32 instead of bfloat16 under the interpreter (which has no bfloat16)."""
    if x.dtype == torch.bfloat16 and triton_interpreter():
        x = x.float()
    return x.contiguous()


def _image_grid(x: torch.Tensor, channels_last: bool) -> tuple[int, int, int]:
    """(pixels per image, blocks per image, number of images) of a contiguous (*, 3, H, W) / (*, H, W, 3)."""
    pixels = x.shape[-3] * x.shape[-2] if channels_last else x.shape[-2] * x.shape[-1]
    blocks = triton.cdiv(pixels, BLOCK)
    return pixels, blocks, x.numel() // (3 * pixels)


def rgb_to_lab(images: torch.Tensor, channels_last: bool, dtype: torch.dtype) -> torch.Tensor:
    """sRGB (*, 3, H, W) or (*, H, W, 3) uint8/float -> Lab of ``dtype`` in the same layout."""
    x = kernel_input(images)
    out = torch.empty(x.shape, dtype=kernel_output_dtype(dtype), device=x.device)
    if x.numel() == 0:
        return out.to(dtype)
    pixels, blocks, count = _image_grid(x, channels_last)
    with device_guard(x):
        _rgb_to_lab_kernel[(count * blocks,)](x, srgb_table(x.device), out, pixels, blocks,
                                              CHANNELS_LAST=channels_last, UINT8=x.dtype == torch.uint8,
                                              BLOCK=BLOCK, num_warps=NUM_WARPS)
    return out.to(dtype)


def lab_to_rgb(lab: torch.Tensor, channels_last: bool, clip: bool, dtype: torch.dtype) -> torch.Tensor:
    """Lab (*, 3, H, W) or (*, H, W, 3) float -> sRGB of ``dtype`` in the same layout (in [0, 1] when ``clip``)."""
    x = kernel_input(lab)
    out = torch.empty(x.shape, dtype=kernel_output_dtype(dtype), device=x.device)
    if x.numel() == 0:
        return out.to(dtype)
    pixels, blocks, count = _image_grid(x, channels_last)
    with device_guard(x):
        _lab_to_rgb_kernel[(count * blocks,)](x, out, pixels, blocks, CHANNELS_LAST=channels_last,
                                              CLIP=clip, BLOCK=BLOCK, num_warps=NUM_WARPS)
    return out.to(dtype)
