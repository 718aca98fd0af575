"""Per-sample augmentation, obviously right: the specification of ``fastssl.ops.augment``.

For each sample b, in this order (torchvision's SimCLR pipeline, on float images in [0, 1]):

1. crop ``params.crop[b]`` (top, left, height, width) from the source image, convert uint8 to [0, 1];
2. resize to ``params.size`` with ``params.interpolation`` (align_corners=False), antialiased when
   downscaling — ``torch.nn.functional.interpolate(..., antialias=True)``, which is what
   torchvision's tensor resize calls; bicubic results are clamped to [0, 1];
3. flip horizontally when ``params.flip[b]``;
4. the four color ops in the order ``params.order[b]`` (0 brightness, 1 contrast, 2 saturation,
   3 hue), each followed by a clamp to [0, 1]:
   brightness f: f x;  contrast f: f x + (1 - f) mean(gray(x)) over the image;
   saturation f: f x + (1 - f) gray(x);  hue h: RGB -> HSV, H <- (H + h) mod 1, HSV -> RGB;
   gray(x) = 0.299 R + 0.587 G + 0.114 B (torchvision uses 0.2989 for R);
5. grayscale when ``params.grayscale[b]``: gray(x) in all three channels;
6. Gaussian blur when ``params.blur_sigma[b] > 0``: separable, ``params.blur_kernel`` taps
   exp(-t^2 / (2 sigma^2)) normalized, reflect padding (taps beyond the reflectable range, in
   images smaller than half the kernel, fall back to replicate);
7. solarize when ``params.solarize[b]``: x >= 0.5 -> 1 - x;
8. normalize (x - mean) / std, cast to ``params.dtype``, ``params.channels_last`` memory format.

Computes in float32 by default, float64 with ``compute_dtype=torch.float64``.

Example (the per-pixel pieces on one orange pixel):
    >>> import torch
    >>> x = torch.tensor([1.0, 0.5, 0.0]).view(3, 1, 1)
    >>> round(gray(x).item(), 4)
    0.5925
    >>> adjust(x, 3, 0.5).flatten().tolist()  # hue turned by half a turn: the complementary blue
    [0.0, 0.5, 1.0]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ragged import RaggedImages

GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def gray(x: torch.Tensor) -> torch.Tensor:
    """(3, H, W) -> (1, H, W) luma."""
    r, g, b = x.unbind(0)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(0)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """(3, H, W) RGB in [0, 1] -> HSV, hue in turns [0, 1)."""
    r, g, b = x.unbind(0)
    maxc, _ = x.max(0)
    minc, _ = x.min(0)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    s = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, torch.remainder(h / 6.0, 1.0), torch.zeros_like(h))
    return torch.stack((h, s, maxc))


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(0)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.to(torch.int64) % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = torch.stack((torch.stack((v, q, p, p, t, v)), torch.stack((t, v, v, q, p, p)),
                         torch.stack((p, p, t, v, v, q))))  # (3, 6, H, W): RGB for each sector
    return table.gather(1, i.expand(3, 1, *i.shape)).squeeze(1)


def adjust(x: torch.Tensor, op: int, factor: float) -> torch.Tensor:
    if op == 0:
        return (factor * x).clamp(0, 1)
    if op == 1:
        return (factor * x + (1 - factor) * gray(x).mean()).clamp(0, 1)
    if op == 2:
        return (factor * x + (1 - factor) * gray(x)).clamp(0, 1)
    hsv = rgb_to_hsv(x)
    hsv = torch.stack((torch.remainder(hsv[0] + factor, 1.0), hsv[1], hsv[2]))
    return hsv_to_rgb(hsv).clamp(0, 1)


def gaussian_kernel(sigma: float, taps: int, dtype) -> torch.Tensor:
    t = torch.arange(taps, dtype=torch.float64) - (taps - 1) / 2
    k = torch.exp(-t**2 / (2 * sigma**2))
    return (k / k.sum()).to(dtype)


def blur(x: torch.Tensor, sigma: float, taps: int) -> torch.Tensor:
    """Separable Gaussian blur of (3, H, W) with reflect padding (replicate beyond what reflect can reach)."""
    k = gaussian_kernel(sigma, taps, x.dtype)
    half = taps // 2
    out = x.unsqueeze(0)
    for dim in (3, 2):  # width, then height
        n = out.shape[dim]
        reflect = min(half, n - 1)
        pad = [0, 0, 0, 0]
        pad[0 if dim == 3 else 2] = pad[1 if dim == 3 else 3] = reflect
        padded = F.pad(out, pad, mode="reflect") if reflect > 0 else out
        if half > reflect:
            extra = [0, 0, 0, 0]
            extra[0 if dim == 3 else 2] = extra[1 if dim == 3 else 3] = half - reflect
            padded = F.pad(padded, extra, mode="replicate")
        weight = k.view(1, 1, 1, taps) if dim == 3 else k.view(1, 1, taps, 1)
        out = F.conv2d(padded, weight.expand(3, 1, *weight.shape[2:]), groups=3)
    return out.squeeze(0)


def augment_one(image: torch.Tensor, params, b: int, compute_dtype=torch.float32) -> torch.Tensor:
    """One sample: uint8 (3, H, W) source -> (3, h, w) float in compute_dtype, normalized."""
    top, left, height, width = (int(v) for v in params.crop[b])
    x = image[:, top:top + height, left:left + width].to(compute_dtype) / 255
    x = F.interpolate(x.unsqueeze(0), size=params.size, mode=params.interpolation, align_corners=False,
                      antialias=True).squeeze(0)
    if params.interpolation == "bicubic":
        x = x.clamp(0, 1)
    if bool(params.flip[b]):
        x = x.flip(-1)
    factors = (params.brightness[b], params.contrast[b], params.saturation[b], params.hue[b])
    for op in params.order[b].tolist():
        x = adjust(x, op, float(factors[op]))
    if bool(params.grayscale[b]):
        x = gray(x).expand(3, -1, -1)
    sigma = float(params.blur_sigma[b])
    if sigma > 0:
        x = blur(x, sigma, params.blur_kernel)
    if bool(params.solarize[b]):
        x = torch.where(x >= 0.5, 1 - x, x)
    mean = torch.tensor(params.mean, dtype=compute_dtype).view(3, 1, 1)
    std = torch.tensor(params.std, dtype=compute_dtype).view(3, 1, 1)
    return (x - mean) / std


def augment(images, params, compute_dtype=torch.float32) -> torch.Tensor:
    """Images — dense uint8 (B, 3, H, W), a list of (3, H_b, W_b), or :class:`RaggedImages` — -> (B, 3, h, w).

    ``params`` is a :class:`fastssl.ops.augment_params.AugmentParams`, read for its fields only: the
    specification imports nothing from the ops (tests/test_import_contract.py).
    """
    if isinstance(images, RaggedImages):
        sources = [images.image(b) for b in range(len(images))]
    else:
        sources = list(images)
    out = torch.stack([augment_one(src.cpu(), params.to("cpu"), b, compute_dtype) for b, src in enumerate(sources)])
    memory = torch.channels_last if params.channels_last else torch.contiguous_format
    device = sources[0].device
    return out.to(device=device, dtype=params.dtype if compute_dtype != torch.float64 else torch.float64,
                  memory_format=memory)
