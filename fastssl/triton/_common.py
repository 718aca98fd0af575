"""What the Triton launchers share, and the tools that check their launches without a GPU.

Launchers wrap every launch in :func:`device_guard`, so that a kernel runs on the device (and the
current stream) of its tensors, not on whichever CUDA device happens to be current, and allocate
outputs of :func:`kernel_output_dtype`. Kernels hash with :func:`fmix32`, fastssl.random's hash.

Checking launches on a machine without a GPU:

- :func:`watch_launches` records each launch (kernel, grid, inside a device guard or not) and runs it
  (under ``TRITON_INTERPRET=1``).
- :func:`capture_launches` makes the public ops take ``backend="triton"`` on CPU tensors in a process
  *without* the interpreter, so that the launchers pick the tile configs they pick on a GPU, and
  records each launch instead of running it, specialised the way Triton specialises a real launch
  (Triton's own argument binder: int arguments equal to 1 become constants, pointers and ints
  divisible by 16 get divisibility hints, tensors become ``*fp32``, ``*bf16``, ... pointers). The
  kernels do not run: outputs hold zeros.
- :func:`compile_launch` compiles a captured launch for ``sm_<arch>`` with Triton's compiler and
  reports registers, spilled bytes and shared memory per block.

Example (in a process without ``TRITON_INTERPRET=1``; Triton's bundled ptxas does the compiling)::

    import torch
    from fastssl.ops import rotations
    from fastssl.triton._common import capture_launches, compile_launch

    with capture_launches() as launches:
        rotations(torch.zeros(2, 3, 1, 1, dtype=torch.uint8), backend="triton")
    usage = compile_launch(launches[0], arch=90)  # Usage(registers=..., spill_bytes=0, shared_bytes=0)
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import torch
import triton
import triton.language as tl

from .. import backends
from .. import random
from ..backends import triton_interpreter

#: Streaming multiprocessors of the GPU that capture_launches launches on: an H100/H200 SXM.
CAPTURE_SM_COUNT = 132
#: Shared memory a block can get (opt-in maximum), in bytes, by CUDA architecture.
MAX_SHARED_BYTES = {80: 166912, 86: 101376, 89: 101376, 90: 232448}
#: The largest grid Triton can launch: axis 0 up to 2^31 - 1 blocks, axes 1 and 2 up to 65535.
MAX_GRID = (2**31 - 1, 65535, 65535)

_guard_state = threading.local()


class _DeviceGuard:
    """Makes a CUDA tensor's device current while open; counts how deep launchers are in guards."""

    __slots__ = ("_cuda",)

    def __init__(self, t: torch.Tensor):
        self._cuda = torch.cuda.device(t.device) if t.is_cuda else None

    def __enter__(self):
        _guard_state.depth = getattr(_guard_state, "depth", 0) + 1
        if self._cuda is not None:
            self._cuda.__enter__()
        return self

    def __exit__(self, *exc):
        _guard_state.depth -= 1
        if self._cuda is not None:
            return self._cuda.__exit__(*exc)
        return False


def device_guard(t: torch.Tensor) -> _DeviceGuard:
    """Triton launches on the current CUDA device: make it the tensor's (a no-op for CPU tensors)."""
    return _DeviceGuard(t)


def inside_device_guard() -> bool:
    """True while this thread is inside a :func:`device_guard`."""
    return getattr(_guard_state, "depth", 0) > 0


def multiprocessor_count(device: torch.device) -> int:
    """Streaming multiprocessors of ``device``'s GPU (:data:`CAPTURE_SM_COUNT` while capturing launches)."""
    if backends.triton_launch_capture:
        return CAPTURE_SM_COUNT
    return _cuda_multiprocessor_count(torch.device(device))


