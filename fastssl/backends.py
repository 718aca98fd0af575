"""Backend selection shared by every op.

Backends: ``reference`` (pure PyTorch, any device), ``cpp`` (fastssl._C, CPU tensors), ``cuda``
(fastssl._C built with CUDA, CUDA tensors), ``triton`` (CUDA tensors; CPU tensors only under
Triton's interpreter, ``TRITON_INTERPRET=1`` set before Triton is imported).

``backend="auto"`` takes ``FASTSSL_BACKEND`` when it is set, else the first available backend of the
op's preference list for the input's device. Any other value is used as given and raises
:class:`BackendUnavailable` saying why and how to get it when it cannot run.

An op lists its implementations in an :class:`OpBackends`; :func:`native` and :func:`lazy` name the
compiled and the Triton ones without loading the extension or importing Triton until they run.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch

from . import _native

BACKENDS = ("reference", "cpp", "cuda", "triton")
ENV_VAR = "FASTSSL_BACKEND"


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run this op on this device; the message says why and what to do."""


@functools.cache
def triton_status() -> str | None:
    """None when Triton can be imported, else the reason it cannot."""
    if importlib.util.find_spec("triton") is None:
        return "Triton is not installed (it comes with CUDA builds of PyTorch on Linux: pip install triton)"
    return None


#: True while fastssl.triton._common.capture_launches records launches: CPU tensors then take the triton
#: backend without the interpreter (their launches are recorded, not run).
triton_launch_capture = False


def triton_interpreter() -> bool:
    """True when Triton runs kernels on the CPU through its interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def unavailable_reason(backend: str, device: torch.device) -> str | None:
    """None when ``backend`` can run on ``device``, else a sentence saying why not and how to fix it."""
    kind = device.type
    if backend == "reference":
        return None
    if backend == "cpp":
        if kind != "cpu":
            return f"the cpp backend runs on CPU tensors, the input is on {device}: use backend='cuda' or 'triton'"
        return _native.state().reason
    if backend == "cuda":
        if kind != "cuda":
            return f"the cuda backend runs on CUDA tensors, the input is on {device}: use backend='cpp' on the CPU"
        native = _native.state()
        if not native.available:
            return native.reason
        if not native.has_cuda:
            return (f"fastssl._C was built without CUDA; rebuild on a machine with nvcc and a CUDA build of "
                    f"PyTorch: FASTSSL_BUILD_CUDA=1 {_native.REBUILD}")
        return None
    if backend == "triton":
        reason = triton_status()
        if reason:
            return reason
        if kind == "cpu" and not (triton_interpreter() or triton_launch_capture):
            return ("Triton runs on CUDA tensors; for CPU tensors set TRITON_INTERPRET=1 before importing Triton "
                    "(the interpreter, for testing) or use backend='cpp'")
        if kind not in ("cpu", "cuda"):
            return f"Triton does not run on {device}"
        return None
    return f"unknown backend {backend!r}; choose one of {', '.join(('auto',) + BACKENDS)}"


def native(op_name: str) -> Callable:
    """The implementation that calls fastssl._C's op ``op_name`` (``torch.ops.fastssl_C.<op_name>``).

    The extension is loaded and the op looked up when it is called, never when it is named, so an op
    module can name it at import. Example: ``OpBackends("rotations", {"cpp": native("rotations"), ...})``.
    """

    def call(*args, **kwargs):
        return getattr(_native.ops(), op_name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = f"native({op_name!r})"
    return call


def lazy(module: str, name: str) -> Callable:
    """The implementation ``module.name``, imported on its first call: names a Triton launcher without
    importing Triton at ``import fastssl``.

    Example:
        >>> from fastssl.backends import lazy
        >>> split = lazy("os.path", "split")  # nothing imported yet
        >>> split("a/b")
        ('a', 'b')
    """
    target = None

    def call(*args, **kwargs):
        nonlocal target
        if target is None:
            target = getattr(importlib.import_module(module), name)
        return target(*args, **kwargs)

    call.__name__ = call.__qualname__ = f"lazy({module!r}, {name!r})"
    return call


_REGISTRY: dict[str, "OpBackends"] = {}


@dataclass
class OpBackends:
    """The implementations of one op, by backend, and the order ``auto`` tries them in per device type."""

    name: str
    impls: dict[str, Callable]
    auto_order: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"cpu": ("cpp", "reference"), "cuda": ("cuda", "triton", "reference")}
    )
    #: the fastssl_C ops the cpp/cuda implementations call (default: the op's own name)
    native_ops: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.native_ops is None:
            self.native_ops = (self.name,)
        _REGISTRY[self.name] = self

    def unavailable_reason(self, backend: str, device: torch.device) -> str | None:
        """None when this op can run ``backend`` on ``device``, else why not."""
        reason = unavailable_reason(backend, device)
        if reason is None and backend not in self.impls:
            return f"{self.name} has no {backend} implementation (it has: {', '.join(self.impls)})"
        if reason is None and backend in ("cpp", "cuda"):
            missing = _native.missing_ops(self.native_ops)
            if missing:
                return (f"fastssl._C was built before {self.name} existed (it lacks fastssl_C::{missing[0]}); "
                        f"rebuild it: {_native.REBUILD}")
        return reason

    def resolve(self, backend: str, device: torch.device) -> str:
        """The concrete backend that runs this op for an input on ``device``."""
        if not isinstance(backend, str):
            raise TypeError(f"backend must be a string, got {type(backend).__name__}")
        return _resolve(self.name, backend, device.type)

    def __call__(self, backend: str, *args, **kwargs):
        return self.impls[backend](*args, **kwargs)


def _resolve(name: str, backend: str, device_type: str) -> str:
    op = _REGISTRY[name]
    device = torch.device(device_type)
    if backend == "auto":
        backend = os.environ.get(ENV_VAR, "auto") or "auto"
        if backend == "auto":
            for candidate in op.auto_order.get(device_type, ("reference",)):
                reason = op.unavailable_reason(candidate, device)
                if reason is None:
                    return candidate
                if "was built before" in reason:
                    _warn_once(f"{name}: {reason}. Falling back to a slower backend meanwhile.")
            return "reference"
        source = f"{ENV_VAR}={backend}"
    else:
        source = f"backend={backend!r}"
    reason = op.unavailable_reason(backend, device)
    if reason:
        raise BackendUnavailable(f"{name}: {source} cannot run on {device_type}: {reason}")
    return backend


@functools.cache
def _warn_once(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=4)


# While torch.compile traces, _resolve runs eagerly (it loads the extension and reads the environment)
# and its answer enters the graph as a constant. This is what torch.compiler.assume_constant_result
# does; setting its marker directly avoids importing torch._dynamo — and with it Triton — at
# `import fastssl`. The fullgraph tests (tests/ops/test_lab.py) fail if a torch release changes it.
_resolve._dynamo_marked_constant = True


def available_backends(device: torch.device | str) -> list[str]:
    """The backends that can run on ``device`` in this process."""
    device = torch.device(device)
    return [b for b in BACKENDS if unavailable_reason(b, device) is None]
