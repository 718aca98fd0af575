"""Exemplar CNN (Dosovitskiy et al. 2014), made scalable as instance discrimination (Wu et al. 2018).

Dosovitskiy et al.: every training image is its own class, seen through strong random
transformations (crops, flips, colour), and a parametric classifier is trained over the N classes —
which does not scale to N = 10^6. As Wu et al., the classifier here is non-parametric: a memory
bank holds one L2-normalised ``dim``-vector per sample (:class:`~fastssl.tasks.base.MemoryBank`,
sized by the required ``num_samples`` = the dataset size, indexed by ``batch["ids"]``); the
embedding v of a view is scored against the sample's bank row (positive) and ``negatives`` rows
drawn at random (4096; the whole bank when it is smaller) by a softmax at temperature τ = 0.07
(InfoNCE, ``fastssl.ops.info_nce_loss``, the softmax form of Wu et al.'s NCE); after the loss the
rows of the batch move to the new embeddings with momentum 0.5.

Views: the SimCLR recipe's view (``fastssl.recipes.simclr``: crop scale 0.2–1 as Wu et al., flip,
colour jitter 0.8 with p = 0.8 in random order, grayscale 0.2, blur 0.5 with a kernel of ~10% of the
side), at ``image_size`` (64 by default; 32 in tests), ImageNet-normalised. Embedding: backbone →
Linear(feature_dim, dim = 128).

Example:
    >>> import torch
    >>> from fastssl.ragged import RaggedImages
    >>> task = ExemplarTask("resnet10", image_size=32, num_samples=100)
    >>> batch = task.transform(RaggedImages.from_dense(torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)),
    ...                        torch.tensor([3, 9]), epoch=0)
    >>> batch["inputs"].shape
    torch.Size([2, 3, 32, 32])
    >>> batch.update(ids=torch.tensor([3, 9]), epoch=0)
    >>> task(batch)["loss"].item() > 0
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import recipes
from .._validation import check_int, check_number
from .base import MemoryBank, Task, squares


class ExemplarTask(Task):
    """Options: ``num_samples`` (required: the dataset size), ``dim`` (128), ``negatives`` (4096),
    ``temperature`` (0.07), ``momentum`` (0.5), ``strength`` (colour-jitter strength of the view, 1.0)."""

    name = "exemplar"

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, num_samples: int,
                 dim: int = 128, negatives: int = 4096, temperature: float = 0.07, momentum: float = 0.5,
                 strength: float = 1.0):
        check_int(num_samples, "num_samples", 2)
        self.negatives = check_int(negatives, "negatives", 1)
        self.temperature = check_number(temperature, "temperature", 0.0, open_low=True)
        self.momentum = check_number(momentum, "momentum", 0.0, 1.0)
        self.view = recipes.simclr(check_number(strength, "strength", 0.0), image_size).views[0]
        super().__init__(backbone, image_size, seed)
        self.projection = nn.Linear(self.feature_dim, check_int(dim, "dim"))
        self.memory = MemoryBank(num_samples, dim, seed)

    @torch.no_grad()
    def transform(self, images, ids, epoch):
        x = squares(images, ids, epoch, self.image_size, seed=self.seed, scale=(0.2, 1.0), recipe=self.view)
        return {"inputs": x}

    def forward(self, batch):
        ids, epoch = batch["ids"], int(batch["epoch"])
        z = F.normalize(self.projection(self.backbone(batch["inputs"])).float(), dim=1)
        loss = self.memory.loss(z, ids, epoch, self.negatives, self.temperature)
        positive = (z.detach() * self.memory.bank[self.memory.check_ids(ids)]).sum(1).mean()
        if self.training:
            self.memory.update(ids, z, self.momentum)
        return {"loss": loss, "positive_similarity": positive}
