"""Triton kernels of the InfoNCE / NT-Xent loss: tiled, never materialising the (M, K) logits.

Notation (see fastssl/reference/nt_xent.py for the specification): query rows q_i (M, D), key rows
k_j (K, D), per-row scales rq_i, rk_j (inverse L2 norms when the loss normalises, else 1),
a_ij = (q_i . k_j) rq_i rk_j / tau, and e(i) the excluded column of row i (-1: none).

Forward (:func:`lse`): a program owns a block of BLOCK_M query rows and one *split* of the key
columns (a contiguous run of BLOCK_N-wide column blocks). It streams its column blocks, computes each
(BLOCK_M, BLOCK_N) tile of a with tl.dot (fp32 accumulation) and keeps an online log-sum-exp
(Milakov & Gimelshein 2018, "Online normalizer calculation for softmax"). It writes the log-sum-exp
of its split; a second reduction, ``torch.logsumexp`` over the splits (S, M) -> (M,), gives lse_i.
Only lse_i (M floats) is kept: with it, backward can rebuild any softmax entry p_ij = exp(a_ij - lse_i)
from a recomputed tile (the FlashAttention recipe, Dao et al. 2022).

Fixed maximum: for unit-norm rows, Cauchy-Schwarz gives |q_i . k_j| <= 1, so a_ij <= 1/tau for every
entry. The running maximum can then be replaced by the constant 1/tau (no row max, no rescaling of
the running sum). It is safe as long as exp(a - 1/tau) cannot underflow for the positive, whose
a >= -1/tau: exp(-2/tau) must be a normal float32, i.e. 2/tau < 87. The launcher uses it for
normalised inputs with 2/tau <= 80 (tau >= 0.025) and the online maximum otherwise.

Backward (:func:`grad`): the gradient of sum_i g_i lse_i is, with w_ij = g_i exp(a_ij - lse_i) / tau
(0 at excluded columns), d/d(rq_i q_i) = sum_j w_ij rk_j k_j and d/d(rk_j k_j) = sum_i w_ij rq_i q_i.
Since a_ij - lse_i <= 0 for every kept entry, the exponentials are in (0, 1]: no maximum is needed.
One kernel computes out_r = sum_c t_rc ry_c y_c over a row block r of X against the column blocks c
of its split of Y, with t_rc = [ROW_TERM] w_rc + [COL_TERM] w_cr, recomputing each logit tile:

* query gradient: X = q, Y = k, ROW_TERM (w uses the row's lse and g);
* key gradient:   X = k, Y = q, COL_TERM (w uses the column's lse and g: a transposed tile);
* NT-Xent (keys are the queries, the logit matrix is symmetric): X = Y = z, both terms, so one
  pass gives the whole gradient of z — two matmuls per tile instead of four;
* queue InfoNCE (MoCo: the keys are a shared queue of negatives, which gets no gradient): the query
  gradient only (:func:`grad_queries`), with lse_i including the positive (the positive's own term is
  O(M D) and added by the caller).

Splits (filling the GPU): a batch of 256 pairs has M = 512 rows, only 8 blocks of 64 rows, for 132
SMs on an H100/H200. The launcher splits the columns into S parts so that row blocks x S reaches
the SM count (and uses 32 x 32 tiles when even 64 x 64 tiles split to single column blocks cannot
reach it). The forward combines the S partial log-sum-exps as above; backward writes S partial
gradients (S, M, D) float32 and sums them (``torch.sum`` over S). Every program owns its output
rows of its split: no atomics, deterministic results, and S = 1 (no partial buffer) once the row
blocks alone fill the GPU. Partial gradients are capped at MAX_PARTIAL_BYTES (fewer splits then).

Tiles per (dtype, D) (:func:`_tiles`): D up to one chunk (float32: 16, 16-bit: 32) is held in one
tile, the query rows stay on chip; beyond, the kernels loop over D in chunks of BLOCK_D and backward
accumulates in its (float32) output rows, updated per column block. Wider chunks (float32 D = 128 or
256 in one tile) spill hundreds of bytes per thread or exceed the shared memory of a block: float32
runs three TF32 products per dot (tf32x3), which triples the operands held in registers. The
configurations fit the shared memory of sm_80 (166,912 B per block) and sm_90 (232,448 B) and spill
at most MAX_SPILL_BYTES per thread (the suite compiles every launch class of both losses, each dtype x
32 x 32 and 64 x 64 tiles x D in one tile or in chunks, for sm_80 and sm_90). Offsets (rows x stride) are computed in int64. Every launch runs under
:func:`device_guard`: on the tensors' device and current stream.
"""

