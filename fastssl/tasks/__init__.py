"""Pretext tasks: each a small module (``transform`` cuts its inputs with fastssl ops, ``forward`` gives its loss).

:func:`make_task` builds one by name; the task modules are imported on demand.

Example:
    >>> task = make_task("rotation", backbone="resnet10", image_size=32)
    >>> task.name, task.feature_dim
    ('rotation', 512)
"""

from __future__ import annotations

import importlib

from .base import Task

#: task name -> (module, class)
TASKS = {
    "rotation": ("rotation", "RotationTask"),
    "jigsaw": ("jigsaw", "JigsawTask"),
    "jigsaw_pp": ("jigsaw_pp", "JigsawPPTask"),
    "relative_position": ("relative_position", "RelativePositionTask"),
    "colorization": ("colorization", "ColorizationTask"),
    "split_brain": ("split_brain", "SplitBrainTask"),
    "inpainting": ("inpainting", "InpaintingTask"),
    "counting": ("counting", "CountingTask"),
    "exemplar": ("exemplar", "ExemplarTask"),
    "simclr": ("simclr", "SimCLRTask"),
    "pirl": ("pirl", "PIRLTask"),
    "moco": ("moco", "MoCoTask"),
    "mae": ("mae", "MAETask"),
    "shuffle_learn": ("shuffle_learn", "ShuffleLearnTask"),
    "odd_one_out": ("odd_one_out", "OddOneOutTask"),
    "arrow_of_time": ("arrow_of_time", "ArrowOfTimeTask"),
    "clip_order": ("clip_order", "ClipOrderTask"),
    "avc": ("avc", "AVCorrespondenceTask"),
    "ave": ("ave", "AVEmbeddingTask"),
    "av_sync": ("av_sync", "AVSyncTask"),
    "deepcluster": ("deepcluster", "DeepClusterTask"),
    "cluster_transfer": ("deepcluster", "ClusterTransferTask"),
}
#: the tasks trained from videos (:class:`fastssl.tasks.video.VideoTask`)
VIDEO_TASKS = ("shuffle_learn", "odd_one_out", "arrow_of_time", "clip_order")
#: the tasks trained from videos with sound (:class:`fastssl.tasks.audio_visual.AVTask`)
AV_TASKS = ("avc", "ave", "av_sync")


def task_class(name: str) -> type[Task]:
    if name not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {name!r}")
    module, cls = TASKS[name]
    return getattr(importlib.import_module(f".{module}", __name__), cls)


def make_task(name: str, **options) -> Task:
    """The task ``name`` (see :data:`TASKS`) with ``options`` (backbone, image_size, seed, task-specific)."""
    return task_class(name)(**options)


__all__ = ["AV_TASKS", "TASKS", "VIDEO_TASKS", "Task", "make_task", "task_class"]
