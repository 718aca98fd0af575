"""k-means written out plainly: the specification of the assignment and update steps, and of the
split of empty clusters.

Assignment: each row x_i of x (N, D) goes to its nearest centroid c_j of c (K, D) in squared
Euclidean distance, ties to the lowest index j:

    a_i = min argmin_j ||x_i - c_j||^2,    d_i = ||x_i - c_{a_i}||^2

Update: per cluster j, the sum of its rows s_j = sum_{i: a_i = j} x_i and their count n_j; the new
centroid is s_j / n_j for the non-empty clusters.

Empty clusters (n_j = 0) are refilled one at a time, in increasing j, by splitting a donor cluster
(:func:`split_empty_clusters`): the donor is drawn with probability proportional to max(n - 1, 0)
over the current counts, the empty cluster takes the donor's centroid, and both are scaled by
1 +- 1/1024 in alternating directions over the dimensions (dimension 0: the empty one up, the donor
down; dimension 1 the other way round; ...), so that the two copies part; the donor's count is then
shared, half (not rounded) to each.

These functions compute in float64 (the exact differences x - c, no ||x||^2 - 2 x.c + ||c||^2
expansion) and are for tests and small problems: the assignment holds a (rows, K) chunk of distances.

Example (two clusters on a line):
    >>> import torch
    >>> x = torch.tensor([[0.0], [0.2], [1.0], [1.4]])
    >>> c = torch.tensor([[0.0], [1.0]])
    >>> assignment, distance = assign(x, c)
    >>> assignment.tolist(), [round(v, 2) for v in distance.tolist()]
    ([0, 0, 1, 1], [0.0, 0.04, 0.0, 0.16])
    >>> sums, counts = update(x, assignment, 2)
    >>> [round(v, 6) for v in (sums / counts[:, None]).flatten().tolist()]
    [0.1, 1.2]
"""

from __future__ import annotations

import torch

#: Relative perturbation of a split: a bit above float16's machine epsilon.
SPLIT_EPS = 1.0 / 1024
#: Distances held at once by :func:`assign` (float64 elements): rows are taken in chunks of this over K.
CHUNK_ELEMENTS = 1 << 22


def assign(x: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(assignment (N,) int64, distance (N,) float64): the nearest centroid of each row and its squared
    distance, ties to the lowest index. Any float dtypes; computed in float64."""
    n, k = x.shape[0], centroids.shape[0]
    c = centroids.double()
    assignment = torch.empty(n, dtype=torch.int64, device=x.device)
    distance = torch.empty(n, dtype=torch.float64, device=x.device)
    step = max(1, CHUNK_ELEMENTS // max(k, 1))
    for start in range(0, n, step):
        rows = x[start:start + step].double()
        squared = torch.cdist(rows, c, compute_mode="donot_use_mm_for_euclid_dist").square()
        distance[start:start + step], assignment[start:start + step] = squared.min(dim=1)
    return assignment, distance


def update(x: torch.Tensor, assignment: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sums (K, D) float64, counts (K,) int64): the sum and the number of the rows of each cluster."""
    sums = torch.zeros(k, x.shape[1], dtype=torch.float64, device=x.device)
    sums.index_add_(0, assignment, x.double())
    counts = torch.bincount(assignment, minlength=k)
    return sums, counts


def centroids_from_sums(sums: torch.Tensor, counts: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
    """s_j / n_j for the non-empty clusters; the empty ones keep ``previous`` (zeros when None) until split."""
    filled = counts > 0
    means = sums / counts.clamp_min(1).to(sums.dtype)[:, None]
    fallback = torch.zeros_like(means) if previous is None else previous.to(means.dtype)
    return torch.where(filled[:, None], means, fallback)


def perturbation_signs(d: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """(D,) +1, -1, +1, ...: the direction the refilled (empty) cluster moves in each dimension; the donor
    moves the other way."""
    signs = torch.ones(d, dtype=dtype, device=device)
    signs[1::2] = -1
    return signs


def split_empty_clusters(centroids: torch.Tensor, counts: torch.Tensor,
                         generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """(centroids with every empty cluster refilled, the number of splits); see the module docstring.

    Args:
        centroids: (K, D) float.
        counts: (K,) cluster sizes (any real dtype); at least one cluster holds 2 or more when one is empty.
        generator: a CPU torch.Generator; one ``torch.multinomial`` draw per empty cluster, over float64
            weights computed on the CPU, so every device and backend draws the same donors.
    """
    sizes = counts.detach().to("cpu", torch.float64).clone()
    empty = torch.nonzero(sizes == 0).flatten().tolist()
    if not empty:
        return centroids, 0
    out = centroids.clone()
    up = 1 + SPLIT_EPS * perturbation_signs(out.shape[1], torch.float64, out.device)
    down = 2 - up  # 1 - eps where up is 1 + eps
    for j in empty:
        weights = (sizes - 1).clamp_min(0)
        if not bool(weights.sum() > 0):
            raise ValueError("every cluster holds at most one row: there is no donor to split (N < K?)")
        donor = int(torch.multinomial(weights, 1, generator=generator))
        source = out[donor].double()
        out[j] = (source * up).to(out.dtype)
        out[donor] = (source * down).to(out.dtype)
        sizes[j] = sizes[donor] / 2
        sizes[donor] -= sizes[j]
    return out, len(empty)
