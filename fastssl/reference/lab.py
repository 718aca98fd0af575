"""sRGB <-> CIE Lab (D65, 2° observer), exactly as scikit-image and kornia define it.

Constants (IEC 61966-2-1 sRGB, CIE 1976 L*a*b*, D65): linearization threshold 0.04045; RGB->XYZ rows
[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227];
white (0.95047, 1.0, 1.08883); f(t) = t^(1/3) if t > 0.008856 else 7.787 t + 16/116;
L = 116 f(Y) - 16, a = 500 (f(X) - f(Y)), b = 200 (f(Y) - f(Z)). The inverse uses the exact
matrix inverse and the thresholds 0.2068966 (f) and 0.0031308 (gamma), as both libraries do.

Every power is taken of an argument clamped to its branch threshold, so gradients are finite
everywhere (at 0 and at the thresholds included).
"""

from __future__ import annotations

import torch

RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
WHITE_D65 = (0.95047, 1.0, 1.08883)
LINEAR_THRESHOLD = 0.04045
GAMMA_THRESHOLD = 0.0031308
F_THRESHOLD = 0.008856
F_INV_THRESHOLD = 0.2068966


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; uint8 is converted exactly in float64; other types compute in float32."""
    return torch.float64 if dtype in (torch.float64, torch.uint8) else torch.float32


def _to_channels_first(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.movedim(-1, -3) if channels_last else x


def _from_channels_first(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.movedim(-3, -1) if channels_last else x


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    power = ((x.clamp(min=LINEAR_THRESHOLD) + 0.055) / 1.055) ** 2.4
    return torch.where(x > LINEAR_THRESHOLD, power, x / 12.92)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    power = 1.055 * x.clamp(min=GAMMA_THRESHOLD) ** (1 / 2.4) - 0.055
    return torch.where(x > GAMMA_THRESHOLD, power, 12.92 * x)


def _f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > F_THRESHOLD, t.clamp(min=F_THRESHOLD) ** (1 / 3), 7.787 * t + 16 / 116)


def _f_inv(f: torch.Tensor) -> torch.Tensor:
    return torch.where(f > F_INV_THRESHOLD, f**3, (f - 16 / 116) / 7.787)


def _matrix(dtype, device) -> torch.Tensor:
    return torch.tensor(RGB_TO_XYZ, dtype=torch.float64, device=device).to(dtype)


def rgb_to_lab(images: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """sRGB (*, 3, H, W) in [0, 1] (float) or [0, 255] (uint8) -> Lab, L in [0, 100], a/b in about [-128, 127].

    Computes in :func:`compute_dtype` of the input and returns that dtype.
    """
    dtype = compute_dtype(images.dtype)
    rgb = _to_channels_first(images, channels_last).to(dtype)
    if images.dtype == torch.uint8:
        rgb = rgb / 255
    lin = srgb_to_linear(rgb)
    xyz = torch.einsum("ij,...jhw->...ihw", _matrix(dtype, images.device), lin)
    white = torch.tensor(WHITE_D65, dtype=dtype, device=images.device).view(3, 1, 1)
    fx, fy, fz = _f(xyz / white).unbind(-3)
    lab = torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=-3)
    return _from_channels_first(lab, channels_last)


def lab_to_rgb(lab: torch.Tensor, channels_last: bool = False, clip: bool = True) -> torch.Tensor:
    """Lab (*, 3, H, W) -> sRGB in [0, 1] (clamped when ``clip``; out-of-gamut colors fall outside otherwise)."""
    dtype = compute_dtype(lab.dtype)
    L, a, b = _to_channels_first(lab, channels_last).to(dtype).unbind(-3)
    fy = (L + 16) / 116
    f = torch.stack((fy + a / 500, fy, fy - b / 200), dim=-3)
    white = torch.tensor(WHITE_D65, dtype=dtype, device=lab.device).view(3, 1, 1)
    xyz = _f_inv(f) * white
    inverse = torch.linalg.inv(_matrix(torch.float64, lab.device)).to(dtype)
    rgb = linear_to_srgb(torch.einsum("ij,...jhw->...ihw", inverse, xyz))
    if clip:
        rgb = rgb.clamp(0, 1)
    return _from_channels_first(rgb, channels_last)


def srgb_table(dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """(256,) linearized value of each uint8 level, computed in float64: the table the kernels use."""
    levels = torch.arange(256, dtype=torch.float64, device=device) / 255
    return srgb_to_linear(levels).to(dtype)
