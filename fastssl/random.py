"""Counter-based randomness: every random number is a pure function of (seed, epoch, sample id, view, slot).

Augmentation and masking parameters drawn here do not depend on batch size, batch order, worker
count, world size, device or backend: the same sample in the same epoch gets the same views
everywhere, and a new epoch gets new ones. There is no state to seed or to carry between workers.

The generator hashes the five 32-bit key words with murmur3's 32-bit finaliser (fmix32), chained
like a sponge: h = fmix(h ^ word) per word, starting from a fixed odd constant, with the slot last.
fmix32 is a bijection with full avalanche, so distinct keys differ in about half their output bits.
All arithmetic is exact in int64 tensors (32-bit products are split into 16-bit halves), so CPU and
GPU give identical bits.

Slots: each op names the slots it uses (e.g. MAE uses slots 0..L-1 for the per-token noise, a crop
uses one slot per parameter), so parameters of one sample never share a number.

Example:
    >>> import torch
    >>> from fastssl import random
    >>> ids = torch.tensor([10, 11, 12])
    >>> u = random.uniform(ids, 4, seed=0, epoch=3, view=1)      # (3, 4) float32 in [0, 1)
    >>> torch.equal(u[1], random.uniform(ids[1:2], 4, seed=0, epoch=3, view=1)[0])
    True
"""

from __future__ import annotations

import torch

from . import _validation

_MASK32 = 0xFFFFFFFF
_START = 0x9E3779B9  # any odd constant; the golden-ratio one by convention
_C1 = 0x85EBCA6B  # murmur3 fmix32 multipliers
_C2 = 0xC2B2AE35


def _mul32(x, c: int):
    """(x * c) mod 2^32 for x in [0, 2^32), exact in int64: the high 16 bits of x are multiplied separately."""
    lo = (x & 0xFFFF) * c
    hi = ((x >> 16) * (c & 0xFFFF)) & 0xFFFF  # only the low 16 bits of this partial product survive the shift
    return (lo + (hi << 16)) & _MASK32


def _fmix32(h):  # an int64 tensor or a Python int
    h = h ^ (h >> 16)
    h = _mul32(h, _C1)
    h = h ^ (h >> 13)
    h = _mul32(h, _C2)
    return h ^ (h >> 16)


def _word(value, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value <= _MASK32:
        raise ValueError(f"{name} must be in [0, 2^32), got {value}")
    return value


def _as_ids(ids) -> torch.Tensor:
    ids = torch.as_tensor(ids)
    if ids.dim() != 1:
        raise ValueError(f"ids must be a 1-D tensor of sample ids, got shape {tuple(ids.shape)}")
    if ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"ids must be an integer tensor, got {ids.dtype}")
    ids = ids.to(torch.int64)
    # on a GPU without a host read; skipped under torch.compile (it would break the graph)
    _validation.check_index_range(ids, "ids", 0, _MASK32 + 1)
    return ids


def _views(view, ids: torch.Tensor):
    """The view word(s): a Python int for all ids, or a (B,) int64 tensor with each id's own view."""
    if isinstance(view, torch.Tensor):
        if view.shape != ids.shape or view.dtype.is_floating_point or view.dtype == torch.bool:
            raise ValueError(f"a view tensor must be integer with one view per id {tuple(ids.shape)}, got "
                             f"{view.dtype} {tuple(view.shape)}")
        view = view.to(device=ids.device, dtype=torch.int64)
        _validation.check_index_range(view, "view", 0, _MASK32 + 1)
        return view
    return _word(view, "view")


def bits(ids, slots, *, seed: int, epoch: int = 0, view=0) -> torch.Tensor:
    """(len(ids), S) int64 tensor of 32-bit hashes of (seed, epoch, id, view, slot), on the device of ``ids``.

    ``slots`` is a number S (slots 0..S-1) or a 1-D integer tensor of slot numbers. ``view`` is an int,
    or a (len(ids),) integer tensor giving each row its own view (several views of a batch in one call).
    """
    ids = _as_ids(ids)
    slots = torch.arange(slots, device=ids.device) if isinstance(slots, int) else torch.as_tensor(slots, device=ids.device)
    if slots.dim() != 1:
        raise ValueError(f"slots must be a count or a 1-D tensor, got shape {tuple(slots.shape)}")
    # The words before the ids are Python ints: the same exact arithmetic, without tensor ops.
    h = _fmix32(_fmix32(_START ^ _word(seed, "seed")) ^ _word(epoch, "epoch"))
    h = _fmix32(ids ^ h)  # (B,)
    h = _fmix32(h ^ _views(view, ids))
    return _fmix32(h[:, None] ^ slots.to(torch.int64)[None, :])


def uniform(ids, slots, *, seed: int, epoch: int = 0, view=0, dtype=torch.float32) -> torch.Tensor:
    """(len(ids), S) uniform numbers in [0, 1) from the top 24 bits of :func:`bits` (exactly representable in float32)."""
    return ((bits(ids, slots, seed=seed, epoch=epoch, view=view) >> 8).to(torch.float64) / 2**24).to(dtype)


def randint(ids, slots, high: int, *, seed: int, epoch: int = 0, view=0) -> torch.Tensor:
    """(len(ids), S) int64 in [0, high), by multiply-shift of the 32-bit hash (bias below high / 2^32)."""
    if not isinstance(high, int) or high < 1:
        raise ValueError(f"high must be a positive int, got {high!r}")
    return (bits(ids, slots, seed=seed, epoch=epoch, view=view) * high) >> 32


def bernoulli(ids, slots, p: float, *, seed: int, epoch: int = 0, view=0) -> torch.Tensor:
    """(len(ids), S) bool, True with probability ``p``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    return uniform(ids, slots, seed=seed, epoch=epoch, view=view, dtype=torch.float64) < p
