"""Counting visual primitives (Noroozi et al. 2017): the features of an image equal the sum over its tiles.

Paper convention: φ maps an image to a non-negative "count" vector (AlexNet features → fc → ReLU,
1000 values); for the downsampled image D(x) and its 2x2 tiles T_i(x) (all at the same size,
``fastssl.ops.counting_tiles``), and another image y,

    loss = ||φ(D(x)) − Σ_i φ(T_i(x))||² + max(0, M − ||φ(D(y)) − Σ_i φ(T_i(x))||²),  M = 10,

the contrastive term keeping φ away from the trivial all-zero solution. y is the next image of the
batch (the batch rolled by one), so batches need at least 2 images.

Scaled to small images: a random resized crop (scale 0.35–1, flip) of ``image_size`` is cut into
2x2 tiles of ``image_size // 2`` and downsampled to that size too (64 → five 32-px inputs; 32 → 16),
ImageNet-normalised; the backbone sees ``encoder_size = image_size // 2``. φ = ReLU(Linear(ReLU(
Linear(backbone)))) with ``hidden`` 1024 and ``dim`` 1000 (the paper's count vector).

Example:
    >>> import torch
    >>> from fastssl.ragged import RaggedImages
    >>> task = CountingTask("resnet10", image_size=32)
    >>> batch = task.transform(RaggedImages.from_dense(torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)),
    ...                        torch.arange(2), epoch=0)
    >>> batch["inputs"].shape
    torch.Size([2, 5, 3, 16, 16])
    >>> task(batch)["loss"].item() > 0
    True
"""

from __future__ import annotations

import torch
from torch import nn

from ..ops import counting_tiles
from .._validation import check_int, check_number
from .base import Task, normalize, squares


class CountingTask(Task):
    """Options: ``margin`` (M, 10), ``dim`` (count vector, 1000), ``hidden`` (1024)."""

    name = "counting"

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, margin: float = 10.0,
                 dim: int = 1000, hidden: int = 1024):
        check_int(image_size, "image_size", 4)
        self.margin = check_number(margin, "margin", 0.0, open_low=True)
        super().__init__(backbone, image_size, seed)
        hidden, dim = check_int(hidden, "hidden"), check_int(dim, "dim")
        self.counter = nn.Sequential(nn.Linear(self.feature_dim, hidden), nn.ReLU(inplace=True),
                                     nn.Linear(hidden, dim), nn.ReLU())

    def encoder_size(self, image_size: int) -> int:
        return image_size // 2

    @torch.no_grad()
    def transform(self, images, ids, epoch):
        x = squares(images, ids, epoch, self.image_size, seed=self.seed)
        five = counting_tiles(x, size=self.image_size // 2)  # (B, 5, 3, s, s): whole image, then 4 tiles
        return {"inputs": normalize(five.flatten(0, 1)).view_as(five)}

    def forward(self, batch):
        inputs = batch["inputs"]
        B = inputs.shape[0]
        if B < 2:
            raise ValueError(f"counting needs batches of at least 2 images (the contrastive term compares "
                             f"with another image), got a batch of {B}")
        phi = self.counter(self.backbone(inputs.flatten(0, 1))).float().view(B, 5, -1)
        whole, tiles = phi[:, 0], phi[:, 1:].sum(1)
        equivariance = (whole - tiles).pow(2).sum(1)
        contrastive = torch.relu(self.margin - (whole.roll(1, 0) - tiles).pow(2).sum(1))
        return {"loss": (equivariance + contrastive).mean(), "equivariance": equivariance.detach().mean(),
                "contrastive": contrastive.detach().mean()}