from __future__ import annotations


import torch
import triton
import triton.language as tl

from ..backends import triton_interpreter
from ._common import device_guard, multiprocessor_count

FIXED_MAX_LIMIT = 80.0  # use the fixed maximum 1/tau when 2/tau <= this (exp(-80) ~ 1.8e-35 is a normal float32)
EXCL_NONE, EXCL_ROW, EXCL_COL, EXCL_DIAG = 0, 1, 2, 3
INTERPRETER_PROGRAMS = 8  # the interpreter's "SM count": small, so that the tests exercise splits
MAX_PARTIAL_BYTES = 64 << 20  # cap of the (S, M, D) float32 partial gradients
# Spill stores per thread allowed in any launch (the suite compiles every launch class for sm_80 and sm_90:
# all spill 0 B with Triton 3.8; the bound leaves a compiler release a little room).
MAX_SPILL_BYTES = 16


@triton.jit
def _logit_tile(x_ptr, y_ptr, rows, cols, M, N, D, sx0, sx1, sy0, sy1, x_tile, d_idx,
                SINGLE_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                PRECISION: tl.constexpr):
    """x_rows . y_cols for one (BLOCK_M, BLOCK_N) tile, float32 accumulation over D (rows, cols int64)."""
    if SINGLE_D:
        y = tl.load(y_ptr + cols[:, None] * sy0 + d_idx[None, :] * sy1,
                    mask=(cols[:, None] < N) & (d_idx[None, :] < D), other=0.0)
        s = tl.dot(x_tile, tl.trans(y), input_precision=PRECISION)
    else:
        s = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for d0 in range(0, D, BLOCK_D):
            d = d0 + d_idx
            x = tl.load(x_ptr + rows[:, None] * sx0 + d[None, :] * sx1,
                        mask=(rows[:, None] < M) & (d[None, :] < D), other=0.0)
            y = tl.load(y_ptr + cols[:, None] * sy0 + d[None, :] * sy1,
                        mask=(cols[:, None] < N) & (d[None, :] < D), other=0.0)
            s = tl.dot(x, tl.trans(y), s, input_precision=PRECISION)
    return s


@triton.jit
def _lse_kernel(q_ptr, k_ptr, rq_ptr, rk_ptr, excl_ptr, lse_ptr, M, N, D, sq0, sq1, sk0, sk1, inv_tau, split_cols,
                FIXED_MAX: tl.constexpr, HAS_EXCL: tl.constexpr, SINGLE_D: tl.constexpr,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, PRECISION: tl.constexpr):
    """lse_ptr[split, rows]: the log-sum-exp of rows over the columns of split program_id(1)."""
    split = tl.program_id(1)
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < M
    d_idx = tl.arange(0, BLOCK_D)
    rq = tl.load(rq_ptr + rows, mask=row_ok, other=0.0) * inv_tau  # 1/tau folded into the row scale
    if HAS_EXCL:
        excl = tl.load(excl_ptr + rows, mask=row_ok, other=-1)
    x_tile = tl.zeros((BLOCK_M, BLOCK_D), dtype=q_ptr.dtype.element_ty)
    if SINGLE_D:
        x_tile = tl.load(q_ptr + rows[:, None] * sq0 + d_idx[None, :] * sq1,
                         mask=row_ok[:, None] & (d_idx[None, :] < D), other=0.0)
    if FIXED_MAX:
        m_i = tl.zeros((BLOCK_M,), dtype=tl.float32) + inv_tau
    else:
        m_i = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)
    l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
    col_begin = split.to(tl.int64) * split_cols
    col_end = tl.minimum(col_begin + split_cols, N)
    for n0 in range(col_begin, col_end, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)
        rk = tl.load(rk_ptr + cols, mask=cols < N, other=0.0)
        s = _logit_tile(q_ptr, k_ptr, rows, cols, M, N, D, sq0, sq1, sk0, sk1, x_tile, d_idx,
                        SINGLE_D, BLOCK_M, BLOCK_N, BLOCK_D, PRECISION)
        a = s * rq[:, None] * rk[None, :]
        keep = (cols < col_end)[None, :]
        if HAS_EXCL:
            keep = keep & (cols[None, :] != excl[:, None])
        a = tl.where(keep, a, float("-inf"))
        if FIXED_MAX:
            l_i += tl.sum(tl.exp(a - m_i[:, None]), axis=1)
        else:
            m_new = tl.maximum(m_i, tl.max(a, axis=1))
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row with nothing kept yet
            l_i = l_i * tl.exp(m_i - m_safe) + tl.sum(tl.exp(a - m_safe[:, None]), axis=1)
            m_i = m_new
    tl.store(lse_ptr + split.to(tl.int64) * M + rows, m_i + tl.log(l_i), mask=row_ok)


