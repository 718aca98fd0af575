"""RotNet (Gidaris et al. 2018): predict which of 0, 90, 180, 270 degrees an image was rotated by.

Every image of the batch is shown in its four rotations (``fastssl.ops.rotations``, one pass), so a
batch of B images trains on 4B inputs; a linear head on the pooled features classifies the rotation.

Example:
    >>> import torch
    >>> from fastssl.ragged import RaggedImages
    >>> task = RotationTask("resnet10", image_size=32)
    >>> batch = task.transform(RaggedImages.from_dense(torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)),
    ...                        torch.arange(2), epoch=0)
    >>> batch["inputs"].shape, batch["targets"].tolist()
    (torch.Size([8, 3, 32, 32]), [0, 1, 2, 3, 0, 1, 2, 3])
    >>> float(task(batch)["loss"].detach()) > 0
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import rotations
from .base import Task, accuracy, normalize, squares


class RotationTask(Task):
    name = "rotation"

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0):
        super().__init__(backbone, image_size, seed)
        self.head = nn.Linear(self.feature_dim, 4)

    @torch.no_grad()
    def transform(self, images, ids, epoch):
        x = squares(images, ids, epoch, self.image_size, seed=self.seed)
        rotated, labels = rotations(x)
        return {"inputs": normalize(rotated), "targets": labels}

    def forward(self, batch):
        logits = self.head(self.backbone(batch["inputs"]))
        return {"loss": F.cross_entropy(logits, batch["targets"]), "accuracy": accuracy(logits, batch["targets"])}
