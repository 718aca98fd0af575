"""What each video's audio holds — rate, channels, length, start, loudness — found by decoding it once, and cached.

:func:`probe_audio` opens a file with PyAV, takes its first audio stream and decodes the whole track once
(audio is cheap to decode): the samples are counted (not taken from the header), the peak ``max |sample|``
measured, and the time of the first sample read from its frame's timestamp (container seconds, the clock of
the video frames' ``pts * time_base``; priming samples such as Opus's pre-skip or AAC's encoder delay are
already dropped by FFmpeg there). The header's sample rate and channel count are checked against
:data:`MAX_SAMPLE_RATE` and :data:`MAX_CHANNELS` before anything is decoded, and every frame must keep them.
Audio that cannot be used is recorded with the reason in :attr:`AudioInfo.bad`, never raised: unreadable or
empty file, no audio stream, a corrupt stream (a decoding error, or timestamps that jump away from the samples'
count: packets missing), truncated (fewer samples, or packets ending earlier, than the container claims; a WAV
file shorter than its data chunk claims; each by more than :data:`SLACK`), silent (peak below ``silence``), too
short (fewer than ``min_seconds``). The measured fields are kept for silent and too short audio, and left at
their zero defaults otherwise.

Where the audio of a video is (:func:`index_audio`): an audio file beside it with the same stem
(:func:`sidecar_for`: ``clip.wav`` / ``.flac`` / ``.ogg`` beside ``clip.mp4``, as prepared audio-visual data
sets often keep it; inside tar shards a member ``key.wav`` beside ``key.mp4``, :func:`tar_sidecars`), else the
video's own first audio track. The index is
cached as JSON beside the video index (``.fastssl-audio-index.json``) and entries are probed again when their
file's size or modification time, or the limits, change.

Example:
    >>> info = AudioInfo(path="a.wav", bytes=96044, mtime_ns=0, sample_rate=48000, channels=1, samples=48000,
    ...                  codec="pcm_s16le", start=0.0, peak=0.5, sidecar=True)
    >>> info.duration, AudioInfo.from_json(info.to_json()) == info
    (1.0, True)
    >>> sidecar_for("no/such/folder/clip.mp4") is None
    True
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from ..video.index import _Bad, _one_line, _read_cache, _write_cache, cache_path, open_container

#: Headers claiming more channels or a higher sample rate are refused before decoding.
MAX_CHANNELS = 64
MAX_SAMPLE_RATE = 768_000
#: Seconds that the audio may fall short of its container's claimed duration, or its timestamps stray from its
#: samples' count, before it is truncated or corrupt.
SLACK = 0.1
#: Audio files looked for beside a video, in this order (what DALI's audio decoder reads too).
SIDECAR_EXTENSIONS = (".wav", ".flac", ".ogg")
#: Containers whose claimed durations are written, not estimated from a bit rate: only those are checked.
_CLAIMING_FORMATS = frozenset({"matroska", "webm", "mov", "mp4", "wav", "flac", "ogg"})
#: Bumped when the fields of an index entry change: older caches are probed again.
AUDIO_INDEX_VERSION = 1
CACHE_NAME = ".fastssl-audio-index.json"



@dataclass(frozen=True)
class AudioInfo:
    """The first audio track of a file, as decoding it found it (see the module docstring). ``bad`` is None for
    usable audio, else the reason it is not."""

    path: str  #: the file the audio is read from: the video itself, or an audio file beside it
    bytes: int  #: file size when probed (a tar member: the member's size)
    mtime_ns: int  #: modification time when probed (a tar member: the shard's)
    bad: str | None = None
    sample_rate: int = 0  #: Hz, the stream's own
    channels: int = 0
    samples: int = 0  #: per channel, at ``sample_rate``, counted by decoding
    codec: str = ""  #: FFmpeg's codec name ("opus", "aac", "pcm_s16le", "flac", ...)
    start: float = 0.0  #: container seconds of the first sample (the clock of the video frames' timestamps)
    peak: float = 0.0  #: max |sample|, full scale 1
    offset: int = -1  #: -1: the audio is the file ``path``; else the ``bytes`` bytes at ``offset`` of ``path`` (a tar)
    sidecar: bool = False  #: read from an audio file beside the video, not from the video's own track

    @property
    def duration(self) -> float:
        """Seconds of audio: samples / sample_rate (0 when unknown)."""
        return self.samples / self.sample_rate if self.sample_rate > 0 else 0.0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, entry: dict) -> AudioInfo:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in entry.items() if k in names})


def sidecar_for(video_path: str) -> str | None:
    """The audio file beside ``video_path`` with its stem and one of :data:`SIDECAR_EXTENSIONS` (the first found),
    or None."""
    stem = os.path.splitext(video_path)[0]
    for extension in SIDECAR_EXTENSIONS:
        if os.path.isfile(stem + extension):
            return stem + extension
    return None


def tar_sidecars(source) -> dict[int, tuple[int, int]]:
    """{video id: (offset, size) of its audio member} for the videos of ``source`` inside tar shards that have an
    audio member with their key (webdataset layout: ``key.wav`` / ``.flac`` / ``.ogg`` beside ``key.mp4`` in the
    same shard; the first of :data:`SIDECAR_EXTENSIONS` found). Each shard's member list is read once."""
    locations = getattr(source, "_locations", None) or []
    by_shard: dict[str, list[int]] = {}
    for i, (shard, _, _) in enumerate(locations):
        by_shard.setdefault(shard, []).append(i)
    found = {}
    for shard, ids in by_shard.items():
        try:
            with tarfile.open(shard, "r:") as tar:
                members = {m.name: (m.offset_data, m.size) for m in tar.getmembers() if m.isfile()}
        except (OSError, tarfile.TarError):
            continue  # the videos of an unreadable shard are bad already, with the reason
        for i in ids:
            key = os.path.splitext(source.names[i][len(shard) + 1:])[0]
            audio = next((key + ext for ext in SIDECAR_EXTENSIONS if key + ext in members), None)
            if audio is not None:
                found[i] = members[audio]
    return found


