"""Helpers of the task tests: tiny smooth images, the loader's batch, batch-split invariance, a falling loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fastssl.ragged import RaggedImages

torch.set_num_threads(2)


def smooth_images(n: int, height: int = 40, width: int = 40, seed: int = 0) -> torch.Tensor:
    """(n, 3, H, W) uint8: upsampled 6x6 colour noise (structure for colour, position and counting tasks)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 6, 6, generator=g)
    return (F.interpolate(low, size=(height, width), mode="bilinear", align_corners=False) * 255).round().to(torch.uint8)


def make_batch(task, images: torch.Tensor, ids=None, epoch: int = 0) -> dict:
    """What the loader hands to ``forward``: the transform's entries plus ids, labels and epoch."""
    ids = torch.arange(len(images)) if ids is None else ids
    batch = task.transform(RaggedImages.from_dense(images), ids, epoch)
    batch.update(ids=ids, labels=torch.zeros(len(ids), dtype=torch.int64), epoch=epoch)
    return batch


def assert_split_invariant(task, images: torch.Tensor, epoch: int = 3) -> dict:
    """The same ids give the same inputs in one batch of 4 or two batches of 2 (an entry that is a list of
    views: view by view); returns the whole batch."""
    ids = torch.tensor([11, 5, 42, 7])
    whole = task.transform(RaggedImages.from_dense(images[:4]), ids, epoch)
    halves = [task.transform(RaggedImages.from_dense(images[i:i + 2]), ids[i:i + 2], epoch) for i in (0, 2)]
    assert set(whole) == set(halves[0])
    for key, value in _tensors(whole).items():
        torch.testing.assert_close(value, torch.cat([_tensors(h)[key] for h in halves]), rtol=0, atol=0, msg=key)
    other = _tensors(task.transform(RaggedImages.from_dense(images[:4]), ids, epoch + 1))
    floats = {k: v for k, v in _tensors(whole).items() if v.is_floating_point()}
    assert any(not torch.equal(other[k], v) for k, v in floats.items()), "the inputs must change with the epoch"
    return whole


def _tensors(batch: dict) -> dict:
    """The batch's tensors by name, each view of a list entry as ``name[v]``."""
    out = {}
    for key, value in batch.items():
        items = enumerate(value) if isinstance(value, (list, tuple)) else [(None, value)]
        out.update({key if v is None else f"{key}[{v}]": t for v, t in items})
    return out


def losses_of(task, batch: dict, steps: int = 10, lr: float = 1e-3) -> list[float]:
    torch.manual_seed(0)
    opt = torch.optim.Adam(task.parameters(), lr=lr)
    losses = []
    task.train()
    for _ in range(steps):
        out = task(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
        for key, value in out.items():
            assert value.dim() == 0 and torch.isfinite(value), key
            if key != "loss":
                assert not value.requires_grad, key
    return losses


def assert_loss_falls(task, batch: dict, steps: int = 10, lr: float = 1e-3) -> list[float]:
    losses = losses_of(task, batch, steps, lr)
    assert sum(losses[-3:]) / 3 < losses[0], losses
    return losses
