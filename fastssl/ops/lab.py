"""RGB <-> CIE Lab conversion (the convention of scikit-image and kornia; see fastssl.reference.lab).

Public functions :func:`rgb_to_lab` and :func:`lab_to_rgb`, registered as the torch.library ops
``fastssl::rgb_to_lab`` / ``fastssl::lab_to_rgb`` with fake implementations (torch.compile traces
them) and autograd (for float inputs).
"""

from __future__ import annotations

import torch

from .. import _validation as v
from .._dtypes import kernel_dtypes
from ..backends import BackendUnavailable, OpBackends, lazy, native
from ..reference import lab as reference

RGB_DTYPES = (torch.uint8, torch.float32, torch.float16, torch.bfloat16, torch.float64)
LAB_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
# The native and Triton kernels compute in float32 and write float32/16-bit results: a float64 result is
# computed in float32 and widened (float64 *inputs* never reach them: see _backend_for).
KERNEL_WRITES = (torch.float32, torch.float16, torch.bfloat16)


def _backend_for(op: OpBackends, backend: str, x: torch.Tensor) -> str:
    """The backend that runs ``op`` on ``x``. Only the reference computes in float64: float64 inputs go
    there under "auto"; an explicit float32 backend refuses them rather than round them silently."""
    chosen = op.resolve(backend, x.device)
    if x.dtype != torch.float64 or chosen == "reference":
        return chosen
    if backend == "auto":
        return "reference"
    raise BackendUnavailable(f"{op.name}: backend={backend!r} computes in float32 and cannot take float64 input; "
                             f"use backend='reference' (or 'auto', which picks it for float64), or pass float32")


RGB_TO_LAB = OpBackends(
    "rgb_to_lab",
    {
        "reference": lambda x, cl, dtype: reference.rgb_to_lab(x, channels_last=cl).to(dtype).contiguous(),
        "cpp": kernel_dtypes(native("rgb_to_lab"), writes=KERNEL_WRITES),
        "cuda": kernel_dtypes(native("rgb_to_lab"), writes=KERNEL_WRITES),
        "triton": kernel_dtypes(lazy("fastssl.triton.lab", "rgb_to_lab"), writes=KERNEL_WRITES),
    },
)
LAB_TO_RGB = OpBackends(
    "lab_to_rgb",
    {
        "reference": lambda x, cl, clip, dtype: reference.lab_to_rgb(x, channels_last=cl, clip=clip).to(dtype)
        .contiguous(),
        "cpp": kernel_dtypes(native("lab_to_rgb"), writes=KERNEL_WRITES),
        "cuda": kernel_dtypes(native("lab_to_rgb"), writes=KERNEL_WRITES),
        "triton": kernel_dtypes(lazy("fastssl.triton.lab", "lab_to_rgb"), writes=KERNEL_WRITES),
    },
)


@torch.library.custom_op("fastssl::rgb_to_lab", mutates_args=())
def _rgb_to_lab(images: torch.Tensor, channels_last: bool, dtype: torch.dtype, backend: str) -> torch.Tensor:
    return RGB_TO_LAB(backend, images, channels_last, dtype)


@_rgb_to_lab.register_fake
def _(images, channels_last, dtype, backend):
    return images.new_empty(images.shape, dtype=dtype)


@torch.library.custom_op("fastssl::lab_to_rgb", mutates_args=())
def _lab_to_rgb(lab: torch.Tensor, channels_last: bool, clip: bool, dtype: torch.dtype, backend: str) -> torch.Tensor:
    return LAB_TO_RGB(backend, lab, channels_last, clip, dtype)


@_lab_to_rgb.register_fake
def _(lab, channels_last, clip, dtype, backend):
    return lab.new_empty(lab.shape, dtype=dtype)


# Backward: the vector-Jacobian product of the reference, computed in float32 (float64 for float64
# inputs). Every backend implements the same function, so one backward serves them all.
@torch.library.custom_op("fastssl::rgb_to_lab_backward", mutates_args=())
def _rgb_to_lab_backward(grad: torch.Tensor, images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    x = images.to(reference.compute_dtype(images.dtype))
    _, vjp = torch.func.vjp(lambda t: reference.rgb_to_lab(t, channels_last=channels_last), x)
    return vjp(grad.to(x.dtype))[0].to(images.dtype)


@_rgb_to_lab_backward.register_fake
def _(grad, images, channels_last):
    return torch.empty_like(images)


@torch.library.custom_op("fastssl::lab_to_rgb_backward", mutates_args=())
def _lab_to_rgb_backward(grad: torch.Tensor, lab: torch.Tensor, channels_last: bool, clip: bool) -> torch.Tensor:
    x = lab.to(reference.compute_dtype(lab.dtype))
    _, vjp = torch.func.vjp(lambda t: reference.lab_to_rgb(t, channels_last=channels_last, clip=clip), x)
    return vjp(grad.to(x.dtype))[0].to(lab.dtype)


@_lab_to_rgb_backward.register_fake
def _(grad, lab, channels_last, clip):
    return torch.empty_like(lab)


def _save_input(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])
    ctx.options = inputs[1:-2]  # channels_last (, clip)