def probe_audio(path: str, *, member: tuple[int, int] | None = None, min_seconds: float = 0.0,
                silence: float = 1e-4) -> AudioInfo:
    """The :class:`AudioInfo` of the first audio track of the file ``path`` — or, with ``member`` = (offset, size),
    of those bytes of the tar shard ``path`` — decoded once with PyAV; unusable audio is returned with ``bad`` set
    (see the module docstring). A file with one of :data:`SIDECAR_EXTENSIONS` is an audio file (``sidecar``)."""
    offset = -1 if member is None else member[0]
    sidecar = member is None and os.path.splitext(path)[1].lower() in SIDECAR_EXTENSIONS
    try:
        stat = os.stat(path)
    except OSError as error:
        return AudioInfo(path, 0, 0, bad=f"unreadable: {_one_line(error)}", offset=offset, sidecar=sidecar)
    entry = AudioInfo(path, stat.st_size if member is None else member[1], stat.st_mtime_ns, offset=offset,
                      sidecar=sidecar)
    try:
        entry = replace(entry, **_probe(entry))
    except _Bad as reason:
        return replace(entry, bad=str(reason))
    if entry.peak < silence:
        return replace(entry, bad=f"silent: peak below {silence:g} ({entry.peak:.3g})")
    if entry.duration < min_seconds:
        return replace(entry, bad=f"too short: {entry.duration:.3f} s of audio, at least {min_seconds:g} s needed")
    return entry


def _probe(entry: AudioInfo) -> dict:
    with open_container(entry) as (source, container):
        found = _read_track(container)
        if "wav" in container.format.name.split(","):
            _check_wav(source, entry.bytes, found)
        return found


def _check_wav(source, size: int, found: dict) -> None:
    """A WAV file (``source``: a path or a file object, ``size`` bytes) must hold the data its data chunk's header
    claims, within :data:`SLACK` (FFmpeg reads what is there and says nothing). Unknown sizes (0, or 2^32 - 1 and
    near it, as streaming writers leave them) are not checked."""
    with contextlib.ExitStack() as stack:
        f = stack.enter_context(open(source, "rb")) if isinstance(source, str) else source
        f.seek(0)
        if f.read(12)[8:12] != b"WAVE":
            return
        while True:
            header = f.read(8)
            if len(header) < 8:
                return
            kind, length = header[:4], struct.unpack("<I", header[4:])[0]
            if kind == b"data":
                break
            f.seek(length + (length & 1), io.SEEK_CUR)  # chunks are padded to even sizes
        held = size - f.tell()
    if length == 0 or length >= 0xFFFFF000 or held >= length:
        return
    frame_bytes = held / found["samples"]  # found by decoding what is held
    if (length - held) / frame_bytes / found["sample_rate"] > SLACK:
        raise _Bad(f"truncated: its data chunk holds {held} of the {length} bytes its header claims")


