"""The audio-visual pipeline: video ids → a frame of each video and a window of some video's audio, decoded →
the task's transform, in the background.

:class:`AVLoader` is a :class:`~fastssl.data.video.loader.ClipLoader` whose plan is a pairing rule
(:mod:`fastssl.data.av.pairs`): per batch it decodes the planned frames with the clip decoder and the planned
audio windows with an :class:`~fastssl.data.audio.decode.AudioDecoder` (mono, resampled to ``rate``), then
calls ``transform(clips, audio, ids, epoch)``. The audio of each video is indexed once and cached
(:func:`~fastssl.data.audio.index.index_audio`: the video's own track, or an audio file beside it).

Videos whose audio cannot be used (no audio stream, silent, unreadable, or too short for the rule) are left out
of the order and named in ``stats.bad_files`` of every epoch, like bad videos; a window or frame that fails to
decode leaves its sample out of the batch and is named (``strict=True``: :class:`BadVideoError`). A batch dict
holds ``ids``, ``labels``, ``epoch``, the rule's targets, ``audio_ids`` (whose audio each sample shows),
``audio`` ((B, round(window * rate)) float32 in [-1, 1], with ``keep_audio``), ``clips`` (with ``keep_clips``) and
what the transform adds.

Example:
    >>> import tempfile
    >>> from fastssl.data import synthetic
    >>> from fastssl.data.av.pairs import AVPairs
    >>> root = synthetic.write_av_folder(tempfile.mkdtemp(), classes=2, per_class=2, seed=0)
    >>> loader = AVLoader(root, batch_size=4, pairs=AVPairs("avc", window=0.5), rate=16000, keep_audio=True,
    ...                   keep_clips=True, cache=False)
    >>> batch = next(iter(loader.epoch(0)))
    >>> batch["audio"].shape, int(batch["corresponds"].sum()), batch["clips"].host_frames.tolist()
    (torch.Size([4, 8000]), 2, [1, 1, 1, 1])
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from ...clips import RaggedClips
from ..audio import AudioDecoder, index_audio
from ..video.loader import ClipLoader
from .pairs import AVPairs, AVTiming, CentrePairs

AVTransform = Callable[[RaggedClips, torch.Tensor, torch.Tensor, int], dict]


class AVLoader(ClipLoader):
    """Batches of frames and audio windows from ``source`` (see the module docstring).

    Args:
        source: a folder of videos with sound (class subfolders → labels), a ``.txt`` list, tar shards, or a
            :class:`~fastssl.data.video.sources.VideoSource`.
        pairs: the pairing rule: an :class:`~fastssl.data.av.pairs.AVPairs` or :class:`CentrePairs` (anything with
            ``plan(ids, epoch, timing=, population=)`` and ``unusable(timing, ids)``), with its ``window`` seconds.
        rate: the audio's sample rate after resampling (Hz).
        transform: ``f(clips, audio, ids, epoch) -> dict`` on each decoded batch (``audio`` (B, samples) float32 on
            ``device``).
        audio_decoder: "auto" | "pyav" | "dali" (DALI for audio files beside the videos where it is installed).
        silence: audio whose peak stays below this is left out as silent.
        keep_audio: put the decoded windows in the batch as ``audio``.
        The others as for :class:`~fastssl.data.video.loader.ClipLoader` (``decoder`` decodes the frames).
    """

    def __init__(self, source, *, batch_size: int, pairs: AVPairs | CentrePairs, rate: int = 48000,
                 transform: AVTransform | None = None, audio_decoder: str = "auto", silence: float = 1e-4,
                 keep_audio: bool = False, **options):
        if not isinstance(rate, int) or rate < 1000:
            raise ValueError(f"rate must be an int of 1000 Hz or more, got {rate!r}")
        self.pairs, self.rate, self.silence, self.keep_audio = pairs, rate, silence, keep_audio
        self.av_transform = transform
        super().__init__(source, batch_size=batch_size, plan=self._no_clip_plan, **options)
        self.audio_decoder = AudioDecoder(rate, num_threads=self.decoder_threads, decoder=audio_decoder)

    @staticmethod
    def _no_clip_plan(ids, frames, epoch):
        raise AssertionError("an AVLoader plans with its pairing rule")

    def _unusable(self, min_frames: int, *, cache, num_threads: int) -> dict[int, str]:
        unusable = super()._unusable(min_frames, cache=cache, num_threads=num_threads)
        self.decoder_threads = num_threads
        self.audio = index_audio(self.source, cache=cache, num_threads=num_threads, silence=self.silence)
        self.timing = AVTiming.of(self.source.videos, self.audio)
        for i in self.source.good.tolist():
            if self.audio[i].bad is not None and i not in unusable:
                unusable[i] = f"audio: {self.audio[i].bad}"
        rest = [i for i in self.source.good.tolist() if i not in unusable]
        unusable.update(self.pairs.unusable(self.timing, rest))
        return unusable

    def _decode(self, epoch: int, ids: torch.Tensor) -> tuple:
        """Stage 1 of a batch: pair, then decode the frames and the audio windows."""
        t0 = time.perf_counter()
        plan = self.pairs.plan(ids, epoch, timing=self.timing, population=self.usable)
        frames = self.decoder.decode_batch([self.source.videos[i] for i in ids.tolist()], list(plan.frames.numpy()))
        audio = self.audio_decoder.decode_batch([self.audio[i] for i in plan.audio_ids.tolist()],
                                                plan.audio_starts.tolist(), self.pairs.window)
        self.stats.add(decode_s=time.perf_counter() - t0)
        return ids, plan, (frames, audio)

    def _finish(self, epoch: int, run, ids: torch.Tensor, plan, results) -> dict | None:
        """Stage 2 of a batch: account for the failures, pack frames and audio, then the transform."""
        t0 = time.perf_counter()
        frames, audio = results
        named = {}
        for k in range(len(ids)):
            if isinstance(frames[k], str):
                named[k] = (self.source.names[int(ids[k])], frames[k])
            elif isinstance(audio[k], str):
                named[k] = (self.source.names[int(plan.audio_ids[k])], f"audio: {audio[k]}")
        kept = self._kept(run, len(ids), named)
        if not kept:
            return None
        rows = torch.tensor(kept)
        clips = RaggedClips.from_list([frames[k] for k in kept], device=self.device)
        waves = torch.from_numpy(np.stack([audio[k] for k in kept])).to(self.device)
        kept_ids = ids[rows]
        batch = {"ids": kept_ids.to(self.device),
                 "labels": torch.from_numpy(np.asarray(self.source.labels)[kept_ids.numpy()]).to(self.device),
                 "epoch": epoch, "audio_ids": plan.audio_ids[rows].to(self.device),
                 **{name: value[rows].to(self.device) for name, value in plan.targets.items()}}
        if self.keep_clips:
            batch["clips"] = clips
        if self.keep_audio:
            batch["audio"] = waves
        if self.av_transform is not None:
            batch.update(self.av_transform(clips, waves, batch["ids"], epoch))
        self.stats.add(augment_s=time.perf_counter() - t0)
        return batch