@functools.cache
def _cuda_multiprocessor_count(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


FMIX32_C1 = tl.constexpr(random.FMIX32_MULTIPLIERS[0])
FMIX32_C2 = tl.constexpr(random.FMIX32_MULTIPLIERS[1])


@triton.jit
def fmix32(h):
    """murmur3's 32-bit finaliser of a uint32 tensor: :func:`fastssl.random.fmix32` (its multipliers), wrapping
    mod 2^32 as uint32 arithmetic does."""
    h = h ^ (h >> 16)
    h = h * FMIX32_C1
    h = h ^ (h >> 13)
    h = h * FMIX32_C2
    return h ^ (h >> 16)


def kernel_output_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernel writes: ``dtype``, or float32 for bfloat16 under the interpreter (cast after)."""
    return torch.float32 if dtype == torch.bfloat16 and triton_interpreter() else dtype


# --- recording launches ---------------------------------------------------------------------------


@dataclass
class Launch:
    """One ``kernel[grid](...)`` call made under :func:`capture_launches` or :func:`watch_launches`.

    ``signature``, ``constexprs`` and ``attrs`` are what Triton's binder makes of the arguments (only
    under :func:`capture_launches`); ``options`` the launch keywords (``num_warps``, ``num_stages``, ...).
    """

    kernel: Any
    grid: tuple[int, int, int]
    guarded: bool
    signature: dict[str, str] = field(default_factory=dict)
    constexprs: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.kernel.__name__ if hasattr(self.kernel, "__name__") else self.kernel.fn.__name__

    def constants(self) -> dict[str, Any]:
        """The compile-time constants by argument name (constexpr parameters and ints specialised to 1)."""
        names = list(self.signature)
        return {names[path[0]]: _plain(value) for path, value in self.constexprs.items()}

    def pointer_types(self) -> list[str]:
        """The element types of the pointer arguments, in order of first appearance (``fp32``, ``u8``, ...)."""
        types = [t[1:] for t in self.signature.values() if isinstance(t, str) and t.startswith("*")]
        return list(dict.fromkeys(types))

    def key(self) -> tuple:
        """What decides the compiled code: kernel, signature, constants, attributes, options."""
        return (self.kernel.fn.__module__, self.kernel.fn.__qualname__, tuple(self.signature.items()),
                repr(sorted(self.constexprs.items())), repr(sorted(self.attrs.items())),
                tuple(sorted(self.options.items())))

    def __getstate__(self) -> dict:
        # The kernel travels by name (the module attribute is the JITFunction, not its function):
        # launches can be sent to the worker processes that compile them.
        fn = self.kernel.fn if hasattr(self.kernel, "fn") else self.kernel
        return dict(self.__dict__, kernel=(fn.__module__, fn.__qualname__))

    def __setstate__(self, state: dict) -> None:
        module, name = state["kernel"]
        self.__dict__.update(state, kernel=getattr(importlib.import_module(module), name))


def _plain(value):
    return getattr(value, "value", value)


@contextlib.contextmanager
def _launch_hook(on_launch: Callable[[Any, Any, tuple, dict], bool]):
    """Calls ``on_launch(kernel, grid, args, kwargs)`` at every ``kernel[grid](*args, **kwargs)`` made inside;
    the launch runs when it returns True. Patches Triton's ``KernelInterface.__getitem__`` while open."""
    from triton.runtime.jit import KernelInterface

    original = KernelInterface.__getitem__

    def getitem(kernel, grid):
        launch = original(kernel, grid)

        def call(*args, **kwargs):
            if on_launch(kernel, grid, args, kwargs):
                return launch(*args, **kwargs)
            return None

        return call

    KernelInterface.__getitem__ = getitem
    try:
        yield
    finally:
        KernelInterface.__getitem__ = original


def _grid_dims(grid, bound_args: dict) -> tuple[int, int, int]:
    if callable(grid):
        grid = grid(bound_args)
    dims = tuple(int(g) for g in grid)
    return dims + (1,) * (3 - len(dims))


@contextlib.contextmanager
def watch_launches():
    """Records every Triton launch made inside (kernel, grid, whether inside a device guard) and runs it.

    Yields the list of :class:`Launch` it fills (``signature`` and the rest stay empty).
    """
    launches: list[Launch] = []

    def on_launch(kernel, grid, args, kwargs):
        launches.append(Launch(kernel, _grid_dims(grid, dict(zip(kernel.arg_names, args))), inside_device_guard()))
        return True

    with _launch_hook(on_launch):
        yield launches