def _read_track(container) -> dict:
    """Decodes the first audio stream of an open container whole (see the module docstring): its fields, or _Bad."""
    import av

    if not container.streams.audio:
        raise _Bad("no audio stream")
    stream = container.streams.audio[0]
    context = stream.codec_context
    rate, channels = context.sample_rate, context.channels
    if not 0 < rate <= MAX_SAMPLE_RATE:
        raise _Bad(f"its header claims a sample rate of {rate} Hz (MAX_SAMPLE_RATE is {MAX_SAMPLE_RATE})")
    if not 0 < channels <= MAX_CHANNELS:
        raise _Bad(f"its header claims {channels} channels (MAX_CHANNELS is {MAX_CHANNELS})")
    samples, peak, start = 0, 0.0, None
    ends: dict[int, float] = {}  # per stream: where its last packet so far ends, seconds
    try:
        for packet in container.demux():
            if packet.pts is not None and packet.time_base is not None:
                end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                ends[packet.stream.index] = max(end, ends.get(packet.stream.index, end))
            if packet.stream.index != stream.index:
                continue
            for frame in packet.decode():
                if frame.sample_rate != rate or frame.layout.nb_channels != channels:
                    raise _Bad(f"its frames change to {frame.sample_rate} Hz x {frame.layout.nb_channels} channels "
                               f"after {samples / rate:.3f} s (its header says {rate} Hz x {channels})")
                at = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
                if start is None:
                    start = 0.0 if at is None else at
                elif at is not None and abs(at - start - samples / rate) > SLACK:
                    raise _Bad(f"corrupt: its timestamps jump from {start + samples / rate:.3f} s to {at:.3f} s "
                               f"(packets missing)")
                samples += frame.samples
                peak = max(peak, frame_peak(frame))
    except av.FFmpegError as error:
        raise _Bad(f"corrupt: {_one_line(error)} after {samples / rate:.3f} s of audio") from None
    if samples == 0:
        raise _Bad("no audio samples")
    if not np.isfinite(peak):
        raise _Bad("corrupt: samples that are not finite numbers")
    _check_claims(container, stream, samples / rate, ends)
    return {"sample_rate": rate, "channels": channels, "samples": samples, "codec": context.name, "start": start,
            "peak": peak}


def _check_claims(container, stream, covered: float, ends: dict[int, float]) -> None:
    """A truncated file keeps the duration its header claims: the audio stream's own (its samples must cover it),
    else the container's (its packets, of every stream, must reach it), within :data:`SLACK`. Only the containers
    that write their durations (:data:`_CLAIMING_FORMATS`) are checked. (FFmpeg cuts a WAV file's claim to its size:
    see :func:`_check_wav`.)"""
    if not _CLAIMING_FORMATS & set(container.format.name.split(",")):
        return
    if stream.duration:
        claimed = float(stream.duration * stream.time_base)
        if covered < claimed - SLACK:
            raise _Bad(f"truncated: its samples cover {covered:.3f} s of the {claimed:.3f} s its container claims")
    elif container.duration and ends:
        claimed = container.duration / 1_000_000  # AV_TIME_BASE units
        reached = max(ends.values()) - (container.start_time or 0) / 1_000_000
        if reached < claimed - SLACK:
            raise _Bad(f"truncated: its packets end at {reached:.3f} s of the {claimed:.3f} s its container claims")


#: Full scale of the integer sample formats (FFmpeg's names, packed or planar), and the offset of unsigned ones.
_FULL_SCALE = {"u8": (128.0, 128), "s16": (32768.0, 0), "s32": (2147483648.0, 0), "s64": (9223372036854775808.0, 0)}


def frame_samples(frame) -> np.ndarray:
    """(channels, samples) float32 of a PyAV audio frame, full scale 1 (integer formats divided by their full
    scale; unsigned 8-bit centred first), whatever its sample format (packed or planar)."""
    array = frame.to_ndarray()
    if not frame.format.is_planar:  # (1, samples * channels), channels interleaved
        array = array.reshape(-1, frame.layout.nb_channels).T
    scale, centre = _FULL_SCALE.get(frame.format.name.rstrip("p"), (1.0, 0))
    if scale == 1.0 and array.dtype == np.float32:
        return array
    return ((array.astype(np.float64) - centre) / scale).astype(np.float32)


