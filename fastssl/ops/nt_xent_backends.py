"""The NT-Xent / InfoNCE backends behind torch.library: how each computes the loss and its gradient, the
registered custom ops that dispatch to them, and their autograd. The public functions are in
:mod:`fastssl.ops.nt_xent`.

Registered ops (fake implementations for torch.compile, autograd through the ``*_backward`` ops):

* ``fastssl::nt_xent(z, temperature, normalize, backend) -> (loss, lse)``: z = [z1; z2] (2N, D);
* ``fastssl::info_nce(queries, keys, positive_index, exclude_index, temperature, normalize, backend)
  -> (loss, lse)``;
* ``fastssl::queue_info_nce(queries, positives, negatives, temperature, normalize, backend) -> (loss, lse)``:
  the queue form (MoCo), lse_i = log(exp(s_i+) + sum_j exp(s_ij)); its autograd returns no gradient for
  the negatives;
* and ``fastssl::nt_xent_backward``, ``fastssl::info_nce_backward``, ``fastssl::queue_info_nce_backward``
  (which takes the loss too: p_i+ - 1 = expm1(-loss_i) without cancellation).

How each backend computes (the specification is fastssl/reference/nt_xent.py):

* ``triton`` (CUDA; the CPU through TRITON_INTERPRET=1 for tests): fastssl/triton/nt_xent.py, a
  tiled forward that keeps an online log-sum-exp and stores only lse (M floats), and a backward
  that recomputes the logit tiles from it (see that module for the derivations).
* ``cpp`` (CPU): kernels/cpu/nt_xent.h (bound in csrc/nt_xent.cpp), ATen matmuls over blocks of rows x key
  tiles of at most 32 MiB of logits, an online log-sum-exp over the key tiles.
* ``reference``: the full matrix (quadratic memory), float64-capable; backward by closed form on it.

The fused backends share the O(N D) parts, written here: the per-row scales (inverse L2 norms,
computed in float32), the positive logits, the positive's gradient term and the Jacobian of the
normalization, d(x / |x|) = (I - x^ x^T) / |x|. Extra memory is O(N D + N) on every fused backend.
The queue form runs the InfoNCE kernels on queries x negatives only (no excluded column, no key
gradient) and joins the positive here: lse_i = logaddexp(s_i+, lse over the negatives).

Example:
    >>> import torch
    >>> z = torch.randn(6, 8)
    >>> loss, lse = torch.ops.fastssl.nt_xent(z, 0.5, True, "reference")
    >>> loss.shape, lse.shape
    (torch.Size([6]), torch.Size([6]))
"""

from __future__ import annotations

import torch

from ..backends import OpBackends, lazy, native
from ..reference import nt_xent as reference


def loss_dtype(dtype: torch.dtype) -> torch.dtype:
    """Losses are float32 for float32/float16/bfloat16 inputs (accumulated in float32), float64 for float64."""
    return reference.compute_dtype(dtype)


# ------------------------------------------------------------------------------------ shared O(N D) parts


