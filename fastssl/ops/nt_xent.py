"""NT-Xent (SimCLR) and InfoNCE losses, fused: the (2N)^2 logit matrix is never materialised.

Public: :func:`nt_xent_loss`, :func:`info_nce_loss`, the modules :class:`NTXentLoss` and
:class:`InfoNCELoss`, and :func:`all_gather_rows` (the differentiable all-gather of the distributed
path). Registered torch.library ops (fake implementations for torch.compile, autograd):

* ``fastssl::nt_xent(z, temperature, normalize, backend) -> (loss, lse)``: z = [z1; z2] (2N, D);
* ``fastssl::info_nce(queries, keys, positive_index, exclude_index, temperature, normalize, backend)
  -> (loss, lse)``; and their ``*_backward`` ops.

How each backend computes (the specification is fastssl/reference/nt_xent.py):

* ``triton`` (CUDA; the CPU through TRITON_INTERPRET=1 for tests): fastssl/triton/nt_xent.py, a
  tiled forward that keeps an online log-sum-exp and stores only lse (M floats), and a backward
  that recomputes the logit tiles from it (see that module for the derivations).
* ``cpp`` (CPU): kernels/cpu/nt_xent.h (bound in csrc/nt_xent.cpp), ATen matmuls over row chunks of at most 32 MiB of logits.
* ``reference``: the full matrix (quadratic memory), float64-capable; backward by autograd.

The fused backends share the O(N D) parts, written here: the per-row scales (inverse L2 norms,
computed in float32), the positive logits, the positive's gradient term and the Jacobian of the
normalisation, d(x / |x|) = (I - x^ x^T) / |x|. Extra memory is O(N D + N) on every fused backend.
"""

from __future__ import annotations

import math
import numbers

import torch

from .. import _native
from .. import _validation as v
from ..backends import OpBackends
from ..reference import nt_xent as reference

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
REDUCTIONS = ("mean", "sum", "none")


def _triton():
    from ..triton import nt_xent

    return nt_xent


def _loss_dtype(dtype: torch.dtype) -> torch.dtype:
    """Losses are float32 for float32/float16/bfloat16 inputs (accumulated in float32), float64 for float64."""
    return reference.compute_dtype(dtype)


# ------------------------------------------------------------------------------------ shared O(N D) parts