def _rgb_to_lab_grad(ctx, grad):
    (images,) = ctx.saved_tensors
    if not images.is_floating_point():
        return None, None, None, None
    return torch.ops.fastssl.rgb_to_lab_backward(grad, images, *ctx.options), None, None, None


def _lab_to_rgb_grad(ctx, grad):
    (lab,) = ctx.saved_tensors
    return torch.ops.fastssl.lab_to_rgb_backward(grad, lab, *ctx.options), None, None, None, None


_rgb_to_lab.register_autograd(_rgb_to_lab_grad, setup_context=_save_input)
_lab_to_rgb.register_autograd(_lab_to_rgb_grad, setup_context=_save_input)


def rgb_to_lab(images: torch.Tensor, *, channels_last: bool = False, dtype: torch.dtype | None = None,
               backend: str = "auto") -> torch.Tensor:
    """sRGB -> CIE Lab (D65), per pixel.

    Args:
        images: (*, 3, H, W) — or (*, H, W, 3) with ``channels_last=True`` — uint8 in [0, 255] or
            float32/float16/bfloat16/float64 in [0, 1]. Any strides; at least one pixel. Float
            images are checked (one read): NaN/Inf, or values outside [0, 1] by more than 1e-3
            (0..255 images passed as float), raise ValueError naming ``images`` on the CPU and fail
            as a device-side assert on CUDA (see :mod:`fastssl._validation`); FASTSSL_CHECK_FINITE=0
            skips the check. float64 is computed in float64: "auto" runs it on the reference
            backend; the cpp, cuda and triton backends compute in float32 and raise
            BackendUnavailable for it.
        channels_last: layout of ``images`` and of the result.
        dtype: of the result; default float32 for uint8 input, the input's dtype for float input.
        backend: "auto" | "reference" | "cpp" | "cuda" | "triton" (see :mod:`fastssl.backends`).

    Returns:
        Lab in the layout of ``images``: L in [0, 100], a and b in about [-86, 98] and [-108, 95]
        for sRGB colors. Differentiable with respect to float ``images``.

    Example:
        >>> import torch, fastssl
        >>> lab = fastssl.ops.rgb_to_lab(torch.tensor([255, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1))
        >>> [round(x, 2) for x in lab.flatten().tolist()]
        [53.24, 80.09, 67.2]
    """
    v.check_rgb(images, "images", channels_last, RGB_DTYPES)
    v.check_values(images, "images", unit_range=True)
    out_dtype = dtype or (torch.float32 if images.dtype == torch.uint8 else images.dtype)
    if out_dtype not in LAB_DTYPES:
        raise TypeError(f"dtype must be a floating dtype, got {out_dtype}")
    return _rgb_to_lab(images, channels_last, out_dtype, _backend_for(RGB_TO_LAB, backend, images))


def lab_to_rgb(lab: torch.Tensor, *, channels_last: bool = False, clip: bool = True,
               dtype: torch.dtype | None = None, backend: str = "auto") -> torch.Tensor:
    """CIE Lab (D65) -> sRGB, per pixel; the inverse of :func:`rgb_to_lab` (round trip within 1e-4 in float32).

    Args:
        lab: (*, 3, H, W) — or (*, H, W, 3) with ``channels_last=True`` — float32/float16/bfloat16/
            float64, L in [0, 100]. Finite (checked unless FASTSSL_CHECK_FINITE=0). float64 is
            computed in float64, as in :func:`rgb_to_lab`.
        clip: clamp the result to [0, 1] (out-of-gamut Lab colors map outside it otherwise).
        dtype: of the result; default the dtype of ``lab``.
        backend: "auto" | "reference" | "cpp" | "cuda" | "triton".

    Returns:
        sRGB in [0, 1] (with ``clip``), in the layout of ``lab``. Differentiable.

    Example:
        >>> import torch, fastssl
        >>> rgb = fastssl.ops.lab_to_rgb(torch.tensor([53.24, 80.09, 67.2]).view(1, 3, 1, 1))
        >>> [round(x, 3) for x in rgb.flatten().tolist()]
        [1.0, 0.0, 0.0]
    """
    v.check_rgb(lab, "lab", channels_last, LAB_DTYPES)
    v.check_finite(lab, "lab")
    out_dtype = dtype or lab.dtype
    if out_dtype not in LAB_DTYPES:
        raise TypeError(f"dtype must be a floating dtype, got {out_dtype}")
    return _lab_to_rgb(lab, channels_last, clip, out_dtype, _backend_for(LAB_TO_RGB, backend, lab))
