"""Counter-based randomness: every random number is a pure function of (seed, epoch, sample id, view, slot).

Augmentation and masking parameters drawn here do not depend on batch size, batch order, worker
count, world size, device or backend: the same sample in the same epoch gets the same views
everywhere, and a new epoch gets new ones. There is no state to seed or to carry between workers.

The generator hashes the five 32-bit key words with murmur3's 32-bit finaliser (fmix32), chained
like a sponge: h = fmix(h ^ word) per word, starting from a fixed odd constant, with the slot last.
fmix32 is a bijection with full avalanche, so distinct keys differ in about half their output bits.
All arithmetic is exact in int64 tensors (32-bit products are split into 16-bit halves), so CPU and
GPU give identical bits.

Views and slots: the caller chooses the view key; within a view, each parameter of a sample has its
own slots, so no two parameters share a number. :data:`TAKEN` lists every (view, slot) range in use,
and the ``*_SLOTS`` layouts below are where the ops take their slot numbers from.

Example:
    >>> import torch
    >>> from fastssl import random
    >>> ids = torch.tensor([10, 11, 12])
    >>> u = random.uniform(ids, 4, seed=0, epoch=3, view=1)      # (3, 4) float32 in [0, 1)
    >>> torch.equal(u[1], random.uniform(ids[1:2], 4, seed=0, epoch=3, view=1)[0])
    True
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from . import _validation

_MASK32 = 0xFFFFFFFF
_START = 0x9E3779B9  # any odd constant; the golden-ratio one by convention
#: murmur3's fmix32 multipliers (the Triton and C++ kernels hash with the same two)
FMIX32_MULTIPLIERS = (0x85EBCA6B, 0xC2B2AE35)


def _mul32(x, c: int):
    """(x * c) mod 2^32 for x in [0, 2^32), exact in int64: the high 16 bits of x are multiplied separately."""
    lo = (x & 0xFFFF) * c
    hi = ((x >> 16) * (c & 0xFFFF)) & 0xFFFF  # only the low 16 bits of this partial product survive the shift
    return (lo + (hi << 16)) & _MASK32


def fmix32(h):
    """murmur3's 32-bit finaliser of ``h`` in [0, 2^32): a Python int, or an int64 tensor elementwise.

    A bijection of 32-bit words with full avalanche; the building block of :func:`bits`, and the hash
    of per-pixel noise streams (``fmix32(key ^ n)``).

    Example:
        >>> fmix32(1) == 0x514E28B7
        True
    """
    h = h ^ (h >> 16)
    h = _mul32(h, FMIX32_MULTIPLIERS[0])
    h = h ^ (h >> 13)
    h = _mul32(h, FMIX32_MULTIPLIERS[1])
    return h ^ (h >> 16)


def _word(value, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value <= _MASK32:
        raise ValueError(f"{name} must be in [0, 2^32), got {value}")
    return value


def as_ids(ids) -> torch.Tensor:
    """``ids`` (a 1-D integer tensor or sequence of sample ids in [0, 2^32)) as an int64 tensor; else an error
    naming ``ids`` (the range is checked without a host read on a GPU)."""
    ids = torch.as_tensor(ids)
    if ids.dim() != 1:
        raise ValueError(f"ids must be a 1-D tensor of sample ids, got shape {tuple(ids.shape)}")
    if ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"ids must be an integer tensor, got {ids.dtype}")
    ids = ids.to(torch.int64)
    # on a GPU without a host read; skipped under torch.compile (it would break the graph)
    _validation.check_index_range(ids, "ids", 0, _MASK32 + 1)
    return ids


def batch_ids(ids, count: int, device) -> torch.Tensor:
    """The (count,) int64 sample ids keying a batch's draws, on ``device``: ``ids`` checked by :func:`as_ids`,
    one per sample, or 0..count-1 when ``ids`` is None."""
    if ids is None:
        return torch.arange(count, device=device)
    ids = as_ids(ids).to(device)
    if ids.shape[0] != count:
        raise ValueError(f"ids must have one id per image ({count}), got {ids.shape[0]}")
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
    ids = as_ids(ids)
    slots = torch.arange(slots, device=ids.device) if isinstance(slots, int) else torch.as_tensor(slots, device=ids.device)
    if slots.dim() != 1:
        raise ValueError(f"slots must be a count or a 1-D tensor, got shape {tuple(slots.shape)}")
    # The words before the ids are Python ints: the same exact arithmetic, without tensor ops.
    h = fmix32(fmix32(_START ^ _word(seed, "seed")) ^ _word(epoch, "epoch"))
    h = fmix32(ids ^ h)  # (B,)
    h = fmix32(h ^ _views(view, ids))
    return fmix32(h[:, None] ^ slots.to(torch.int64)[None, :])


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


# --- who draws which (view, slot) numbers --------------------------------------------------------------


class AugmentSlots(NamedTuple):
    """Slots of one augmentation view (fastssl.recipes.draw_view): the first slot of each parameter."""

    crop: int = 0  #: 40: 10 tries x (area, log-ratio, top, left)
    flip: int = 40
    jitter_apply: int = 41
    factors: int = 42  #: 4: brightness, contrast, saturation, hue
    order: int = 46  #: 4 keys sorted into the jitter order
    gray: int = 50
    blur_apply: int = 51
    sigma: int = 52
    solarize: int = 53
    count: int = 54


class RelativePositionSlots(NamedTuple):
    """Slots of fastssl.ops.relative_position_pairs: the first slot of each parameter."""

    label: int = 0
    position: int = 1  #: 2: the center's (y, x)
    offset: int = 3  #: 2: the neighbor's jitter (y, x)
    drop: int = 5  #: 2: whether each patch drops color
    keep: int = 7  #: 2: the channel each patch keeps
    noise_key: int = 9  #: the key of the per-pixel noise stream
    count: int = 10


class JigsawSlots(NamedTuple):
    """Slots of fastssl.ops.jigsaw_tiles for T cells: the first slot of each parameter (see :func:`jigsaw_slots`)."""

    permutation: int  #: 1
    offsets: int  #: 2T: 1 + 2c + axis
    shifts: int  #: 6T: per cell, channel and axis
    gray: int  #: T
    drop: int  #: T
    keep: int  #: T
    replace_count: int  #: 1: how many cells Jigsaw++ replaces
    replace_order: int  #: T: per cell, the key ordering the cells (the lowest ``count`` are replaced)
    donor: int  #: 1: the key placing the sample in the batch's cyclic order of donors
    puzzle_gray: int  #: 1: the whole puzzle grayscale
    count: int


def jigsaw_slots(cells: int) -> JigsawSlots:
    """The slot layout of jigsaw puzzles of ``cells`` = T cells (4 + 12 T slots)."""
    T = cells
    return JigsawSlots(permutation=0, offsets=1, shifts=1 + 2 * T, gray=1 + 8 * T, drop=1 + 9 * T, keep=1 + 10 * T,
                       replace_count=1 + 11 * T, replace_order=2 + 11 * T, donor=2 + 12 * T, puzzle_gray=3 + 12 * T,
                       count=4 + 12 * T)


AUGMENT_SLOTS = AugmentSlots()
RELATIVE_POSITION_SLOTS = RelativePositionSlots()
INPAINTING_BLOCK_SLOTS = 4  #: random_block: block k takes slots 4k .. 4k+3 (height, width, top, left)

# View keys chosen by the training tasks (fastssl.tasks): an op draws in the view key it is given.
TASK_OP_VIEW = 1  #: the task's own op (puzzles, holes, masks); its crop of ``squares`` is view 0
PIRL_JIGSAW_CROP_VIEW = 2  #: PIRL: the crop of the jigsaw view
MEMORY_BANK_VIEW = 7  #: negatives of a memory bank, keyed by the batch's first id
# Slots of draws made once, away from the per-sample ones (high slots, far from every op's range).
SHUFFLE_SLOT = 0x5348  #: fastssl.data.order: the epoch's order (view 0)
VALIDATION_SLOT = 0x4556  #: fastssl.train.evaluate.split: the train / validation split (epoch 0, view 0)
CLIP_START_SLOT = 0x434C  #: fastssl.data.video: a clip's first frame, in the clip's view key
CLIP_TUPLE_SLOT = 0x5400  #: fastssl.data.video: the first of the 64 slots of a tuple rule's draws (view 0)
AV_PAIR_SLOT = 0x4156  #: fastssl.data.av.pairs: the first of the 6 slots of an audio-visual pairing's draws (view 0)
AUDIO_GAIN_SLOT = 0x4147  #: fastssl.tasks.audio_visual: the gain of a sample's audio window (view 0)
SHUFFLE_BN_SLOT = 0x4D53  #: fastssl.tasks.moco: the keys' shuffled-BN permutation (view 0)


class Taken(NamedTuple):
    """One row of :data:`TAKEN`."""

    view: str  #: the view key(s)
    slots: str  #: the slot range
    drawn_by: str


#: Every (view, slot) range drawn in fastssl. Per-sample draws of a view k of a recipe, of an op, or of a
#: task share keys only when their rows say so; a new user takes a free view key or free slots.
TAKEN = (
    Taken("k = 0 .. views - 1", f"0 .. {AUGMENT_SLOTS.count - 1} (AugmentSlots)",
          "fastssl.recipes.draw: view k of a recipe; tasks' squares crop in view 0"),
    Taken(f"{PIRL_JIGSAW_CROP_VIEW} (PIRL_JIGSAW_CROP_VIEW)", f"0 .. {AUGMENT_SLOTS.count - 1} (AugmentSlots)",
          "fastssl.tasks.pirl: the crop of the jigsaw view"),
    Taken("the caller's (tasks: TASK_OP_VIEW = 1)", "0 .. L - 1, one per patch", "fastssl.ops.mae_masking(_tokens)"),
    Taken("the caller's (tasks: TASK_OP_VIEW = 1)", "0 .. 12 T + 3 (jigsaw_slots)", "fastssl.ops.jigsaw_tiles"),
    Taken("the caller's (tasks: TASK_OP_VIEW = 1)", f"0 .. {RELATIVE_POSITION_SLOTS.count - 1} (RelativePositionSlots)",
          "fastssl.ops.relative_position_pairs"),
    Taken("the caller's (tasks: TASK_OP_VIEW = 1)", "random_block: 0 .. 4 blocks - 1; random_region: 0 .. grid² - 1",
          "fastssl.ops.inpainting_masks"),
    Taken(f"{MEMORY_BANK_VIEW} (MEMORY_BANK_VIEW)", "0 .. negatives - 1", "fastssl.tasks.base.MemoryBank"),
    Taken("0", f"{SHUFFLE_SLOT:#x} (SHUFFLE_SLOT)", "fastssl.data.order"),
    Taken("0 (epoch 0)", f"{VALIDATION_SLOT:#x} (VALIDATION_SLOT)", "fastssl.train.evaluate.split"),
    Taken("k: clip k of a video", f"{CLIP_START_SLOT:#x} (CLIP_START_SLOT)", "fastssl.data.video.clip_starts"),
    Taken("0", f"{CLIP_TUPLE_SLOT:#x} .. {CLIP_TUPLE_SLOT + 63:#x} (CLIP_TUPLE_SLOT)",
          "fastssl.data.video.sampling: the tuple rules of the temporal-order tasks"),
    Taken("0", f"{AV_PAIR_SLOT:#x} .. {AV_PAIR_SLOT + 5:#x} (AV_PAIR_SLOT)",
          "fastssl.data.av.pairs: which frame and audio window each sample shows"),
    Taken("0", f"{AUDIO_GAIN_SLOT:#x} (AUDIO_GAIN_SLOT)", "fastssl.tasks.audio_visual: the gain of the audio window"),
    Taken("0", f"{SHUFFLE_BN_SLOT:#x} (SHUFFLE_BN_SLOT)", "fastssl.tasks.moco: the keys' shuffled-BN permutation"),
    Taken("0 (epoch 0, id 0)", "0", "fastssl.ops.hamming_permutations: the first permutation"),
    Taken("0 (epoch 0, id k: candidate k)", "1",
          "fastssl.ops.hamming_permutations(criterion='min_distance'): the order the candidates are visited in"),
)