def _scales(x: torch.Tensor, normalize: bool) -> torch.Tensor:
    """(rows,) factors applied to each row: 1 / max(|x_i|, eps) when normalising, else 1 (float32;
    float64 for float64 rows, which only the reference backend receives)."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if not normalize:
        return torch.ones(x.shape[0], dtype=dtype, device=x.device)
    norm = torch.linalg.vector_norm(x, dim=1, dtype=dtype)
    return norm.clamp_min(reference.NORM_EPS).reciprocal()


def _positive_logits(q, k, rq, rk, positive, inv_tau) -> torch.Tensor:
    kp = k.index_select(0, positive)
    dots = torch.einsum("md,md->m", q.float(), kp.float())
    return dots * rq * rk.index_select(0, positive) * inv_tau


def _through_normalization(g_scaled: torch.Tensor, x: torch.Tensor, r: torch.Tensor, normalize: bool):
    """Gradient with respect to x from the gradient with respect to x~ = r(x) x, r(x) = 1 / max(|x|, eps)."""
    if not normalize:
        return g_scaled
    xs = x.to(r.dtype) * r[:, None]
    along = torch.einsum("md,md->m", xs, g_scaled)
    along = torch.where(r < 1 / reference.NORM_EPS, along, 0.0)  # |x| <= eps: r is constant there
    return (g_scaled - xs * along[:, None]) * r[:, None]


class _Fused:
    """A backend that supplies lse (forward) and the softmax part of the gradient (backward)."""

    def __init__(self, lse, grad, grad_symmetric, float64_ok: bool):
        self._lse, self._grad, self._grad_symmetric, self.float64_ok = lse, grad, grad_symmetric, float64_ok

    def _prepare(self, *xs):
        return [x.float().contiguous() if x.dtype == torch.float64 and not self.float64_ok else x.contiguous()
                for x in xs]

    def info_nce(self, queries, keys, positive, exclude, temperature, normalize):
        out_dtype = _loss_dtype(queries.dtype)
        q, k = self._prepare(queries, keys)
        inv_tau = 1.0 / temperature
        rq, rk = _scales(q, normalize), _scales(k, normalize)
        lse = self._lse(q, k, rq, rk, exclude, inv_tau, normalize)
        loss = lse - _positive_logits(q, k, rq, rk, positive, inv_tau)
        return loss.to(out_dtype), lse.to(out_dtype)

    def info_nce_backward(self, grad, queries, keys, positive, exclude, lse, temperature, normalize):
        q, k = self._prepare(queries, keys)
        inv_tau = 1.0 / temperature
        g = grad.float().contiguous()
        rq, rk = _scales(q, normalize), _scales(k, normalize)
        gq, gk = self._grad(q, k, rq, rk, exclude, lse.float().contiguous(), g, inv_tau)
        # The positive term -a_{i,p(i)} of each loss: d/dq~_i = -g_i/tau k~_p(i), d/dk~_p(i) = -g_i/tau q~_i.
        gt = (g * inv_tau)[:, None]
        gq = gq - gt * (k.index_select(0, positive).float() * rk.index_select(0, positive)[:, None])
        gk = gk.index_add(0, positive, -gt * (q.float() * rq[:, None]))
        dq = _through_normalization(gq, q, rq, normalize).to(queries.dtype)
        dk = _through_normalization(gk, k, rk, normalize).to(keys.dtype)
        return dq, dk

    def nt_xent(self, z, temperature, normalize):
        n2 = z.shape[0]
        positive, exclude = reference.nt_xent_indices(n2 // 2, z.device)
        return self.info_nce(z, z, positive, exclude, temperature, normalize)

    def nt_xent_backward(self, grad, z, lse, temperature, normalize):
        (zc,) = self._prepare(z)
        inv_tau = 1.0 / temperature
        g = grad.float().contiguous()
        rz = _scales(zc, normalize)
        positive, _ = reference.nt_xent_indices(z.shape[0] // 2, z.device)
        gz = self._grad_symmetric(zc, rz, lse.float().contiguous(), g, inv_tau)
        # Positive terms: row i is the positive of row p(i) = i +- N too (p is an involution), so
        # z~_i receives -(g_i + g_p(i)) / tau z~_p(i).
        zs = zc.float() * rz[:, None]
        gz = gz - ((g + g.index_select(0, positive)) * inv_tau)[:, None] * zs.index_select(0, positive)
        return _through_normalization(gz, zc, rz, normalize).to(z.dtype)


def _cpp_ops():
    return _native.ops()


def _cpp_grad_symmetric(z, rz, lse, g, inv_tau):
    rows = torch.arange(z.shape[0], device=z.device)
    gq, gk = _cpp_ops().info_nce_grad(z, z, rz, rz, rows, lse, g, inv_tau)
    return gq + gk


def _triton_lse(q, k, rq, rk, exclude, inv_tau, unit_norm):
    return _triton().lse(q, k, rq, rk, exclude, inv_tau, unit_norm)


def _triton_grad(*args):
    return _triton().grad(*args)


def _triton_grad_symmetric(*args):
    return _triton().grad_symmetric(*args)


class _Reference:
    """The specification: the full logit matrix, backward by autograd."""

    def info_nce(self, queries, keys, positive, exclude, temperature, normalize):
        loss = reference.info_nce_loss(queries, keys, positive, temperature, exclude, normalize)
        lse = reference.info_nce_lse(queries, keys, temperature, exclude, normalize)
        return loss.detach().clone(), lse.detach().clone()

    def info_nce_backward(self, grad, queries, keys, positive, exclude, lse, temperature, normalize):
        dtype = reference.compute_dtype(queries.dtype)
        # Closed form on the full matrix (custom-op bodies run below autograd): with P the row
        # softmax and Y the one-hot positives, dL/da = g (P - Y), then a = q~ k~^T / tau.
        q, k = queries.to(dtype), keys.to(dtype)
        logits = reference.info_nce_logits(q, k, temperature, exclude, normalize)
        w = torch.softmax(logits, dim=1)
        w[torch.arange(q.shape[0], device=q.device), positive] -= 1
        w *= grad.to(dtype)[:, None] / temperature
        rq, rk = _scales(q, normalize).to(dtype), _scales(k, normalize).to(dtype)
        gq, gk = w @ (k * rk[:, None]), w.T @ (q * rq[:, None])
        dq = _through_normalization(gq, q, rq, normalize)
        dk = _through_normalization(gk, k, rk, normalize)
        return dq.to(queries.dtype), dk.to(keys.dtype)

    def nt_xent(self, z, temperature, normalize):
        positive, exclude = reference.nt_xent_indices(z.shape[0] // 2, z.device)
        return self.info_nce(z, z, positive, exclude, temperature, normalize)

    def nt_xent_backward(self, grad, z, lse, temperature, normalize):
        positive, exclude = reference.nt_xent_indices(z.shape[0] // 2, z.device)
        dq, dk = self.info_nce_backward(grad, z, z, positive, exclude, lse, temperature, normalize)
        return dq + dk


BACKENDS = OpBackends(
    "nt_xent",
    {
        "reference": _Reference(),
        "cpp": _Fused(lambda q, k, rq, rk, ex, inv_tau, unit: _cpp_ops().info_nce_lse(q, k, rq, rk, ex, inv_tau),
                      lambda *a: _cpp_ops().info_nce_grad(*a), _cpp_grad_symmetric, float64_ok=False),
        "triton": _Fused(_triton_lse, _triton_grad, _triton_grad_symmetric, float64_ok=False),
    },
    auto_order={"cpu": ("cpp", "reference"), "cuda": ("triton", "reference")},
    native_ops=("info_nce_lse", "info_nce_grad"),
)


# ------------------------------------------------------------------------------------------ custom ops


@torch.library.custom_op("fastssl::info_nce", mutates_args=())
def _info_nce(queries: torch.Tensor, keys: torch.Tensor, positive_index: torch.Tensor, exclude_index: torch.Tensor,
              temperature: float, normalize: bool, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    return BACKENDS.impls[backend].info_nce(queries, keys, positive_index, exclude_index, temperature, normalize)


@_info_nce.register_fake
def _(queries, keys, positive_index, exclude_index, temperature, normalize, backend):
    dtype = _loss_dtype(queries.dtype)
    return queries.new_empty(queries.shape[0], dtype=dtype), queries.new_empty(queries.shape[0], dtype=dtype)


@torch.library.custom_op("fastssl::info_nce_backward", mutates_args=())
def _info_nce_backward(grad: torch.Tensor, queries: torch.Tensor, keys: torch.Tensor, positive_index: torch.Tensor,
                       exclude_index: torch.Tensor, lse: torch.Tensor, temperature: float, normalize: bool,
                       backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    return BACKENDS.impls[backend].info_nce_backward(grad, queries, keys, positive_index, exclude_index, lse,
                                                      temperature, normalize)


@_info_nce_backward.register_fake
def _(grad, queries, keys, positive_index, exclude_index, lse, temperature, normalize, backend):
    return torch.empty_like(queries), torch.empty_like(keys)


@torch.library.custom_op("fastssl::nt_xent", mutates_args=())
def _nt_xent(z: torch.Tensor, temperature: float, normalize: bool, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    return BACKENDS.impls[backend].nt_xent(z, temperature, normalize)


@_nt_xent.register_fake
def _(z, temperature, normalize, backend):
    dtype = _loss_dtype(z.dtype)
    return z.new_empty(z.shape[0], dtype=dtype), z.new_empty(z.shape[0], dtype=dtype)


@torch.library.custom_op("fastssl::nt_xent_backward", mutates_args=())
def _nt_xent_backward(grad: torch.Tensor, z: torch.Tensor, lse: torch.Tensor, temperature: float, normalize: bool,
                      backend: str) -> torch.Tensor:
    return BACKENDS.impls[backend].nt_xent_backward(grad, z, lse, temperature, normalize)


@_nt_xent_backward.register_fake
def _(grad, z, lse, temperature, normalize, backend):
    return torch.empty_like(z)


def _info_nce_setup(ctx, inputs, output):
    queries, keys, positive, exclude, temperature, normalize, backend = inputs
    ctx.save_for_backward(queries, keys, positive, exclude, output[1])
    ctx.options = (temperature, normalize, backend)
    ctx.mark_non_differentiable(output[1])


def _info_nce_grad(ctx, grad_loss, grad_lse):
    queries, keys, positive, exclude, lse = ctx.saved_tensors
    dq, dk = torch.ops.fastssl.info_nce_backward(grad_loss, queries, keys, positive, exclude, lse, *ctx.options)
    return dq, dk, None, None, None, None, None


def _nt_xent_setup(ctx, inputs, output):
    z, temperature, normalize, backend = inputs
    ctx.save_for_backward(z, output[1])
    ctx.options = (temperature, normalize, backend)
    ctx.mark_non_differentiable(output[1])


def _nt_xent_grad(ctx, grad_loss, grad_lse):
    z, lse = ctx.saved_tensors
    return torch.ops.fastssl.nt_xent_backward(grad_loss, z, lse, *ctx.options), None, None, None


_info_nce.register_autograd(_info_nce_grad, setup_context=_info_nce_setup)
_nt_xent.register_autograd(_nt_xent_grad, setup_context=_nt_xent_setup)


# ---------------------------------------------------------------------------------------- distributed


def _dist():
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("gather=True needs torch.distributed to be initialised (torch.distributed."
                           "init_process_group) in every process; use gather=False for a single process")
    return dist


class _AllGatherRows(torch.autograd.Function):
    """Concatenation of every rank's rows (unequal counts allowed). Backward: the gradient of the whole
    gathered tensor is summed over ranks (all-reduce) and each rank keeps the slice of its own rows, so
    that, when every rank back-propagates its share of the loss, each rank's rows receive the gradient
    of the sum of all shares: the single-process gradient."""

    @staticmethod
    def forward(ctx, x, sizes, rank, group):
        dist = _dist()
        longest = max(sizes)
        padded = x.new_zeros((longest,) + tuple(x.shape[1:]))
        padded[: x.shape[0]] = x
        wire = padded.view(torch.int16) if x.dtype in (torch.float16, torch.bfloat16) else padded
        parts = [torch.empty_like(wire) for _ in sizes]
        dist.all_gather(parts, wire.contiguous(), group=group)
        if wire is not padded:
            parts = [p.view(x.dtype) for p in parts]
        ctx.offset, ctx.rows, ctx.group = sum(sizes[:rank]), x.shape[0], group
        return torch.cat([p[:s] for p, s in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad):
        dist = _dist()
        total = grad.float().contiguous().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=ctx.group)
        return total[ctx.offset: ctx.offset + ctx.rows].to(grad.dtype), None, None, None


def _row_counts(rows: int, device: torch.device, group) -> tuple[list[int], int]:
    dist = _dist()
    count = torch.tensor([rows], dtype=torch.long, device=device)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size(group))]
    dist.all_gather(counts, count, group=group)
    return [int(c) for c in counts], dist.get_rank(group)


def all_gather_rows(x: torch.Tensor, group=None) -> tuple[torch.Tensor, int]:
    """Differentiable all-gather of (n_r, ...) tensors with any n_r per rank.

    Returns (the rows of every rank in rank order, the offset of this rank's rows in it). Gradients
    flowing into the result are summed over ranks and returned to each rank's own rows.
    """
    sizes, rank = _row_counts(x.shape[0], x.device, group)
    return _AllGatherRows.apply(x, sizes, rank, group), sum(sizes[:rank])


def _global_sum(local: torch.Tensor, group) -> torch.Tensor:
    """A value equal to the sum of ``local`` over ranks whose gradient is that of ``local`` alone."""
    dist = _dist()
    total = local.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
    return local + (total - local.detach())


# ------------------------------------------------------------------------------------------ public API


def _check_temperature(temperature) -> float:
    if isinstance(temperature, torch.Tensor):
        if temperature.numel() != 1:
            raise ValueError(f"temperature must be a positive number, got a tensor of shape {tuple(temperature.shape)}")
        temperature = float(temperature)
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature must be a positive number, got {type(temperature).__name__}")
    temperature = float(temperature)
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    return temperature


def _check_embeddings(x, name: str, allow_empty: bool = False) -> torch.Tensor:
    v.check_tensor(x, name)
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (N, D), got {tuple(x.shape)}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32, float16, bfloat16 or float64, got "
                        f"{str(x.dtype).replace('torch.', '')}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} has D = 0 features (shape {tuple(x.shape)}); embeddings need D >= 1")
    if x.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} has no rows (shape {tuple(x.shape)}); the loss needs N >= 1")
    v.check_finite(x, name)
    return x


def _check_reduction(reduction) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}")
    return reduction


def _reduce(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1, *, normalize: bool = True,
                 reduction: str = "mean", gather: bool = False, backend: str = "auto", group=None) -> torch.Tensor:
    """NT-Xent, the SimCLR contrastive loss, without materialising the (2N, 2N) logit matrix.

    The 2N anchors are the rows of z = [z1; z2]. Anchor i has the other view of the same sample as
    its positive and all 2N - 1 other rows (the positive included) in its denominator:
    loss_i = -a_{i,i+-N} + log sum_{j != i} exp(a_ij), a_ij = cos(z_i, z_j) / temperature.

    Args:
        z1, z2: (N, D) embeddings of the two views, row i of each from the same sample; float32,
            float16, bfloat16 (accumulated in float32) or float64 (computed in float32 by the fused
            backends; the reference backend computes in float64). N >= 1, D >= 1, any D. Finite:
            NaN/Inf raise ValueError naming the argument on the CPU; on CUDA the check reads nothing
            back and fails as a device-side assert naming it (see :mod:`fastssl._validation`;
            FASTSSL_CHECK_FINITE=0, or torch.compile, skips the check; NaN then propagates to the
            loss and to every gradient).
        temperature: tau > 0 (typically 0.05 to 1).
        normalize: L2-normalise the rows first (SimCLR). False uses raw dot products.
        reduction: "mean" (SimCLR's loss), "sum", or "none" for the 2N per-anchor losses, ordered
            [anchors of z1; anchors of z2].
        gather: distributed training: every rank's rows join the batch (all-gather, with gradient),
            so the loss and the embeddings' gradients are those of one process holding the
            concatenated batch (ranks may hold different N, even 0). "mean"/"sum" return the global
            value on every rank; "none" returns this rank's 2 N_r anchors. Every rank must call it.
            Note: DDP averages parameter gradients over ranks; to get the single-process parameter
            gradient under DDP, back-propagate ``world_size * loss``.
        backend: "auto" | "reference" | "cpp" | "triton" (auto: cpp on CPU, triton on CUDA).
        group: the process group of ``gather`` (default: the world).

    Returns:
        A float32 scalar (float64 for float64 inputs), or (2N,) with reduction="none".
        Differentiable with respect to z1 and z2. Extra memory O(N D + N) on the fused backends.

    Example:
        >>> import torch, fastssl
        >>> z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
        >>> loss = fastssl.ops.nt_xent_loss(z1, z2, temperature=0.5)
        >>> loss.shape, bool(loss > 0)
        (torch.Size([]), True)
    """
    _check_embeddings(z1, "z1", allow_empty=gather)
    _check_embeddings(z2, "z2", allow_empty=gather)
    if z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must have the same shape (N, D), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.dtype != z2.dtype:
        raise TypeError(f"z1 and z2 must have the same dtype, got {z1.dtype} and {z2.dtype}")
    v.check_same_device({"z1": z1, "z2": z2})
    temperature = _check_temperature(temperature)
    _check_reduction(reduction)
    backend = BACKENDS.resolve(backend, z1.device)
    z = torch.cat([z1, z2])
    if not gather:
        return _reduce(_nt_xent(z, temperature, bool(normalize), backend)[0], reduction)
    # Distributed: this rank's 2n rows are the queries; the keys are every rank's rows, in rank
    # order [z1_0; z2_0; z1_1; z2_1; ...] (the order of the columns does not change a log-sum-exp).
    keys, offset = all_gather_rows(z, group)
    if keys.shape[0] == 0:
        raise ValueError("z1 has no rows on any rank; the loss needs N >= 1 in total")
    n = z1.shape[0]
    rows = torch.arange(2 * n, device=z.device)
    positive = offset + (rows + n) % (2 * n)
    losses = _info_nce(z, keys, positive, offset + rows, temperature, bool(normalize), backend)[0]
    if reduction == "none":
        return losses
    total = _global_sum(losses.sum(), group)
    return total if reduction == "sum" else total / keys.shape[0]


def info_nce_loss(queries: torch.Tensor, keys: torch.Tensor, positive_index: torch.Tensor, temperature: float = 0.1,
                  *, exclude_index: torch.Tensor | None = None, normalize: bool = True, reduction: str = "mean",
                  backend: str = "auto") -> torch.Tensor:
    """InfoNCE of query rows against key rows, without materialising the (M, K) logit matrix.

    loss_i = -a_{i,p(i)} + log sum_{j != e(i)} exp(a_ij), a_ij = cos(q_i, k_j) / temperature (or
    q_i . k_j / temperature with normalize=False), p = ``positive_index``, e = ``exclude_index``.
    Keys can be another view's embeddings, a gathered batch, or positives followed by a memory bank
    of negatives (PIRL: queries (B, D), keys = [positives (B, D); bank (K, D)], positive_index =
    arange(B)).

    Args:
        queries: (M, D), M >= 1; keys: (K, D), K >= 1; float32/float16/bfloat16/float64, one dtype,
            finite (checked unless FASTSSL_CHECK_FINITE=0).
        positive_index: (M,) integer, 0 <= p(i) < K.
        temperature: > 0.
        exclude_index: None, or (M,) integer in [-1, K): a column left out of row i's denominator
            (-1: none); it must differ from the positive. Used for self-exclusion when the queries
            are among the keys.
        normalize, reduction, backend: as in :func:`nt_xent_loss` ("none" returns (M,)).

    Returns:
        A float32 scalar (float64 for float64 inputs), or (M,) with reduction="none".
        Differentiable with respect to queries and keys.

    Example:
        >>> import torch, fastssl
        >>> q, bank = torch.randn(4, 32), torch.randn(100, 32)
        >>> keys = torch.cat([q + 0.1 * torch.randn(4, 32), bank])
        >>> fastssl.ops.info_nce_loss(q, keys, torch.arange(4), 0.07).shape
        torch.Size([])
    """
    _check_embeddings(queries, "queries")
    _check_embeddings(keys, "keys")
    if queries.shape[1] != keys.shape[1]:
        raise ValueError(f"queries and keys must have the same D, got {tuple(queries.shape)} and {tuple(keys.shape)}")
    if queries.dtype != keys.dtype:
        raise TypeError(f"queries and keys must have the same dtype, got {queries.dtype} and {keys.dtype}")
    m, k = queries.shape[0], keys.shape[0]
    positive = _check_index(positive_index, "positive_index", m, 0, k, queries.device)
    if exclude_index is None:
        exclude = torch.full((m,), -1, dtype=torch.long, device=queries.device)
    else:
        exclude = _check_index(exclude_index, "exclude_index", m, -1, k, queries.device)
        v.check_none_equal(exclude, positive, "exclude_index equals positive_index in some rows; a positive "
                                              "cannot be excluded")
    v.check_same_device({"queries": queries, "keys": keys})
    temperature = _check_temperature(temperature)
    _check_reduction(reduction)
    backend = BACKENDS.resolve(backend, queries.device)
    losses = _info_nce(queries, keys, positive, exclude, temperature, bool(normalize), backend)[0]
    return _reduce(losses, reduction)


def _check_index(index, name: str, rows: int, low: int, high: int, device) -> torch.Tensor:
    v.check_tensor(index, name)
    if index.shape != (rows,):
        raise ValueError(f"{name} must have shape (M,) = ({rows},), got {tuple(index.shape)}")
    if index.dtype.is_floating_point or index.dtype.is_complex or index.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, got {index.dtype}")
    if index.device != device:
        raise ValueError(f"{name} must be on {device} like the embeddings, got {index.device}")
    v.check_index_range(index, name, low, high)
    return index.long().contiguous()


class NTXentLoss(torch.nn.Module):
    """Module form of :func:`nt_xent_loss`: ``NTXentLoss(0.1)(z1, z2)``."""

    def __init__(self, temperature: float = 0.1, *, normalize: bool = True, reduction: str = "mean",
                 gather: bool = False, backend: str = "auto"):
        super().__init__()
        self.temperature = _check_temperature(temperature)
        self.reduction = _check_reduction(reduction)
        self.normalize, self.gather, self.backend = normalize, gather, backend

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return nt_xent_loss(z1, z2, self.temperature, normalize=self.normalize, reduction=self.reduction,
                            gather=self.gather, backend=self.backend)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, normalize={self.normalize}, reduction={self.reduction!r}, gather={self.gather}"


class InfoNCELoss(torch.nn.Module):
    """Module form of :func:`info_nce_loss`: ``InfoNCELoss(0.07)(queries, keys, positive_index)``."""

    def __init__(self, temperature: float = 0.1, *, normalize: bool = True, reduction: str = "mean",
                 backend: str = "auto"):
        super().__init__()
        self.temperature = _check_temperature(temperature)
        self.reduction = _check_reduction(reduction)
        self.normalize, self.backend = normalize, backend

    def forward(self, queries, keys, positive_index, exclude_index=None) -> torch.Tensor:
        return info_nce_loss(queries, keys, positive_index, self.temperature, exclude_index=exclude_index,
                             normalize=self.normalize, reduction=self.reduction, backend=self.backend)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, normalize={self.normalize}, reduction={self.reduction!r}"
