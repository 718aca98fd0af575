"""The data a task trains or is evaluated on: images through :class:`fastssl.data.Loader`, videos through
:class:`fastssl.data.video.ClipLoader` (the task's clip plan), videos with sound through
:class:`fastssl.data.av.AVLoader` (the task's pairing rule) — the one place that tells them apart.

Example:
    >>> import tempfile
    >>> from fastssl.data import synthetic
    >>> from fastssl.tasks import make_task
    >>> root = synthetic.write_image_folder(tempfile.mkdtemp(), classes=2, per_class=3, seed=0)
    >>> task = make_task("rotation", backbone="resnet10", image_size=32)
    >>> loader = task_loader(task, open_task_source(task, root), batch_size=2, decoder="pil")
    >>> type(loader).__name__, len(loader)
    ('Loader', 3)
"""

from __future__ import annotations

from ..data import Loader, Source, open_source
from ..data.av import AVLoader
from ..data.video import ClipLoader, open_video_source
from ..tasks.base import Task, normalize, squares


def is_video(task) -> bool:
    """Whether ``task`` (a Task or its class) trains from videos (with or without their sound)."""
    return getattr(task, "modality", "image") in ("video", "audio_visual")


def is_audio_visual(task) -> bool:
    """Whether ``task`` (a Task or its class) trains from videos with sound."""
    return getattr(task, "modality", "image") == "audio_visual"


def open_task_source(task, data, *, num_threads: int | None = None) -> Source:
    """The source of ``data`` for ``task`` (a Task or its class): a video source (indexed) for a video task."""
    return open_video_source(data, num_threads=num_threads or 1) if is_video(task) else open_source(data)


def usable_samples(source: Source) -> int:
    """Samples a loader can use: every image, or the videos the index found usable."""
    return len(source.good) if hasattr(source, "good") else len(source)


def task_loader(task: Task, source, *, evaluation: bool = False, progress: bool = False, **options) -> Loader:
    """A loader of ``source`` feeding ``task``: its training inputs (``task.transform``, and for a video task its clip
    plan, for an audio-visual one its pairing rule), or with ``evaluation`` the inputs of ``task.features`` (whole
    images, the middle clip, or the middle frame and the audio around it; no augmentation).
    ``progress``: a progress line for one-time work before the first batch (a video task's motion profiles).
    ``options``: batch_size, device, decoder, seed, shuffle, drop_last, num_threads, ..."""
    if is_audio_visual(task):
        return AVLoader(source, pairs=task.eval_pairs if evaluation else task.pairs, rate=task.sample_rate,
                        transform=task.eval_transform if evaluation else task.transform, **options)
    if is_video(task):
        if evaluation:
            return ClipLoader(source, plan=task.eval_plan, transform=task.eval_transform,
                              min_frames=min(task.eval_frames, task.min_frames), **options)
        return ClipLoader(source, plan=task.plan, transform=task.transform, min_frames=task.min_frames,
                          motion=task.uses_motion, progress=progress, **options)
    if evaluation:
        size = task.encoder_size(task.image_size)

        def transform(images, ids, epoch):
            return {"inputs": normalize(squares(images, ids, 0, size, seed=0, scale=None, flip=False))}

        return Loader(source, transform=transform, **options)
    return Loader(source, transform=task.transform, **options)


__all__ = ["is_audio_visual", "is_video", "open_task_source", "task_loader", "usable_samples"]
