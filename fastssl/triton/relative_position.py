"""Relative-position patch pairs in Triton: one program writes a block of pixels of one (image, patch, channel).

Specification: fastssl.reference.relative_position. A pixel of a color-dropped channel is
``table[c, s]`` with s the byte sum of fmix32(key ^ n), n = ((patch * 3 + channel) * P + y) * P + x
(fastssl.random's hash, in uint32 arithmetic); any other pixel is copied from the image.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import device_guard, fmix32

BLOCK = 1024
NOISE_LEVELS = tl.constexpr(1021)


@triton.jit
def _pairs_kernel(x_ptr, corners_ptr, keep_ptr, keys_ptr, table_ptr, out_ptr, H, W, P, blocks,
                  BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    task = pid // blocks  # (b * 2 + patch) * 3 + channel
    b = task // 6
    patch = (task // 3) % 2
    c = task % 3
    i = (pid % blocks) * BLOCK + tl.arange(0, BLOCK)
    inside = i < P * P
    y0 = tl.load(corners_ptr + 2 * (b * 2 + patch))
    x0 = tl.load(corners_ptr + 2 * (b * 2 + patch) + 1)
    keep = tl.load(keep_ptr + b * 2 + patch)
    dropped = (keep >= 0) & (keep != c)
    src = x_ptr + (b.to(tl.int64) * 3 + c) * H * W + (y0 + i // P) * W + (x0 + i % P)
    value = tl.load(src, mask=inside & ~dropped, other=0)
    key = tl.load(keys_ptr + b).to(tl.uint32)
    h = fmix32(key ^ (task % 6 * P * P + i).to(tl.uint32))
    s = ((h & 255) + ((h >> 8) & 255) + ((h >> 16) & 255) + (h >> 24)).to(tl.int32)
    noise = tl.load(table_ptr + c * NOISE_LEVELS + s, mask=inside & dropped, other=0)
    tl.store(out_ptr + task.to(tl.int64) * P * P + i, tl.where(dropped, noise, value), mask=inside)


def relative_position_pairs(images, corners, keep, keys, table, patch: int) -> torch.Tensor:
    """(B, 3, H, W) uint8/float -> (B, 2, 3, P, P); parameters as in the reference (drawn by the op)."""
    x = images.contiguous()
    B, _, H, W = x.shape
    out = torch.empty(B, 2, 3, patch, patch, dtype=x.dtype, device=x.device)
    blocks = triton.cdiv(patch * patch, BLOCK)
    with device_guard(x):
        _pairs_kernel[(B * 6 * blocks,)](x, corners.contiguous(), keep.contiguous(), keys.contiguous(),
                                         table.contiguous(), out, H, W, patch, blocks, BLOCK=BLOCK)
    return out
