"""Decoding chosen frames of indexed videos with NVIDIA DALI's video decoder, in batches.

:class:`DaliClipDecoder` runs ``fn.decoders.video`` on a batch of videos: on the CPU (FFmpeg's libavcodec
inside DALI) or, for a CUDA device, "mixed" (NVDEC, frames converted to RGB on the GPU). Videos DALI's
variant does not take go to a ``fallback`` decoder (e.g. the PyAV one); so do videos it fails on.

What DALI decodes for a request: DALI decodes from memory, so each video's whole file is read (files over
``max_bytes`` go to the fallback instead). DALI first demuxes the file to index its packets (timestamps and
key frames; nothing is decoded), then decodes the wanted frames in ascending order: it seeks to the key
frame at or before the first one, decodes forward and keeps the wanted frames as they pass, and seeks
again only when the next wanted frame lies in another group of pictures more than 10 frames ahead. So a
clip decodes from the key frame before it to its last frame, never the video from its start. Each
distinct frame is asked for once (DALI would decode a repeated frame again from its key frame); the
clip's order and repeats are made afterwards by indexing. Frames are numbered in presentation order,
as in :class:`~fastssl.data.video.index.VideoInfo`; an index beyond the file's frames is an error
(``pad_mode="none"``), never padding.

Colour: DALI converts YUV to RGB with the BT.601 matrix whatever the stream's colour tags say (the
CPU variant by swscale with ``SWS_BILINEAR | SWS_FULL_CHR_H_INT | SWS_ACCURATE_RND``: chroma upsampled
bilinearly from its centred positions, exact rounding; limited or full range as tagged). On the
synthetic VP9 videos this equals PyAV's ``frame.to_ndarray(format="rgb24", interpolation=
BILINEAR | FULL_CHR_H_INT | ACCURATE_RND)`` bit for bit. PyAV's default conversion replicates each chroma
sample over its 2 x 2 pixels instead, which differs by up to ~50 levels at colour edges. A video
tagged with another matrix (BT.709: most HD video) would come out with wrong colours (up to ~20 levels),
so it goes to the fallback, as do pixel formats other than 8-bit 4:2:0; the tags are read from the
container with PyAV once per file (:func:`colour_reason`). On the GPU, DALI converts NVDEC's output with
its own kernel (BT.601, chroma interpolated linearly in floats), so there agreement with PyAV within a
level or so is expected, not bit for bit (untested).

Nothing is allocated for a video before its index entry is checked against ``max_pixels`` and
``max_frames``, and its file size against the one indexed. The "mixed" (GPU) path follows DALI's
documentation but is untested here (no GPU).

Example (what DALI is asked for, and how the clip is put back together; no DALI needed):
    >>> wanted, order = dali_request([9, 3, 9, 4])
    >>> wanted.tolist(), order.tolist()  # DALI decodes frames 3, 4, 9 once each; the clip is wanted[order]
    ([3, 4, 9], [2, 0, 2, 1])
    >>> dali_request([3, 4, 9])[1] is None  # already ascending and distinct: DALI's output is the clip
    True
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np
import torch

from ..dali_runs import ReusedPipeline, bisect_failures, read_checked
from ..decoders import _back_to_back, _HostBuffer
from ..headers import MAX_PIXELS
from .index import MAX_FRAMES, VideoInfo, open_video, read_video

#: FFmpeg codec names each DALI variant decodes, by device type (DALI's documentation; tested: VP8/VP9 on the CPU).
DALI_CODECS = {"cpu": frozenset({"vp8", "vp9"}),
               "cuda": frozenset({"vp8", "vp9", "h264", "hevc", "av1", "mpeg4"})}
#: FFmpeg's colour matrices (AVColorSpace) that DALI's BT.601 conversion is right for: unspecified (FFmpeg's
#: default is BT.601 too), BT.470BG and SMPTE 170M (both BT.601).
BT601_MATRICES = {2: "unspecified", 5: "bt470bg", 6: "smpte170m"}
#: Files larger than this go to the fallback by default: DALI would read all of them into memory.
MAX_BYTES = 1 << 30


def dali_request(indices) -> tuple[np.ndarray, np.ndarray | None]:
    """The frames to ask DALI for, for the wanted frame ``indices`` (any order, repeats allowed): ascending
    distinct int32 ``wanted``, and ``order`` such that ``wanted[order]`` are ``indices`` (None when ``wanted``
    already is ``indices``)."""
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if len(indices) and bool(np.all(indices[1:] > indices[:-1])):
        return indices.astype(np.int32), None
    wanted, order = np.unique(indices, return_inverse=True)
    return wanted.astype(np.int32), order.reshape(-1)


@functools.lru_cache(maxsize=1 << 16)
def _stream_colour(info: VideoInfo) -> tuple[str, int]:
    """(pixel format, AVColorSpace) of the video's first stream, as FFmpeg reads them from the container and the
    first packets (the index entry — path, offset, size, modification time — keys the cache)."""
    import av

    with open_video(info) as source, av.open(source, metadata_errors="ignore") as container:
        context = container.streams.video[0].codec_context
        return (context.format.name if context.format is not None else ""), int(context.colorspace)


def colour_reason(info: VideoInfo) -> str | None:
    """Why DALI's colour conversion would differ from PyAV's for the video ``info`` (a pixel format other than
    8-bit 4:2:0, or a colour matrix other than BT.601), or None when they agree. Needs PyAV; cached per file."""
    import av

    try:
        pixel_format, matrix = _stream_colour(info)
    except (av.FFmpegError, OSError, IndexError) as error:
        return f"its colour tags cannot be read ({' '.join(str(error).split())[:200]})"
    if pixel_format != "yuv420p":
        return f"pixel format {pixel_format or 'unknown'} (DALI's conversion is checked for yuv420p only)"
    if matrix not in BT601_MATRICES:
        return f"colour matrix {matrix} (AVColorSpace; DALI converts every video as BT.601)"
    return None


class DaliClipDecoder:
    """Decodes chosen frames of a batch of indexed videos with DALI (see the module docstring).

    Args:
        device: "cpu" (DALI's CPU variant) or a CUDA device ("mixed": NVDEC; untested here).
        num_threads: DALI's threads; videos of a batch decode in parallel, one per thread.
        fallback: an object with the same :meth:`decode_batch` (e.g. the PyAV decoder) for the videos DALI does
            not take or fails on; None: those get a reason string.
        max_pixels, max_frames: an index entry beyond these is refused before anything is allocated.
        max_bytes: larger files go to the fallback (DALI reads a whole file into memory to decode it).
        longest: videos of more frames go to the fallback (None: none). DALI indexes a whole file's packets for
            every request, PyAV seeks with the cached index: on the CPU, PyAV is faster on long videos.
    """

    name = "dali"

    def __init__(self, device="cpu", *, num_threads: int = 2, fallback=None, max_pixels: int = MAX_PIXELS,
                 max_frames: int = MAX_FRAMES, max_bytes: int = MAX_BYTES, longest: int | None = None):
        import av  # noqa: F401  (the colour tags are read with PyAV; fails here when it is missing)
        import nvidia.dali  # noqa: F401  (fails here, with its own message, when DALI is missing)

        self.device = torch.device(device)
        if self.device.type not in DALI_CODECS:
            raise ValueError(f"device must be cpu or cuda, got {self.device}")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {self.device} was asked for but CUDA is not available")
        self.num_threads, self.fallback = num_threads, fallback
        self.max_pixels, self.max_frames, self.max_bytes, self.longest = max_pixels, max_frames, max_bytes, longest
        self.codecs = DALI_CODECS[self.device.type]
        self.runs = ReusedPipeline(self._build)

    # --- the batch interface ---------------------------------------------------------------------------------

    def decode_batch(self, infos: list[VideoInfo], indices: list) -> list[torch.Tensor | str]:
        """Per video b: a (len(indices[b]), H, W, 3) uint8 tensor on the decoder's device of the frames
        ``indices[b]`` (any order, repeats allowed) in the order asked, or a one-line reason string (without the
        path) when that video cannot be decoded (indices outside its frames included, as PyAVClipDecoder says
        them)."""
        if len(infos) != len(indices):
            raise ValueError(f"indices must have one entry per video ({len(infos)}), got {len(indices)}")
        wanted = [np.asarray(i, dtype=np.int64).reshape(-1) for i in indices]
        results: list = [None] * len(infos)
        to_dali, to_fallback = [], []  # positions; (position, why DALI does not take it)
        for b, info in enumerate(infos):
            refused = self._refuse(info, wanted[b])
            if refused is not None:
                results[b] = refused
                continue
            why = self._not_for_dali(info)
            if why is None:
                to_dali.append(b)
            else:
                to_fallback.append((b, why))
        encoded = {}
        for b in to_dali:
            data, why = read_checked(infos[b], read_video)
            if data is None:
                to_fallback.append((b, why))
            else:
                encoded[b] = data
        if encoded:
            done, failed = bisect_failures(functools.partial(self._run, infos, wanted, encoded), list(encoded))
            for b, clip in done.items():
                results[b] = clip
            to_fallback += failed
        self._fall_back(infos, indices, to_fallback, results)
        return results

    # --- checks and routing ----------------------------------------------------------------------------------

    def _refuse(self, info: VideoInfo, indices: np.ndarray) -> str | None:
        """Why ``info`` cannot be decoded at all (bad, beyond the limits, indices outside its frames), checked
        before anything is allocated."""
        if info.bad is not None:
            return info.bad
        if info.width * info.height > self.max_pixels:
            return f"too large: {info.height} x {info.width} pixels (max_pixels is {self.max_pixels})"
        if info.frames > self.max_frames or len(indices) > self.max_frames:
            return f"too long: {max(info.frames, len(indices))} frames (max_frames is {self.max_frames})"
        if len(indices) == 0:
            return "no frame indices given"
        if indices.min() < 0 or indices.max() >= info.frames:
            return f"frame indices must be in [0, {info.frames}), got {indices.min()} .. {indices.max()}"
        return None

    def _not_for_dali(self, info: VideoInfo) -> str | None:
        """Why DALI's variant does not take ``info`` (codec, size of file, colour), or None when it does."""
        if info.codec not in self.codecs:
            return f"codec {info.codec} (DALI's {self.device.type} variant takes {', '.join(sorted(self.codecs))})"
        if info.bytes > self.max_bytes:
            return f"{info.bytes} bytes (max_bytes is {self.max_bytes}; DALI reads whole files)"
        if self.longest is not None and info.frames > self.longest:
            return f"{info.frames} frames (longest is {self.longest}; DALI indexes the whole file per request)"
        return colour_reason(info)

    def _fall_back(self, infos, indices, routed: list[tuple[int, str]], results: list) -> None:
        """Hands the videos ``routed`` (position, why not DALI) to the fallback, or records why as their result."""
        if not routed:
            return
        if self.fallback is None:
            for b, why in routed:
                results[b] = f"not decoded by DALI: {why}"
            return
        routed = sorted(routed)  # in batch order
        positions = [b for b, _ in routed]
        decoded = self.fallback.decode_batch([infos[b] for b in positions], [indices[b] for b in positions])
        for (b, why), result in zip(routed, decoded):
            if isinstance(result, str) and why.startswith("decoding failed"):  # both failed: say both
                result = f"{result} (DALI: {why})"
            results[b] = result

    # --- DALI ------------------------------------------------------------------------------------------------

    def _build(self, batch_size: int):
        from nvidia.dali import fn, pipeline_def, types

        gpu = self.device.type == "cuda"
        device_id = None
        if gpu:
            device_id = self.device.index if self.device.index is not None else torch.cuda.current_device()
        # older DALI has the decoder under experimental only
        video = getattr(fn.decoders, "video", None) or fn.experimental.decoders.video

        @pipeline_def(batch_size=batch_size, num_threads=self.num_threads, device_id=device_id,
                      prefetch_queue_depth=1, exec_dynamic=True)
        def clip_pipeline():
            encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)
            frames = fn.external_source(name="frames", dtype=types.INT32, ndim=1)
            return video(encoded, device="mixed" if gpu else "cpu", frames=frames, pad_mode="none")

        return clip_pipeline()

    def _run(self, infos, wanted, encoded: dict, positions: list[int]) -> dict:
        """{position: clip} for ``positions``, in one DALI run; RuntimeError (one line) on any failure."""
        requests = [dali_request(wanted[b]) for b in positions]
        samples = self.runs.run({"encoded": [encoded[b] for b in positions],
                                 "frames": [frames for frames, _ in requests]}, lambda out: self._tensors(out[0]))
        clips = {}
        for b, sample, (frames, order) in zip(positions, samples, requests):
            info = infos[b]
            if tuple(sample.shape) != (len(frames), info.height, info.width, 3):
                raise RuntimeError(f"DALI gave {tuple(sample.shape)} for {len(frames)} frames of {info.height} x "
                                   f"{info.width}")
            clips[b] = sample if order is None else sample[torch.from_numpy(order).to(sample.device)]
        return clips

    def _tensors(self, out) -> list[torch.Tensor]:
        """DALI's output samples as (F, H, W, 3) uint8 tensors on the decoder's device: views of one buffer."""
        shapes = [tuple(out[i].shape()) for i in range(len(out))]
        lengths = [int(np.prod(shape)) for shape in shapes]
        offsets = np.cumsum([0] + lengths[:-1]).tolist()
        total = sum(lengths)
        if self.device.type == "cuda":
            data = torch.empty(total, dtype=torch.uint8, device=self.device)
            stream = torch.cuda.current_stream(self.device)
            # Synchronous: DALI may reuse its output buffer once ``out`` is gone.
            out.copy_to_external(ctypes.c_void_p(data.data_ptr()), cuda_stream=ctypes.c_void_p(stream.cuda_stream),
                                 non_blocking=False)
        elif _back_to_back([out[i] for i in range(len(out))], offsets):
            data = torch.from_numpy(np.asarray(_HostBuffer(out, total)))  # DALI's buffer itself, held alive
        else:
            data = torch.from_numpy(np.concatenate([np.array(out[i]).reshape(-1) for i in range(len(out))]))
        return [data[start:start + length].view(shape) for start, length, shape in zip(offsets, lengths, shapes)]

