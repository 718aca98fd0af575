"""Where the videos come from: a folder of video files or a ``path [label]`` list, with each video's index entry.

A :class:`VideoSource` is a :class:`~fastssl.data.sources.Source` (names, labels, classes, ``read(i)`` the
encoded bytes) whose ``videos[i]`` is video i's :class:`~fastssl.data.video.index.VideoInfo`, from the
cached index (:func:`~fastssl.data.video.index.index_videos`). Bad videos keep their ids (ids are the
same whatever decodes); :attr:`VideoSource.good` lists the usable ones and :attr:`VideoSource.bad` says why
the others are not.

- :func:`video_folder`: ``root/<class>/<file>`` gives labels from the sorted class folders; a folder
  of videos and no class subfolders is a flat, unlabelled set.
- :func:`video_list`: a text file with one ``path [label]`` per line (paths relative to the list's folder),
  parsed as :func:`~fastssl.data.sources.file_list` parses image lists.
- :func:`video_shards`: uncompressed tar shards (webdataset layout: ``key.webm`` / ``key.mp4`` ... with an
  optional ``key.cls`` label), indexed in place: a video is read by seeking into its shard, never extracted.

Example:
    >>> source = VideoSource(["a.webm", "b.mp4"], np.array([0, 1]), ["x", "y"],
    ...                      videos=(VideoInfo("a.webm", 10, 0, frames=32, fps=16.0),
    ...                              VideoInfo("b.mp4", 0, 0, bad="empty file")))
    >>> source.good.tolist(), source.frames.tolist(), source.bad
    ([0], [32, 0], {'b.mp4': 'empty file'})
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..headers import MAX_PIXELS
from ..sources import TAR_EXTENSIONS, Source, file_list, folder, tar_members
from .index import MAX_FRAMES, VideoInfo, index_videos

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ogv")


@dataclass(frozen=True)
class VideoSource(Source):
    """Videos ``0..len-1``: a Source whose ``videos[i]`` is video i's index entry."""

    videos: tuple[VideoInfo, ...] = ()
    root: str = ""  #: the folder the names are relative to (a folder source's root, a list's folder): caches live there

    def __post_init__(self):
        super().__post_init__()
        if len(self.videos) != len(self.names):
            raise ValueError(f"videos has {len(self.videos)} entries for {len(self.names)} names")

    @property
    def frames(self) -> np.ndarray:
        """(len,) int64: each video's frame count (0 for a bad one)."""
        return np.asarray([0 if v.bad else v.frames for v in self.videos], dtype=np.int64)

    @property
    def good(self) -> np.ndarray:
        """int64 ids of the usable videos, ascending."""
        return np.asarray([i for i, v in enumerate(self.videos) if v.bad is None], dtype=np.int64)

    @property
    def bad(self) -> dict[str, str]:
        """{name: why it cannot be used} for the bad videos."""
        return {name: v.bad for name, v in zip(self.names, self.videos) if v.bad is not None}


def video_folder(root: str, *, cache: str | None | bool = None, max_pixels: int = MAX_PIXELS,
                 max_frames: int = MAX_FRAMES, num_threads: int = 1) -> VideoSource:
    """Videos under ``root`` (class subfolders → labels, or flat → -1), indexed (``cache``: see
    :func:`~fastssl.data.video.index.index_videos`)."""
    found = folder(root, VIDEO_EXTENSIONS, "videos")
    videos = index_videos(found.names, root, cache=cache, max_pixels=max_pixels, max_frames=max_frames,
                          num_threads=num_threads)
    return VideoSource(found.names, found.labels, found.classes, videos=tuple(videos), root=root)


def video_list(path: str, *, cache: str | None | bool = None, max_pixels: int = MAX_PIXELS,
               max_frames: int = MAX_FRAMES, num_threads: int = 1) -> VideoSource:
    """Videos listed in a text file, one ``path [label]`` per line, indexed (the cache beside the list by default)."""
    listed = file_list(path)
    root = os.path.dirname(os.path.abspath(path))
    videos = index_videos(listed.names, root, cache=cache, max_pixels=max_pixels, max_frames=max_frames,
                          num_threads=num_threads)
    return VideoSource(listed.names, listed.labels, videos=tuple(videos), root=root)


def video_shards(paths: list[str], *, cache: str | None | bool = None, max_pixels: int = MAX_PIXELS,
                 max_frames: int = MAX_FRAMES, num_threads: int = 1) -> VideoSource:
    """Videos inside uncompressed tar shards, indexed (the cache beside the first shard by default)."""
    found = tar_members(paths, VIDEO_EXTENSIONS, "videos")
    shards = [path for path, _, _ in found._locations]
    root = os.path.dirname(os.path.abspath(shards[0]))
    videos = index_videos(shards, root, cache=cache, max_pixels=max_pixels, max_frames=max_frames,
                          num_threads=num_threads, members=[(offset, size) for _, offset, size in found._locations],
                          names=found.names)
    return VideoSource(found.names, found.labels, _locations=found._locations, videos=tuple(videos), root=root)


def open_video_source(spec, *, cache: str | None | bool = None, max_pixels: int = MAX_PIXELS,
                      max_frames: int = MAX_FRAMES, num_threads: int = 1) -> VideoSource:
    """A VideoSource from a folder, a ``.txt`` list of ``path [label]``, ``.tar`` shards (a path or a list of
    them), or a VideoSource (returned as it is)."""
    if isinstance(spec, VideoSource):
        return spec
    options = {"cache": cache, "max_pixels": max_pixels, "max_frames": max_frames, "num_threads": num_threads}
    if isinstance(spec, (list, tuple)):
        return video_shards([os.fspath(p) for p in spec], **options)
    spec = os.fspath(spec)
    if spec.endswith(TAR_EXTENSIONS):
        return video_shards([spec], **options)
    if os.path.isfile(spec):
        return video_list(spec, **options)
    if not os.path.isdir(spec):
        raise FileNotFoundError(f"no video folder or list at {spec!r}")
    return video_folder(spec, **options)
