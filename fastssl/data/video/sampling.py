"""Which frames each sample decodes: pure functions of (seed, epoch, video id, view), like every draw in fastssl.

A clip of ``clip_len`` frames taken every ``stride`` frames spans ``(clip_len - 1) * stride + 1`` frames
(:func:`clip_span`), so a video of F frames has ``F - span + 1`` possible starts. :func:`clip_starts`
draws one per video from :func:`fastssl.random.bits` at slot :data:`fastssl.random.CLIP_START_SLOT` of the
clip's view key (clip k of a video: view k, as the image recipes number their views; the slot is far
from the per-frame augmentation's slots, so a clip's frames may be augmented in the same view):
the same video gets the same clip whatever the batch, worker or rank, and a new one every epoch.

The temporal-order tasks draw whole tuples: :func:`shuffle_learn_tuples`, :func:`odd_one_out_tuples`,
:func:`arrow_of_time_clips` and :func:`clip_order_tuples` each return a :class:`ClipPlan`: the frame indices
to decode per video, already in the order the task shows them (a shuffled clip's frames shuffled, a reversed
clip reversed), and the pretext labels. The decoder reads only those frames. Their draws take the slots
from :data:`fastssl.random.CLIP_TUPLE_SLOT` on in view 0 (clip starts keep their own slot).

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

import itertools
from dataclasses import dataclass

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


#: The 3! orders of three clips (VCOP's classes): class k shows clip ``CLIP_ORDERS[k][p]`` at position p.
CLIP_ORDERS = tuple(itertools.permutations(range(3)))


@dataclass(frozen=True)
class ClipPlan:
    """What to decode for a batch of videos, and the pretext labels that go with it.

    ``indices``: (B, K) int64 frame indices per video, in the order the task reads them (repeats allowed);
    ``targets``: per-sample tensors (B, ...) that the loader puts in the batch beside the decoded frames.
    """

    indices: torch.Tensor
    targets: dict


def _tuple_draws(ids, count: int, *, seed: int, epoch: int) -> torch.Tensor:
    """(B, count) float64 uniform in [0, 1) at the tuple slots of view 0."""
    if count > 64:
        raise ValueError(f"a tuple rule takes at most 64 draws, asked {count}")
    slots = torch.arange(count) + random.CLIP_TUPLE_SLOT
    return random.uniform(ids, slots, seed=seed, epoch=epoch, view=0, dtype=torch.float64)


def _between(u: torch.Tensor, low, high) -> torch.Tensor:
    """int64 uniform in [low, high] (both included; tensors or ints, high >= low) from u in [0, 1)."""
    low = torch.as_tensor(low, dtype=torch.int64)
    high = torch.as_tensor(high, dtype=torch.int64)
    return low + (u * (high - low + 1).to(torch.float64)).to(torch.int64).minimum(high - low)


def _frames(ids, frames) -> tuple[torch.Tensor, torch.Tensor]:
    ids = random.as_ids(ids)
    frames = torch.as_tensor(frames, dtype=torch.int64, device=ids.device)
    if frames.shape != ids.shape:
        raise ValueError(f"frames must have one count per id {tuple(ids.shape)}, got {tuple(frames.shape)}")
    return ids, frames


def _need(ids, frames, least: int, what: str) -> None:
    if not bool((frames >= least).all()):
        raise ValueError(f"videos {ids[frames < least].tolist()[:8]} have fewer than the {least} frames {what} needs")


def shuffle_learn_frames(tau_min: int, tau_max: int) -> int:
    """The fewest frames a video needs for Shuffle & Learn tuples: ``2 tau_min + 3`` (gaps of tau_min, and c
    strictly between b and d)."""
    check_int(tau_min, "tau_min", 1)
    check_int(tau_max, "tau_max", 2)
    return 2 * tau_min + 3


def shuffle_learn_tuples(ids, frames, *, tau_min: int, tau_max: int, positive_fraction: float = 0.5, seed: int,
                         epoch: int = 0, motion=None, candidates: int = 4) -> ClipPlan:
    """Shuffle & Learn (Misra et al. 2016): frames a < b < c < d < e with d - b <= ``tau_max`` and
    b - a, e - d >= ``tau_min``; each sample shows 3 frames (``indices`` (B, 3)).

    A positive (``targets["label"]`` 1, probability ``positive_fraction``) is (b, c, d) or, half of the time, its
    reverse (d, c, b) (the paper counts both as correctly ordered); a negative (label 0) is (b, a, d) or (b, e, d).
    The window a..e is uniform over the video, or with ``motion`` (per video its motion profile, see
    :func:`motion_window_starts`) the liveliest of ``candidates`` uniform ones: the paper picks high-motion
    windows by optical flow, the profile is its frame-difference proxy. Gaps: d - b uniform in [2, min(tau_max,
    F - 1 - 2 tau_min)], b - a and e - d each uniform in [tau_min, tau_min + slack] with the slack leaving room
    for the other gaps, the window's start uniform over what remains, c uniform strictly between b and d.
    """
    ids, frames = _frames(ids, frames)
    _need(ids, frames, shuffle_learn_frames(tau_min, tau_max), f"a Shuffle & Learn tuple at tau_min {tau_min}")
    if not 0.0 <= positive_fraction <= 1.0:
        raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
    u = _tuple_draws(ids, 8, seed=seed, epoch=epoch)
    last = frames - 1
    gap = _between(u[:, 0], 2, (last - 2 * tau_min).clamp_max(tau_max))
    slack = (last - gap - 2 * tau_min) // 2
    left = _between(u[:, 1], tau_min, tau_min + slack)
    right = _between(u[:, 2], tau_min, tau_min + slack)
    if motion is None:
        a = _between(u[:, 3], 0, last - (left + gap + right))
    else:
        a = motion_window_starts(ids, frames, motion, span=left + gap + right + 1, candidates=candidates, seed=seed,
                                 epoch=epoch)
    b = a + left
    d = b + gap
    e = d + right
    c = _between(u[:, 4], b + 1, d - 1)
    positive = u[:, 5] < positive_fraction
    other = u[:, 6] < 0.5  # positive: reversed; negative: e instead of a
    pos = torch.where(other[:, None], torch.stack([d, c, b], 1), torch.stack([b, c, d], 1))
    neg = torch.stack([b, torch.where(other, e, a), d], 1)
    return ClipPlan(torch.where(positive[:, None], pos, neg), {"label": positive.to(torch.int64)})


def _shuffled_order(u: torch.Tensor) -> torch.Tensor:
    """(B, L) int64: a permutation of 0..L-1 per row that is never the identity (argsort of the draws ``u`` (B, L);
    when that is the identity, the first two are swapped)."""
    order = torch.argsort(u, dim=1, stable=True)
    identity = (order == torch.arange(u.shape[1], device=u.device)).all(1)
    swapped = order.clone()
    swapped[:, [0, 1]] = order[:, [1, 0]]
    return torch.where(identity[:, None], swapped, order)


def odd_one_out_tuples(ids, frames, *, clips: int = 6, clip_len: int = 6, stride: int = 1, seed: int,
                       epoch: int = 0) -> ClipPlan:
    """Odd-One-Out (Fernando et al. 2017): ``clips`` clips of ``clip_len`` frames (every ``stride``-th) from the
    video, each at its own uniform start (:func:`clip_starts`, view k for clip k); the clip at position
    ``targets["odd"]`` (uniform in [0, clips)) has its frames in a shuffled order that is never the original one.
    ``indices``: (B, clips * clip_len), clip after clip.
    """
    ids, frames = _frames(ids, frames)
    check_int(clips, "clips", 2)
    if check_int(clip_len, "clip_len", 2) > 63:
        raise ValueError(f"clip_len must be <= 63, got {clip_len}")
    starts = torch.stack([clip_starts(ids, frames, clip_len=clip_len, stride=stride, seed=seed, epoch=epoch, view=k)
                          for k in range(clips)], 1)  # (B, clips)
    indices = starts[:, :, None] + torch.arange(clip_len, device=ids.device) * stride  # (B, clips, L)
    u = _tuple_draws(ids, 1 + clip_len, seed=seed, epoch=epoch)
    odd = _between(u[:, 0], 0, clips - 1)
    order = _shuffled_order(u[:, 1:])  # (B, L)
    rows = torch.arange(len(ids), device=ids.device)
    indices[rows, odd] = torch.gather(indices[rows, odd], 1, order)
    return ClipPlan(indices.flatten(1), {"odd": odd})


def arrow_of_time_clips(ids, frames, *, clip_len: int = 8, stride: int = 1, seed: int, epoch: int = 0, motion=None,
                        candidates: int = 4) -> ClipPlan:
    """Arrow of Time (Wei et al. 2018): one clip of ``clip_len`` frames, played backwards when
    ``targets["reversed"]`` is 1 (probability 1/2). ``indices``: (B, clip_len) in playback order. The clip starts
    uniformly, or with ``motion`` at the liveliest of ``candidates`` starts (:func:`motion_window_starts`: the
    paper leaves out clips without motion)."""
    ids, frames = _frames(ids, frames)
    if motion is None:
        starts = clip_starts(ids, frames, clip_len=clip_len, stride=stride, seed=seed, epoch=epoch)
    else:
        starts = motion_window_starts(ids, frames, motion, span=clip_span(clip_len, stride), candidates=candidates,
                                      seed=seed, epoch=epoch)
    forward = clip_indices(starts, clip_len=clip_len, stride=stride)
    backward = _tuple_draws(ids, 1, seed=seed, epoch=epoch)[:, 0] < 0.5
    return ClipPlan(torch.where(backward[:, None], forward.flip(1), forward), {"reversed": backward.to(torch.int64)})


def clip_order_span(clip_len: int, gap: int, clips: int = 3) -> int:
    """Frames the clips of a clip-order tuple span: ``clips * clip_len + (clips - 1) * gap``."""
    return clips * check_int(clip_len, "clip_len") + (clips - 1) * check_int(gap, "gap", 0)


def clip_order_tuples(ids, frames, *, clip_len: int = 16, gap: int = 8, seed: int, epoch: int = 0) -> ClipPlan:
    """VCOP (Xu et al. 2019): three consecutive clips of ``clip_len`` frames with ``gap`` frames between them, at a
    uniform start, shown in the order ``CLIP_ORDERS[targets["order"]]`` (class uniform in [0, 6)).
    ``indices``: (B, 3 * clip_len), position after position."""
    ids, frames = _frames(ids, frames)
    span = clip_order_span(clip_len, gap)
    _need(ids, frames, span, f"three clips of {clip_len} frames with gaps of {gap}")
    u = _tuple_draws(ids, 2, seed=seed, epoch=epoch)
    start = _between(u[:, 0], 0, frames - span)
    order = _between(u[:, 1], 0, len(CLIP_ORDERS) - 1)
    clip_first = start[:, None] + torch.arange(3, device=ids.device) * (clip_len + gap)  # (B, 3) in time order
    shown = torch.tensor(CLIP_ORDERS, device=ids.device)[order]  # (B, 3): clip shown at each position
    first = torch.gather(clip_first, 1, shown)
    indices = first[:, :, None] + torch.arange(clip_len, device=ids.device)
    return ClipPlan(indices.flatten(1), {"order": order})


def centre_clip(ids, frames, *, clip_len: int, stride: int = 1) -> ClipPlan:
    """The middle clip of each video (evaluation: no randomness); ``indices`` (B, clip_len), no targets."""
    ids, frames = _frames(ids, frames)
    span = clip_span(clip_len, stride)
    _need(ids, frames, span, f"a clip of {clip_len} frames at stride {stride}")
    return ClipPlan(clip_indices((frames - span) // 2, clip_len=clip_len, stride=stride), {})


#: slots of the motion candidates' starts: the tuple slots from 32 on (a rule's own draws stay below 32)
MOTION_SLOTS = 32
MAX_MOTION_CANDIDATES = 16


def motion_window_starts(ids, frames, profiles, *, span, candidates: int, seed: int, epoch: int = 0) -> torch.Tensor:
    """(B,) int64: the start of a window of ``span`` frames (an int, or (B,) ints) in each video, the liveliest of
    ``candidates`` keyed uniform starts by the mean of its motion profile (:mod:`fastssl.data.video.motion`; the
    first on ties; a video without a profile takes its first candidate). ``profiles``: per video a
    (frames - 1,) array or None."""
    from .motion import window_motion

    ids, frames = _frames(ids, frames)
    if not 1 <= check_int(candidates, "candidates", 1) <= MAX_MOTION_CANDIDATES:
        raise ValueError(f"candidates must be in [1, {MAX_MOTION_CANDIDATES}], got {candidates}")
    if len(profiles) != len(ids):
        raise ValueError(f"profiles must have one entry per id ({len(ids)}), got {len(profiles)}")
    span = torch.as_tensor(span, dtype=torch.int64, device=ids.device).expand(ids.shape)
    if not bool((frames >= span).all()):
        raise ValueError(f"videos {ids[frames < span].tolist()[:8]} are shorter than their windows")
    slots = torch.arange(candidates) + random.CLIP_TUPLE_SLOT + MOTION_SLOTS
    u = random.uniform(ids, slots, seed=seed, epoch=epoch, view=0, dtype=torch.float64)
    starts = _between(u, 0, (frames - span)[:, None])  # (B, candidates)
    chosen = starts[:, 0].clone()
    for b, profile in enumerate(profiles):
        if profile is not None and candidates > 1:
            scores = window_motion(profile, starts[b].cpu().numpy(), int(span[b]))
            chosen[b] = starts[b, int(scores.argmax())]
    return chosen