def frame_peak(frame) -> float:
    """max |sample| of a PyAV audio frame, full scale 1 (without converting integer samples to floats)."""
    array = frame.to_ndarray()
    if array.size == 0:
        return 0.0
    scale, centre = _FULL_SCALE.get(frame.format.name.rstrip("p"), (1.0, 0))
    top, bottom = array.max(), array.min()
    return max(float(top) - centre, centre - float(bottom)) / scale


# --- the cached index ------------------------------------------------------------------------------------------


def audio_cache_path(root: str, cache: str | None) -> str:
    """Where the audio index of the videos under ``root`` is cached: beside their video index
    (:func:`~fastssl.data.video.index.cache_path`), ``.fastssl-audio-index.json`` or ``audio-index-<digest>.json``."""
    video = cache_path(root, cache)
    name = CACHE_NAME if cache is None else os.path.basename(video).replace("video-index", "audio-index")
    return os.path.join(os.path.dirname(video), name)


def index_audio(source, *, cache: str | None | bool = None, num_threads: int = 1, min_seconds: float = 0.0,
                silence: float = 1e-4) -> tuple[AudioInfo, ...]:
    """The :class:`AudioInfo` of each video of ``source`` (a :class:`~fastssl.data.video.sources.VideoSource`),
    aligned with ``source.videos``: of the audio file beside it (:func:`sidecar_for`; inside a tar shard, the
    audio member with its key, :func:`tar_sidecars`) when there is one, else of its own track. A video that is bad
    gets ``bad="the video is unusable"`` without a look at its audio.

    Entries are read from the cache (:func:`audio_cache_path`; ``cache=False``: none; a source without a root
    folder: none unless ``cache`` names a folder) when the file's size and modification time, and the limits
    ``min_seconds`` and ``silence``, are those they were probed with; the others are probed (``num_threads`` at a
    time) and the cache rewritten. A cache that cannot be written is warned about, not fatal.
    """
    root = source.root
    where = None if cache is False or (cache is None and not root) else audio_cache_path(root or ".", cache)
    limits = {"audio_index": AUDIO_INDEX_VERSION, "min_seconds": min_seconds, "silence": silence}
    cached = _read_cache(where, limits) if where else {}
    keys = [os.path.relpath(name, root or ".") for name in source.names]
    infos: list[AudioInfo | None] = [None] * len(source.names)
    wanted = []  # (position, path, member, whether the path is an audio file beside the video)
    members = tar_sidecars(source)
    for i, video in enumerate(source.videos):
        if video.bad is not None:
            infos[i] = AudioInfo(video.path, video.bytes, video.mtime_ns, bad="the video is unusable",
                                 offset=video.offset)
            continue
        if video.offset < 0:
            side = sidecar_for(video.path)
            path, member, sidecar = side or video.path, None, side is not None
        else:
            path, member, sidecar = video.path, members.get(i, (video.offset, video.bytes)), i in members
        infos[i] = _from_cache(cached.get(keys[i]), path, member, sidecar)
        if infos[i] is None:
            wanted.append((i, path, member, sidecar))
    if wanted:
        with ThreadPoolExecutor(max(1, num_threads)) as pool:
            probed = pool.map(lambda job: probe_audio(job[1], member=job[2], min_seconds=min_seconds,
                                                      silence=silence), wanted)
            for (i, _, _, sidecar), info in zip(wanted, probed):
                infos[i] = replace(info, sidecar=sidecar)
        if where:
            good = [i for i, video in enumerate(source.videos) if video.bad is None]
            _write_cache(where, [keys[i] for i in good], [infos[i] for i in good], limits, what="audio index")
    return tuple(infos)


def _from_cache(entry: dict | None, path: str, member: tuple[int, int] | None, sidecar: bool) -> AudioInfo | None:
    """The cached entry as an AudioInfo of ``path`` when it still describes that file, else None."""
    if entry is None or bool(entry.get("sidecar")) != sidecar:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    size = stat.st_size if member is None else member[1]
    offset = -1 if member is None else member[0]
    if entry.get("bytes") != size or entry.get("mtime_ns") != stat.st_mtime_ns or entry.get("offset", -1) != offset:
        return None
    try:
        return AudioInfo.from_json({**entry, "path": path})
    except TypeError:  # an entry without the fields
        return None
