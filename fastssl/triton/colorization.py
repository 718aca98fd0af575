"""Colorization targets (Zhang et al. 2016) in Triton: one program handles a block of output cells.

Per cell (the semantics of kernels/cpu/colorization.cpp; specification:
fastssl.reference.colorization): convert its factor x factor uint8 pixels to Lab (partial cells at
the right/bottom edge use the pixels they have), write L - 50 at full resolution, pool ab (mean of
the cell, or its top-left pixel), then find the k nearest of the Q ab bins and their normalized
Gaussian weights (the maths of kernels/common/colorization.h).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ..backends import triton_interpreter
from ._common import device_guard
from .lab import _linear_rgb_to_lab, _load_linear, _pixel_offsets, srgb_table

BLOCK = 128
INTERPRETER_MAX_BLOCK = 4096
NUM_WARPS = 4


@triton.jit
def _key_distance(key):
    return (key >> 32).to(tl.int32).to(tl.float32, bitcast=True)


@triton.jit
def _store_slot(index_ptr, weight_ptr, offset, key, weight):
    tl.store(index_ptr + offset, (key & 0xFFFFFFFF).to(tl.int64))
    tl.store(weight_ptr + offset, weight)


@triton.jit
def _cell_ab(image_ptr, table_ptr, l_ptr, n, i, j, H, W,
             CHANNELS_LAST: tl.constexpr, FACTOR: tl.constexpr, FACTOR_POW2: tl.constexpr,
             MEAN_POOL: tl.constexpr):
    """Converts the pixels of cells (n, i, j), writes their L - 50, returns the pooled (a, b) of each cell.

    One row of every cell at a time, as a (cell, column) tile: the columns of a cell are contiguous
    in memory. Tile columns outside the cell (past the image's right or bottom edge, or past FACTOR
    when it is no power of 2) are clamped to a pixel of the image: they load, convert and store that
    pixel's L like the lane that owns it (the same value to the same place) and are left out of the pool.
    No load or store needs a mask.
    """
    pixels = H * W
    dx = tl.arange(0, FACTOR_POW2)[None, :]
    x = j[:, None] * FACTOR + dx
    in_row = (dx < FACTOR) & (x < W)
    x = tl.minimum(x, W - 1)
    image = n[:, None]
    sum_a = tl.zeros(n.shape, tl.float32)
    sum_b = tl.zeros(n.shape, tl.float32)
    count = tl.zeros(n.shape, tl.float32)
    for dy in range(FACTOR):
        y = i * FACTOR + dy
        p = tl.minimum(y, H - 1).to(tl.int64)[:, None] * W + x
        offset, step = _pixel_offsets(image, p, pixels, CHANNELS_LAST)
        r = _load_linear(image_ptr + offset, None, table_ptr, True)
        g = _load_linear(image_ptr + offset + step, None, table_ptr, True)
        b = _load_linear(image_ptr + offset + 2 * step, None, table_ptr, True)
        L, A, B = _linear_rgb_to_lab(r, g, b)
        tl.store(l_ptr + image.to(tl.int64) * pixels + p, L - 50.0)
        if MEAN_POOL:
            take = in_row & (y < H)[:, None]
        else:
            take = (dx == 0) & (dy == 0)  # the top-left pixel, always in the image
        sum_a += tl.sum(tl.where(take, A, 0.0), axis=1)
        sum_b += tl.sum(tl.where(take, B, 0.0), axis=1)
        count += tl.sum(take.to(tl.float32), axis=1)
    return sum_a / count, sum_b / count


# Per cell (i, j) of image n (lanes of a program may belong to different images):
#   for each pixel (y, x) in rows [i F, i F + F) x columns [j F, j F + F) inside the image:
#     (L, a, b) = lab(table[rgb]); l_out[n, 0, y, x] = L - 50
#   ab = mean (a, b) over those pixels (mean pool) or (a, b) of pixel (i F, j F) (stride pool)
#   d2_q = |ab - bins[q]|^2 for q < Q; keep the K smallest in registers, nearest first, ties to the
#   lower q: each candidate is the int64 key (d2_q bits, q), inserted by a min/max carry chain
#   weight_j = exp(-(d2_j - d2_0) / (2 sigma^2)) / sum, computed as exp2((d2_0 - d2_j) * weight_scale)
@triton.jit
def _colorization_targets_kernel(image_ptr, table_ptr, bins_ptr, l_ptr, ab_ptr, index_ptr, weight_ptr,
                                 H, W, h, w, total_cells, num_bins, weight_scale,
                                 CHANNELS_LAST: tl.constexpr, FACTOR: tl.constexpr, FACTOR_POW2: tl.constexpr,
                                 MEAN_POOL: tl.constexpr, K: tl.constexpr, BLOCK: tl.constexpr):
    # Lanes past the last cell redo the last cell: they store the same values to the same places, so
    # that no load or store needs a mask (predicates held across the kernel spilled on sm_90).
    g = tl.minimum(tl.program_id(0) * BLOCK + tl.arange(0, BLOCK), total_cells - 1)
    cells = h * w
    n = g // cells
    cell = g % cells
    a, b = _cell_ab(image_ptr, table_ptr, l_ptr, n, cell // w, cell % w, H, W,
                    CHANNELS_LAST, FACTOR, FACTOR_POW2, MEAN_POOL)
    ab_offset = n.to(tl.int64) * 2 * cells + cell
    tl.store(ab_ptr + ab_offset, a)
    tl.store(ab_ptr + ab_offset + cells, b)

    # Candidate (d2, q) as one int64 key, the bits of d2 (a non-negative float32, whose bits order like
    # its value) above q: comparing keys compares distances, and on equal distances the bins, the lower
    # first (the order of a stable sort). The K smallest keys are kept in ascending slots s0..s7 by
    # carrying each candidate through them: a slot keeps the smaller of (carried, slot), the larger is
    # carried on. The chain is written out in the loop body because every device function call costs
    # about a millisecond in Triton's interpreter.
    empty = tl.full([BLOCK], 0x7FFFFFFFFFFFFFFF, tl.int64)
    s0, s1, s2, s3, s4, s5, s6, s7 = empty, empty, empty, empty, empty, empty, empty, empty
    for q in range(num_bins):
        da = a - tl.load(bins_ptr + 2 * q)
        db = b - tl.load(bins_ptr + 2 * q + 1)
        key = ((da * da + db * db).to(tl.int32, bitcast=True).to(tl.int64) << 32) | q
        s0, key = tl.minimum(key, s0), tl.maximum(key, s0)
        if K > 1:
            s1, key = tl.minimum(key, s1), tl.maximum(key, s1)
        if K > 2:
            s2, key = tl.minimum(key, s2), tl.maximum(key, s2)
        if K > 3:
            s3, key = tl.minimum(key, s3), tl.maximum(key, s3)
        if K > 4:
            s4, key = tl.minimum(key, s4), tl.maximum(key, s4)
        if K > 5:
            s5, key = tl.minimum(key, s5), tl.maximum(key, s5)
        if K > 6:
            s6, key = tl.minimum(key, s6), tl.maximum(key, s6)
        if K > 7:
            s7 = tl.minimum(key, s7)

    # Weights relative to the nearest distance: the first is 1, so the sum never underflows.
    nearest = _key_distance(s0)
    w0 = tl.full([BLOCK], 1.0, tl.float32)
    total = w0
    if K > 1:
        w1 = tl.exp2((nearest - _key_distance(s1)) * weight_scale)
        total += w1
    if K > 2:
        w2 = tl.exp2((nearest - _key_distance(s2)) * weight_scale)
        total += w2
    if K > 3:
        w3 = tl.exp2((nearest - _key_distance(s3)) * weight_scale)
        total += w3
    if K > 4:
        w4 = tl.exp2((nearest - _key_distance(s4)) * weight_scale)
        total += w4
    if K > 5:
        w5 = tl.exp2((nearest - _key_distance(s5)) * weight_scale)
        total += w5
    if K > 6:
        w6 = tl.exp2((nearest - _key_distance(s6)) * weight_scale)
        total += w6
    if K > 7:
        w7 = tl.exp2((nearest - _key_distance(s7)) * weight_scale)
        total += w7
    inv_total = 1.0 / total

    slot = n.to(tl.int64) * K * cells + cell
    _store_slot(index_ptr, weight_ptr, slot, s0, w0 * inv_total)
    if K > 1:
        _store_slot(index_ptr, weight_ptr, slot + cells, s1, w1 * inv_total)
    if K > 2:
        _store_slot(index_ptr, weight_ptr, slot + 2 * cells, s2, w2 * inv_total)
    if K > 3:
        _store_slot(index_ptr, weight_ptr, slot + 3 * cells, s3, w3 * inv_total)
    if K > 4:
        _store_slot(index_ptr, weight_ptr, slot + 4 * cells, s4, w4 * inv_total)
    if K > 5:
        _store_slot(index_ptr, weight_ptr, slot + 5 * cells, s5, w5 * inv_total)
    if K > 6:
        _store_slot(index_ptr, weight_ptr, slot + 6 * cells, s6, w6 * inv_total)
    if K > 7:
        _store_slot(index_ptr, weight_ptr, slot + 7 * cells, s7, w7 * inv_total)


def _block_size(total_cells: int) -> int:
    # The interpreter runs programs one after another at a fixed cost per traced operation, whatever
    # the block size: there, one large block is much faster than many small ones.
    if triton_interpreter():
        return min(triton.next_power_of_2(total_cells), INTERPRETER_MAX_BLOCK)
    return BLOCK


def colorization_targets(images: torch.Tensor, bins: torch.Tensor, channels_last: bool, factor: int,
                         mean_pool: bool, k: int, sigma: float):
    """uint8 (B, 3, H, W) or (B, H, W, 3), bins (Q, 2) -> (L - 50 (B, 1, H, W) f32, ab (B, 2, h, w) f32,
    index (B, k, h, w) int64, weight (B, k, h, w) f32), h, w = ceil(H / factor), ceil(W / factor)."""
    x = images.contiguous()
    bins = bins.to(device=x.device, dtype=torch.float32).contiguous()
    B = x.shape[0]
    H, W = (x.shape[1], x.shape[2]) if channels_last else (x.shape[2], x.shape[3])
    h, w = triton.cdiv(H, factor), triton.cdiv(W, factor)
    f32 = dict(dtype=torch.float32, device=x.device)
    l_input = torch.empty(B, 1, H, W, **f32)
    ab = torch.empty(B, 2, h, w, **f32)
    index = torch.empty(B, k, h, w, dtype=torch.int64, device=x.device)
    weight = torch.empty(B, k, h, w, **f32)
    total_cells = B * h * w
    if total_cells == 0:
        return l_input, ab, index, weight
    block = _block_size(total_cells)
    weight_scale = math.log2(math.e) / (2.0 * sigma * sigma)
    with device_guard(x):
        _colorization_targets_kernel[(triton.cdiv(total_cells, block),)](
            x, srgb_table(x.device), bins, l_input, ab, index, weight, H, W, h, w, total_cells, bins.shape[0],
            weight_scale, CHANNELS_LAST=channels_last, FACTOR=factor, FACTOR_POW2=triton.next_power_of_2(factor),
            MEAN_POOL=mean_pool, K=k, BLOCK=block, num_warps=NUM_WARPS)
    return l_input, ab, index, weight
