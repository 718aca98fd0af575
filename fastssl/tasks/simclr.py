"""SimCLR (Chen et al. 2020): two augmented views per image, NT-Xent over their projections.

Views from the SimCLR recipe (``fastssl.recipes.simclr``: crop ``min_scale``–1 of the area (0.08 in the paper), flip, colour jitter 0.8·s with
p = 0.8 in random order, grayscale p = 0.2, blur p = 0.5 — blur kernel 10% of the side), made by
``fastssl.ops.augment`` on the decoded batch; backbone → 2-layer MLP projection (hidden = feature dim,
output 128) → ``fastssl.ops.nt_xent_loss`` (τ = 0.5 by default here for small batches; the paper's
large-batch runs use 0.1–0.2), gathered across ranks when training is distributed.

Example:
    >>> import torch
    >>> from fastssl.ragged import RaggedImages
    >>> task = SimCLRTask("resnet10", image_size=32)
    >>> batch = task.transform(RaggedImages.from_dense(torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8)),
    ...                        torch.arange(4), epoch=0)
    >>> [v.shape for v in batch["views"]]
    [torch.Size([4, 3, 32, 32]), torch.Size([4, 3, 32, 32])]
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.distributed as dist

from .. import recipes
from ..models import mlp
from ..ops import nt_xent_loss
from ..ops.augment import augment
from .base import Task


class SimCLRTask(Task):
    name = "simclr"

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, temperature: float = 0.5,
                 strength: float = 1.0, projection_dim: int = 128, min_scale: float = 0.08):
        super().__init__(backbone, image_size, seed)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        if not 0 < min_scale <= 1:
            raise ValueError(f"min_scale must be in (0, 1], got {min_scale}")
        recipe = recipes.simclr(strength, size=image_size)
        self.recipe = replace(recipe, views=tuple(replace(v, scale=(min_scale, 1.0)) for v in recipe.views))
        self.projector = mlp(self.feature_dim, self.feature_dim, projection_dim)

    @torch.no_grad()
    def transform(self, images, ids, epoch):
        params = recipes.draw(self.recipe, ids, images.host_sizes, seed=self.seed, epoch=epoch)
        return {"views": [augment(images, p) for p in params]}

    def forward(self, batch):
        v1, v2 = batch["views"]
        z = self.projector(self.backbone(torch.cat([v1, v2])))
        z1, z2 = z.float().chunk(2)
        gather = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        loss = nt_xent_loss(z1, z2, self.temperature, gather=gather, rank_rows=batch.get("rank_samples"))
        with torch.no_grad():  # how often the positive is the nearest of the other view's embeddings
            sim = torch.nn.functional.normalize(z1, dim=1) @ torch.nn.functional.normalize(z2, dim=1).T
            top1 = (sim.argmax(1) == torch.arange(len(z1), device=sim.device)).float().mean()
        return {"loss": loss, "positive_top1": top1}
