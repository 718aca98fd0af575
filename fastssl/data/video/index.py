"""What each video holds — frames, rate, size, codec, key frames — probed once from its container and cached.

:func:`probe` opens a video with PyAV and reads its container: the stream's size and codec from the
header, then every packet's timestamp and key-frame flag by demuxing (packets are read, not decoded),
and finally decodes the last group of pictures (from the last key frame to the end) to check that the
end of the file is there and decodes. Nothing is allocated from what a header claims before it is
checked against ``max_pixels`` and ``max_frames``. A video that cannot be used is recorded with the
reason in :attr:`VideoInfo.bad` (empty, unreadable, no video stream, no frames, truncated, too large,
...) instead of raising, so that an index of a crawl lists its bad files once.

:func:`index_videos` probes a list of files and caches the result as JSON (beside the data, in a
cache folder, or nowhere); an entry is probed again when its file's size or modification time changes,
or when the limits it was checked against change.

Frames are numbered 0..frames-1 in presentation order. For a constant-rate stream (all that encoders
write by default) frame i has timestamp ``start_pts + round(i * frame_step)`` (in ``time_base``
seconds); for a variable-rate one, every frame's timestamp is kept in :attr:`VideoInfo.pts`.

Example:
    >>> info = VideoInfo(path="a.webm", bytes=1000, mtime_ns=0, frames=32, fps=16.0, width=64, height=48,
    ...                  codec="vp9", time_base=(1, 1000), start_pts=0, frame_step=62.5,
    ...                  keyframes=(0, 8, 16, 24), keyframe_pts=(0, 500, 1000, 1500))
    >>> info.duration, info.pts_of(3), info.index_of(188), info.keyframe_before(20)
    (2.0, 188, 3, 16)
    >>> VideoInfo.from_json(info.to_json()) == info
    True
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import io
import json
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace

from ..headers import MAX_PIXELS

#: The default ``max_frames``: 2^20 frames, 9.7 hours at 30 fps.
MAX_FRAMES = 1 << 20
#: Bumped when the fields of an index entry change: older caches are probed again.
INDEX_VERSION = 1
CACHE_NAME = ".fastssl-video-index.json"


class _Bad(Exception):
    """Why a video cannot be used (one line)."""


@dataclass(frozen=True)
class VideoInfo:
    """One video as its container describes it (see the module docstring). ``bad`` is None for a usable video,
    else the reason it is not (and the stream fields are left at their zero defaults)."""

    path: str
    bytes: int  #: file size when probed (a tar member: the member's size)
    mtime_ns: int  #: modification time when probed (a tar member: the shard's)
    bad: str | None = None
    frames: int = 0  #: frames in the stream (packets demuxed)
    fps: float = 0.0  #: average frame rate
    width: int = 0
    height: int = 0
    codec: str = ""  #: FFmpeg's codec name ("vp9", "h264", ...)
    time_base: tuple[int, int] = (0, 1)  #: seconds per timestamp unit, as a fraction
    start_pts: int = 0  #: timestamp of frame 0
    frame_step: float = 0.0  #: timestamp units between frames (the mean over the stream)
    pts: tuple[int, ...] | None = None  #: every frame's timestamp, only when the rate is not constant
    keyframes: tuple[int, ...] = ()  #: indices of the key frames, ascending, starting with 0
    keyframe_pts: tuple[int, ...] = ()  #: their timestamps
    offset: int = -1  #: -1: the video is the file ``path``; else the ``bytes`` bytes at ``offset`` of ``path`` (a tar)

    @property
    def duration(self) -> float:
        """Seconds: frames / fps (0 for a bad video)."""
        return self.frames / self.fps if self.fps > 0 else 0.0

    def pts_of(self, index: int) -> int:
        """The timestamp of frame ``index`` (0 <= index < frames)."""
        if self.pts is not None:
            return self.pts[index]
        return self.start_pts + round(index * self.frame_step)

    def index_of(self, pts: int) -> int:
        """The index of the frame with timestamp ``pts`` (the nearest one for a constant rate)."""
        if self.pts is not None:
            return bisect.bisect_left(self.pts, pts)
        return round((pts - self.start_pts) / self.frame_step) if self.frame_step > 0 else 0

    def keyframe_before(self, index: int) -> int:
        """The index of the last key frame at or before frame ``index``: where decoding frame ``index`` starts."""
        return self.keyframes[max(bisect.bisect_right(self.keyframes, index) - 1, 0)]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, entry: dict) -> "VideoInfo":
        names = {f.name for f in fields(cls)}
        entry = {k: v for k, v in entry.items() if k in names}
        for name in ("time_base", "keyframes", "keyframe_pts", "pts"):
            if entry.get(name) is not None:
                entry[name] = tuple(entry[name])
        return cls(**entry)


class _Member(io.RawIOBase):
    """The ``size`` bytes at ``offset`` of the file ``path``, as a read-only seekable file (a tar member)."""

    def __init__(self, path: str, offset: int, size: int):
        super().__init__()
        self.file, self.offset, self.size, self.position = open(path, "rb"), offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = min(max(base + position, 0), self.size)
        return self.position

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.size - self.position)
        if count <= 0:
            return 0
        self.file.seek(self.offset + self.position)
        read = self.file.readinto(memoryview(buffer)[:count])
        self.position += read
        return read

    def close(self) -> None:
        self.file.close()
        super().close()


@contextlib.contextmanager
def open_video(info: VideoInfo):
    """``with open_video(info) as source: av.open(source)``: the video's path, or a file of its bytes inside a tar
    shard (closed on exit)."""
    if info.offset < 0:
        yield info.path
        return
    with io.BufferedReader(_Member(info.path, info.offset, info.bytes)) as member:
        yield member


def read_video(info: VideoInfo) -> bytes:
    """The video's encoded bytes (no more than the indexed size: a file that grew reads as its first bytes + 1)."""
    with open(info.path, "rb") as f:
        f.seek(max(info.offset, 0))
        return f.read(info.bytes + (1 if info.offset < 0 else 0))


