"""Shared test helpers: backend × device cases, the error-budget comparison against a float64 reference, a free port."""

from __future__ import annotations

import socket

import pytest
import torch

from fastssl.backends import unavailable_reason


def triton_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def backend_cases(backends=("reference", "cpp", "cuda", "triton")):
    """pytest params (backend, device), marked so that cuda/triton cases skip cleanly where they cannot run."""
    cases = []
    for backend in backends:
        if backend == "cuda":
            cases.append(pytest.param("cuda", "cuda", marks=pytest.mark.cuda, id="cuda"))
        elif backend == "triton":
            cases.append(pytest.param("triton", triton_device(), marks=pytest.mark.triton, id="triton"))
        else:
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
