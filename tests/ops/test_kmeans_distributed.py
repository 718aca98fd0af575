"""KMeans over gloo ranks on the CPU, each rank holding a slice of the rows (unequal, one rank with none): the same
centroids, objective and splits on every rank, equal to one process clustering all rows, and each rank's
assignment the slice of the single-process one."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist

from fastssl import _native
from fastssl.ops import KMeans
from helpers import spawn_gloo

K = 5


def _backend() -> str:
    return "cpp" if _native.state().available and hasattr(torch.ops.fastssl_C, "kmeans_assign") else "reference"


def _rows(total: int) -> torch.Tensor:
    """Rows of K separated blobs (row i in blob i mod K), float32."""
    g = torch.Generator().manual_seed(0)
    centres = 10 * torch.randn(K, 6, generator=g)
    labels = torch.arange(total) % K
    return centres[labels] + 0.3 * torch.randn(total, 6, generator=g)


def _fits(x: torch.Tensor, backend: str) -> dict:
    """k-means++ from a seed, and from centroids one of which lies far from every row (split at iteration 1)."""
    far = torch.full((1, 6), 1e3)
    init = torch.cat([_rows(K)[: K - 1], far])
    out = {}
    for name, options in (("kmeans++", dict(seed=7)), ("split", dict(init=init))):
        fit = KMeans(K, iterations=4, backend=backend, **options).fit(x)
        out[name] = (fit.centroids, fit.objective, fit.splits, fit.assignment)
    return out


def _worker(rank, world, sizes, out_dir, backend):
    x = _rows(sum(sizes))
    lo, hi = sum(sizes[:rank]), sum(sizes[: rank + 1])
    torch.save(_fits(x[lo:hi], backend), os.path.join(out_dir, f"rank{rank}.pt"))


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo")
@pytest.mark.parametrize("sizes", [(37, 23)])
def test_ranks_cluster_like_one_process(sizes, tmp_path):
    backend = _backend()
    spawn_gloo(_worker, len(sizes), tmp_path, sizes, str(tmp_path), backend)
    single = _fits(_rows(sum(sizes)), backend)
    for rank in range(len(sizes)):
        lo, hi = sum(sizes[:rank]), sum(sizes[: rank + 1])
        ranked = torch.load(tmp_path / f"rank{rank}.pt")
        for name, (centroids, objective, splits, assignment) in single.items():
            got_centroids, got_objective, got_splits, got_assignment = ranked[name]
            torch.testing.assert_close(got_centroids, centroids, rtol=0, atol=1e-5)
            # the sums are rounded per rank: centroids and objective within rounding
            torch.testing.assert_close(torch.tensor(got_objective), torch.tensor(objective), rtol=1e-4, atol=0)
            assert got_splits == splits and torch.equal(got_assignment, assignment[lo:hi])
        assert ranked["split"][2][0] == 1  # the far centroid's cluster was empty and split
