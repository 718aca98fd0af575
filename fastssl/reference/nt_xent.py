"""NT-Xent (SimCLR) and InfoNCE losses, written out with the full logit matrix: the specification.

InfoNCE, for query rows q_i (M, D), key rows k_j (K, D), a positive column p(i) and an optional
excluded column e(i) per row (-1: none):

    a_ij   = cos(q_i, k_j) / tau            (normalize=True; q_i . k_j / tau when normalize=False)
    loss_i = -a_{i,p(i)} + log sum_{j != e(i)} exp(a_ij)

The positive is part of the denominator. NT-Xent (Chen et al. 2020, "A Simple Framework for
Contrastive Learning of Visual Representations", eq. 1) is InfoNCE over z = [z1; z2] (2N rows)
against itself, with p(i) = i + N (mod 2N) and e(i) = i: each of the 2N anchors has the other view
as positive and the 2N - 1 other rows in its denominator.

Queue InfoNCE (MoCo, He et al. 2020, "Momentum Contrast for Unsupervised Visual Representation
Learning", eq. 1): each query q_i (M, D) has its own positive key k_i (M, D) and every query shares
the negatives n_j (K, D) (MoCo's queue); the other queries' positives are not in the denominator:

    s_i+ = cos(q_i, k_i) / tau,  s_ij = cos(q_i, n_j) / tau   (dot products when normalize=False)
    loss_i = -s_i+ + log(exp(s_i+) + sum_j exp(s_ij))

i.e. cross-entropy of the logits [s_i+, s_i1, ..., s_iK] with label 0.

These functions build the (M, K) matrix, so their memory is quadratic: they are for tests,
benchmarks and small batches. They compute in float64 for float64 inputs and in float32 otherwise,
and are differentiable with autograd.

Example (N = 2 pairs: row i's positive is i + N mod 2N, and it leaves itself out):
    >>> positive, exclude = nt_xent_indices(2)
    >>> positive.tolist(), exclude.tolist()
    ([2, 3, 0, 1], [0, 1, 2, 3])
"""

from __future__ import annotations

import torch

NORM_EPS = 1e-12  # as torch.nn.functional.normalize: x / max(||x||, eps)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _normalize(x: torch.Tensor) -> torch.Tensor:
    # max(|x|, eps), written with sqrt of a clamped square sum (same value and gradient as x.norm)
    return x / (x * x).sum(dim=1, keepdim=True).clamp_min(NORM_EPS**2).sqrt()


def info_nce_logits(queries: torch.Tensor, keys: torch.Tensor, temperature: float,
                    exclude_index: torch.Tensor | None = None, normalize: bool = True) -> torch.Tensor:
    """(M, K) logits a_ij, with -inf at the excluded column of each row."""
    dtype = compute_dtype(queries.dtype)
    q, k = queries.to(dtype), keys.to(dtype)
    if normalize:
        q, k = _normalize(q), _normalize(k)
    logits = q @ k.T / temperature
    if exclude_index is not None:
        rows = torch.nonzero(exclude_index >= 0).flatten()
        mask = torch.zeros_like(logits, dtype=torch.bool)
        mask[rows, exclude_index[rows]] = True
        logits = logits.masked_fill(mask, float("-inf"))
    return logits


def info_nce_loss(queries: torch.Tensor, keys: torch.Tensor, positive_index: torch.Tensor, temperature: float,
                  exclude_index: torch.Tensor | None = None, normalize: bool = True) -> torch.Tensor:
    """(M,) per-query losses; see the module docstring."""
    logits = info_nce_logits(queries, keys, temperature, exclude_index, normalize)
    positive = logits.gather(1, positive_index.view(-1, 1)).squeeze(1)
    return torch.logsumexp(logits, dim=1) - positive


def info_nce_lse(queries, keys, temperature, exclude_index=None, normalize=True) -> torch.Tensor:
    """(M,) log-sum-exp of each row over its non-excluded columns."""
    return torch.logsumexp(info_nce_logits(queries, keys, temperature, exclude_index, normalize), dim=1)


def queue_info_nce_logits(queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor,
                          temperature: float, normalize: bool = True) -> torch.Tensor:
    """(M, 1 + K) logits of the queue form: column 0 holds s_i+, columns 1.. the negatives' s_ij."""
    dtype = compute_dtype(queries.dtype)
    q, k, n = queries.to(dtype), positives.to(dtype), negatives.to(dtype)
    if normalize:
        q, k, n = _normalize(q), _normalize(k), _normalize(n)
    return torch.cat([(q * k).sum(dim=1, keepdim=True), q @ n.T], dim=1) / temperature


def queue_info_nce_loss(queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, temperature: float,
                        normalize: bool = True) -> torch.Tensor:
    """(M,) per-query losses of the queue form; see the module docstring."""
    logits = queue_info_nce_logits(queries, positives, negatives, temperature, normalize)
    return torch.logsumexp(logits, dim=1) - logits[:, 0]


def queue_info_nce_cross_entropy(queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor,
                                 temperature: float) -> torch.Tensor:
    """MoCo's formulation (normalised rows, [q.k+, q.queue] / tau, cross-entropy with label 0), mean over
    queries: the "naive" provider of the benchmark."""
    q = torch.nn.functional.normalize(queries, dim=1)
    k = torch.nn.functional.normalize(positives, dim=1)
    n = torch.nn.functional.normalize(negatives, dim=1)
    l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
    l_neg = torch.einsum("nc,kc->nk", q, n)
    logits = torch.cat([l_pos, l_neg], dim=1).to(compute_dtype(q.dtype)) / temperature
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return torch.nn.functional.cross_entropy(logits, labels)


def nt_xent_indices(n: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive_index, exclude_index) of the 2n anchors of z = [z1; z2]: i <-> i + n, and i itself."""
    rows = torch.arange(2 * n, device=device)
    return (rows + n) % (2 * n), rows


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float, normalize: bool = True) -> torch.Tensor:
    """(2N,) per-anchor NT-Xent losses, anchors ordered [z1 rows; z2 rows]. The SimCLR loss is their mean."""
    z = torch.cat([z1, z2])
    positive, exclude = nt_xent_indices(z1.shape[0], z.device)
    return info_nce_loss(z, z, positive, temperature, exclude, normalize)


def nt_xent_loss_cross_entropy(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """The usual PyTorch formulation (matmul + masked diagonal + cross-entropy), mean over anchors.

    A second, independent statement of the same loss; also the "naive" provider of the benchmark.
    """
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    logits = (z @ z.T).to(compute_dtype(z.dtype)) / temperature
    logits = logits.fill_diagonal_(float("-inf"))
    target = (torch.arange(2 * n, device=z.device) + n) % (2 * n)
    return torch.nn.functional.cross_entropy(logits, target)