@triton.jit
def _grad_kernel(x_ptr, y_ptr, rx_ptr, ry_ptr, lse_r_ptr, g_r_ptr, lse_c_ptr, g_c_ptr, excl_ptr, out_ptr,
                 M, N, D, sx0, sx1, sy0, sy1, inv_tau, split_cols,
                 ROW_TERM: tl.constexpr, COL_TERM: tl.constexpr, EXCL_MODE: tl.constexpr, SINGLE_D: tl.constexpr,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, PRECISION: tl.constexpr):
    """out_ptr[split, rows, :] (float32, (S, M, D)): the gradient rows from the columns of split program_id(1)."""
    split = tl.program_id(1)
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < M
    d_idx = tl.arange(0, BLOCK_D)
    out_ptr += split.to(tl.int64) * M * D
    rx = tl.load(rx_ptr + rows, mask=row_ok, other=0.0) * inv_tau
    if ROW_TERM:
        lse_r = tl.load(lse_r_ptr + rows, mask=row_ok, other=0.0)
        g_r = tl.load(g_r_ptr + rows, mask=row_ok, other=0.0) * inv_tau
    if EXCL_MODE == 1:
        excl_r = tl.load(excl_ptr + rows, mask=row_ok, other=-1)
    x_tile = tl.zeros((BLOCK_M, BLOCK_D), dtype=x_ptr.dtype.element_ty)
    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    if SINGLE_D:
        x_tile = tl.load(x_ptr + rows[:, None] * sx0 + d_idx[None, :] * sx1,
                         mask=row_ok[:, None] & (d_idx[None, :] < D), other=0.0)
    col_begin = split.to(tl.int64) * split_cols
    col_end = tl.minimum(col_begin + split_cols, N)
    for n0 in range(col_begin, col_end, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)
        col_ok = cols < col_end
        ry = tl.load(ry_ptr + cols, mask=col_ok, other=0.0)
        s = _logit_tile(x_ptr, y_ptr, rows, cols, M, N, D, sx0, sx1, sy0, sy1, x_tile, d_idx,
                        SINGLE_D, BLOCK_M, BLOCK_N, BLOCK_D, PRECISION)
        a = s * rx[:, None] * ry[None, :]
        keep = row_ok[:, None] & col_ok[None, :]
        if EXCL_MODE == 1:
            keep = keep & (cols[None, :] != excl_r[:, None])
        if EXCL_MODE == 2:
            excl_c = tl.load(excl_ptr + cols, mask=col_ok, other=-1)
            keep = keep & (rows[:, None] != excl_c[None, :])
        if EXCL_MODE == 3:
            keep = keep & (rows[:, None] != cols[None, :])
        t = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        if ROW_TERM:
            t += g_r[:, None] * tl.exp(tl.where(keep, a - lse_r[:, None], float("-inf")))
        if COL_TERM:
            lse_c = tl.load(lse_c_ptr + cols, mask=col_ok, other=0.0)
            g_c = tl.load(g_c_ptr + cols, mask=col_ok, other=0.0) * inv_tau
            t += g_c[None, :] * tl.exp(tl.where(keep, a - lse_c[None, :], float("-inf")))
        t = (t * ry[None, :]).to(y_ptr.dtype.element_ty)
        if SINGLE_D:
            y = tl.load(y_ptr + cols[:, None] * sy0 + d_idx[None, :] * sy1,
                        mask=col_ok[:, None] & (d_idx[None, :] < D), other=0.0)
            acc = tl.dot(t, y, acc, input_precision=PRECISION)
        else:
            for d0 in range(0, D, BLOCK_D):
                d = d0 + d_idx
                y = tl.load(y_ptr + cols[:, None] * sy0 + d[None, :] * sy1,
                            mask=col_ok[:, None] & (d[None, :] < D), other=0.0)
                o_ptrs = out_ptr + rows[:, None] * D + d[None, :]
                o_mask = row_ok[:, None] & (d[None, :] < D)
                o = tl.load(o_ptrs, mask=o_mask, other=0.0)
                tl.store(o_ptrs, tl.dot(t, y, o, input_precision=PRECISION), mask=o_mask)
    if SINGLE_D:
        tl.store(out_ptr + rows[:, None] * D + d_idx[None, :], acc, mask=row_ok[:, None] & (d_idx[None, :] < D))