def _scales(x: torch.Tensor, normalize: bool) -> torch.Tensor:
    """(rows,) factors applied to each row: 1 / max(|x_i|, eps) when normalizing, else 1 (float32;
    float64 for float64 rows, which only the reference backend receives)."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if not normalize:
        return torch.ones(x.shape[0], dtype=dtype, device=x.device)
    norm = torch.linalg.vector_norm(x, dim=1, dtype=dtype)
    return norm.clamp_min(reference.NORM_EPS).reciprocal()


def _row_logits(q, k, rq, rk, inv_tau) -> torch.Tensor:
    """(M,) float32 logits of row i of q with row i of k."""
    return torch.einsum("md,md->m", q.float(), k.float()) * rq * rk * inv_tau


def _positive_logits(q, k, rq, rk, positive, inv_tau) -> torch.Tensor:
    return _row_logits(q, k.index_select(0, positive), rq, rk.index_select(0, positive), inv_tau)


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

    def __init__(self, lse, grad, grad_symmetric, grad_queries, float64_ok: bool):
        self._lse, self._grad, self._grad_symmetric, self.float64_ok = lse, grad, grad_symmetric, float64_ok
        self._grad_queries = grad_queries

    def _prepare(self, *xs):
        return [x.float().contiguous() if x.dtype == torch.float64 and not self.float64_ok else x.contiguous()
                for x in xs]

    def info_nce(self, queries, keys, positive, exclude, temperature, normalize):
        out_dtype = loss_dtype(queries.dtype)
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

    def queue_info_nce(self, queries, positives, negatives, temperature, normalize):
        out_dtype = loss_dtype(queries.dtype)
        q, k, n = self._prepare(queries, positives, negatives)
        inv_tau = 1.0 / temperature
        rq, rk, rn = _scales(q, normalize), _scales(k, normalize), _scales(n, normalize)
        negative_lse = self._lse(q, n, rq, rn, None, inv_tau, normalize)
        positive = _row_logits(q, k, rq, rk, inv_tau)
        # log(1 + sum_j exp(s_ij - s_i+)): no cancellation when the positive dominates and the loss is small.
        loss = torch.logaddexp(torch.zeros_like(positive), negative_lse - positive)
        lse = torch.logaddexp(positive, negative_lse)
        return loss.to(out_dtype), lse.to(out_dtype)

    def queue_info_nce_backward(self, grad, queries, positives, negatives, loss, lse, temperature, normalize):
        q, k, n = self._prepare(queries, positives, negatives)
        inv_tau = 1.0 / temperature
        g, lse = grad.float().contiguous(), lse.float().contiguous()
        rq, rk, rn = _scales(q, normalize), _scales(k, normalize), _scales(n, normalize)
        gq = self._grad_queries(q, n, rq, rn, lse, g, inv_tau)
        # The positive's logit s_i+ is in the loss twice (-s_i+ and in lse_i): dL_i/ds_i+ = g_i (p_i+ - 1),
        # p_i+ - 1 = expm1(-loss_i) (accurate when p_i+ is close to 1, unlike s_i+ - lse_i); s_i+ = q~_i . k~_i / tau.
        c = (g * torch.expm1(-loss.float()) * inv_tau)[:, None]
        gq = gq + c * (k.float() * rk[:, None])
        gk = c * (q.float() * rq[:, None])
        dq = _through_normalization(gq, q, rq, normalize).to(queries.dtype)
        dk = _through_normalization(gk, k, rk, normalize).to(positives.dtype)
        return dq, dk


_CPP_LSE, _CPP_GRAD = native("info_nce_lse"), native("info_nce_grad")
_CPP_GRAD_QUERIES = native("info_nce_grad_queries")


def _no_exclusion(q: torch.Tensor) -> torch.Tensor:
    return torch.full((q.shape[0],), -1, dtype=torch.long, device=q.device)


def _cpp_lse(q, k, rq, rk, exclude, inv_tau, unit_norm):
    """fastssl_C::info_nce_lse (exclude None: no column excluded); ``unit_norm`` only steers the Triton
    kernel's choice of maximum."""
    return _CPP_LSE(q, k, rq, rk, _no_exclusion(q) if exclude is None else exclude, inv_tau)


def _cpp_grad_queries(q, k, rq, rk, lse, g, inv_tau):
    """fastssl_C::info_nce_grad_queries: the query gradient, no column excluded."""
    return _CPP_GRAD_QUERIES(q, k, rq, rk, _no_exclusion(q), lse, g, inv_tau)


def _cpp_grad_symmetric(z, rz, lse, g, inv_tau):
    """The symmetric gradient from fastssl_C::info_nce_grad with the keys being the queries (row i excludes i)."""
    rows = torch.arange(z.shape[0], device=z.device)
    gq, gk = _CPP_GRAD(z, z, rz, rz, rows, lse, g, inv_tau)
    return gq + gk


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

    def queue_info_nce(self, queries, positives, negatives, temperature, normalize):
        logits = reference.queue_info_nce_logits(queries, positives, negatives, temperature, normalize)
        lse = torch.logsumexp(logits, dim=1)
        return (lse - logits[:, 0]).detach().clone(), lse.detach().clone()

    def queue_info_nce_backward(self, grad, queries, positives, negatives, loss, lse, temperature, normalize):
        dtype = reference.compute_dtype(queries.dtype)
        # Closed form on the (M, 1 + K) logits [s_i+, s_ij]: dL/dlogits = g (softmax - one-hot at column 0),
        # column 0 written as p_i+ - 1 = -sum_j p_ij (no cancellation when p_i+ is close to 1).
        q, k, n = queries.to(dtype), positives.to(dtype), negatives.to(dtype)
        w = torch.softmax(reference.queue_info_nce_logits(q, k, n, temperature, normalize), dim=1)
        w[:, 0] = -w[:, 1:].sum(dim=1)
        w *= grad.to(dtype)[:, None] / temperature
        rq, rk, rn = (_scales(x, normalize).to(dtype) for x in (q, k, n))
        gq = w[:, :1] * (k * rk[:, None]) + w[:, 1:] @ (n * rn[:, None])
        gk = w[:, :1] * (q * rq[:, None])
        dq = _through_normalization(gq, q, rq, normalize)
        dk = _through_normalization(gk, k, rk, normalize)
        return dq.to(queries.dtype), dk.to(positives.dtype)


