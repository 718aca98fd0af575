"""Video data: a source of video files and their cached index, clip sampling, and a clip decoder (PyAV).

- :mod:`~fastssl.data.video.index`: :func:`probe` reads a video's frame count, rate, size, codec and key
  frames from its container (bad files recorded with the reason); :func:`index_videos` caches that as JSON.
- :mod:`~fastssl.data.video.sources`: :func:`video_folder` and :func:`video_list`, each a :class:`VideoSource`.
- :mod:`~fastssl.data.video.sampling`: :func:`clip_starts`, keyed by (seed, epoch, video id, view).
- :mod:`~fastssl.data.video.decode`: :class:`FrameDecoder` decodes only the frames a clip needs.

Decoded clips are packed into a :class:`fastssl.clips.RaggedClips`. PyAV (``pip install fastssl-engine[video]``)
is imported by the functions that read videos, never at import: ``import fastssl.data.video`` needs none.

Example:
    >>> import torch
    >>> starts = clip_starts(torch.tensor([5]), torch.tensor([40]), clip_len=8, stride=2, seed=0, epoch=1)
    >>> 0 <= starts.item() <= 40 - clip_span(8, 2)
    True
"""

from .decode import FrameDecoder, VideoDecodeError
from .index import MAX_FRAMES, VideoInfo, index_videos, probe
from .sampling import clip_indices, clip_span, clip_starts
from .sources import VIDEO_EXTENSIONS, VideoSource, video_folder, video_list

__all__ = ["FrameDecoder", "MAX_FRAMES", "VIDEO_EXTENSIONS", "VideoDecodeError", "VideoInfo", "VideoSource",
           "clip_indices", "clip_span", "clip_starts", "index_videos", "probe", "video_folder", "video_list"]
