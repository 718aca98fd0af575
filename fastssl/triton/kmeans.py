"""Triton kernel of the k-means assignment: nearest centroid of each row, never materialising (N, K).

Notation (see fastssl/reference/kmeans.py for the specification): rows x_i (N, D), centroids c_j (K, D),
r_ij = ||c_j||^2 - 2 x_i . c_j. The nearest centroid minimises r_ij over j (||x_i||^2 is the same for
every j), ties to the lowest j, and d_i = max(||x_i||^2 + min_j r_ij, 0).

A program owns BLOCK_N rows and one *split* of the centroids (a run of BLOCK_K-wide tiles). It streams
its tiles: each (BLOCK_N, BLOCK_K) tile of x . c^T is a tl.dot over D in chunks of BLOCK_D (float32
accumulation), reduced at once to the tile's (minimum, argmin) per row and folded into a running
(minimum, index): a later tile replaces it only when strictly smaller, so ties keep the lowest index.
The launcher combines the splits the same way, in split order (a loop over S partial results).

Precision: float32 rows run three TF32 products per dot (tf32x3, about float32's accuracy: a single TF32
pass has a 10-bit mantissa, enough to swap near-equidistant centroids). 16-bit rows (float16,
bfloat16) are exact in their dtype, but the float32 centroids are not: the launcher splits each
centroid into c = c_hi + c_lo, both in the rows' dtype, and the kernel adds x . c_hi + x . c_lo, two
16-bit products carrying about 16 significant bits of c. ||c_j||^2 and ||x_i||^2 come from the host in
float32.

Splits (filling the GPU): K tiles are split so that row blocks x splits reaches the SM count; the
partial results are (S, N) float32 minima and int64 indices.

Tiles (:func:`_tiles`): float32 64 x 64 with BLOCK_D 16 (tf32x3 triples the operands held in
registers), 16-bit 64 x 64 with BLOCK_D 32, and 32 x 32 tiles when 64-row blocks cannot fill the GPU.
The suite compiles every launch class for sm_80 and sm_90 (tests/triton/compile_cases.py): no spills.
Offsets (rows x stride) are computed in int64. Every launch runs under :func:`device_guard`.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..backends import triton_interpreter
from ._common import device_guard, multiprocessor_count

INTERPRETER_PROGRAMS = 8  # the interpreter's "SM count": small, so that the tests exercise splits


@triton.jit
def _assign_kernel(x_ptr, c_hi_ptr, c_lo_ptr, cn_ptr, best_ptr, index_ptr, N, K, D, sx0, sx1, split_cols,
                   SPLIT_C: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr,
                   PRECISION: tl.constexpr):
    """best_ptr / index_ptr [split, rows]: min_j r_ij and its lowest j over the centroids of split program_id(1)."""
    split = tl.program_id(1)
    rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    d_idx = tl.arange(0, BLOCK_D)
    best = tl.full((BLOCK_N,), float("inf"), dtype=tl.float32)
    index = tl.zeros((BLOCK_N,), dtype=tl.int64)
    col_begin = split.to(tl.int64) * split_cols
    col_end = tl.minimum(col_begin + split_cols, K)
    for k0 in range(col_begin, col_end, BLOCK_K):
        cols = k0 + tl.arange(0, BLOCK_K)
        col_ok = cols < col_end
        s = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.float32)
        for d0 in range(0, D, BLOCK_D):
            d = d0 + d_idx
            x = tl.load(x_ptr + rows[:, None] * sx0 + d[None, :] * sx1,
                        mask=row_ok[:, None] & (d[None, :] < D), other=0.0)
            c_offsets = cols[:, None] * D + d[None, :]
            c_mask = col_ok[:, None] & (d[None, :] < D)
            c = tl.load(c_hi_ptr + c_offsets, mask=c_mask, other=0.0)
            s = tl.dot(x, tl.trans(c), s, input_precision=PRECISION)
            if SPLIT_C:
                c = tl.load(c_lo_ptr + c_offsets, mask=c_mask, other=0.0)
                s = tl.dot(x, tl.trans(c), s, input_precision=PRECISION)
        cn = tl.load(cn_ptr + cols, mask=col_ok, other=0.0)
        r = tl.where(col_ok[None, :], cn[None, :] - 2.0 * s, float("inf"))
        tile_best, tile_index = tl.min(r, axis=1, return_indices=True, return_indices_tie_break_left=True)
        tile_index = tile_index.to(tl.int64) + k0
        better = tile_best < best
        best = tl.where(better, tile_best, best)
        index = tl.where(better, tile_index, index)
    out = split.to(tl.int64) * N + rows
    tl.store(best_ptr + out, best, mask=row_ok)
    tl.store(index_ptr + out, index, mask=row_ok)


def _tiles(dtype: torch.dtype, small: bool, interpreter: bool) -> dict:
    """Tile sizes and launch options for rows of ``dtype``; ``small``: 32 x 32 tiles (problems whose 64-row
    blocks cannot fill the GPU). Under the interpreter: small tiles, so that tests cover several tiles."""
    if interpreter:
        return dict(BLOCK_N=16, BLOCK_K=16, BLOCK_D=16, num_warps=1, num_stages=1)
    block_d = 16 if dtype == torch.float32 else 32  # float32 runs tf32x3: thinner chunks
    block = 32 if small else 64
    return dict(BLOCK_N=block, BLOCK_K=block, BLOCK_D=block_d, num_warps=4 if small else 8, num_stages=2)


class Plan:
    """How one launch covers N rows x K centroids: tiles, the grid and the splits of the centroids."""

    def __init__(self, n: int, k: int, dtype: torch.dtype, programs: int, interpreter: bool):
        small = not interpreter and triton.cdiv(n, 64) < programs
        self.tiles = _tiles(dtype, small, interpreter)
        block_n, block_k = self.tiles["BLOCK_N"], self.tiles["BLOCK_K"]
        self.row_blocks, col_blocks = triton.cdiv(n, block_n), max(1, triton.cdiv(k, block_k))
        wanted = min(col_blocks, max(1, triton.cdiv(programs, self.row_blocks)))
        blocks_per_split = max(1, col_blocks // wanted)
        self.splits = triton.cdiv(col_blocks, blocks_per_split)
        self.split_cols = blocks_per_split * block_k

    @property
    def grid(self) -> tuple[int, int]:
        return (self.row_blocks, self.splits)


def _precision(dtype: torch.dtype) -> str:
    if dtype != torch.float32:
        return "ieee"  # 16-bit products are exact; the setting only matters for float32
    return "ieee" if triton_interpreter() else "tf32x3"


def assign(x: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(assignment (N,) int64, distance (N,) float32) of rows x (N, D) float32/float16/bfloat16 (any strides)
    to float32 centroids (K, D), K >= 1."""
    n, d = x.shape
    k = centroids.shape[0]
    device = x.device
    if n == 0:
        return torch.empty(0, dtype=torch.int64, device=device), torch.empty(0, dtype=torch.float32, device=device)
    c = centroids.float().contiguous()
    split_c = x.dtype != torch.float32
    c_hi = c.to(x.dtype) if split_c else c
    c_lo = (c - c_hi.float()).to(x.dtype) if split_c else c
    cn = torch.linalg.vector_norm(c, dim=1).square()
    xn = torch.linalg.vector_norm(x, dim=1, dtype=torch.float32).square()
    interpreter = triton_interpreter()
    plan = Plan(n, k, x.dtype, INTERPRETER_PROGRAMS if interpreter else multiprocessor_count(device), interpreter)
    best = torch.empty((plan.splits, n), dtype=torch.float32, device=device)
    index = torch.empty((plan.splits, n), dtype=torch.int64, device=device)
    with device_guard(x):
        _assign_kernel[plan.grid](x, c_hi, c_lo, cn, best, index, n, k, d, x.stride(0), x.stride(1), plan.split_cols,
                                  SPLIT_C=split_c, PRECISION=_precision(x.dtype), **plan.tiles)
    top, arg = best[0], index[0]
    for s in range(1, plan.splits):  # in split order: an equal minimum of a later split keeps the lower index
        better = best[s] < top
        top = torch.where(better, best[s], top)
        arg = torch.where(better, index[s], arg)
    return arg, (xn + top).clamp_min(0)
