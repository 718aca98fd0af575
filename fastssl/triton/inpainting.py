"""Inpainting box holes in Triton: one program masks a block of pixels of one image, every channel.

Specification: fastssl.reference.inpainting. A pixel is in the hole when any of the image's K boxes
(top, left, height, width) covers it; hole pixels take fill[c], the others keep the image's value.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import device_guard

BLOCK = 1024


@triton.jit
def _inpaint_kernel(x_ptr, boxes_ptr, fill_ptr, out_ptr, mask_ptr, C, H, W, K, blocks, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    b = pid // blocks
    p = (pid % blocks) * BLOCK + tl.arange(0, BLOCK)
    inside = p < H * W
    y = p // W
    x = p % W
    hole = p < 0  # all False
    for k in range(K):
        box = boxes_ptr + (b * K + k) * 4
        top = tl.load(box)
        left = tl.load(box + 1)
        hole = hole | ((y >= top) & (y < top + tl.load(box + 2)) & (x >= left) & (x < left + tl.load(box + 3)))
    pixels = H * W
    tl.store(mask_ptr + b.to(tl.int64) * pixels + p, hole.to(tl.uint8), mask=inside)
    for c in range(C):
        offset = (b.to(tl.int64) * C + c) * pixels + p
        value = tl.load(x_ptr + offset, mask=inside & ~hole, other=0)
        fill = tl.load(fill_ptr + c)
        tl.store(out_ptr + offset, tl.where(hole, fill, value), mask=inside)


def inpainting_masks(images: torch.Tensor, boxes: torch.Tensor, fill: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W), (B, K, 4) int64, (C,) -> masked (B, C, H, W), mask (B, 1, H, W) bool."""
    dtype = images.dtype
    x = images.contiguous()
    f = fill.contiguous()
    if dtype == torch.bfloat16:  # moved as 16-bit integers: the interpreter has no bfloat16
        x, f = x.view(torch.int16), f.view(torch.int16)
    B, C, H, W = x.shape
    out = torch.empty_like(x)
    mask = torch.empty(B, 1, H, W, dtype=torch.uint8, device=x.device)
    blocks = triton.cdiv(H * W, BLOCK)
    with device_guard(x):
        _inpaint_kernel[(B * blocks,)](x, boxes.contiguous(), f, out, mask, C, H, W, boxes.shape[1], blocks,
                                       BLOCK=BLOCK)
    return out.view(dtype), mask.view(torch.bool)
