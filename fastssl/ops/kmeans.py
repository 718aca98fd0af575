"""k-means clustering (DeepCluster's): fused assignment and update ops, the :class:`KMeans` driver, and the
feature preprocessing DeepCluster applies before it (:func:`pca_whiten`, :func:`l2_normalize`).

* :func:`kmeans_assign`: the nearest centroid of each row and its squared distance, computed as
  ||x||^2 - 2 x.c + ||c||^2 by tiled matrix products with the arg-min in the same pass: the (N, K)
  distances are never held (see :mod:`fastssl.ops.kmeans_backends` for each backend).
* :func:`kmeans_update`: per-cluster sums and counts of the rows.
* :class:`KMeans`: Lloyd's iterations as faiss runs them (objective taken at each assignment, centroids
  updated after it, empty clusters split from a donor chosen with probability proportional to its size
  minus one, with a +-1/1024 perturbation; the rule is fastssl/reference/kmeans.py's), seeded
  initialisation (k-means++ or random rows), sharded over ranks when torch.distributed is initialised.

DeepCluster's recipe on features ``f`` (N, D)::

    whitened, projection = pca_whiten(f, 256)
    kmeans = KMeans(10000, iterations=20, init="random", seed=epoch).fit(l2_normalize(whitened))
    pseudo_labels = kmeans.assignment

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    >>> x = (centres[:, None] + 0.1 * torch.randn(3, 20, 2, generator=g)).reshape(60, 2)
    >>> kmeans = KMeans(3, iterations=5, seed=1).fit(x)
    >>> len(kmeans.objective), kmeans.assignment.bincount().tolist()
    (5, [20, 20, 20])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _validation as v
from ..reference import kmeans as rule
from .kmeans_backends import BACKENDS, KERNEL_ROWS, kmeans_assign_op, kmeans_update_op

ROW_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
CENTROID_DTYPES = (torch.float32, torch.float64)
INITS = ("kmeans++", "random")
#: k-means++ picks its centroids among this many uniformly drawn rows per cluster (all rows when fewer): its
#: K rounds then cost about as much as one assignment of 8 K rows, not of N.
PLUS_PLUS_CANDIDATES = 8
#: Random streams of one seed (torch.Generator seeds seed * 3 + stream): rows drawn for the initialisation,
#: k-means++'s draws (rank 0 only), and the donors of empty clusters.
CANDIDATE_STREAM, PLUS_PLUS_STREAM, SPLIT_STREAM = 0, 1, 2
#: Rows projected at a time by :class:`Whitening` and accumulated at a time by :func:`pca_whiten`.
CHUNK_ROWS = 1 << 15


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _check_rows(x, name: str, dtypes=ROW_DTYPES) -> torch.Tensor:
    v.check_tensor(x, name)
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (N, D), got {tuple(x.shape)}")
    if x.dtype not in dtypes:
        raise TypeError(f"{name} must have dtype {' or '.join(map(_dtype_name, dtypes))}, got {_dtype_name(x.dtype)}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} has D = 0 features (shape {tuple(x.shape)}); k-means needs D >= 1")
    v.check_finite(x, name)
    return x


def _check_centroids(centroids, x: torch.Tensor) -> torch.Tensor:
    v.check_tensor(centroids, "centroids")
    if centroids.dim() != 2 or centroids.shape[0] == 0:
        raise ValueError(f"centroids must have shape (K, D) with K >= 1, got {tuple(centroids.shape)}")
    if centroids.shape[1] != x.shape[1]:
        raise ValueError(f"x and centroids must have the same D, got {tuple(x.shape)} and {tuple(centroids.shape)}")
    _check_rows(centroids, "centroids", CENTROID_DTYPES)
    v.check_same_device({"x": x, "centroids": centroids})
    return centroids


def kmeans_assign(x: torch.Tensor, centroids: torch.Tensor, *,
                  backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """The nearest centroid of each row, without materialising the (N, K) distances.

    Args:
        x: (N, D) rows, float32, float16, bfloat16 or float64 (the reference computes in float64, the fused
            backends in float32: 16-bit rows as they are, float64 rows rounded), any strides, finite
            (checked unless FASTSSL_CHECK_FINITE=0). N may be 0.
        centroids: (K, D) float32 (or float64, rounded to float32 by the fused backends), K >= 1, finite.
        backend: "auto" | "reference" | "cpp" | "triton" (auto: cpp on CPU, triton on CUDA).

    Returns:
        (assignment (N,) int64, distance (N,) float32): a_i = argmin_j ||x_i - c_j||^2, ties to the lowest j,
        and d_i = ||x_i - c_{a_i}||^2, computed as ||x_i||^2 - 2 x_i.c_j + ||c_j||^2 and clamped at 0 (the
        fused backends; the reference takes the exact differences in float64). Extra memory O(N + K).

    Example:
        >>> import torch
        >>> assignment, distance = kmeans_assign(torch.tensor([[0.0], [4.0]]), torch.tensor([[1.0], [2.0], [5.0]]))
        >>> assignment.tolist(), distance.tolist()
        ([0, 2], [1.0, 1.0])
    """
    _check_rows(x, "x")
    _check_centroids(centroids, x)
    return kmeans_assign_op(x, centroids, BACKENDS.resolve(backend, x.device))


def kmeans_update(x: torch.Tensor, assignment: torch.Tensor, k: int, *,
                  backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-cluster sums and counts of the rows: the statistics of a k-means update.

    Args:
        x: (N, D) rows, as in :func:`kmeans_assign`.
        assignment: (N,) integer cluster of each row, in [0, k).
        k: the number of clusters, >= 1.
        backend: as in :func:`kmeans_assign` (see :mod:`fastssl.ops.kmeans_backends` for how each adds).

    Returns:
        (sums (K, D) float32, counts (K,) int64); the new centroids are sums / counts where counts > 0.

    Example:
        >>> import torch
        >>> sums, counts = kmeans_update(torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([1, 1, 0]), 3)
        >>> sums.flatten().tolist(), counts.tolist()
        ([4.0, 3.0, 0.0], [1, 2, 0])
    """
    _check_rows(x, "x")
    k = v.check_int(k, "k", 1)
    assignment = v.check_integer_tensor(assignment, "assignment", ((x.shape[0],),), x.device)
    v.check_index_range(assignment, "assignment", 0, k)
    return kmeans_update_op(x, assignment.contiguous(), k, BACKENDS.resolve(backend, x.device))


