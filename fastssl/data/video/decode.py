"""Decoding the frames a clip needs, and no others: PyAV's :class:`FrameDecoder`, and the clip decoders the loader uses.

:meth:`FrameDecoder.frames` decodes any set of frame indices of a video: for the first wanted frame it
seeks to the key frame at or before it (by that key frame's timestamp, from the index), decodes forward,
keeps the wanted frames as they pass and stops after the last one. When the next wanted frame lies past
another key frame and more than :data:`SEEK_AHEAD` frames ahead, it seeks again instead of decoding the
frames in between (:func:`must_seek`); a clip's frames across a key frame are decoded on, without a seek.
So a clip at the end of a long video decodes at most one group of pictures before it, not the video from
its start; decoding frames 0..F-1 in order decodes each frame once. ``frames_decoded`` counts every frame the decoder
produced (kept or not).

Frames come out as (H, W, 3) uint8 RGB, converted from the stream's YUV by :func:`rgb24`: FFmpeg's swscale
with bilinear chroma upsampling from the chroma samples' centred positions and exact rounding (the
conversion DALI's CPU decoder makes, so the two decoders give the same bits; PyAV's default copies each
chroma sample over its 2 x 2 pixels, up to ~50 levels off at colour edges and further from the source).
They are the same bits a full decode of the video gives: key frames restart the decoder's state.

Nothing is allocated before the index entry's size and length are checked against ``max_pixels`` and
``max_frames``, and every decoded frame must have the size the index says (a stream that changes size
midway is refused), so a lying header cannot make the decoder allocate more than the limits allow.

A clip decoder (:func:`make_clip_decoder`) decodes a batch: ``decode_batch(infos, indices)`` returns, per video,
the (K, H, W, 3) uint8 frames asked for, or a one-line reason when that video cannot be decoded (the loader
skips it; the other videos of the batch are not affected). :class:`PyAVClipDecoder` runs one
:class:`FrameDecoder` per video on a thread pool (PyAV releases the GIL while FFmpeg decodes);
``fastssl.data.video.dali.DaliClipDecoder`` decodes with DALI and hands the codecs it does not take to PyAV.

Example (index arithmetic only; decoding needs a video file):
    >>> from fastssl.data.video.index import VideoInfo
    >>> info = VideoInfo("a.mp4", 1, 0, frames=64, fps=30.0, width=8, height=8, codec="h264", time_base=(1, 30),
    ...                  frame_step=1.0, keyframes=(0, 16, 32, 48), keyframe_pts=(0, 16, 32, 48))
    >>> seek_points(info, [40, 42, 44, 62])  # the key frames decoding starts from, for these wanted frames
    [32, 48]
    >>> seek_points(info, [14, 15, 16, 17])  # a clip across a key frame decodes on, without a seek
    [0]
"""

from __future__ import annotations

import bisect
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ...clips import RaggedClips
from ..headers import MAX_PIXELS
from .index import MAX_FRAMES, VideoInfo, open_video


