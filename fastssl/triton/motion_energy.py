"""Clip motion signals in Triton: one program owns a block of (pooled) pixels of one clip and walks its frames.

Specification: fastssl.reference.motion_energy. Each program reads its pixels of frame 0, then of each
next frame, keeping the previous frame's values in registers: every frame is read once, and nothing
but the outputs is written (no pooled frames in memory). The clips' strides are used as they are (no
copy); a unit column stride is specialised by Triton, the common case.

* motion_energy: a program's pixels are BLOCK pooled cells (c, y', x') of one clip, each the box sum of
  its pool x pool values (loops over the box, a run-time bound: one compiled kernel for every pool);
  per frame pair it writes the sum over its cells of the squared difference (float32, a tree sum) to a
  (B, blocks, T - 1) table of partial sums, which the launcher adds over the blocks (a fixed order:
  deterministic) and scales by 1 / (pool^2 (x 255 for uint8))^2 / (C H' W').
* frame_difference_sum: a program's pixels are BLOCK values (c, y, x) of one clip; it sums |x[t + 1] -
  x[t]| over t in float32 and writes the mean in the output's dtype.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..reference.motion_energy import difference_dtype
from ._common import device_guard

BLOCK = 512  # 4 values per thread of 4 warps (at 1024, some variants spilled registers)


@triton.jit
def _box_sum(frame, pool, stride_h, stride_w, inside, BLOCK: tl.constexpr):
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for dy in range(pool):
        for dx in range(pool):
            acc += tl.load(frame + dy * stride_h + dx * stride_w, mask=inside, other=0).to(tl.float32)
    return acc


# Sizes and strides are run-time values (one compiled kernel for every shape), except the column stride,
# whose value 1 Triton specialises: the common case, loads along rows.
@triton.jit(do_not_specialize=["T", "C", "Hp", "Wp", "pool", "stride_b", "stride_t", "stride_c", "stride_h", "blocks"])
def _motion_energy_kernel(x_ptr, partial_ptr, T, C, Hp, Wp, pool, stride_b, stride_t, stride_c, stride_h, stride_w,
                          blocks, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    b = pid // blocks
    k = (pid % blocks) * BLOCK + tl.arange(0, BLOCK)
    inside = k < C * Hp * Wp
    xp = k % Wp
    yp = (k // Wp) % Hp
    c = k // (Hp * Wp)
    offsets = (c.to(tl.int64) * stride_c + (yp * pool).to(tl.int64) * stride_h
               + (xp * pool).to(tl.int64) * stride_w)
    frame = x_ptr + b.to(tl.int64) * stride_b + offsets
    previous = _box_sum(frame, pool, stride_h, stride_w, inside, BLOCK)
    out = partial_ptr + pid.to(tl.int64) * (T - 1)
    for t in range(1, T):
        frame += stride_t  # advancing a pointer: no t x stride product to overflow int32
        current = _box_sum(frame, pool, stride_h, stride_w, inside, BLOCK)
        d = current - previous  # 0 outside: masked loads read 0 in both frames
        tl.store(out + t - 1, tl.sum(d * d, axis=0))
        previous = current


@triton.jit(do_not_specialize=["T", "C", "H", "W", "stride_b", "stride_t", "stride_c", "stride_h", "blocks"])
def _frame_difference_kernel(x_ptr, out_ptr, T, C, H, W, stride_b, stride_t, stride_c, stride_h, stride_w, blocks,
                             count, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    b = pid // blocks
    k = (pid % blocks) * BLOCK + tl.arange(0, BLOCK)
    inside = k < C * H * W
    x = k % W
    y = (k // W) % H
    c = k // (H * W)
    frame = (x_ptr + b.to(tl.int64) * stride_b + c.to(tl.int64) * stride_c + y.to(tl.int64) * stride_h
             + x.to(tl.int64) * stride_w)
    previous = tl.load(frame, mask=inside, other=0).to(tl.float32)
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for t in range(1, T):
        frame += stride_t
        current = tl.load(frame, mask=inside, other=0).to(tl.float32)
        acc += tl.abs(current - previous)
        previous = current
    tl.store(out_ptr + b.to(tl.int64) * C * H * W + k, acc / count, mask=inside)


def motion_energy(clips: torch.Tensor, pool: int) -> torch.Tensor:
    """(B, T, C, H, W) uint8/float32/float16/bfloat16, any strides -> (B, T - 1) float32."""
    B, T, C, H, W = clips.shape
    cells = C * (H // pool) * (W // pool)
    blocks = triton.cdiv(cells, BLOCK)
    partials = torch.empty(B, blocks, T - 1, dtype=torch.float32, device=clips.device)
    with device_guard(clips):
        _motion_energy_kernel[(B * blocks,)](clips, partials, T, C, H // pool, W // pool, pool, *clips.stride(),
                                             blocks, BLOCK=BLOCK)
    norm = pool * pool * (255 if clips.dtype == torch.uint8 else 1)
    return partials.sum(1).mul_(1 / (norm * norm * cells))


def frame_difference_sum(clips: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) uint8/float32/float16/bfloat16, any strides -> (B, C, H, W): float32 for uint8, else
    the input's dtype."""
    B, T, C, H, W = clips.shape
    out = torch.empty(B, C, H, W, dtype=difference_dtype(clips.dtype), device=clips.device)
    blocks = triton.cdiv(C * H * W, BLOCK)
    count = float((T - 1) * (255 if clips.dtype == torch.uint8 else 1))
    with device_guard(clips):
        _frame_difference_kernel[(B * blocks,)](clips, out, T, C, H, W, *clips.stride(), blocks, count, BLOCK=BLOCK)
    return out
