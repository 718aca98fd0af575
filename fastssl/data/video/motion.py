"""How much each video moves, frame by frame: a motion profile computed once per video and cached.

Shuffle & Learn samples its frames from high-motion windows and Arrow of Time drops clips without
motion; the papers measure motion with optical flow. The profile here is its cheap proxy: every frame
decoded once at low resolution (scaled to fit ``size`` x ``size``, by FFmpeg's scaler), and
:func:`fastssl.ops.motion_energy` of each consecutive pair — profile[i] is the mean squared change from
frame i to frame i + 1 (values in [0, 1]). It costs one full decode of each video, once: profiles are
cached beside the video index (:func:`motion_profiles`) and recomputed when a file changes.
:func:`window_motion` scores windows of a profile and
:func:`~fastssl.data.video.sampling.motion_window_starts` picks the liveliest of a few keyed candidates.

Example:
    >>> import numpy as np
    >>> profile = np.array([0.0, 0.0, 0.3, 0.5, 0.1], dtype=np.float32)  # 6 frames
    >>> window_motion(profile, np.array([0, 2]), span=3).round(3).tolist()  # windows of frames 0..2 and 2..4
    [0.0, 0.4]
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ...progress import maybe
from .index import VideoInfo, cache_path, open_video

#: frames are scaled to fit this square before differencing
MOTION_SIZE = 32
#: frames differenced at once (bounds the memory of a long video's profile)
CHUNK_FRAMES = 256
MOTION_VERSION = 1


def motion_profile(info: VideoInfo, *, size: int = MOTION_SIZE) -> np.ndarray:
    """(frames - 1,) float32: the frame-difference energy of each consecutive frame pair of the video (see the
    module docstring); needs PyAV. Raises ValueError for a bad video or one whose stream ends early."""
    import av
    from av.video.reformatter import VideoReformatter

    from ...ops.motion_energy import motion_energy

    if info.bad is not None:
        raise ValueError(f"{info.path}: {info.bad}")
    scale = size / max(info.width, info.height)
    width, height = max(1, round(info.width * scale)), max(1, round(info.height * scale))
    energies, previous, pending = [], None, []
    reformatter = VideoReformatter()  # one scaler for every frame (a new one per frame costs more than the scaling)

    def flush():
        nonlocal previous, pending
        frames = ([previous] if previous is not None else []) + pending
        if len(frames) >= 2:
            clip = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)[None]  # (1, n, 3, h, w) uint8
            energies.append(motion_energy(clip)[0].numpy())
        previous, pending = frames[-1], []

    with open_video(info) as source, av.open(source, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            pending.append(reformatter.reformat(frame, width=width, height=height, format="rgb24").to_ndarray())
            if len(pending) == CHUNK_FRAMES:
                flush()
    flush()
    profile = np.concatenate(energies) if energies else np.zeros(0, np.float32)
    if len(profile) != info.frames - 1:
        raise ValueError(f"{info.path}: decoded {len(profile) + 1} frames, the index says {info.frames}")
    return profile.astype(np.float32)


def window_motion(profile: np.ndarray, starts: np.ndarray, span: int) -> np.ndarray:
    """(len(starts),) float64: the mean of ``profile`` over each window of ``span`` frames starting at ``starts``
    (the span - 1 pairs inside it)."""
    sums = np.concatenate([[0.0], np.cumsum(profile, dtype=np.float64)])
    starts = np.asarray(starts, dtype=np.int64)
    pairs = max(span - 1, 1)
    return (sums[np.minimum(starts + pairs, len(profile))] - sums[starts]) / pairs


def motion_profiles(infos: list[VideoInfo], root: str, *, names: list[str] | None = None,
                    cache: str | None | bool = None, size: int = MOTION_SIZE, num_threads: int = 1,
                    progress: bool = False) -> list[np.ndarray | None]:
    """The profile of each video of ``infos`` (None for a bad one, or one whose profile cannot be computed), read
    from the cache beside the video index (``cache`` as for :func:`~fastssl.data.video.index.index_videos`) when
    the file's size and modification time are those it was computed for; the others computed ``num_threads`` at a
    time and the cache rewritten. ``names``: the videos' names (default their paths; tar members need theirs).
    ``progress``: a progress line on stderr while profiles are computed (a full decode of each video)."""
    where = None if cache is False else _motion_cache(root, cache)
    stored = _read(where, size) if where else {}
    keys = [os.path.relpath(name, root) for name in (names or [info.path for info in infos])]
    profiles: list[np.ndarray | None] = [None] * len(infos)
    missing = []
    for i, info in enumerate(infos):
        if info.bad is not None:
            continue
        entry = stored.get(keys[i])
        if entry is not None and entry[0] == [info.bytes, info.mtime_ns]:
            profiles[i] = entry[1]
        else:
            missing.append(i)

    def compute(i: int) -> np.ndarray | None:
        import av

        try:
            return motion_profile(infos[i], size=size)
        except (ValueError, OSError, av.FFmpegError) as error:  # its clips decode; its profile is left out
            warnings.warn(f"no motion profile for {infos[i].path}: {error}", RuntimeWarning, stacklevel=3)
            return None

    if missing:
        bar = maybe(progress, len(missing), "motion profiles")
        with ThreadPoolExecutor(max(1, num_threads)) as pool:
            for done, (i, profile) in enumerate(zip(missing, pool.map(compute, missing)), 1):
                profiles[i] = profile
                if bar:
                    bar.update(done, f"{done} videos decoded once at {size} px")
        if where:
            _write(where, keys, infos, profiles, size)
    return profiles


def _motion_cache(root: str, cache: str | None) -> str:
    index = cache_path(root, cache)
    return os.path.join(os.path.dirname(index), os.path.basename(index).replace(".json", "") + "-motion.npz")


def _read(where: str, size: int) -> dict:
    try:
        with np.load(where, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("version") != MOTION_VERSION or meta.get("size") != size:
                return {}
            return {name: (stamp, data[f"p{k}"]) for k, (name, stamp) in enumerate(meta["videos"])}
    except (OSError, ValueError, KeyError):
        return {}


def _write(where: str, keys: list[str], infos: list[VideoInfo], profiles: list, size: int) -> None:
    kept = [(key, info, p) for key, info, p in zip(keys, infos, profiles) if p is not None]
    meta = {"version": MOTION_VERSION, "size": size,
            "videos": [[key, [info.bytes, info.mtime_ns]] for key, info, _ in kept]}
    arrays = {f"p{k}": p for k, (_, _, p) in enumerate(kept)}
    folder = os.path.dirname(where) or "."
    temporary = None
    try:
        with tempfile.NamedTemporaryFile("wb", dir=folder, delete=False, prefix=".video-motion-", suffix=".npz") as f:
            temporary = f.name
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(temporary, where)
    except OSError as error:
        if temporary is not None and os.path.exists(temporary):
            os.remove(temporary)
        warnings.warn(f"the motion profiles could not be cached at {where!r} ({error}); they will be computed again "
                      f"next time (pass a writable cache folder)", RuntimeWarning, stacklevel=3)
