"""NT-Xent (SimCLR) and InfoNCE losses, fused: the (2N)^2 logit matrix is never materialized.

Public: :func:`nt_xent_loss`, :func:`info_nce_loss`, :func:`queue_info_nce_loss` (MoCo's form: a
positive key per query, a shared queue of negatives) and the modules :class:`NTXentLoss`,
:class:`InfoNCELoss` and :class:`QueueInfoNCELoss`; their arguments are checked here, once. The
losses run as the torch.library ops of :mod:`fastssl.ops.nt_xent_backends` (which also says how each
backend computes); ``gather=True`` joins the ranks' rows with
:func:`fastssl.distributed.all_gather_rows`.

Example:
    >>> import torch
    >>> z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    >>> nt_xent_loss(z1, z2, temperature=0.5, reduction="none").shape
    torch.Size([16])
"""

from __future__ import annotations

import math
import numbers

import torch

from .. import _validation as v
from ..distributed import all_gather_rows, global_sum, require_process_group
from .nt_xent_backends import BACKENDS, info_nce_op, nt_xent_op, queue_info_nce_op

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
REDUCTIONS = ("mean", "sum", "none")


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
                 reduction: str = "mean", gather: bool = False, backend: str = "auto", group=None,
                 rank_rows: list[int] | None = None) -> torch.Tensor:
    """NT-Xent, the SimCLR contrastive loss, without materializing the (2N, 2N) logit matrix.

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
        normalize: L2-normalize the rows first (SimCLR). False uses raw dot products.
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
        rank_rows: with ``gather``, every rank's N when the caller knows them (the trainer's batches say:
            ``batch["rank_samples"]``); without, they are gathered and read back to the host first (on a GPU,
            a wait for the device every step).

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
        return _reduce(nt_xent_op(z, temperature, bool(normalize), backend)[0], reduction)
    # Distributed: this rank's 2n rows are the queries; the keys are every rank's rows, in rank
    # order [z1_0; z2_0; z1_1; z2_1; ...] (the order of the columns does not change a log-sum-exp).
    require_process_group("gather=True", "use gather=False for a single process")
    keys, offset = all_gather_rows(z, group, None if rank_rows is None else [2 * n for n in rank_rows])
    if keys.shape[0] == 0:
        raise ValueError("z1 has no rows on any rank; the loss needs N >= 1 in total")
    n = z1.shape[0]
    rows = torch.arange(2 * n, device=z.device)
    positive = offset + (rows + n) % (2 * n)
    losses = info_nce_op(z, keys, positive, offset + rows, temperature, bool(normalize), backend)[0]
    if reduction == "none":
        return losses
    total = global_sum(losses.sum(), group)
    return total if reduction == "sum" else total / keys.shape[0]


def info_nce_loss(queries: torch.Tensor, keys: torch.Tensor, positive_index: torch.Tensor, temperature: float = 0.1,
                  *, exclude_index: torch.Tensor | None = None, normalize: bool = True, reduction: str = "mean",
                  backend: str = "auto") -> torch.Tensor:
    """InfoNCE of query rows against key rows, without materializing the (M, K) logit matrix.

    loss_i = -a_{i,p(i)} + log sum_{j != e(i)} exp(a_ij), a_ij = cos(q_i, k_j) / temperature (or
    q_i . k_j / temperature with normalize=False), p = ``positive_index``, e = ``exclude_index``.
    Keys can be another view's embeddings, a gathered batch, or positives followed by a memory bank
    of negatives (PIRL: queries (B, D), keys = [positives (B, D); bank (K, D)], positive_index =
    arange(B)); every key is in every row's denominator. For a positive per query and negatives
    shared by all (MoCo), use :func:`queue_info_nce_loss`.

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
    losses = info_nce_op(queries, keys, positive, exclude, temperature, bool(normalize), backend)[0]
    return _reduce(losses, reduction)