BACKENDS = OpBackends(
    "nt_xent",
    {
        "reference": _Reference(),
        "cpp": _Fused(_cpp_lse, _CPP_GRAD, _cpp_grad_symmetric, _cpp_grad_queries, float64_ok=False),
        "triton": _Fused(lazy("fastssl.triton.nt_xent", "lse"), lazy("fastssl.triton.nt_xent", "grad"),
                         lazy("fastssl.triton.nt_xent", "grad_symmetric"),
                         lazy("fastssl.triton.nt_xent", "grad_queries"), float64_ok=False),
    },
    auto_order={"cpu": ("cpp", "reference"), "cuda": ("triton", "reference")},
    native_ops=("info_nce_lse", "info_nce_grad", "info_nce_grad_queries"),
)


# ------------------------------------------------------------------------------------------ custom ops


@torch.library.custom_op("fastssl::info_nce", mutates_args=())
def info_nce_op(queries: torch.Tensor, keys: torch.Tensor, positive_index: torch.Tensor, exclude_index: torch.Tensor,
              temperature: float, normalize: bool, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    return BACKENDS.impls[backend].info_nce(queries, keys, positive_index, exclude_index, temperature, normalize)


@info_nce_op.register_fake
def _(queries, keys, positive_index, exclude_index, temperature, normalize, backend):
    dtype = loss_dtype(queries.dtype)
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
def nt_xent_op(z: torch.Tensor, temperature: float, normalize: bool, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    return BACKENDS.impls[backend].nt_xent(z, temperature, normalize)


@nt_xent_op.register_fake
def _(z, temperature, normalize, backend):
    dtype = loss_dtype(z.dtype)
    return z.new_empty(z.shape[0], dtype=dtype), z.new_empty(z.shape[0], dtype=dtype)


@torch.library.custom_op("fastssl::nt_xent_backward", mutates_args=())
def _nt_xent_backward(grad: torch.Tensor, z: torch.Tensor, lse: torch.Tensor, temperature: float, normalize: bool,
                      backend: str) -> torch.Tensor:
    return BACKENDS.impls[backend].nt_xent_backward(grad, z, lse, temperature, normalize)


@_nt_xent_backward.register_fake
def _(grad, z, lse, temperature, normalize, backend):
    return torch.empty_like(z)


@torch.library.custom_op("fastssl::queue_info_nce", mutates_args=())
def queue_info_nce_op(queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, temperature: float,
                      normalize: bool, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    return BACKENDS.impls[backend].queue_info_nce(queries, positives, negatives, temperature, normalize)


@queue_info_nce_op.register_fake
def _(queries, positives, negatives, temperature, normalize, backend):
    dtype = loss_dtype(queries.dtype)
    return queries.new_empty(queries.shape[0], dtype=dtype), queries.new_empty(queries.shape[0], dtype=dtype)


@torch.library.custom_op("fastssl::queue_info_nce_backward", mutates_args=())
def _queue_info_nce_backward(grad: torch.Tensor, queries: torch.Tensor, positives: torch.Tensor,
                             negatives: torch.Tensor, loss: torch.Tensor, lse: torch.Tensor, temperature: float,
                             normalize: bool, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    return BACKENDS.impls[backend].queue_info_nce_backward(grad, queries, positives, negatives, loss, lse,
                                                            temperature, normalize)


@_queue_info_nce_backward.register_fake
def _(grad, queries, positives, negatives, loss, lse, temperature, normalize, backend):
    return torch.empty_like(queries), torch.empty_like(positives)


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


def _queue_info_nce_setup(ctx, inputs, output):
    queries, positives, negatives, temperature, normalize, backend = inputs
    # The negatives are saved too (backward recomputes their logits), so autograd's version check
    # catches a queue updated in place between the loss and backward.
    ctx.save_for_backward(queries, positives, negatives, *output)
    ctx.options = (temperature, normalize, backend)
    ctx.mark_non_differentiable(output[1])


def _queue_info_nce_grad(ctx, grad_loss, grad_lse):
    queries, positives, negatives, loss, lse = ctx.saved_tensors
    dq, dk = torch.ops.fastssl.queue_info_nce_backward(grad_loss, queries, positives, negatives, loss, lse,
                                                       *ctx.options)
    # None for the negatives, by design: MoCo's queue holds keys of the momentum encoder, detached.
    return dq, dk, None, None, None, None


info_nce_op.register_autograd(_info_nce_grad, setup_context=_info_nce_setup)
queue_info_nce_op.register_autograd(_queue_info_nce_grad, setup_context=_queue_info_nce_setup)
nt_xent_op.register_autograd(_nt_xent_grad, setup_context=_nt_xent_setup)
