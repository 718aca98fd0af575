"""Which frame and which second of audio each sample shows: the audio-visual pairing rules, keyed like every draw.

A sample is a video; it shows one frame of that video (or a clip: ``clip_len`` frames ``stride`` apart) and a
window of ``window`` seconds of audio, centred on the frame's (the clip's middle's) time. The rules return an
:class:`AVPlan` — the frames to decode, whose audio and from when — and the label:

- **correspondence** (L³-Net, AVE-Net; ``kind="avc"``): a positive shows the window centred on its frame's
  time; a negative the window at a uniform time of **another** video (never the sample's own);
- **synchronisation** (``kind="sync"``): a positive as above; a negative the same video's audio shifted by
  ``min_shift``..``max_shift`` seconds (either way, as far as the track allows, never less than ``min_shift``).

Labels are exact per epoch, not only in expectation: the usable videos (the ``population``) are ranked by a
key of (seed, epoch, id), and the first ``round(positive_fraction * N)`` of that ranking are the positives.
Every other draw (the frame, the other video, its time, the shift) is :mod:`fastssl.random` at the slots from
:data:`fastssl.random.AV_PAIR_SLOT`, view 0: a video gets the same pairing whatever the batch, shard or worker
that reads it, and a new one every epoch. The rules are host-side functions, not kernels: the decoders need
the frame and window of every sample before anything is decoded.

Times are container seconds: frame i of a video is at ``first_frame + i * frame_seconds`` (its mean rate) and
its audio covers ``[audio_start, audio_start + audio_seconds)``; :class:`AVTiming` holds these per video.

Example:
    >>> import torch
    >>> timing = AVTiming(frames=torch.tensor([48, 48, 48, 48]), first_frame=torch.zeros(4, dtype=torch.float64),
    ...                   frame_seconds=torch.full((4,), 1 / 16, dtype=torch.float64),
    ...                   audio_start=torch.zeros(4, dtype=torch.float64), audio_seconds=torch.full((4,), 3.0,
    ...                   dtype=torch.float64))
    >>> pairs = AVPairs("avc", window=1.0, seed=0)
    >>> plan = pairs.plan(torch.arange(4), 0, timing=timing, population=torch.arange(4))
    >>> int(plan.targets["corresponds"].sum()), bool((plan.audio_ids[plan.targets["corresponds"] == 0] !=
    ...                                                torch.arange(4)[plan.targets["corresponds"] == 0]).all())
    (2, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ... import random

KINDS = ("avc", "sync")
#: the draws of a pairing rule, each at its own slot from AV_PAIR_SLOT
_FRAME, _OTHER, _OTHER_TIME, _SHIFT, _SIGN, _RANK = range(6)


@dataclass(frozen=True)
class AVTiming:
    """Per video of a source (each (N,)): frame count, time of frame 0 and seconds per frame, and where its audio
    lies (start, seconds; 0 seconds: no usable audio). Times in container seconds, float64."""

    frames: torch.Tensor
    first_frame: torch.Tensor
    frame_seconds: torch.Tensor
    audio_start: torch.Tensor
    audio_seconds: torch.Tensor

    @classmethod
    def of(cls, videos, audios) -> "AVTiming":
        """From a source's :class:`~fastssl.data.video.index.VideoInfo` and
        :class:`~fastssl.data.audio.index.AudioInfo` entries (bad ones get zero frames and no audio)."""
        rows = []
        for video, audio in zip(videos, audios, strict=True):
            if video.bad is not None or audio.bad is not None:
                rows.append((0, 0.0, 0.0, 0.0, 0.0))
                continue
            unit = video.time_base[0] / video.time_base[1]
            rows.append((video.frames, video.start_pts * unit, video.frame_step * unit, audio.start, audio.duration))
        columns = list(zip(*rows)) if rows else [()] * 5
        return cls(torch.tensor(columns[0], dtype=torch.int64),
                   *(torch.tensor(c, dtype=torch.float64) for c in columns[1:]))

    def frame_range(self, ids: torch.Tensor, window: float, span: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(first, last) int64 (B,): the first frames f of clips f..f + ``span`` inside their video whose
        ``window`` centred on the clip's middle (frame f + span / 2) lies inside their own audio (last < first:
        none; ``span`` 0: single frames)."""
        f0, step = self.first_frame[ids], self.frame_seconds[ids].clamp_min(1e-9)
        low = self.audio_start[ids] + window / 2
        high = self.audio_start[ids] + self.audio_seconds[ids] - window / 2
        first = torch.ceil((low - f0) / step - span / 2 - 1e-9).to(torch.int64).clamp_min(0)
        last = torch.floor((high - f0) / step - span / 2 + 1e-9).to(torch.int64).minimum(self.frames[ids] - 1 - span)
        return first, last

    def frame_time(self, ids: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """(B,) float64 seconds of frame ``index`` (a fractional index: between frames) of each video ``ids``."""
        return self.first_frame[ids] + index.to(torch.float64) * self.frame_seconds[ids]


@dataclass(frozen=True)
class AVPlan:
    """What each sample of a batch decodes: ``frames`` (B, K) frame indices of its own video, the audio window of
    video ``audio_ids`` (B,) from ``audio_starts`` (B,) seconds, and ``targets`` (per-sample tensors for the batch:
    ``corresponds`` for avc, ``in_sync`` and ``shift`` (seconds) for sync; none for :func:`centre_pairs`)."""

    frames: torch.Tensor
    audio_ids: torch.Tensor
    audio_starts: torch.Tensor
    targets: dict


def _between(u: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """int64 uniform in [low, high] from u in [0, 1)."""
    return low + (u * (high - low + 1).to(torch.float64)).to(torch.int64).minimum(high - low)


class AVPairs:
    """The pairing rule ``kind`` ("avc" | "sync") (see the module docstring).

    ``pairs.plan(ids, epoch, timing=, population=)`` → :class:`AVPlan` for the batch's videos ``ids``, members of
    the ``population`` (the usable videos, every one fitting the rule: :meth:`unusable` names those that do not,
    and a loader leaves them out).
    """

    def __init__(self, kind: str, *, window: float = 1.0, positive_fraction: float = 0.5, min_shift: float = 0.5,
                 max_shift: float = 1.0, seed: int = 0, clip_len: int = 1, stride: int = 1):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if not window > 0:
            raise ValueError(f"window must be > 0 seconds, got {window}")
        self.clip = _Clip(clip_len, stride)
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
        if kind == "sync" and not 0 < min_shift <= max_shift:
            raise ValueError(f"the shifts must satisfy 0 < min_shift <= max_shift, got {min_shift}, {max_shift}")
        self.kind, self.window, self.seed = kind, float(window), seed
        self.positive_fraction, self.min_shift, self.max_shift = positive_fraction, min_shift, max_shift
        self._positions: tuple | None = None

    def min_audio_seconds(self) -> float:
        """The shortest audio a video needs: the window (sync: plus room for the smallest shift either side)."""
        return self.window + (2 * self.min_shift if self.kind == "sync" else 0.0)

    def unusable(self, timing: AVTiming, ids) -> dict[int, str]:
        """{id: why} for the videos of ``ids`` that cannot take part (no frame or clip with its window inside the
        audio, or audio too short for a shift)."""
        return _too_short(timing, torch.as_tensor(ids, dtype=torch.int64), self.window, self.min_audio_seconds(),
                          f"the {self.kind} pairs", self.clip)

    def positive(self, ids: torch.Tensor, epoch: int, population: torch.Tensor) -> torch.Tensor:
        """(B,) bool: whether each video is a positive in ``epoch`` (exactly ``round(positive_fraction * N)`` of the
        N videos of the population are)."""
        key = (epoch, population.data_ptr(), len(population))
        if self._positions is None or self._positions[0] != key:
            N = len(population)
            keys = random.bits(population, [random.AV_PAIR_SLOT + _RANK], seed=self.seed, epoch=epoch)[:, 0]
            ranked = torch.argsort(keys * N + torch.arange(N), stable=True)  # ties broken by position
            positions = torch.full((int(population.max()) + 1,), -1, dtype=torch.int64)
            positions[population[ranked]] = torch.arange(N)
            self._positions = (key, positions)
        positions = self._positions[1]
        inside = ids < len(positions)
        found = torch.where(inside, positions[ids.clamp_max(len(positions) - 1)], -1)
        if bool((found < 0).any()):
            raise ValueError(f"videos {ids[found < 0].tolist()[:8]} are not in the pairing's population")
        return found < round(self.positive_fraction * len(population))

    def plan(self, ids, epoch: int, *, timing: AVTiming, population: torch.Tensor) -> AVPlan:
        ids = random.as_ids(ids).cpu()
        population = _population(population)
        if self.kind == "avc" and self.positive_fraction < 1 and len(population) < 2:
            raise ValueError("audio-visual correspondence needs two usable videos at least (a negative shows another "
                             "video's audio)")
        u = random.uniform(ids, torch.arange(6) + random.AV_PAIR_SLOT, seed=self.seed, epoch=epoch,
                           dtype=torch.float64)
        first, last = timing.frame_range(ids, self.window, self.clip.span)
        if bool((last < first).any()):
            raise ValueError(f"videos {ids[last < first].tolist()[:8]} have no {self.clip.what} whose "
                             f"{self.window:g} s of audio lies inside their track (leave them out: AVPairs.unusable)")
        frame = _between(u[:, _FRAME], first, last)
        centre = timing.frame_time(ids, self.clip.middle(frame))
        positive = self.positive(ids, epoch, population)
        start = centre - self.window / 2
        if self.kind == "avc":
            N = len(population)
            rank = torch.searchsorted(population, ids)
            other = population[(rank + 1 + (u[:, _OTHER] * (N - 1)).to(torch.int64)) % N]
            room = (timing.audio_seconds[other] - self.window).clamp_min(0)
            other_start = timing.audio_start[other] + u[:, _OTHER_TIME] * room
            return AVPlan(self.clip.frames(frame), torch.where(positive, ids, other),
                          torch.where(positive, start, other_start),
                          {"corresponds": positive.to(torch.int64)})
        shift = torch.where(positive, 0.0, self._shift(timing, ids, centre, u))
        return AVPlan(self.clip.frames(frame), ids.clone(), start + shift,
                      {"in_sync": positive.to(torch.int64), "shift": shift})

    def _shift(self, timing: AVTiming, ids, centre, u) -> torch.Tensor:
        """(B,) float64 seconds: a shift of magnitude uniform in [min_shift, max_shift] and random sign, turned or
        shortened (never below min_shift) where the track has no room for it."""
        size = self.min_shift + u[:, _SHIFT] * (self.max_shift - self.min_shift)
        later = (timing.audio_start[ids] + timing.audio_seconds[ids]) - (centre + self.window / 2)
        earlier = (centre - self.window / 2) - timing.audio_start[ids]
        sign = torch.where(u[:, _SIGN] < 0.5, 1.0, -1.0).to(torch.float64)
        room = torch.where(sign > 0, later, earlier)
        other_room = torch.where(sign > 0, earlier, later)
        sign = torch.where((room < size) & (other_room > room), -sign, sign)
        return sign * torch.minimum(size, torch.where(sign > 0, later, earlier))


class CentrePairs:
    """Evaluation: each video's middle usable frame (or clip) and the ``window`` centred on it (no randomness, no
    targets); the same interface as :class:`AVPairs`."""

    def __init__(self, window: float = 1.0, *, clip_len: int = 1, stride: int = 1):
        self.window = float(window)
        self.clip = _Clip(clip_len, stride)

    def unusable(self, timing: AVTiming, ids) -> dict[int, str]:
        return _too_short(timing, torch.as_tensor(ids, dtype=torch.int64), self.window, self.window, "evaluation",
                          self.clip)

    def plan(self, ids, epoch: int = 0, *, timing: AVTiming, population=None) -> AVPlan:
        ids = random.as_ids(ids).cpu()
        first, last = timing.frame_range(ids, self.window, self.clip.span)
        frame = (first + last) // 2
        return AVPlan(self.clip.frames(frame), ids.clone(),
                      timing.frame_time(ids, self.clip.middle(frame)) - self.window / 2, {})


@dataclass(frozen=True)
class _Clip:
    """``length`` frames ``stride`` apart, from a first frame: the frames a sample shows."""

    length: int = 1
    stride: int = 1

    def __post_init__(self):
        if not (isinstance(self.length, int) and isinstance(self.stride, int) and min(self.length, self.stride) >= 1):
            raise ValueError(f"clip_len and stride must be ints >= 1, got {self.length}, {self.stride}")

    @property
    def span(self) -> int:
        """Frames from the first to the last."""
        return (self.length - 1) * self.stride

    @property
    def what(self) -> str:
        return "frame" if self.length == 1 else f"clip of {self.length} frames {self.stride} apart"

    def frames(self, first: torch.Tensor) -> torch.Tensor:
        """(B, length) int64 frame indices from each ``first`` (B,)."""
        return first[:, None] + torch.arange(self.length, dtype=torch.int64) * self.stride

    def middle(self, first: torch.Tensor) -> torch.Tensor:
        """(B,) float64 (fractional) index of the clip's middle, where its audio window is centred."""
        return first.to(torch.float64) + self.span / 2


def _population(population) -> torch.Tensor:
    population = torch.as_tensor(population, dtype=torch.int64).cpu()
    if len(population) == 0 or (len(population) > 1 and not bool((population[1:] > population[:-1]).all())):
        raise ValueError("the population must be the usable video ids, ascending, at least one")
    return population


def _too_short(timing: AVTiming, ids: torch.Tensor, window: float, least: float, what: str,
               clip: _Clip) -> dict[int, str]:
    first, last = timing.frame_range(ids, window, clip.span)
    seconds = timing.audio_seconds[ids]
    return {int(ids[k]): (f"audio too short: {float(seconds[k]):.3f} s beside {int(timing.frames[ids[k]])} frames, "
                          f"{what} need {least:g} s around a {clip.what}")
            for k in torch.nonzero((last < first) | (seconds < least - 1e-9)).flatten().tolist()}