def queue_info_nce_loss(queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor,
                        temperature: float = 0.07, *, normalize: bool = True, reduction: str = "mean",
                        backend: str = "auto") -> torch.Tensor:
    """InfoNCE with a positive key per query and negatives shared by all queries (MoCo's loss, with
    its queue as the negatives), without materializing the (M, K) logit matrix.

    loss_i = -s_i+ + log(exp(s_i+) + sum_j exp(s_ij)), s_i+ = cos(q_i, k_i) / temperature,
    s_ij = cos(q_i, n_j) / temperature (dot products with normalize=False): the cross-entropy of the
    logits [q_i . k_i, q_i . n_1, ..., q_i . n_K] / temperature with label 0. Unlike
    :func:`info_nce_loss`, the other queries' positives are not in row i's denominator.

    Args:
        queries: (M, D) q, M >= 1, D >= 1.
        positives: (M, D) k+, row i the positive key of query i (MoCo: the momentum encoder's key of
            the same image).
        negatives: (K, D) n, K >= 1, shared by every query (MoCo: the queue of past keys; a queue
            kept as a (D, K) buffer is passed as ``queue.T``, which is copied to rows once per call).
            All three float32/float16/bfloat16 (accumulated in float32) or float64 (computed in float32
            by the fused backends, in float64 by the reference), one dtype, one device, finite (checked
            unless FASTSSL_CHECK_FINITE=0, as in :func:`nt_xent_loss`).
        temperature: tau > 0: 0.07 (MoCo v1), 0.2 (MoCo v2).
        normalize: L2-normalize the rows first (MoCo normalizes q and k; the queue holds normalized
            keys, so normalizing again changes nothing). False uses raw dot products.
        reduction: "mean" (MoCo's loss), "sum", or "none" for the (M,) per-query losses.
        backend: "auto" | "reference" | "cpp" | "triton" (auto: cpp on CPU, triton on CUDA).

    Returns:
        A float32 scalar (float64 for float64 inputs), or (M,) with reduction="none". Differentiable
        with respect to queries and positives. The negatives get no gradient, even when they require
        one: MoCo's queue holds keys that were detached when they were enqueued (the key encoder
        learns by momentum, not by gradient). Backward reads the negatives again: update the queue in
        place only after backward (an update before it makes backward raise autograd's "modified by
        an inplace operation" error), or pass a copy. Extra memory O((M + K) D) on the fused
        backends, O(M K) on the reference.

    Example (MoCo v1's shapes, a small queue):
        >>> import torch, fastssl
        >>> q, k = torch.randn(8, 128, requires_grad=True), torch.randn(8, 128, requires_grad=True)
        >>> queue = torch.nn.functional.normalize(torch.randn(4096, 128), dim=1)
        >>> loss = fastssl.ops.queue_info_nce_loss(q, k, queue, 0.07)
        >>> loss.backward()
        >>> loss.shape, q.grad.shape, k.grad.shape
        (torch.Size([]), torch.Size([8, 128]), torch.Size([8, 128]))
    """
    _check_embeddings(queries, "queries")
    _check_embeddings(positives, "positives")
    _check_embeddings(negatives, "negatives")
    if positives.shape != queries.shape:
        raise ValueError(f"positives must have the shape of queries (M, D) = {tuple(queries.shape)}, got "
                         f"{tuple(positives.shape)}")
    if negatives.shape[1] != queries.shape[1]:
        raise ValueError(f"negatives must have D = {queries.shape[1]} features like queries, got "
                         f"{tuple(negatives.shape)}")
    if not queries.dtype == positives.dtype == negatives.dtype:
        raise TypeError(f"queries, positives and negatives must have the same dtype, got {queries.dtype}, "
                        f"{positives.dtype} and {negatives.dtype}")
    v.check_same_device({"queries": queries, "positives": positives, "negatives": negatives})
    temperature = _check_temperature(temperature)
    _check_reduction(reduction)
    backend = BACKENDS.resolve(backend, queries.device)
    losses = queue_info_nce_op(queries, positives, negatives, temperature, bool(normalize), backend)[0]
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


class QueueInfoNCELoss(torch.nn.Module):
    """Module form of :func:`queue_info_nce_loss`: ``QueueInfoNCELoss(0.2)(queries, positives, queue)``."""

    def __init__(self, temperature: float = 0.07, *, normalize: bool = True, reduction: str = "mean",
                 backend: str = "auto"):
        super().__init__()
        self.temperature = _check_temperature(temperature)
        self.reduction = _check_reduction(reduction)
        self.normalize, self.backend = normalize, backend

    def forward(self, queries, positives, negatives) -> torch.Tensor:
        return queue_info_nce_loss(queries, positives, negatives, self.temperature, normalize=self.normalize,
                                   reduction=self.reduction, backend=self.backend)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, normalize={self.normalize}, reduction={self.reduction!r}"
