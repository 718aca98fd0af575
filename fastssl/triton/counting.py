"""Counting tiles in Triton: one program area-resizes a block of output pixels of one (image, view, channel).

Specification: fastssl.reference.counting. View t = 0 is the whole H x W image, t = 1..4 its tiles
split at (H // 2, W // 2), row-major. Output (i, j) of a view of h x w is the mean of rows
[i h // S, ceil((i + 1) h / S)) x cols [j w // S, ceil((j + 1) w / S)); the window loops run to the
largest window of any view (a run-time bound: one compiled kernel for every H, W and S) with masks,
summing in float32.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..reference.counting import tile_boxes
from ._common import device_guard

BLOCK = 256


@triton.jit(do_not_specialize=["max_rows", "max_cols"])  # loop bounds: no variant per window size
def _counting_kernel(x_ptr, out_ptr, C, H, W, S, blocks, max_rows, max_cols, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    task = pid // blocks  # (b * 5 + t) * C + c
    c = task % C
    t = (task // C) % 5
    b = task // (5 * C)
    h0 = H // 2
    w0 = W // 2
    top = tl.where(t >= 3, h0, 0)
    left = tl.where((t == 2) | (t == 4), w0, 0)
    h = tl.where(t == 0, H, tl.where(t <= 2, h0, H - h0))
    w = tl.where(t == 0, W, tl.where((t == 1) | (t == 3), w0, W - w0))
    o = (pid % blocks) * BLOCK + tl.arange(0, BLOCK)
    inside = o < S * S
    i = o // S
    j = o % S
    r0 = i * h // S
    r1 = ((i + 1) * h + S - 1) // S
    c0 = j * w // S
    c1 = ((j + 1) * w + S - 1) // S
    plane = x_ptr + (b.to(tl.int64) * C + c) * H * W
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for dy in range(max_rows):
        row = r0 + dy
        for dx in range(max_cols):
            col = c0 + dx
            take = inside & (row < r1) & (col < c1)
            acc += tl.load(plane + (top + row) * W + left + col, mask=take, other=0).to(tl.float32)
    count = ((r1 - r0) * (c1 - c0)).to(tl.float32)
    tl.store(out_ptr + task.to(tl.int64) * S * S + o, acc / count, mask=inside)


def _max_window(length: int, size: int) -> int:
    return max(((i + 1) * length + size - 1) // size - i * length // size for i in range(size))


def counting_tiles(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) uint8/float32 -> (B, 5, C, size, size) float32."""
    x = images.contiguous()
    B, C, H, W = x.shape
    out = torch.empty(B, 5, C, size, size, dtype=torch.float32, device=x.device)
    boxes = tile_boxes(H, W)
    max_rows = max(_max_window(h, size) for _, _, h, _ in boxes)
    max_cols = max(_max_window(w, size) for _, _, _, w in boxes)
    blocks = triton.cdiv(size * size, BLOCK)
    with device_guard(x):
        _counting_kernel[(B * 5 * C * blocks,)](x, out, C, H, W, size, blocks, max_rows, max_cols, BLOCK=BLOCK)
    return out