# ------------------------------------------------------------------------------------------ the driver


def _generator(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 3 + stream)


class _Shards:
    """This process's share of the rows: every rank's when torch.distributed is initialised, else all of them."""

    def __init__(self, rows: int, device: torch.device):
        import torch.distributed as dist

        self.dist = dist if dist.is_available() and dist.is_initialized() else None
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if self.dist else (0, 1)
        sizes = [rows]
        if self.dist:
            mine = torch.tensor([rows], dtype=torch.int64, device=device)
            every = [torch.zeros_like(mine) for _ in range(self.world)]
            self.dist.all_gather(every, mine)
            sizes = [int(s) for s in every]
        self.total, self.offset, self.rows = sum(sizes), sum(sizes[:self.rank]), rows

    def sum(self, *tensors: torch.Tensor) -> None:
        """All-reduces each tensor in place (a no-op on one rank)."""
        for t in tensors if self.dist else ():
            self.dist.all_reduce(t)

    def broadcast(self, t: torch.Tensor) -> torch.Tensor:
        """Rank 0's ``t`` on every rank (``t`` must have its shape and dtype everywhere)."""
        if self.dist:
            self.dist.broadcast(t, src=0)
        return t

    def gather(self, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """(len(rows), D) float32: the rows of the whole (global) data at the global indices ``rows`` (CPU int64),
        on every rank: each rank fills in the rows it holds, zeros elsewhere, summed over ranks (exact)."""
        local = rows - self.offset
        mine = (local >= 0) & (local < self.rows)
        if not self.dist:
            return x[local.to(x.device)].float()
        out = torch.zeros((rows.numel(), x.shape[1]), dtype=torch.float32, device=x.device)
        out[mine.to(x.device)] = x[local[mine].to(x.device)].float()
        self.sum(out)
        return out


def _kmeans_plus_plus(candidates: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k rows of ``candidates`` (S, D) float32 by D^2 sampling (Arthur & Vassilvitskii 2007): the first uniformly,
    each next with probability proportional to its squared distance to the nearest one chosen. The draws come
    from the CPU ``generator``; the chosen rows stay on the device (no host read per round)."""
    s = candidates.shape[0]
    norms = torch.linalg.vector_norm(candidates, dim=1).square()

    def distances_to(j: torch.Tensor) -> torch.Tensor:
        row = candidates.index_select(0, j)
        return (norms + norms.index_select(0, j) - 2 * (candidates @ row.T).squeeze(1)).clamp_min(0)

    chosen = [torch.randint(s, (1,), generator=generator).to(candidates.device)]
    closest = distances_to(chosen[0])
    for _ in range(1, k):
        cumulative = closest.double().cumsum(0)
        target = torch.rand(1, generator=generator, dtype=torch.float64).to(candidates.device) * cumulative[-1:]
        j = torch.searchsorted(cumulative, target, right=True).clamp_max(s - 1)
        chosen.append(j)
        closest = torch.minimum(closest, distances_to(j))
    return candidates.index_select(0, torch.cat(chosen))


class KMeans:
    """k-means by Lloyd's iterations, as faiss's Clustering runs them, on fastssl's fused assignment.

    Each iteration assigns every row to its nearest centroid (its squared distance enters the objective),
    then moves each centroid to the mean of its rows; an empty cluster is refilled by splitting a donor
    (:func:`fastssl.reference.kmeans.split_empty_clusters`: donor drawn with probability proportional to
    max(size - 1, 0), the empty cluster takes its centroid, both scaled by 1 +- 1/1024 in alternating
    directions over the dimensions). After the last iteration the rows are assigned once more, to the final
    centroids (DeepCluster's pseudo-labels).

    Args:
        k: the number of clusters, >= 1 (and at most the number of rows).
        iterations: Lloyd iterations, >= 0 (faiss and DeepCluster: 20).
        init: "kmeans++" (D^2 sampling among 8 K uniformly drawn rows, see :data:`PLUS_PLUS_CANDIDATES`),
            "random" (K distinct rows drawn uniformly, as faiss), or a (K, D) tensor of initial centroids.
        seed: integer >= 0; the initial rows and the donors of splits are drawn from CPU ``torch.Generator`` s
            seeded from it, so a seed gives the same clustering on every device, backend and world size (up to
            the rounding of the sums).
        backend: the backend of the assignment and update ops (see :func:`kmeans_assign`).

    Distributed: when torch.distributed is initialised, every rank calls :meth:`fit` with its own rows (any
    number, even 0) and the clustering is that of all ranks' rows in rank order: the initial rows are drawn
    from the global indices and summed into place over ranks, k-means++ runs on rank 0 and is broadcast, each
    iteration assigns locally and all-reduces the sums, counts and objective. Every rank ends with the same
    centroids and objective and the assignment of its own rows.

    Attributes (after :meth:`fit`):
        centroids: (K, D) float32. assignment: (N,) int64, the nearest final centroid of each (local) row.
        objective: ``iterations`` floats, the mean squared distance of all rows at each iteration's assignment
        (faiss's objective divided by N). splits: the number of empty clusters split at each iteration.

    Example:
        >>> import torch
        >>> x = torch.cat([torch.zeros(5, 2), torch.ones(5, 2)])
        >>> kmeans = KMeans(2, iterations=3, seed=0).fit(x)  # k-means++: the second pick is in the other group
        >>> sorted(kmeans.centroids.sum(dim=1).tolist()), kmeans.objective[-1]
        ([0.0, 2.0], 0.0)
    """

    def __init__(self, k: int, iterations: int = 20, init="kmeans++", seed: int = 0, backend: str = "auto"):
        self.k = v.check_int(k, "k", 1)
        self.iterations = v.check_int(iterations, "iterations", 0)
        if not isinstance(init, torch.Tensor) and init not in INITS:
            raise ValueError(f"init must be one of {', '.join(map(repr, INITS))} or a (K, D) tensor, got {init!r}")
        self.init = init
        self.seed = v.check_int(seed, "seed", 0)
        if not isinstance(backend, str):
            raise TypeError(f"backend must be a string, got {type(backend).__name__}")
        self.backend = backend
        self.centroids = self.assignment = None
        self.objective: list[float] = []
        self.splits: list[int] = []

    def fit(self, x: torch.Tensor) -> "KMeans":
        """Clusters the rows of x (N, D) (float32, bfloat16, float16 or float64; finite). Returns self."""
        _check_rows(x, "x")
        backend = BACKENDS.resolve(self.backend, x.device)
        rows = KERNEL_ROWS.get(backend)
        # the kernels' dtype and layout, converted once for every iteration
        data = x.to(rows).contiguous() if rows is not None else x
        shards = _Shards(x.shape[0], x.device)
        if shards.total < self.k:
            raise ValueError(f"k-means of {shards.total} rows into k = {self.k} clusters: needs at least k rows")
        centroids = self._initial_centroids(data, shards)
        donors = _generator(self.seed, SPLIT_STREAM)
        self.objective, self.splits = [], []
        for _ in range(self.iterations):
            assignment, distance = kmeans_assign_op(data, centroids, backend)
            sums, counts = kmeans_update_op(data, assignment, self.k, backend)
            total = distance.sum(dtype=torch.float64).reshape(1)
            shards.sum(sums, counts, total)
            self.objective.append(float(total) / shards.total)
            centroids, splits = rule.split_empty_clusters(rule.centroids_from_sums(sums, counts), counts, donors)
            self.splits.append(splits)
        self.centroids = centroids
        self.assignment = kmeans_assign_op(data, centroids, backend)[0]
        return self

    def _initial_centroids(self, x: torch.Tensor, shards: _Shards) -> torch.Tensor:
        if isinstance(self.init, torch.Tensor):
            if tuple(self.init.shape) != (self.k, x.shape[1]):
                raise ValueError(f"init must have shape (k, D) = ({self.k}, {x.shape[1]}), "
                                 f"got {tuple(self.init.shape)}")
            _check_rows(self.init, "init", CENTROID_DTYPES)
            return shards.broadcast(self.init.to(x.device, torch.float32, copy=True))
        count = self.k if self.init == "random" else min(shards.total, PLUS_PLUS_CANDIDATES * self.k)
        drawn = torch.randperm(shards.total, generator=_generator(self.seed, CANDIDATE_STREAM))[:count]
        candidates = shards.gather(x, drawn)
        if self.init == "random":
            return candidates
        if shards.rank == 0:
            centroids = _kmeans_plus_plus(candidates, self.k, _generator(self.seed, PLUS_PLUS_STREAM))
        else:
            centroids = torch.empty((self.k, x.shape[1]), dtype=torch.float32, device=x.device)
        return shards.broadcast(centroids)

    def __repr__(self) -> str:
        init = "tensor" if isinstance(self.init, torch.Tensor) else repr(self.init)
        return (f"KMeans(k={self.k}, iterations={self.iterations}, init={init}, seed={self.seed}, "
                f"backend={self.backend!r})")


# ------------------------------------------------------------------------------------------ preprocessing


@dataclass(frozen=True)
class Whitening:
    """The affine map of :func:`pca_whiten`: ``(x - mean) @ matrix``, float32.

    mean: (D,); matrix: (D, dim), column c the c-th principal direction over sqrt(its variance + eps).
    """

    mean: torch.Tensor
    matrix: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(N, dim) float32 projection of x (N, D), in row chunks (no (N, D) float32 copy)."""
        out = torch.empty((x.shape[0], self.matrix.shape[1]), dtype=torch.float32, device=x.device)
        for start in range(0, x.shape[0], CHUNK_ROWS):
            rows = slice(start, start + CHUNK_ROWS)
            torch.mm(x[rows].float() - self.mean, self.matrix, out=out[rows])
        return out


def pca_whiten(x: torch.Tensor, dim: int, eps: float = 1e-5) -> tuple[torch.Tensor, Whitening]:
    """PCA whitening to ``dim`` dimensions (DeepCluster's faiss PCAMatrix with eigen_power -0.5).

    The covariance C = (x - mean)^T (x - mean) / N is accumulated in float64 over float32 row chunks; its
    eigenvectors (torch.linalg.eigh, float64) by decreasing eigenvalue, each signed so that its largest entry
    is positive, give the projection onto the top ``dim`` directions, each divided by sqrt(eigenvalue + eps).

    Args:
        x: (N, D) float rows, N >= 2, finite. dim: 1 <= dim <= D. eps: >= 0, added to the eigenvalues.

    Returns:
        (whitened (N, dim) float32 with about unit variance per column, the :class:`Whitening` that made it,
        for new rows).

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(500, 8, generator=g) @ torch.randn(8, 8, generator=g)
        >>> white, projection = pca_whiten(x, 4)
        >>> white.shape, torch.allclose(white.T @ white / 500, torch.eye(4), atol=1e-3)
        (torch.Size([500, 4]), True)
    """
    _check_rows(x, "x")
    n, d = x.shape
    if n < 2:
        raise ValueError(f"pca_whiten needs at least 2 rows, got {n}")
    dim = v.check_int(dim, "dim", 1)
    if dim > d:
        raise ValueError(f"dim must be at most D = {d}, got {dim}")
    eps = v.check_number(eps, "eps", 0.0)
    mean = x.sum(dim=0, dtype=torch.float64) / n
    covariance = torch.zeros((d, d), dtype=torch.float64, device=x.device)
    for start in range(0, n, CHUNK_ROWS):
        centred = x[start:start + CHUNK_ROWS].float() - mean.float()
        covariance += (centred.T @ centred).double()
    values, vectors = torch.linalg.eigh(covariance / n)
    values, vectors = values.flip(0)[:dim], vectors.flip(1)[:, :dim]
    largest = vectors.gather(0, vectors.abs().argmax(dim=0, keepdim=True))
    vectors = vectors * torch.sign(largest)
    matrix = vectors / (values.clamp_min(0) + eps).sqrt()
    projection = Whitening(mean.float(), matrix.float())
    return projection(x), projection


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows divided by their L2 norm, max(||x_i||, eps) (norms in float32; the result in x's dtype).

    Example:
        >>> import torch
        >>> l2_normalize(torch.tensor([[3.0, 4.0], [0.0, 0.0]])).tolist()
        [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    v.check_tensor(x, "x")
    if not x.is_floating_point():
        raise TypeError(f"x must be a float tensor, got {_dtype_name(x.dtype)}")
    norms = torch.linalg.vector_norm(x, dim=-1, keepdim=True, dtype=torch.float32).clamp_min(eps)
    return (x.float() / norms).to(x.dtype)