def probe(path: str, *, max_pixels: int = MAX_PIXELS, max_frames: int = MAX_FRAMES,
          member: tuple[int, int] | None = None) -> VideoInfo:
    """The :class:`VideoInfo` of the video file ``path`` — or, with ``member`` = (offset, size), of those bytes of
    the tar shard ``path`` — (needs PyAV); a bad or missing video is returned with ``bad`` set."""
    offset = -1 if member is None else member[0]
    try:
        stat = os.stat(path)
    except OSError as error:
        return VideoInfo(path, 0, 0, bad=f"unreadable: {_one_line(error)}", offset=offset)
    size = stat.st_size if member is None else member[1]
    entry = VideoInfo(path, size, stat.st_mtime_ns, offset=offset)
    try:
        found = _probe(entry, max_pixels, max_frames)
    except _Bad as reason:
        return replace(entry, bad=str(reason))
    return replace(entry, **found)


@contextlib.contextmanager
def open_container(entry):
    """``with open_container(entry) as (source, container)``: an indexed file (``entry``: a VideoInfo or AudioInfo;
    ``source`` its path or a file of its bytes in a tar shard) and its PyAV container, both closed on exit; _Bad
    for an empty or unreadable file."""
    import av

    if entry.bytes == 0:
        raise _Bad("empty file")
    with open_video(entry) as source:
        try:
            container = av.open(source, metadata_errors="ignore")
        except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
            raise _Bad(f"unreadable: {_one_line(error)}") from None
        with container:
            yield source, container


def _probe(entry: VideoInfo, max_pixels: int, max_frames: int) -> dict:
    with open_container(entry) as (_, container):
        return _read_container(container, max_pixels, max_frames)


