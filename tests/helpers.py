"""Shared test helpers: backend × device cases, the error-budget comparison against a float64 reference, a free port,
gloo process groups."""

from __future__ import annotations

import datetime
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fastssl.backends import unavailable_reason


def triton_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def backend_cases(backends=("reference", "cpp", "cuda", "triton"), *, compared_with_reference=False):
    """pytest params (backend, device), marked so that cuda/triton cases skip cleanly where they cannot run.

    The reference runs on the CPU and on CUDA. ``compared_with_reference=True`` is for tests that check each case
    against the reference computed on the CPU: the reference's CPU case, which would compare the reference with
    itself, is left out (its CUDA case stays: it checks the reference's arithmetic on the GPU).

    Example:
        >>> [case.id for case in backend_cases()]
        ['reference', 'reference-cuda', 'cpp', 'cuda', 'triton']
        >>> [case.id for case in backend_cases(compared_with_reference=True)]
        ['reference-cuda', 'cpp', 'cuda', 'triton']
        >>> [case.id for case in backend_cases(("cpp", "triton"))]
        ['cpp', 'triton']
    """
    cases = []
    for backend in backends:
        if backend == "cuda":
            cases.append(pytest.param("cuda", "cuda", marks=pytest.mark.cuda, id="cuda"))
        elif backend == "triton":
            cases.append(pytest.param("triton", triton_device(), marks=pytest.mark.triton, id="triton"))
        else:
            if not (backend == "reference" and compared_with_reference):
                cases.append(pytest.param(backend, "cpu", id=backend))
            if backend == "reference":
                cases.append(pytest.param(backend, "cuda", marks=pytest.mark.cuda, id="reference-cuda"))
    return cases


def require(backend: str, device: str) -> None:
    """Skips (with the reason) when the backend cannot run here, e.g. the extension is not built."""
    reason = unavailable_reason(backend, torch.device(device))
    if reason:
        pytest.skip(reason)


def assert_close_to_reference(actual: torch.Tensor, expected64: torch.Tensor, atol: float, name: str = "output"):
    """Error budget in the flash-attention style: |actual - expected| may be twice the rounding error of
    storing the float64 reference in actual's dtype, plus ``atol`` for the kernel's float32 arithmetic."""
    assert actual.shape == expected64.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected64.shape)}"
    expected64 = expected64.to(torch.float64).cpu()
    actual64 = actual.detach().to(torch.float64).cpu()
    storage_error = (expected64.to(actual.dtype).to(torch.float64) - expected64).abs().max().item()
    error = (actual64 - expected64).abs().max().item()
    budget = 2 * storage_error + atol
    assert error <= budget, f"{name}: max |error| {error:.3g} > budget {budget:.3g} (dtype {actual.dtype})"


def random_images(shape, dtype, generator=None, device="cpu"):
    """Fresh random images: uint8 over [0, 255], floats uniform over [0, 1]."""
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator).to(device)
    return torch.rand(shape, dtype=torch.float64, generator=generator).to(dtype).to(device)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (for the gloo rendezvous of multi-process tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_gloo(worker, world: int, tmp_path, *args) -> None:
    """Runs ``worker(rank, world, *args)`` in ``world`` spawned processes joined in one gloo group (1 thread each).

    The processes meet through a file in ``tmp_path`` rather than a TCP store, so no port can be taken in between
    and no rank hosts a store the others still need; they pass a barrier before tearing the group down, so no rank
    leaves while a peer still talks to it. A worker's exception fails the spawn (and so the test)."""
    init_file = tmp_path / "gloo-rendezvous"
    mp.spawn(_gloo_process, args=(world, str(init_file), worker, args), nprocs=world, join=True)


def _gloo_process(rank, world, init_file, worker, args):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))
    try:
        worker(rank, world, *args)
        dist.barrier()
    finally:
        dist.destroy_process_group()