def rgb24(frame, reformatter=None) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a PyAV video frame (see the module docstring for the conversion). ``reformatter``: a
    ``av.video.reformatter.VideoReformatter`` to reuse (it keeps FFmpeg's scaler between frames of one size, 2-3x
    faster on small frames than building one per frame, as ``frame.to_ndarray`` does); one per thread."""
    from av.video.reformatter import Interpolation, VideoReformatter

    flags = Interpolation.BILINEAR | Interpolation.FULL_CHR_H_INT | Interpolation.ACCURATE_RND
    return (reformatter or VideoReformatter()).reformat(frame, format="rgb24", interpolation=flags).to_ndarray()


class VideoDecodeError(ValueError):
    """A video that cannot be decoded as its index entry says (bad, too large, frames missing or resized)."""


#: a seek costs about what decoding this many frames does: a wanted frame fewer frames ahead is decoded up to
SEEK_AHEAD = 10


def must_seek(info: VideoInfo, last: int, wanted: int) -> bool:
    """Whether :class:`FrameDecoder`, having decoded frame ``last``, seeks to reach frame ``wanted`` (> last) rather
    than decoding forward: when a key frame lies after ``last`` on the way and ``wanted`` is more than
    :data:`SEEK_AHEAD` frames ahead (the rule DALI's decoder follows)."""
    return info.keyframe_before(wanted) > last and wanted - last > SEEK_AHEAD


def seek_points(info: VideoInfo, indices) -> list[int]:
    """The key frames :class:`FrameDecoder` seeks to for the wanted frame ``indices``, ascending: the one before
    the first wanted frame, then one for each wanted frame :func:`must_seek` says to seek to."""
    wanted = sorted({int(i) for i in indices})
    points = [info.keyframe_before(wanted[0])]
    points += [info.keyframe_before(w) for last, w in zip(wanted, wanted[1:]) if must_seek(info, last, w)]
    return points


class FrameDecoder:
    """Decodes chosen frames of indexed videos (see the module docstring); needs PyAV.

    Args:
        max_pixels, max_frames: an index entry beyond these is refused before anything is allocated.
        threads: the codec's decoding threads per video (0: FFmpeg's choice).
    """

    def __init__(self, *, max_pixels: int = MAX_PIXELS, max_frames: int = MAX_FRAMES, threads: int = 1):
        from av.video.reformatter import VideoReformatter  # fails here, with PyAV's own message, when it is missing

        self.reformatter = VideoReformatter()  # not thread-safe: a FrameDecoder decodes in one thread at a time
        self.max_pixels = max_pixels
        self.max_frames = max_frames
        self.threads = threads
        self.frames_decoded = 0  #: frames produced by the codec so far, wanted or not
        self.seeks = 0  #: seeks so far: one per :func:`seek_points` entry of each request

    def clip(self, info: VideoInfo, start: int, clip_len: int, stride: int = 1) -> np.ndarray:
        """(clip_len, H, W, 3) uint8: frames ``start, start + stride, ...`` of the video ``info`` describes."""
        return self.frames(info, range(start, start + clip_len * stride, stride))

    def clips(self, infos: list[VideoInfo], starts, clip_len: int, stride: int = 1) -> RaggedClips:
        """A :class:`~fastssl.clips.RaggedClips` on the CPU of one clip per video: clip b is frames ``starts[b],
        starts[b] + stride, ...`` (``clip_len`` of them) of ``infos[b]``; ``starts``: (B,) ints, e.g. from
        :func:`~fastssl.data.video.sampling.clip_starts`."""
        starts = [int(s) for s in starts]
        if len(starts) != len(infos):
            raise ValueError(f"starts must have one start per video ({len(infos)}), got {len(starts)}")
        return RaggedClips.from_list([torch.from_numpy(self.clip(info, start, clip_len, stride))
                                      for info, start in zip(infos, starts)])

    def frames(self, info: VideoInfo, indices) -> np.ndarray:
        """(len(indices), H, W, 3) uint8: the frames ``indices`` (any order, repeats allowed) of the video ``info``
        describes, in the order asked."""
        indices = np.asarray(list(indices), dtype=np.int64).reshape(-1)
        self._check(info, indices)
        wanted = np.unique(indices)  # ascending
        out = np.empty((len(indices), info.height, info.width, 3), dtype=np.uint8)
        slots = {int(w): np.flatnonzero(indices == w) for w in wanted}
        self._decode(info, [int(w) for w in wanted], slots, out)
        return out

    def _check(self, info: VideoInfo, indices: np.ndarray) -> None:
        if info.bad is not None:
            raise VideoDecodeError(f"{info.path}: {info.bad}")
        if info.width * info.height > self.max_pixels:
            raise VideoDecodeError(f"{info.path}: too large: {info.height} x {info.width} pixels (max_pixels is "
                                   f"{self.max_pixels})")
        if info.frames > self.max_frames or len(indices) > self.max_frames:
            raise VideoDecodeError(f"{info.path}: too long: {max(info.frames, len(indices))} frames (max_frames is "
                                   f"{self.max_frames})")
        if len(indices) == 0:
            raise ValueError("no frame indices given")
        if indices.min() < 0 or indices.max() >= info.frames:
            raise ValueError(f"{info.path}: frame indices must be in [0, {info.frames}), got {indices.min()} .. "
                             f"{indices.max()}")

    def _decode(self, info: VideoInfo, wanted: list[int], slots: dict, out: np.ndarray) -> None:
        import av

        with open_video(info) as source:
            try:
                container = av.open(source, metadata_errors="ignore")
            except (av.FFmpegError, OSError) as error:
                raise VideoDecodeError(f"{info.path}: unreadable: {error}") from None
            with container:
                self._decode_stream(container, info, wanted, slots, out)

    def _decode_stream(self, container, info: VideoInfo, wanted: list[int], slots: dict, out: np.ndarray) -> None:
        import av

        stream = container.streams.video[0]
        stream.codec_context.thread_count = self.threads
        at = 0  # position in wanted
        try:
            while at < len(wanted):
                at = self._decode_group(container, stream, info, wanted, at, slots, out)
        except av.FFmpegError as error:
            raise VideoDecodeError(f"{info.path}: decoding failed: {error}") from None

    def _decode_group(self, container, stream, info: VideoInfo, wanted: list[int], at: int, slots: dict,
                      out: np.ndarray) -> int:
        """Seeks to the key frame before ``wanted[at]`` and decodes forward while the wanted frames are nearer than
        the next seek point; returns the position in ``wanted`` reached."""
        key = max(bisect.bisect_right(info.keyframes, wanted[at]) - 1, 0)
        container.seek(info.keyframe_pts[key], stream=stream, backward=True)
        self.seeks += 1
        for frame in container.decode(stream):
            self.frames_decoded += 1
            if frame.pts is None:
                continue
            index = info.index_of(frame.pts)
            if index > wanted[at]:
                raise VideoDecodeError(f"{info.path}: frame {wanted[at]} is missing (the stream went from before it "
                                       f"to frame {index})")
            if index < wanted[at]:
                continue
            if frame.width != info.width or frame.height != info.height:
                raise VideoDecodeError(f"{info.path}: frame {index} is {frame.height} x {frame.width}, the index says "
                                       f"{info.height} x {info.width}")
            out[slots[index]] = rgb24(frame, self.reformatter)
            at += 1
            if at == len(wanted):
                return at
            if must_seek(info, index, wanted[at]):  # seeking is shorter than decoding up to it
                return at
        raise VideoDecodeError(f"{info.path}: the stream ended before frame {wanted[at]} (of {info.frames})")


class PyAVClipDecoder:
    """Clip decoder (see the module docstring) on the CPU with PyAV: ``num_threads`` videos decoded at once, each
    thread with a :class:`FrameDecoder` of its own."""

    name = "pyav"

    def __init__(self, *, num_threads: int = 2, max_pixels: int = MAX_PIXELS, max_frames: int = MAX_FRAMES):
        FrameDecoder()  # fails here when PyAV is missing
        self.device = torch.device("cpu")
        self.max_pixels, self.max_frames = max_pixels, max_frames
        self.pool = ThreadPoolExecutor(num_threads, thread_name_prefix="fastssl-video")
        self.local = threading.local()

    def _one(self, info: VideoInfo, indices) -> torch.Tensor | str:
        decoder = getattr(self.local, "decoder", None)
        if decoder is None:
            decoder = self.local.decoder = FrameDecoder(max_pixels=self.max_pixels, max_frames=self.max_frames)
        try:
            return torch.from_numpy(decoder.frames(info, indices))
        except (VideoDecodeError, ValueError) as error:
            return str(error).removeprefix(f"{info.path}: ")

    def decode_batch(self, infos: list[VideoInfo], indices: list) -> list[torch.Tensor | str]:
        """Per video b: frames ``indices[b]`` of ``infos[b]`` as a (K, H, W, 3) uint8 tensor, or why not (str)."""
        return list(self.pool.map(self._one, infos, indices))


#: The clip decoders by name; "auto" takes DALI where it is installed, else PyAV.
CLIP_DECODERS = ("auto", "dali", "pyav")
#: "auto" on the CPU: longer videos go to PyAV (DALI indexes the whole file per request; measured on 2 cores,
#: clips of 16 frames: 32-frame videos DALI 1,216 / PyAV 567 clips/s, 240-frame videos DALI 225 / PyAV 372)
DALI_CPU_LONGEST = 96


def make_clip_decoder(name: str = "auto", device="cpu", *, num_threads: int = 2, max_pixels: int = MAX_PIXELS,
                      max_frames: int = MAX_FRAMES):
    """A clip decoder by name (:data:`CLIP_DECODERS`) for ``device``. "dali" hands every video DALI cannot take
    (its codec or colour format, or an error) to PyAV; "auto" is "dali" when DALI is installed, else "pyav" — on
    the CPU with the videos longer than :data:`DALI_CPU_LONGEST` frames handed to PyAV (DALI decodes short VP8/VP9
    videos twice as fast as PyAV, long ones slower)."""
    if name not in CLIP_DECODERS:
        raise ValueError(f"decoder must be one of {', '.join(CLIP_DECODERS)}, got {name!r}")
    device = torch.device(device)
    limits = {"max_pixels": max_pixels, "max_frames": max_frames}
    longest = None
    if name == "auto":
        import importlib.util

        name = "dali" if importlib.util.find_spec("nvidia") and importlib.util.find_spec("nvidia.dali") else "pyav"
        longest = DALI_CPU_LONGEST if device.type == "cpu" else None
    pyav = PyAVClipDecoder(num_threads=num_threads, **limits)
    if name == "pyav":
        return pyav
    from .dali import DaliClipDecoder

    return DaliClipDecoder(device, num_threads=num_threads, fallback=pyav, longest=longest, **limits)
