"""The clip pipeline: video ids → the frames a task's plan asks for, decoded → the task's transform, in the background.

:class:`ClipLoader` is the video side of :class:`fastssl.data.Loader` and runs on the same machinery: the
same :class:`~fastssl.data.order.EpochOrder` (every usable video once per epoch, shards of equal length),
the same two background threads (decoding one batch ahead of the transform), the same bad-file
accounting, the same batch dicts. Per batch:

1. ``plan(ids, frames, epoch)`` → a :class:`~fastssl.data.video.sampling.ClipPlan`: the frame indices each
   video of the batch needs (a pure function of (seed, epoch, id): the same clips whatever the batch
   size, shard count, thread count or decoder), and the pretext labels; with ``motion=True`` the plan is
   also given each video's motion profile (:mod:`fastssl.data.video.motion`, computed once and cached),
   ``plan(ids, frames, epoch, motion=profiles)``;
2. the clip decoder (:func:`~fastssl.data.video.decode.make_clip_decoder`) decodes only those frames,
   videos in parallel; a video that fails is left out of its batch, counted and named in
   ``stats.bad_files`` (``strict=True`` raises :class:`BadVideoError`);
3. the decoded frames are packed into a :class:`~fastssl.clips.RaggedClips` on ``device`` (clip b holds
   the frames of ``plan.indices[b]``, in that order) and ``transform(clips, ids, epoch)`` makes the
   task's inputs.

Videos the index already knows to be unusable (unreadable, truncated, no video stream, no frames, too
large, or shorter than ``min_frames``) are left out of the order and named in ``stats.bad_files`` of every
epoch (``strict=True``: :class:`BadVideoError` at construction). A batch dict holds ``ids``, ``labels`` (the
class folder's, -1: none), ``epoch``, ``index``, the plan's targets (each (B, ...)), ``clips`` (with
``keep_clips``) and what the transform adds.

Example:
    >>> import tempfile
    >>> from fastssl.data import synthetic
    >>> from fastssl.data.video.sampling import arrow_of_time_clips
    >>> root = synthetic.write_video_folder(tempfile.mkdtemp(), classes=2, per_class=2, frames=12, size=32)
    >>> plan = lambda ids, frames, epoch: arrow_of_time_clips(ids, frames, clip_len=4, seed=0, epoch=epoch)
    >>> loader = ClipLoader(root, batch_size=4, plan=plan, keep_clips=True, cache=False)
    >>> batch = next(iter(loader.epoch(0)))
    >>> batch["ids"].shape, batch["reversed"].shape, batch["clips"].host_frames.tolist()
    (torch.Size([4]), torch.Size([4]), [4, 4, 4, 4])
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterator

import numpy as np
import torch

from ...clips import RaggedClips
from ..headers import MAX_PIXELS
from ..loader import Loader, _distributed_shard, _Epoch, check_pipeline
from ..order import EpochOrder
from ..stats import LoaderStats
from .decode import make_clip_decoder
from .index import MAX_FRAMES
from .sampling import ClipPlan
from .sources import VideoSource, open_video_source

Plan = Callable[[torch.Tensor, torch.Tensor, int], ClipPlan]
ClipTransform = Callable[[RaggedClips, torch.Tensor, int], dict]


class BadVideoError(RuntimeError):
    """A video could not be decoded and the loader is strict."""


class ClipLoader(Loader):
    """Batches of decoded clips from ``source`` (see the module docstring).

    A plan that asks for frames outside a video raises ValueError (a bug of the plan, not a bad video).

    Args:
        source: a video folder (class subfolders → labels, or flat), a ``.txt`` list of ``path [label]``, or a
            :class:`~fastssl.data.video.sources.VideoSource`.
        batch_size: videos per batch (per rank).
        plan: ``plan(ids (B,), frames (B,), epoch) -> ClipPlan``: the frames to decode per video.
        transform: ``f(clips, ids, epoch) -> dict`` run on each decoded batch (None: the batch keeps its clips).
        device: where the clips end up and the transform runs.
        decoder: "auto" | "dali" | "pyav" (:func:`~fastssl.data.video.decode.make_clip_decoder`).
        min_frames: videos with fewer frames are left out (the plan's shortest video).
        motion: give the plan the videos' motion profiles (the first use decodes every video once).
        progress: a progress line on stderr while the motion profiles are first computed.
        cache: where the video index is cached (see :func:`~fastssl.data.video.index.index_videos`).
        The others as for :class:`fastssl.data.Loader`.
    """

    bad_error = BadVideoError

    def __init__(self, source, *, batch_size: int, plan: Plan, transform: ClipTransform | None = None, device="cpu",
                 decoder: str = "auto", seed: int = 0, shuffle: bool = True, drop_last: bool = False,
                 shard_id: int | None = None, num_shards: int | None = None, num_threads: int | None = None,
                 prefetch: int = 2, strict: bool = False, max_consecutive_bad: int | None = 100,
                 max_pixels: int = MAX_PIXELS, max_frames: int = MAX_FRAMES, min_frames: int = 1,
                 cache: str | None | bool = None, keep_clips: bool = False, motion: bool = False,
                 progress: bool = False):
        check_pipeline(prefetch, max_consecutive_bad)
        threads = num_threads or min(8, os.cpu_count() or 1)
        self.source: VideoSource = open_video_source(source, cache=cache, max_pixels=max_pixels,
                                                     max_frames=max_frames, num_threads=threads)
        frames = self.source.frames
        self.excluded = [(name, why) for name, why in self.source.bad.items()]
        unusable = self._unusable(min_frames, cache=cache, num_threads=threads)
        self.excluded += [(self.source.names[i], why) for i, why in sorted(unusable.items())]
        if strict and self.excluded:
            raise BadVideoError("; ".join(f"{name}: {why}" for name, why in self.excluded[:3])
                                + (f" (and {len(self.excluded) - 3} more)" if len(self.excluded) > 3 else ""))
        good = self.source.good
        self.usable = torch.from_numpy(good[~np.isin(good, np.fromiter(unusable, np.int64, len(unusable)))])
        if len(self.usable) == 0:
            shown = "; ".join(f"{name} ({why})" for name, why in self.excluded[:3])
            raise BadVideoError(f"none of the {len(self.source)} videos can be used: {shown}"
                                f"{' ...' if len(self.excluded) > 3 else ''}")
        rank, world = _distributed_shard()
        self.order = EpochOrder(len(self.usable), batch_size, seed=seed, shuffle=shuffle, drop_last=drop_last,
                                shard_id=rank if shard_id is None else shard_id,
                                num_shards=world if num_shards is None else num_shards)
        self.device = torch.device(device)
        self.decoder = make_clip_decoder(decoder, self.device, num_threads=threads, max_pixels=max_pixels,
                                         max_frames=max_frames)
        self.plan, self.transform, self.prefetch, self.strict = plan, transform, prefetch, strict
        self.keep_clips, self.max_consecutive_bad = keep_clips, max_consecutive_bad
        self.next_epoch = 0
        self.stats = LoaderStats()
        self._frames = torch.from_numpy(frames)
        self.motion = None
        if motion:
            from .motion import motion_profiles

            self.motion = motion_profiles(list(self.source.videos), self.source.root or ".", names=self.source.names,
                                          cache=cache, num_threads=threads, progress=progress)

    def _unusable(self, min_frames: int, *, cache, num_threads: int) -> dict[int, str]:
        """{id: why} for the videos the index found good that this loader cannot use (shorter than ``min_frames``)."""
        frames = self.source.frames
        return {int(i): f"too short: {frames[i]} frames, the clips need {min_frames}"
                for i in self.source.good if frames[i] < min_frames}

    def epoch(self, epoch: int, start: int = 0, visit: torch.Tensor | None = None) -> Iterator[dict]:
        """The batches of ``epoch`` from batch ``start`` on; resets ``stats`` (which then name the excluded videos).
        ``visit``: positions in ``usable`` to visit instead of the epoch's shuffled order."""
        batches = [self.usable[positions] for positions in self.order.batches(epoch, visit)]
        if not 0 <= start <= len(batches):
            raise ValueError(f"start must be in [0, {len(batches)}], got {start}")
        self.stats = LoaderStats(bad_files=list(self.excluded))
        return _Epoch(self, epoch, batches[start:], start)

    def _decode(self, epoch: int, ids: torch.Tensor) -> tuple:
        """Stage 1 of a batch: plan and decode. Returns (ids, plan, per video its frames or why not)."""
        t0 = time.perf_counter()
        frames = self._frames[ids]
        if self.motion is None:
            plan = self.plan(ids, frames, epoch)
        else:
            plan = self.plan(ids, frames, epoch, motion=[self.motion[i] for i in ids.tolist()])
        if plan.indices.dim() != 2 or plan.indices.shape[0] != len(ids):
            raise ValueError(f"the plan must give (B, K) = ({len(ids)}, K) frame indices, got "
                             f"{tuple(plan.indices.shape)}")
        indices = plan.indices.cpu().numpy()
        counts = frames.numpy()[:, None]
        if indices.size and not ((indices >= 0) & (indices < counts)).all():
            bad = int(np.flatnonzero(((indices < 0) | (indices >= counts)).any(1))[0])
            raise ValueError(f"the plan asks for frames {indices[bad].tolist()} of {self.source.names[int(ids[bad])]}, "
                             f"which has {int(counts[bad, 0])}")
        results = self.decoder.decode_batch([self.source.videos[i] for i in ids.tolist()], list(indices))
        self.stats.add(decode_s=time.perf_counter() - t0)
        return ids, plan, results

    def _kept(self, run, count: int, named: dict[int, tuple[str, str]]) -> list[int]:
        """The positions of a batch of ``count`` samples left when those in ``named`` ({position: (name, why)})
        failed: the failures are counted and named (strict: raised), an empty batch counted."""
        if named and self.strict:
            raise self.bad_error("; ".join(f"{name}: {why}" for name, why in named.values()))
        with self.stats._lock:
            self.stats.bad_files += named.values()
        run.update([named.get(k) for k in range(count)])
        kept = [k for k in range(count) if k not in named]
        if not kept:
            with self.stats._lock:
                self.stats.empty_batches += 1
        return kept

    def _finish(self, epoch: int, run, ids: torch.Tensor, plan: ClipPlan, results: list) -> dict | None:
        """Stage 2 of a batch: account for the bad videos, pack the clips, then the transform."""
        t0 = time.perf_counter()
        named = {k: (self.source.names[int(ids[k])], why) for k, why in enumerate(results) if isinstance(why, str)}
        kept = self._kept(run, len(ids), named)
        if not kept:
            return None
        rows = torch.tensor(kept)
        clips = RaggedClips.from_list([results[k] for k in kept], device=self.device)
        kept_ids = ids[rows]
        batch = {"ids": kept_ids.to(self.device),
                 "labels": torch.from_numpy(np.asarray(self.source.labels)[kept_ids.numpy()]).to(self.device),
                 "epoch": epoch, **{name: value[rows.to(value.device)].to(self.device)
                                    for name, value in plan.targets.items()}}
        if self.keep_clips:
            batch["clips"] = clips
        if self.transform is not None:
            batch.update(self.transform(clips, batch["ids"], epoch))
        self.stats.add(augment_s=time.perf_counter() - t0)
        return batch
