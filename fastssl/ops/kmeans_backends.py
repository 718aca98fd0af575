"""The k-means backends behind torch.library: how each computes an assignment and an update, and the
registered custom ops that dispatch to them. The public functions and the clustering driver are in
:mod:`fastssl.ops.kmeans`.

Registered ops (fake implementations for torch.compile; not differentiable):

* ``fastssl::kmeans_assign(x, centroids, backend) -> (assignment (N,) int64, distance (N,) float32)``;
* ``fastssl::kmeans_update(x, assignment, k, backend) -> (sums (K, D) float32, counts (K,) int64)``.

How each backend computes (the specification is fastssl/reference/kmeans.py):

* ``cpp`` (CPU): kernels/cpu/kmeans.h (bound in csrc/kmeans.cpp). Assignment: blocks of rows against
  tiles of centroids, one BLAS product per (block, tile) into a buffer that stays in cache and is reduced
  at once to a running minimum per row; threads over row blocks. Update: its own kernel, threads owning
  ranges of centroids, sums accumulated in float64 in row order (deterministic). Reads float32: other
  dtypes are converted first (an (N, D) float32 copy).
* ``triton`` (CUDA; the CPU through TRITON_INTERPRET=1 for tests): fastssl/triton/kmeans.py for the
  assignment (tl.dot tiles with a running (min, argmin), 16-bit rows read as they are). The update adds
  nothing a kernel would: ``index_add_`` of float32 rows (in row chunks) and ``bincount``; on CUDA its
  atomics add in no fixed order (sums may differ by an ulp from run to run).
* ``reference``: chunked float64 ``cdist`` and float64 ``index_add_``, cast to the outputs' dtypes.

Example:
    >>> import torch
    >>> x, c = torch.tensor([[0.0, 0.0], [3.0, 0.0]]), torch.tensor([[1.0, 0.0], [2.5, 0.0]])
    >>> assignment, distance = torch.ops.fastssl.kmeans_assign(x, c, "reference")
    >>> assignment.tolist(), distance.tolist()
    ([0, 1], [1.0, 0.25])
"""

from __future__ import annotations

import torch

from .._dtypes import triton_reads
from ..backends import OpBackends, lazy, native
from ..reference import kmeans as reference

#: Rows the triton backend's update converts to float32 at a time.
UPDATE_CHUNK_ROWS = 1 << 16


class _Reference:
    def assign(self, x, centroids):
        assignment, distance = reference.assign(x, centroids)
        return assignment, distance.float()

    def update(self, x, assignment, k):
        sums, counts = reference.update(x, assignment, k)
        return sums.float(), counts


class _Cpp:
    def __init__(self):
        self._assign, self._update = native("kmeans_assign"), native("kmeans_update")

    def assign(self, x, centroids):
        return self._assign(x, centroids)

    def update(self, x, assignment, k):
        return self._update(x, assignment, k)


class _Triton:
    _reads = staticmethod(triton_reads((torch.float32, torch.float16, torch.bfloat16)))

    def __init__(self):
        self._assign = lazy("fastssl.triton.kmeans", "assign")

    def assign(self, x, centroids):
        if x.dtype not in self._reads():  # float64, and bfloat16 under the interpreter
            x = x.float()
        return self._assign(x, centroids)

    def update(self, x, assignment, k):
        sums = torch.zeros((k, x.shape[1]), dtype=torch.float32, device=x.device)
        for start in range(0, x.shape[0], UPDATE_CHUNK_ROWS):
            rows = slice(start, start + UPDATE_CHUNK_ROWS)
            sums.index_add_(0, assignment[rows], x[rows].float())
        return sums, torch.bincount(assignment, minlength=k)


BACKENDS = OpBackends(
    "kmeans",
    {"reference": _Reference(), "cpp": _Cpp(), "triton": _Triton()},
    auto_order={"cpu": ("cpp", "reference"), "cuda": ("triton", "reference")},
    native_ops=("kmeans_assign", "kmeans_update"),
)

#: The dtype each backend's kernels read rows in (None: any): the driver converts once, not per call.
KERNEL_ROWS = {"cpp": torch.float32}


@torch.library.custom_op("fastssl::kmeans_assign", mutates_args=())
def kmeans_assign_op(x: torch.Tensor, centroids: torch.Tensor, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    return BACKENDS.impls[backend].assign(x, centroids)


@kmeans_assign_op.register_fake
def _(x, centroids, backend):
    n = x.shape[0]
    return x.new_empty(n, dtype=torch.int64), x.new_empty(n, dtype=torch.float32)


@torch.library.custom_op("fastssl::kmeans_update", mutates_args=())
def kmeans_update_op(x: torch.Tensor, assignment: torch.Tensor, k: int,
                     backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    return BACKENDS.impls[backend].update(x, assignment, k)


@kmeans_update_op.register_fake
def _(x, assignment, k, backend):
    return x.new_empty((k, x.shape[1]), dtype=torch.float32), x.new_empty(k, dtype=torch.int64)
