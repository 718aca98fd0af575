"""Adapters between the dtypes an op accepts and the dtypes its kernels take: two distinct jobs.

* :func:`kernel_dtypes` converts values: a kernel that reads (or writes) only some dtypes gets the
  others converted to float32 (rounding, as ``Tensor.to`` rounds), and its result is cast back.
* :func:`as_bits` reinterprets bits: a kernel that only moves elements (a permutation, a copy) gets any
  dtype viewed as the integer of the same size, and its result is viewed back; exact, no conversion.

Example:
    >>> import torch
    >>> from fastssl._dtypes import as_bits, kernel_dtypes
    >>> def kernel(x):  # stands for a kernel that reads uint8 or float32 and writes float32
    ...     assert x.dtype in (torch.uint8, torch.float32)
    ...     return x.float() * 2
    >>> kernel_dtypes(kernel, reads=(torch.uint8, torch.float32))(torch.ones(2, dtype=torch.float16))
    tensor([2., 2.], dtype=torch.float16)
    >>> as_bits(torch.flip)(torch.tensor([0.5, -1.0]), [0])  # torch.flip runs on int32 bits here
    tensor([-1.0000,  0.5000])
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch

from .backends import triton_interpreter

#: The integer dtype :func:`as_bits` views elements of each size (bytes) as.
BITS_DTYPES = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
COMPUTE_DTYPE = torch.float32


def kernel_dtypes(fn: Callable, *, reads: Iterable[torch.dtype] | Callable[[], Iterable[torch.dtype]] | None = None,
                  converted: tuple[int, ...] = (0,), cast_back: bool = True,
                  writes: Iterable[torch.dtype] | None = None) -> Callable:
    """``fn``, a kernel that reads only the dtypes ``reads`` and writes only ``writes``, made to take any dtype.

    Args:
        fn: the kernel, called with positional arguments.
        reads: the dtypes the kernel reads as they are (None: any), or a function returning them at each
            call (see :func:`triton_reads`). When the tensor argument ``converted[0]`` has another dtype,
            every argument at the positions ``converted`` is converted to float32.
        converted: positions of the arguments that share the input's dtype (the images, a table of values).
        cast_back: cast the result back to the input's dtype when it was converted (False: the result keeps
            the dtype the kernel writes).
        writes: the result dtypes the kernel writes (None: any), when its last argument is the requested
            result dtype: another request runs the kernel with float32 and casts its result to the request.

    Returns:
        A function of the same arguments.
    """
    writable = None if writes is None else tuple(writes)

    def call(*args):
        args = list(args)
        readable = reads() if callable(reads) else reads
        result_dtype = None
        first = args[converted[0]]
        if readable is not None and first.dtype not in tuple(readable):
            result_dtype = first.dtype if cast_back else None
            for i in converted:
                args[i] = args[i].to(COMPUTE_DTYPE)
        if writable is not None and args[-1] not in writable:
            result_dtype, args[-1] = args[-1], COMPUTE_DTYPE
        out = fn(*args)
        return out if result_dtype is None else out.to(result_dtype)

    return call


def triton_reads(dtypes: Iterable[torch.dtype]) -> Callable[[], tuple[torch.dtype, ...]]:
    """``reads`` for :func:`kernel_dtypes` of a Triton kernel that reads ``dtypes`` on a GPU: less bfloat16
    while Triton's interpreter runs it (the interpreter has no bfloat16)."""
    dtypes = tuple(dtypes)
    return lambda: tuple(d for d in dtypes if d != torch.bfloat16) if triton_interpreter() else dtypes


def as_bits(fn: Callable) -> Callable:
    """``fn``, a kernel that moves elements without computing on them, made to take any dtype of 1, 2, 4 or
    8-byte elements (:data:`BITS_DTYPES`): its first argument is made contiguous and viewed as the integer
    of its element size, and the result is viewed back as the first argument's dtype."""

    def call(x: torch.Tensor, *args):
        x = x.contiguous()
        return fn(x.view(BITS_DTYPES[x.element_size()]), *args).view(x.dtype)

    return call