def _read_container(container, max_pixels: int, max_frames: int) -> dict:
    """Reads an open container (see the module docstring): the stream's fields, or _Bad."""
    if not container.streams.video:
        raise _Bad("no video stream")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        raise _Bad(f"its header claims {height} x {width} pixels")
    if width * height > max_pixels:
        raise _Bad(f"too large: {height} x {width} = {height * width} pixels (max_pixels is {max_pixels})")
    claimed = stream.frames  # 0 when the container does not say (Matroska)
    if claimed > max_frames:
        raise _Bad(f"too long: it claims {claimed} frames (max_frames is {max_frames})")
    stamps, keys = _demux(container, stream, max_frames)
    if claimed and len(stamps) < claimed:
        raise _Bad(f"truncated: {len(stamps)} of the {claimed} frames its container claims")
    order = sorted(stamps)
    if len(set(order)) != len(order):  # frames could not be told apart by their timestamps
        raise _Bad(f"repeated timestamps: {len(order)} frames, {len(set(order))} distinct timestamps")
    if stamps[0] not in keys or order[0] != min(keys):
        raise _Bad("its first frame is not a key frame")
    keyframes = sorted(bisect.bisect_left(order, t) for t in keys)
    step = (order[-1] - order[0]) / (len(order) - 1) if len(order) > 1 else 1.0
    constant = all(abs(t - (order[0] + i * step)) < step / 2 for i, t in enumerate(order))
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 1 / (step * float(stream.time_base))
    unit = float(stream.time_base)
    _check_duration(container, stream, (order[-1] - order[0] + step) * unit, step * unit)
    found = dict(frames=len(order), fps=fps, width=width, height=height, codec=stream.codec_context.name,
                 time_base=(stream.time_base.numerator, stream.time_base.denominator), start_pts=order[0],
                 frame_step=step, pts=None if constant else tuple(order), keyframes=tuple(keyframes),
                 keyframe_pts=tuple(order[k] for k in keyframes))
    _check_last_group(container, stream, order, keyframes[-1], height, width)
    return found


def _demux(container, stream, max_frames: int) -> tuple[list[int], set[int]]:
    """Every packet's timestamp and the key frames' ones, by reading (not decoding) the stream."""
    import av

    stamps, keys = [], set()
    try:
        for packet in container.demux(stream):
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:  # the demuxer's empty packet at the end
                continue
            stamps.append(stamp)
            if packet.is_keyframe:
                keys.add(stamp)
            if len(stamps) > max_frames:
                raise _Bad(f"too long: more than max_frames = {max_frames} frames")
    except av.FFmpegError as error:
        raise _Bad(f"corrupt: {_one_line(error)} after {len(stamps)} frames") from None
    if not stamps:
        raise _Bad("no frames")
    return stamps, keys


def _check_duration(container, stream, covered: float, frame_seconds: float) -> None:
    """A truncated Matroska file keeps the duration its header claims (and has no frame count): its frames must cover
    it, within two frames. The container's duration is the longest stream's, so it is compared only when the video
    is the container's one stream."""
    claimed = None
    if stream.duration is not None:
        claimed = stream.duration * float(stream.time_base)
    elif container.duration is not None and len(container.streams) == 1:
        claimed = container.duration / 1_000_000  # AV_TIME_BASE units
    if claimed is not None and covered < claimed - 2 * frame_seconds:
        raise _Bad(f"truncated: its frames cover {covered:.3f} s of the {claimed:.3f} s its container claims")


def _check_last_group(container, stream, order: list[int], last_key: int, height: int, width: int) -> None:
    """Decodes from the last key frame to the end: a truncated or corrupt end shows as an error or missing frames."""
    import av

    expected = len(order) - last_key
    decoded = 0
    try:
        container.seek(order[last_key], stream=stream, backward=True)
        for frame in container.decode(stream):
            if (frame.height, frame.width) != (height, width):  # the decoder allocates what the bitstream says
                raise _Bad(f"its frames are {frame.height} x {frame.width}, its header says {height} x {width}")
            if frame.pts is not None and frame.pts >= order[last_key]:
                decoded += 1
    except av.FFmpegError as error:
        raise _Bad(f"corrupt: its last frames do not decode ({_one_line(error)})") from None
    if decoded < expected:
        raise _Bad(f"truncated: {decoded} of its last {expected} frames decode")


