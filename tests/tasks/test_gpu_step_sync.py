"""One training step of every task on a GPU reads nothing back to the host.

The step is what the trainer runs between its one read per step: the task's transform on a decoded
batch (a :class:`~fastssl.ragged.RaggedImages` with host copies of offsets and sizes), forward, backward
and the optimizer step. After a warm-up step (Triton compiles its kernels and the caching allocator
grows on the first one), the second step runs under ``torch.cuda.set_sync_debug_mode("error")``, which
raises on any synchronising call. CUDA only: on CPU, tests/ops/test_host_reads.py counts host reads of
the ops with the checks in their CUDA mode.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from fastssl.ragged import RaggedImages
from fastssl.tasks import TASKS, task_class
from task_helpers import smooth_images


def _task(name: str) -> torch.nn.Module:
    options = dict(backbone="resnet10", image_size=32, seed=0)
    if "num_samples" in inspect.signature(task_class(name).__init__).parameters:
        options["num_samples"] = 64
    return task_class(name)(**options).cuda()


def _step(task, optimizer, images: RaggedImages, ids: torch.Tensor, epoch: int) -> None:
    batch = task.transform(images, ids, epoch)
    batch.update(ids=ids, labels=torch.zeros(len(ids), dtype=torch.int64, device="cuda"), epoch=epoch)
    loss = task(batch)["loss"]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


@pytest.mark.cuda
@pytest.mark.parametrize("name", sorted(TASKS))
def test_a_training_step_does_not_synchronise(name):
    task = _task(name)
    optimizer = torch.optim.SGD(task.parameters(), lr=0.01, momentum=0.9)
    images = RaggedImages.from_dense(smooth_images(8, 48, 48, seed=3).cuda())
    ids = torch.arange(8, device="cuda")
    _step(task, optimizer, images, ids, epoch=0)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        _step(task, optimizer, images, ids, epoch=1)
    finally:
        torch.cuda.set_sync_debug_mode("default")
