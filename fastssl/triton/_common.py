"""What the Triton launchers share: the device guard around every launch and the kernels' output dtype.

Every launcher wraps its launches in :func:`device_guard` so that a kernel runs on the device (and the
current stream) of its tensors, not on whichever CUDA device happens to be current.
"""

from __future__ import annotations

import contextlib

import torch

from ..backends import triton_interpreter


def device_guard(t: torch.Tensor):
    """Triton launches on the current CUDA device: make it the tensor's."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def kernel_output_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernel writes: ``dtype``, or float32 for bfloat16 under the interpreter (cast after)."""
    return torch.float32 if dtype == torch.bfloat16 and triton_interpreter() else dtype