# ------------------------------------------------------------------------------------------ launch plan

def _tiles(d: int, dtype: torch.dtype, small: bool, interpreter: bool) -> dict:
    """Tile sizes and launch options for D features of ``dtype``; ``small``: 32 x 32 row/column tiles
    (for batches whose 64 x 64 tiles cannot fill the GPU). Under the interpreter: small tiles, so that
    tests cover several tiles, splits and ragged edges."""
    if interpreter:
        return dict(BLOCK_M=16, BLOCK_N=32, BLOCK_D=max(16, min(triton.next_power_of_2(d), 32)), num_warps=1,
                    num_stages=1)
    chunk = 16 if dtype == torch.float32 else 32  # float32 runs three TF32 products (tf32x3): thinner chunks
    block_d = max(16, triton.next_power_of_2(d)) if d <= chunk else chunk
    block = 32 if small else 64
    return dict(BLOCK_M=block, BLOCK_N=block, BLOCK_D=block_d, num_warps=4 if small else 8, num_stages=2)


class Plan:
    """How one kernel launch covers an (M rows) x (N columns) problem: tiles, the grid and the splits."""

    def __init__(self, m: int, n: int, d: int, dtype: torch.dtype, programs: int, interpreter: bool,
                 partial_row_bytes: int = 0):
        small = not interpreter and triton.cdiv(m, 64) * triton.cdiv(n, 64) < programs
        self.tiles = _tiles(d, dtype, small, interpreter)
        block_m, block_n = self.tiles["BLOCK_M"], self.tiles["BLOCK_N"]
        self.row_blocks, col_blocks = triton.cdiv(m, block_m), max(1, triton.cdiv(n, block_n))
        wanted = min(col_blocks, max(1, triton.cdiv(programs, self.row_blocks)))
        blocks_per_split = max(1, col_blocks // wanted)  # rounding down: at least ``wanted`` splits
        if partial_row_bytes:
            most = max(1, MAX_PARTIAL_BYTES // max(1, m * partial_row_bytes))
            blocks_per_split = max(blocks_per_split, triton.cdiv(col_blocks, most))
        self.splits = triton.cdiv(col_blocks, blocks_per_split)  # no empty split
        self.split_cols = blocks_per_split * block_n
        self.single_d = d <= self.tiles["BLOCK_D"]

    @property
    def grid(self) -> tuple[int, int]:
        return (self.row_blocks, self.splits)


def _plan(x: torch.Tensor, n: int, partial_row_bytes: int = 0) -> Plan:
    interpreter = triton_interpreter()
    programs = INTERPRETER_PROGRAMS if interpreter else multiprocessor_count(x.device)
    return Plan(x.shape[0], n, x.shape[1], x.dtype, programs, interpreter, partial_row_bytes)


def _precision(dtype: torch.dtype) -> str:
    # float32 inputs: three TF32 passes (about float32 accuracy) instead of a single TF32 pass, whose
    # 10-bit mantissa would put ~1e-3 / tau errors on the logits.
    return "tf32x3" if dtype == torch.float32 and not triton_interpreter() else "ieee" if dtype == torch.float32 else "tf32"


def lse(q: torch.Tensor, k: torch.Tensor, rq: torch.Tensor, rk: torch.Tensor, exclude: torch.Tensor | None,
        inv_tau: float, unit_norm: bool) -> torch.Tensor:
    """(M,) float32 lse_i = log sum_{j != exclude_i} exp((q_i . k_j) rq_i rk_j inv_tau)."""
    m, d = q.shape
    n = k.shape[0]
    if m == 0:
        return torch.empty(m, dtype=torch.float32, device=q.device)
    plan = _plan(q, n)
    partial = torch.empty((plan.splits, m), dtype=torch.float32, device=q.device)
    fixed = bool(unit_norm and 2.0 * inv_tau <= FIXED_MAX_LIMIT)
    excl = exclude if exclude is not None else rq  # unused pointer when HAS_EXCL is False
    cfg = plan.tiles
    with device_guard(q):
        _lse_kernel[plan.grid](
            q, k, rq, rk, excl, partial, m, n, d, q.stride(0), q.stride(1), k.stride(0), k.stride(1), float(inv_tau),
            plan.split_cols, FIXED_MAX=fixed, HAS_EXCL=exclude is not None, SINGLE_D=plan.single_d,
            PRECISION=_precision(q.dtype), **cfg)
    return partial[0] if plan.splits == 1 else torch.logsumexp(partial, dim=0)


def _grad_pass(x, y, rx, ry, lse_r, g_r, lse_c, g_c, excl, excl_mode, inv_tau):
    m, d = x.shape
    n = y.shape[0]
    if m == 0:
        return torch.empty((m, d), dtype=torch.float32, device=x.device)
    plan = _plan(x, n, partial_row_bytes=4 * d)
    shape = (plan.splits, m, d)
    out = (torch.empty if plan.single_d else torch.zeros)(shape, dtype=torch.float32, device=x.device)
    dummy = rx
    with device_guard(x):
        _grad_kernel[plan.grid](
            x, y, rx, ry, lse_r if lse_r is not None else dummy, g_r if g_r is not None else dummy,
            lse_c if lse_c is not None else dummy, g_c if g_c is not None else dummy,
            excl if excl is not None else dummy, out, m, n, d, x.stride(0), x.stride(1), y.stride(0), y.stride(1),
            float(inv_tau), plan.split_cols, ROW_TERM=lse_r is not None, COL_TERM=lse_c is not None,
            EXCL_MODE=excl_mode, SINGLE_D=plan.single_d, PRECISION=_precision(x.dtype), **plan.tiles)
    return out[0] if plan.splits == 1 else out.sum(dim=0)


def grad(q, k, rq, rk, exclude, lse_, g, inv_tau) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of sum_i g_i lse_i with respect to rq_i q_i (M, D) and rk_j k_j (K, D), float32."""
    has = exclude is not None
    gq = _grad_pass(q, k, rq, rk, lse_, g, None, None, exclude, EXCL_ROW if has else EXCL_NONE, inv_tau)
    gk = _grad_pass(k, q, rk, rq, None, None, lse_, g, exclude, EXCL_COL if has else EXCL_NONE, inv_tau)
    return gq, gk


def grad_queries(q, k, rq, rk, lse_, g, inv_tau) -> torch.Tensor:
    """Gradient of sum_i g_i lse_i with respect to rq_i q_i (M, D), float32; the keys' gradient is not computed."""
    return _grad_pass(q, k, rq, rk, lse_, g, None, None, None, EXCL_NONE, inv_tau)


def grad_symmetric(z, rz, lse_, g, inv_tau) -> torch.Tensor:
    """Keys are the queries, each row excluding itself: gradient of sum_i g_i lse_i with respect to rz_i z_i."""
    return _grad_pass(z, z, rz, rz, lse_, g, lse_, g, None, EXCL_DIAG, inv_tau)