@functools.cache
def _cuda_binder(kernel):
    """Triton's own argument binder for ``kernel``, built for a CUDA backend (the same for every arch)."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature

    backend = make_backend(GPUTarget("cuda", 90, 32))
    return backend, create_function_from_signature(kernel.signature, kernel.params, backend)


def _launch_options(kernel, kwargs: dict) -> dict:
    """The option keywords of a launch, with the defaults ``JITFunction.run`` adds."""
    from triton import knobs

    names = set(kernel.arg_names)
    options = {k: v for k, v in kwargs.items() if k not in names}
    options.setdefault("debug", bool(kernel.debug or knobs.runtime.debug))
    options.setdefault("instrumentation_mode", getattr(knobs.compilation, "instrumentation_mode", ""))
    return options


def specialize(kernel, grid, args: tuple, kwargs: dict) -> Launch:
    """The :class:`Launch` Triton would compile for ``kernel[grid](*args, **kwargs)`` on a CUDA GPU."""
    backend, binder = _cuda_binder(kernel)
    bound_args, specialization, options = binder(*args, **kwargs)
    _, signature, constexprs, attrs = kernel._pack_args(backend, dict(kwargs), bound_args, specialization, options)
    return Launch(kernel, _grid_dims(grid, bound_args), inside_device_guard(), signature, constexprs, attrs,
                  _launch_options(kernel, kwargs))


def _zeroed(allocate):
    def allocate_zeros(*args, **kwargs):
        return allocate(*args, **kwargs).zero_()

    return allocate_zeros


@contextlib.contextmanager
def capture_launches():
    """Records the Triton launches made inside as a GPU would see them, without running them.

    Inside, ops called with ``backend="triton"`` accept CPU tensors; the process must not run Triton's
    interpreter (the launchers would pick the interpreter's tile configs). Yields the list of
    :class:`Launch` it fills. ``torch.empty`` and ``torch.empty_like`` give zeros meanwhile, so that what
    the ops return (kernel outputs never written) holds zeros.
    """
    if triton_interpreter():
        raise RuntimeError("capture_launches records what a GPU would run: use it in a process without "
                           "TRITON_INTERPRET=1")
    from triton.runtime.jit import JITFunction

    launches: list[Launch] = []

    def on_launch(kernel, grid, args, kwargs):
        if not isinstance(kernel, JITFunction):
            raise TypeError(f"capture_launches records plain @triton.jit kernels, got {type(kernel).__name__}")
        launches.append(specialize(kernel, grid, args, kwargs))
        return False

    previous = backends.triton_launch_capture, torch.empty, torch.empty_like
    backends.triton_launch_capture = True
    # Outputs read after a launch (e.g. indices gathered from) must be valid: zeros, not garbage.
    torch.empty, torch.empty_like = _zeroed(torch.empty), _zeroed(torch.empty_like)
    try:
        with _launch_hook(on_launch):
            yield launches
    finally:
        backends.triton_launch_capture, torch.empty, torch.empty_like = previous


# --- compiling launches ---------------------------------------------------------------------------


class Usage(NamedTuple):
    """What one compiled kernel needs per thread and per block on its architecture."""

    registers: int  # per thread
    spill_bytes: int  # local memory per thread (spilled registers and stack arrays)
    shared_bytes: int  # per block


def _nvidia_tool(name: str) -> str:
    import triton

    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)


def resource_usage(cubin: bytes) -> tuple[int, int]:
    """(registers per thread, local memory bytes per thread) of a one-kernel cubin, read with Triton's cuobjdump."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as file:
        file.write(cubin)
        file.flush()
        report = subprocess.run([_nvidia_tool("cuobjdump"), "-res-usage", file.name], capture_output=True, text=True,
                                check=True).stdout
    found = re.search(r"REG:(\d+) STACK:(\d+) SHARED:\d+ LOCAL:(\d+)", report)
    if found is None:
        raise RuntimeError(f"cuobjdump -res-usage printed no resource line:\n{report}")
    registers, stack, local = map(int, found.groups())
    return registers, max(stack, local)


_compiled: dict[tuple, Usage] = {}


def compile_launch(launch: Launch, arch: int) -> Usage:
    """Compiles a captured launch for CUDA ``sm_<arch>`` (no GPU needed); registers, spills, shared memory.

    Compiles each distinct (kernel, signature, constants, options, arch) once per process; raises
    what Triton's compiler raises when the kernel does not compile.
    """
    key = launch.key() + (arch,)
    if key not in _compiled:
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource, make_backend

        target = GPUTarget("cuda", arch, 32)
        options = make_backend(target).parse_options(dict(launch.options))
        source = ASTSource(launch.kernel, launch.signature, launch.constexprs, launch.attrs)
        compiled = triton.compile(source, target=target, options=options.__dict__)
        registers, spills = resource_usage(compiled.asm["cubin"])
        _compiled[key] = Usage(registers, spills, compiled.metadata.shared)
    return _compiled[key]
