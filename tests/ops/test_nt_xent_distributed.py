"""nt_xent_loss(gather=True) with 2 and 3 gloo processes on the CPU, equal and unequal batches:
loss and embedding gradients equal the single-process loss of the concatenated batch."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist

from fastssl import _native
from fastssl.reference import nt_xent as reference
from helpers import spawn_gloo

D, TAU = 24, 0.2


def _backend() -> str:
    return "cpp" if _native.state().available and hasattr(torch.ops.fastssl_C, "info_nce_lse") else "reference"


def _global_batch(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    z1 = torch.randn(n, D, generator=g, dtype=torch.float64)
    return z1, z1 + 1.5 * torch.randn(n, D, generator=g, dtype=torch.float64)


def _worker(rank, world, sizes, out_dir, backend):
    from fastssl.ops import nt_xent_loss

    z1, z2 = _global_batch(sizes)
    lo, hi = sum(sizes[:rank]), sum(sizes[: rank + 1])
    results = {}
    for reduction in ("mean", "sum", "none"):
        a = z1[lo:hi].float().requires_grad_()
        b = z2[lo:hi].float().requires_grad_()
        loss = nt_xent_loss(a, b, TAU, reduction=reduction, gather=True, backend=backend)
        (loss.sum() if reduction == "none" else loss).backward()
        results[reduction] = (loss.detach(), a.grad, b.grad)
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo")
@pytest.mark.parametrize("sizes", [(5, 2), (3, 0, 5)])  # unequal; 3 ranks, one with no rows
def test_gather_equals_single_process(sizes, tmp_path):
    backend = _backend()
    spawn_gloo(_worker, len(sizes), tmp_path, sizes, str(tmp_path), backend)
    z1, z2 = _global_batch(sizes)
    n = z1.shape[0]
    for reduction in ("mean", "sum", "none"):
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        per_anchor = reference.nt_xent_loss(a, b, TAU)
        total = per_anchor.mean() if reduction == "mean" else per_anchor.sum()
        ga, gb = torch.autograd.grad(total, (a, b))
        for rank in range(len(sizes)):
            loss, grad_a, grad_b = torch.load(tmp_path / f"rank{rank}.pt")[reduction]
            lo, hi = sum(sizes[:rank]), sum(sizes[: rank + 1])
            if reduction == "none":  # this rank's anchors: [its z1 rows; its z2 rows]
                expected = torch.cat([per_anchor[lo:hi], per_anchor[n + lo: n + hi]]).detach()
            else:
                expected = total.detach()  # the global value, on every rank
            torch.testing.assert_close(loss.double(), expected, rtol=2e-5, atol=2e-5)
            scale = ga.abs().max().item()
            torch.testing.assert_close(grad_a.double(), ga[lo:hi], rtol=0, atol=2e-5 * scale)
            torch.testing.assert_close(grad_b.double(), gb[lo:hi], rtol=0, atol=2e-5 * scale)