def _one_line(error: BaseException) -> str:
    """The error's message on one line, without the file name FFmpeg's errors append (the index names the file)."""
    return " ".join(str(getattr(error, "strerror", None) or error).split())[:200]


# --- the cached index ------------------------------------------------------------------------------------------


def cache_path(root: str, cache: str | None) -> str:
    """Where the index of the videos under ``root`` is cached: ``root/.fastssl-video-index.json`` when ``cache`` is
    None, else a file in the folder ``cache`` named after ``root``'s absolute path."""
    if cache is None:
        return os.path.join(root, CACHE_NAME)
    digest = hashlib.sha1(os.path.abspath(root).encode()).hexdigest()[:16]
    return os.path.join(cache, f"video-index-{digest}.json")


def index_videos(paths: list[str], root: str, *, cache: str | None | bool = None, max_pixels: int = MAX_PIXELS,
                 max_frames: int = MAX_FRAMES, num_threads: int = 1, members: list | None = None,
                 names: list[str] | None = None) -> list[VideoInfo]:
    """The :class:`VideoInfo` of each of ``paths`` (files under ``root``), in order.

    ``members``: for videos inside tar shards, per video its (offset, size) in the shard ``paths[i]`` (``names[i]``
    then says which member it is, e.g. ``shard.tar:key.webm``, and keys its cache entry).

    Entries are read from the cache (see :func:`cache_path`; ``cache=False``: none) when the file's size (a member:
    its size) and modification time and the limits are those they were probed with; the others are probed
    (``num_threads`` at a time) and the cache rewritten. A cache that cannot be written is warned about, not
    fatal.
    """
    where = None if cache is False else cache_path(root, cache)
    limits = {"max_pixels": max_pixels, "max_frames": max_frames}
    members = members or [None] * len(paths)
    keys = [os.path.relpath(name, root) for name in (names or paths)]
    cached = _read_cache(where, limits) if where else {}
    infos: list[VideoInfo | None] = []
    missing = []
    for path, member, key in zip(paths, members, keys):
        entry = cached.get(key)
        info = None
        if entry is not None:
            try:
                stat = os.stat(path)
            except OSError:
                stat = None
            size = stat.st_size if member is None or stat is None else member[1]
            offset = -1 if member is None else member[0]
            if (stat is not None and entry["bytes"] == size and entry["mtime_ns"] == stat.st_mtime_ns
                    and entry.get("offset", -1) == offset):
                info = VideoInfo.from_json({**entry, "path": path})
        infos.append(info)
        if info is None:
            missing.append(len(infos) - 1)
    if missing:
        with ThreadPoolExecutor(max(1, num_threads)) as pool:
            probed = pool.map(lambda i: probe(paths[i], max_pixels=max_pixels, max_frames=max_frames,
                                              member=members[i]), missing)
            for i, info in zip(missing, probed):
                infos[i] = info
        if where:
            _write_cache(where, keys, infos, limits)
    return infos


def _read_cache(where: str, limits: dict) -> dict:
    try:
        with open(where) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != INDEX_VERSION or data.get("limits") != limits:
        return {}
    videos = data.get("videos")
    return videos if isinstance(videos, dict) else {}


def _write_cache(where: str, keys: list[str], infos: list, limits: dict, what: str = "video index") -> None:
    videos = {}
    for key, info in zip(keys, infos):
        entry = info.to_json()
        del entry["path"]
        videos[key] = entry
    text = json.dumps({"version": INDEX_VERSION, "limits": limits, "videos": videos})
    folder = os.path.dirname(where) or "."
    temporary = None
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, prefix=".video-index-", suffix=".tmp") as f:
            temporary = f.name
            f.write(text)
        os.replace(temporary, where)  # atomic: a reader sees the old index or the new one
    except OSError as error:
        if temporary is not None and os.path.exists(temporary):
            os.remove(temporary)
        warnings.warn(f"the {what} could not be cached at {where!r} ({error}); it will be probed again next "
                      f"time (pass a writable cache folder)", RuntimeWarning, stacklevel=3)
