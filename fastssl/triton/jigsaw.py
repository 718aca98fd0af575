"""Jigsaw tiles in Triton: one program builds one output tile (all three channels) of one image.

Specification: fastssl.reference.jigsaw (``tiles_at``). The program reads the tile's pixels straight
from the image at any strides (channel ch at its own origin), in blocks of BLOCK pixels, three times
when normalizing: the per-channel sums (mean), the sums of squared deviations (variance, two-pass for
float32 accuracy on flat tiles), then the normalized values, stored once as float32. The re-reads hit
the cache: a 64 x 64 tile is 12 KiB of uint8. With SOURCES (Jigsaw++), a tile is read from the image
whose batch position ``sources`` gives (replaced cells read the donor's pixels), else from its own.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..reference.augment import GRAY_WEIGHTS
from ._common import device_guard

MAX_BLOCK = 1024
NUM_WARPS = 4
GRAY_R = tl.constexpr(GRAY_WEIGHTS[0])
GRAY_G = tl.constexpr(GRAY_WEIGHTS[1])
GRAY_B = tl.constexpr(GRAY_WEIGHTS[2])


@triton.jit
def _load_channel(image, origin_ptr, ch: tl.constexpr, y, x, height, width, stride_c, stride_y, stride_x, mask,
                  UINT8: tl.constexpr):
    """float32 values of channel ``ch`` at tile pixels (y, x), read at the channel's own origin; uint8 / 255.

    Pixels outside the image read 0 (never out of bounds, even for origins that were not checked)."""
    oy = tl.load(origin_ptr + 2 * ch) + y
    ox = tl.load(origin_ptr + 2 * ch + 1) + x
    inside = mask & (oy >= 0) & (oy < height) & (ox >= 0) & (ox < width)
    value = tl.load(image + ch * stride_c + oy * stride_y + ox * stride_x, mask=inside, other=0).to(tl.float32)
    if UINT8:
        value = value * (1.0 / 255.0)
    return value


@triton.jit
def _load_rgb(image, origin_ptr, p, tile, pixels, gray, height, width, stride_c, stride_y, stride_x,
              UINT8: tl.constexpr):
    """The three channels at tile pixels ``p`` (flat, row-major), grayscaled when ``gray``; and the mask."""
    mask = p < pixels
    y = (p // tile).to(tl.int64)
    x = (p % tile).to(tl.int64)
    r = _load_channel(image, origin_ptr, 0, y, x, height, width, stride_c, stride_y, stride_x, mask, UINT8)
    g = _load_channel(image, origin_ptr, 1, y, x, height, width, stride_c, stride_y, stride_x, mask, UINT8)
    b = _load_channel(image, origin_ptr, 2, y, x, height, width, stride_c, stride_y, stride_x, mask, UINT8)
    luma = GRAY_R * r + GRAY_G * g + GRAY_B * b
    return tl.where(gray, luma, r), tl.where(gray, luma, g), tl.where(gray, luma, b), mask


@triton.jit
def _store_channel(out, ch: tl.constexpr, p, pixels, value, mean, rstd, keep, mask, NORMALIZE: tl.constexpr):
    if NORMALIZE:
        value = (value - mean) * rstd
    value = tl.where((keep >= 0) & (keep != ch), 0.0, value)
    tl.store(out + ch * pixels + p, value, mask=mask)


# Output tile `pid` = (image b, position t): origins[pid] holds (y, x) per channel, gray[pid] and
# keep[pid] its options, read from image b, or with SOURCES from image sources[pid] (clamped into the
# batch). Values v = x (/ 255 for uint8), grayscaled; with NORMALIZE, (v - mean) / sqrt(var + eps) per
# channel, var the biased variance; channels other than keep (when keep >= 0) are 0.
@triton.jit
def _jigsaw_tile_kernel(x_ptr, origin_ptr, gray_ptr, keep_ptr, source_ptr, out_ptr, tiles_per_image, batch, tile,
                        eps, height, width, stride_b, stride_c, stride_y, stride_x,
                        UINT8: tl.constexpr, NORMALIZE: tl.constexpr, SOURCES: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    if SOURCES:
        source = tl.minimum(tl.maximum(tl.load(source_ptr + pid), 0), batch - 1)
    else:
        source = pid // tiles_per_image
    image = x_ptr + source.to(tl.int64) * stride_b
    origin = origin_ptr + pid.to(tl.int64) * 6
    gray = tl.load(gray_ptr + pid) != 0
    keep = tl.load(keep_ptr + pid)
    pixels = tile * tile
    out = out_ptr + pid.to(tl.int64) * 3 * pixels
    offs = tl.arange(0, BLOCK)
    mean_r = 0.0
    mean_g = 0.0
    mean_b = 0.0
    rstd_r = 1.0
    rstd_g = 1.0
    rstd_b = 1.0
    if NORMALIZE:
        acc_r = tl.zeros([BLOCK], dtype=tl.float32)
        acc_g = tl.zeros([BLOCK], dtype=tl.float32)
        acc_b = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, pixels, BLOCK):
            r, g, b, mask = _load_rgb(image, origin, start + offs, tile, pixels, gray, height, width, stride_c,
                                      stride_y, stride_x, UINT8)
            acc_r += r
            acc_g += g
            acc_b += b
        mean_r = tl.sum(acc_r, axis=0) / pixels
        mean_g = tl.sum(acc_g, axis=0) / pixels
        mean_b = tl.sum(acc_b, axis=0) / pixels
        acc_r = tl.zeros([BLOCK], dtype=tl.float32)
        acc_g = tl.zeros([BLOCK], dtype=tl.float32)
        acc_b = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, pixels, BLOCK):
            r, g, b, mask = _load_rgb(image, origin, start + offs, tile, pixels, gray, height, width, stride_c,
                                      stride_y, stride_x, UINT8)
            acc_r += tl.where(mask, (r - mean_r) * (r - mean_r), 0.0)
            acc_g += tl.where(mask, (g - mean_g) * (g - mean_g), 0.0)
            acc_b += tl.where(mask, (b - mean_b) * (b - mean_b), 0.0)
        rstd_r = 1.0 / tl.sqrt(tl.sum(acc_r, axis=0) / pixels + eps)
        rstd_g = 1.0 / tl.sqrt(tl.sum(acc_g, axis=0) / pixels + eps)
        rstd_b = 1.0 / tl.sqrt(tl.sum(acc_b, axis=0) / pixels + eps)
    for start in range(0, pixels, BLOCK):
        p = start + offs
        r, g, b, mask = _load_rgb(image, origin, p, tile, pixels, gray, height, width, stride_c, stride_y, stride_x,
                                  UINT8)
        _store_channel(out, 0, p, pixels, r, mean_r, rstd_r, keep, mask, NORMALIZE)
        _store_channel(out, 1, p, pixels, g, mean_g, rstd_g, keep, mask, NORMALIZE)
        _store_channel(out, 2, p, pixels, b, mean_b, rstd_b, keep, mask, NORMALIZE)


def jigsaw_tiles(images: torch.Tensor, origins: torch.Tensor, gray: torch.Tensor, keep: torch.Tensor, tile: int,
                 normalize: bool, eps: float, sources: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 3, H, W) uint8/float (any strides), origins (B, T, 3, 2), gray/keep (B, T) int64, sources None or
    (B, T) int64 batch positions -> (B, T, 3, t, t) float32.

    fastssl.ops.jigsaw checks the origins and sources in eager mode; traced by torch.compile it does not,
    and then a tile pixel outside the image reads 0 and a source outside the batch is clamped into it
    (no out-of-bounds access).
    """
    B, T = origins.shape[:2]
    out = torch.empty(B, T, 3, tile, tile, dtype=torch.float32, device=images.device)
    if out.numel() == 0:
        return out
    block = min(MAX_BLOCK, triton.next_power_of_2(tile * tile))
    origins, gray, keep = origins.contiguous(), gray.contiguous(), keep.contiguous()
    has_sources = sources is not None
    sources = sources.contiguous() if has_sources else keep  # any int64 pointer: not read without SOURCES
    with device_guard(images):
        _jigsaw_tile_kernel[(B * T,)](images, origins, gray, keep, sources, out, T, B, tile, float(eps),
                                      *images.shape[-2:], *images.stride(), UINT8=images.dtype == torch.uint8,
                                      NORMALIZE=normalize, SOURCES=has_sources, BLOCK=block, num_warps=NUM_WARPS)
    return out
