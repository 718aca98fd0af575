"""No host reads on the GPU path of nt_xent_loss, info_nce_loss and rgb_to_lab (forward and backward).

The ops run on CPU tensors with the value checks in their CUDA mode (asynchronous_checks) and the
Triton backend under the interpreter; tests/host_reads.py counts every read back to the host. Each op
runs once before counting: importing the backend builds constants on the host once per process.
On a GPU, the same runs under torch.cuda.set_sync_debug_mode("error").
"""

from __future__ import annotations

import pytest
import torch

import fastssl
from fastssl import _validation
from fastssl.backends import triton_interpreter
from fastssl.ops import info_nce_loss, nt_xent_loss, rgb_to_lab
from helpers import backend_cases, require
from host_reads import count_host_reads

needs_triton = [pytest.mark.triton, pytest.mark.skipif(
    fastssl.backends.triton_status() is not None or not (triton_interpreter() or torch.cuda.is_available()),
    reason="needs CUDA, or TRITON_INTERPRET=1 for the CPU")]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _nt_xent_step(device):
    z1, z2 = (torch.randn(37, 40, device=device, requires_grad=True) for _ in range(2))
    nt_xent_loss(z1, z2, 0.1, backend="triton").backward()
    return z1.grad


def _info_nce_step(device):
    q = torch.randn(19, 40, device=device, requires_grad=True)
    k = torch.randn(71, 40, device=device, requires_grad=True)
    positive = torch.randint(0, 71, (19,), device=device)
    exclude = (positive + 1) % 71
    info_nce_loss(q, k, positive, 0.2, exclude_index=exclude, backend="triton").backward()
    return q.grad


def test_the_counter_sees_reads_and_the_eager_cpu_checks():
    x = torch.randn(4, 8)
    with count_host_reads() as reads:
        bool(x.sum() > 0)
        x.sum().item()
        x.nonzero()
    assert [r.split(" ")[0] for r in reads] == ["__bool__", "item", "nonzero"]
    with count_host_reads() as reads:  # the CPU mode of the checks reads the aminmax back
        nt_xent_loss(x, torch.randn(4, 8), backend="reference")
    assert reads
    assert bool(x.sum() > 0) in (True, False)  # restored: no wrapper left behind


@pytest.mark.parametrize("step", [_nt_xent_step, _info_nce_step], ids=["nt_xent", "info_nce"])
@pytest.mark.parametrize("_", [pytest.param(None, marks=needs_triton, id="triton")])
def test_loss_forward_and_backward_read_nothing(step, _):
    step(DEVICE)  # first call: imports, constants built once on the host
    with _validation.asynchronous_checks(), count_host_reads() as reads:
        grad = step(DEVICE)
    assert reads == [], reads
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("backend,device", backend_cases())
def test_rgb_to_lab_reads_nothing(backend, device):
    require(backend, device)
    x = torch.rand(2, 3, 5, 7, device=device, requires_grad=True)
    rgb_to_lab(x, backend=backend)  # first call: imports, constants built once on the host
    with _validation.asynchronous_checks(), count_host_reads() as reads:
        rgb_to_lab(x, backend=backend).sum().backward()
    assert reads == [], reads


def test_asynchronous_checks_still_refuse_bad_values():
    """The CUDA mode's torch._assert_async fails at once on the CPU, with the same one-line message."""
    z = torch.randn(4, 8)
    z[1, 1] = float("nan")
    with _validation.asynchronous_checks():
        with pytest.raises(RuntimeError, match="z1 contains NaN or infinite values"):
            nt_xent_loss(z, torch.randn(4, 8), backend="reference")
        with pytest.raises(RuntimeError, match="images is a float image outside"):
            rgb_to_lab(torch.rand(1, 3, 2, 2) * 255, backend="reference")
        with pytest.raises(RuntimeError, match=r"positive_index must lie in \[0, 5\)"):
            info_nce_loss(torch.randn(3, 8), torch.randn(5, 8), torch.tensor([0, 1, 5]), backend="reference")
        with pytest.raises(RuntimeError, match="a positive cannot be excluded"):
            info_nce_loss(torch.randn(3, 8), torch.randn(5, 8), torch.tensor([0, 1, 2]),
                          exclude_index=torch.tensor([1, 1, 0]), backend="reference")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("step", [_nt_xent_step, _info_nce_step], ids=["nt_xent", "info_nce"])
def test_gpu_step_does_not_synchronise(step):
    step("cuda")  # compile the kernels first: Triton's first launch may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step("cuda")
    finally:
        torch.cuda.set_sync_debug_mode("default")
