"""Where each clip starts: a pure function of (seed, epoch, video id, view), like every draw in fastssl.

A clip of ``clip_len`` frames taken every ``stride`` frames spans ``(clip_len - 1) * stride + 1`` frames
(:func:`clip_span`), so a video of F frames has ``F - span + 1`` possible starts. :func:`clip_starts`
draws one per video from :func:`fastssl.random.bits` at slot :data:`fastssl.random.CLIP_START_SLOT` of the
clip's view key (clip k of a video: view k, as the image recipes number their views; the slot is far
from the per-frame augmentation's slots, so a clip's frames may be augmented in the same view):
the same video gets the same clip whatever the batch, worker or rank, and a new one every epoch.

Example:
    >>> import torch
    >>> frames = torch.tensor([32, 10, 7])
    >>> starts = clip_starts(torch.tensor([0, 1, 2]), frames, clip_len=4, stride=2, seed=0, epoch=0)
    >>> bool(((starts >= 0) & (starts <= frames - clip_span(4, 2))).all()), starts[2].item()
    (True, 0)
    >>> clip_indices(starts[:1], clip_len=4, stride=2).tolist() == [[starts[0].item() + 2 * t for t in range(4)]]
    True
"""

from __future__ import annotations

import torch

from ... import random
from ..._validation import check_int


def clip_span(clip_len: int, stride: int = 1) -> int:
    """Frames from a clip's first to its last, both included: ``(clip_len - 1) * stride + 1``."""
    return (check_int(clip_len, "clip_len") - 1) * check_int(stride, "stride") + 1


def clip_starts(ids, frames, *, clip_len: int, stride: int = 1, seed: int, epoch: int = 0,
                view: int = 0) -> torch.Tensor:
    """(B,) int64 first frame of each video's clip, uniform in [0, frames_b - span] (``span`` = :func:`clip_span`).

    ``ids``: (B,) video ids in [0, 2^32); ``frames``: (B,) frame counts (int tensor or sequence). A video
    shorter than the span raises ValueError naming its id.
    """
    ids = random.as_ids(ids)
    frames = torch.as_tensor(frames, dtype=torch.int64, device=ids.device)
    if frames.shape != ids.shape:
        raise ValueError(f"frames must have one count per id {tuple(ids.shape)}, got {tuple(frames.shape)}")
    span = clip_span(clip_len, stride)
    choices = frames - span + 1
    if not bool((choices >= 1).all()):
        short = ids[choices < 1].tolist()
        raise ValueError(f"videos {short[:8]} have fewer than the {span} frames a clip of {clip_len} frames at "
                         f"stride {stride} spans")
    draw = random.bits(ids, [random.CLIP_START_SLOT], seed=seed, epoch=epoch, view=view)[:, 0]
    return (draw * choices) >> 32  # multiply-shift, as random.randint; exact in int64 below 2^31 choices


def clip_indices(starts, *, clip_len: int, stride: int = 1) -> torch.Tensor:
    """(B, clip_len) int64 frame indices of the clips starting at ``starts`` (B,): ``start + stride * t``."""
    steps = torch.arange(check_int(clip_len, "clip_len"), dtype=torch.int64) * check_int(stride, "stride")
    starts = torch.as_tensor(starts, dtype=torch.int64)
    return starts[:, None] + steps.to(starts.device)[None, :]
