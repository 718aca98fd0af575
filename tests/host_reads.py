"""Counting the host reads an op makes: the device->host copies that would stall the CPU on a GPU.

:func:`count_host_reads` wraps, for the duration of a ``with`` block, every Python entry point that
reads tensor values back to the host (``Tensor.item``, ``__bool__``, ``__int__``, ``__float__``,
``__index__``, ``tolist``, ``cpu``, ``numpy``) and the torch functions whose output size depends on
the values (``nonzero``, ``masked_select``, ``unique``, ...: they sync on a GPU), and records each
call made from outside the torch package. Calls made by Triton's interpreter are not counted: it
runs the kernels on the host, which on a GPU never happens.

On CPU tensors a read costs nothing, so the ops' value checks read eagerly there; run the op under
``fastssl._validation.asynchronous_checks()`` to take the path CUDA tensors take. Reads made inside
C++ (the native kernels, ``torch._assert_async`` on the CPU) are not seen: they are not host reads
on a GPU either.

Example::

    with asynchronous_checks(), count_host_reads() as reads:
        nt_xent_loss(z1, z2, backend="triton").backward()
    assert reads == [], reads
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

import torch

READ_METHODS = ("item", "__bool__", "__int__", "__float__", "__index__", "tolist", "cpu", "numpy")
SYNCING_FUNCTIONS = ("nonzero", "masked_select", "unique", "unique_consecutive", "repeat_interleave", "equal",
                     "allclose")

_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep
_THIS_FILE = os.path.abspath(__file__)


def _triton_dir() -> str | None:
    try:
        import triton
    except ImportError:
        return None
    return os.path.dirname(triton.__file__) + os.sep


def _caller(triton_dir: str | None) -> str | None:
    """'file:line' of the first frame outside torch and this module; None when that frame is Triton's."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_TORCH_DIR) and filename != _THIS_FILE:
            if triton_dir and filename.startswith(triton_dir):
                return None
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


@contextlib.contextmanager
def count_host_reads():
    """Within the block, a list of 'what at file:line' for every host read (see the module docstring)."""
    reads: list[str] = []
    triton_dir = _triton_dir()
    saved = []

    def wrap(owner, name):
        original = getattr(owner, name)

        @functools.wraps(original)
        def counted(*args, **kwargs):
            where = _caller(triton_dir)
            if where is not None:
                reads.append(f"{name} at {where}")
            return original(*args, **kwargs)

        saved.append((owner, name, original, name in vars(owner)))
        setattr(owner, name, counted)

    for name in READ_METHODS:
        wrap(torch.Tensor, name)
    for name in SYNCING_FUNCTIONS:
        for owner in (torch, torch.Tensor):
            if hasattr(owner, name):
                wrap(owner, name)
    try:
        yield reads
    finally:
        for owner, name, original, own in reversed(saved):
            if own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)  # inherited (torch.Tensor from its C base): inherit it again
