"""Video data: a source of video files and their cached index, clip sampling, and a clip decoder (PyAV).

- :mod:`~fastssl.data.video.index`: :func:`probe` reads a video's frame count, rate, size, codec and key
  frames from its container (bad files recorded with the reason); :func:`index_videos` caches that as JSON.
- :mod:`~fastssl.data.video.sources`: :func:`video_folder` and :func:`video_list`, each a :class:`VideoSource`.
- :mod:`~fastssl.data.video.sampling`: :func:`clip_starts`, keyed by (seed, epoch, video id, view).
- :mod:`~fastssl.data.video.sampling`: the tuple rules of the temporal-order tasks, each a :class:`ClipPlan`.
- :mod:`~fastssl.data.video.decode`: :class:`FrameDecoder` decodes only the frames a clip needs; the clip
  decoders (PyAV, DALI) decode a batch of them.
- :mod:`~fastssl.data.video.loader`: :class:`ClipLoader`, the clip pipeline.

Decoded clips are packed into a :class:`fastssl.clips.RaggedClips`. PyAV (``pip install fastssl-engine[video]``)
is imported by the functions that read videos, never at import: ``import fastssl.data.video`` needs none.

Example:
    >>> import torch
    >>> starts = clip_starts(torch.tensor([5]), torch.tensor([40]), clip_len=8, stride=2, seed=0, epoch=1)
    >>> 0 <= starts.item() <= 40 - clip_span(8, 2)
    True
"""

from .decode import CLIP_DECODERS, FrameDecoder, PyAVClipDecoder, VideoDecodeError, make_clip_decoder
from .index import MAX_FRAMES, VideoInfo, index_videos, probe
from .loader import BadVideoError, ClipLoader
from .sampling import (CLIP_ORDERS, ClipPlan, arrow_of_time_clips, centre_clip, clip_indices, clip_order_tuples,
                       clip_span, clip_starts, odd_one_out_tuples, shuffle_learn_tuples)
from .sources import VIDEO_EXTENSIONS, VideoSource, open_video_source, video_folder, video_list

__all__ = ["BadVideoError", "CLIP_DECODERS", "CLIP_ORDERS", "ClipLoader", "ClipPlan", "FrameDecoder", "MAX_FRAMES",
           "PyAVClipDecoder", "VIDEO_EXTENSIONS", "VideoDecodeError", "VideoInfo", "VideoSource",
           "arrow_of_time_clips", "centre_clip", "clip_indices", "clip_order_tuples", "clip_span", "clip_starts",
           "index_videos", "make_clip_decoder", "odd_one_out_tuples", "open_video_source", "probe",
           "shuffle_learn_tuples", "video_folder", "video_list"]
