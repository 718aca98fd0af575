"""Loading of the compiled extension fastssl._C, and what it was built against.

The extension is loaded on first use, never at ``import fastssl``. When it is missing, or was built
for another torch / CUDA / Python, fastssl warns once with the command that fixes it and the other
backends keep working.
"""

from __future__ import annotations

import functools
import importlib
import sys
import warnings

import torch

REBUILD = "pip install --no-build-isolation -e .  (in the fastssl checkout)"


class NativeState:
    """The outcome of trying to load fastssl._C: the module, or why it cannot be used."""

    def __init__(self, module=None, reason: str | None = None, info: dict | None = None):
        self.module = module
        self.reason = reason
        self.info = info or {}

    @property
    def available(self) -> bool:
        return self.module is not None

    @property
    def has_cuda(self) -> bool:
        return self.available and bool(self.info.get("cuda"))


def _mismatch(info: dict) -> str | None:
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    built, have = [], []
    if info.get("torch") != torch.__version__:
        built.append(f"PyTorch {info.get('torch')}")
        have.append(f"PyTorch {torch.__version__}")
    if info.get("cuda") and info.get("cuda") != torch.version.cuda:
        built.append(f"CUDA {info.get('cuda')}")
        have.append(f"CUDA {torch.version.cuda}")
    if info.get("python") != py:
        built.append(f"Python {info.get('python')}")
        have.append(f"Python {py}")
    if not built:
        return None
    return f"fastssl._C was built for {', '.join(built)}; you have {', '.join(have)}. Rebuild it: {REBUILD}"


@functools.cache
def state() -> NativeState:
    try:
        module = importlib.import_module("fastssl._C")
    except ModuleNotFoundError:
        return _warned(NativeState(reason=f"fastssl._C is not built (fastssl was installed without its native "
                                          f"code). Build it: {REBUILD}"))
    except (ImportError, OSError) as error:
        return _warned(NativeState(reason=f"fastssl._C failed to load ({error}). It was probably built for another "
                                          f"PyTorch; rebuild it: {REBUILD}"))
    info = dict(module.build_info())
    reason = _mismatch(info)
    if reason:
        return _warned(NativeState(reason=reason, info=info))
    return NativeState(module=module, info=info)


def _warned(native: NativeState) -> NativeState:
    warnings.warn(native.reason + " Falling back to the other backends.", RuntimeWarning, stacklevel=3)
    return native


def missing_ops(names) -> list[str]:
    """Which of the native ops ``names`` the loaded extension lacks (all of them when it is not loaded)."""
    if not state().available:
        return list(names)
    return [name for name in names if not hasattr(torch.ops.fastssl_C, name)]


def ops():
    """torch.ops.fastssl_C, after loading the extension (callers check availability first)."""
    state()
    return torch.ops.fastssl_C


def host_empty(numel: int, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    """An uninitialised 1-D CPU tensor of ``numel`` elements, from fastssl._C's cache of reused host blocks.

    A large fresh allocation costs a page fault per 4 KiB page when first written (csrc/host_pool.h); the
    decoders' packed batches and the augment kernel's views are that large, so they reuse freed blocks.
    Plain ``torch.empty`` when the extension is not available.
    """
    if state().available and hasattr(torch.ops.fastssl_C, "host_empty"):
        return torch.ops.fastssl_C.host_empty([numel], dtype)
    return torch.empty(numel, dtype=dtype)
