"""Triton kernels of the InfoNCE / NT-Xent loss: tiled, never materialising the (M, K) logits.

Notation (see fastssl/reference/nt_xent.py for the specification): query rows q_i (M, D), key rows
k_j (K, D), per-row scales rq_i, rk_j (inverse L2 norms when the loss normalises, else 1),
a_ij = (q_i . k_j) rq_i rk_j / tau, and e(i) the excluded column of row i (-1: none).

Forward (:func:`lse`): one program per block of BLOCK_M query rows streams the key blocks, computes
the (BLOCK_M, BLOCK_N) tile of a with tl.dot (fp32 accumulation) and keeps an online log-sum-exp
(Milakov & Gimelshein 2018, "Online normalizer calculation for softmax"). Only lse_i (M floats) is
written: with it, backward can rebuild any softmax entry p_ij = exp(a_ij - lse_i) from a recomputed
tile (the FlashAttention recipe, Dao et al. 2022).

Fixed maximum: for unit-norm rows, Cauchy-Schwarz gives |q_i . k_j| <= 1, so a_ij <= 1/tau for every
entry. The running maximum can then be replaced by the constant 1/tau (no row max, no rescaling of
the running sum). It is safe as long as exp(a - 1/tau) cannot underflow for the positive, whose
a >= -1/tau: exp(-2/tau) must be a normal float32, i.e. 2/tau < 87. The launcher uses it for
normalised inputs with 2/tau <= 80 (tau >= 0.025) and the online maximum otherwise.

Backward (:func:`grad`): the gradient of sum_i g_i lse_i is, with w_ij = g_i exp(a_ij - lse_i) / tau
(0 at excluded columns), d/d(rq_i q_i) = sum_j w_ij rk_j k_j and d/d(rk_j k_j) = sum_i w_ij rq_i q_i.
Since a_ij - lse_i <= 0 for every kept entry, the exponentials are in (0, 1]: no maximum is needed.
One kernel computes out_r = sum_c t_rc ry_c y_c over a row block r of X against all column blocks c
of Y, with t_rc = [ROW_TERM] w_rc + [COL_TERM] w_cr, recomputing each logit tile from X and Y:

* query gradient: X = q, Y = k, ROW_TERM (w uses the row's lse and g);
* key gradient:   X = k, Y = q, COL_TERM (w uses the column's lse and g: a transposed tile);
* NT-Xent (keys are the queries, the logit matrix is symmetric): X = Y = z, both terms, so one
  pass gives the whole gradient of z — two matmuls per tile instead of four.

Every program owns its output rows: no atomics, no (M, K) buffer. For D beyond one tile of
BLOCK_D columns the accumulator lives in the (float32) output rows, updated per key block.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..backends import triton_interpreter

FIXED_MAX_LIMIT = 80.0  # use the fixed maximum 1/tau when 2/tau <= this (exp(-80) ~ 1.8e-35 is a normal float32)
EXCL_NONE, EXCL_ROW, EXCL_COL, EXCL_DIAG = 0, 1, 2, 3


@triton.jit
def _logit_tile(x_ptr, y_ptr, rows, cols, M, N, D, sx0, sx1, sy0, sy1, x_tile, d_idx,
                SINGLE_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                PRECISION: tl.constexpr):
    """x_rows . y_cols for one (BLOCK_M, BLOCK_N) tile, float32 accumulation over D."""
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
def _lse_kernel(q_ptr, k_ptr, rq_ptr, rk_ptr, excl_ptr, lse_ptr, M, N, D, sq0, sq1, sk0, sk1, inv_tau,
                FIXED_MAX: tl.constexpr, HAS_EXCL: tl.constexpr, SINGLE_D: tl.constexpr,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, PRECISION: tl.constexpr):
    pid = tl.program_id(0)
    rows = pid * BLOCK_M + tl.arange(0, BLOCK_M)
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
    for n0 in range(0, N, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)
        rk = tl.load(rk_ptr + cols, mask=cols < N, other=0.0)
        s = _logit_tile(q_ptr, k_ptr, rows, cols, M, N, D, sq0, sq1, sk0, sk1, x_tile, d_idx,
                        SINGLE_D, BLOCK_M, BLOCK_N, BLOCK_D, PRECISION)
        a = s * rq[:, None] * rk[None, :]
        keep = (cols < N)[None, :]
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
    tl.store(lse_ptr + rows, m_i + tl.log(l_i), mask=row_ok)


@triton.jit
def _grad_kernel(x_ptr, y_ptr, rx_ptr, ry_ptr, lse_r_ptr, g_r_ptr, lse_c_ptr, g_c_ptr, excl_ptr, out_ptr,
                 M, N, D, sx0, sx1, sy0, sy1, inv_tau,
                 ROW_TERM: tl.constexpr, COL_TERM: tl.constexpr, EXCL_MODE: tl.constexpr, SINGLE_D: tl.constexpr,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, PRECISION: tl.constexpr):
    pid = tl.program_id(0)
    rows = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < M
    d_idx = tl.arange(0, BLOCK_D)
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
    for n0 in range(0, N, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)
        col_ok = cols < N
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


def _config(m: int, d: int, dtype: torch.dtype) -> dict:
    """Tile sizes. Untuned on hardware so far: 64x64 tiles and D in one tile up to 256 on GPUs; small
    tiles under the interpreter, so tests cover several tiles and ragged edges."""
    if triton_interpreter():
        block_d = max(16, min(triton.next_power_of_2(d), 32))
        return dict(BLOCK_M=16, BLOCK_N=32, BLOCK_D=block_d, num_warps=1)
    single = d <= 256
    block_d = max(16, triton.next_power_of_2(d)) if single else 64
    return dict(BLOCK_M=64, BLOCK_N=64, BLOCK_D=block_d, num_warps=8 if block_d >= 256 else 4, num_stages=2)


def _precision(dtype: torch.dtype) -> str:
    # float32 inputs: three TF32 passes (about float32 accuracy) instead of a single TF32 pass, whose
    # 10-bit mantissa would put ~1e-3 / tau errors on the logits.
    return "tf32x3" if dtype == torch.float32 and not triton_interpreter() else "ieee" if dtype == torch.float32 else "tf32"


def lse(q: torch.Tensor, k: torch.Tensor, rq: torch.Tensor, rk: torch.Tensor, exclude: torch.Tensor | None,
        inv_tau: float, unit_norm: bool) -> torch.Tensor:
    """(M,) float32 lse_i = log sum_{j != exclude_i} exp((q_i . k_j) rq_i rk_j inv_tau)."""
    m, d = q.shape
    n = k.shape[0]
    out = torch.empty(m, dtype=torch.float32, device=q.device)
    if m == 0:
        return out
    cfg = _config(m, d, q.dtype)
    fixed = bool(unit_norm and 2.0 * inv_tau <= FIXED_MAX_LIMIT)
    excl = exclude if exclude is not None else rq  # unused pointer when HAS_EXCL is False
    _lse_kernel[(triton.cdiv(m, cfg["BLOCK_M"]),)](
        q, k, rq, rk, excl, out, m, n, d, q.stride(0), q.stride(1), k.stride(0), k.stride(1), float(inv_tau),
        FIXED_MAX=fixed, HAS_EXCL=exclude is not None, SINGLE_D=d <= cfg["BLOCK_D"],
        PRECISION=_precision(q.dtype), **cfg)
    return out


def _grad_pass(x, y, rx, ry, lse_r, g_r, lse_c, g_c, excl, excl_mode, inv_tau):
    m, d = x.shape
    n = y.shape[0]
    cfg = _config(m, d, x.dtype)
    single = d <= cfg["BLOCK_D"]
    out = (torch.empty if single else torch.zeros)((m, d), dtype=torch.float32, device=x.device)
    if m == 0:
        return out
    dummy = rx
    _grad_kernel[(triton.cdiv(m, cfg["BLOCK_M"]),)](
        x, y, rx, ry, lse_r if lse_r is not None else dummy, g_r if g_r is not None else dummy,
        lse_c if lse_c is not None else dummy, g_c if g_c is not None else dummy,
        excl if excl is not None else dummy, out, m, n, d, x.stride(0), x.stride(1), y.stride(0), y.stride(1),
        float(inv_tau), ROW_TERM=lse_r is not None, COL_TERM=lse_c is not None, EXCL_MODE=excl_mode,
        SINGLE_D=single, PRECISION=_precision(x.dtype), **cfg)
    return out


def grad(q, k, rq, rk, exclude, lse_, g, inv_tau) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of sum_i g_i lse_i with respect to rq_i q_i (M, D) and rk_j k_j (K, D), float32."""
    has = exclude is not None
    gq = _grad_pass(q, k, rq, rk, lse_, g, None, None, exclude, EXCL_ROW if has else EXCL_NONE, inv_tau)
    gk = _grad_pass(k, q, rk, rq, None, None, lse_, g, exclude, EXCL_COL if has else EXCL_NONE, inv_tau)
    return gq, gk


def grad_symmetric(z, rz, lse_, g, inv_tau) -> torch.Tensor:
    """Keys are the queries, each row excluding itself: gradient of sum_i g_i lse_i with respect to rz_i z_i."""
    return _grad_pass(z, z, rz, rz, lse_, g, lse_, g, None, EXCL_DIAG, inv_tau)
