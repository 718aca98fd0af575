"""PIRL (Misra & van der Maaten 2020): representations invariant to the jigsaw transformation.

Paper convention: an image I is seen as an augmented view v_I and as a jigsaw view v_J (9 shuffled
tiles). f(v_I) = linear projection of the trunk's pooled features; g(v_J) = the trunk on each tile →
a per-tile linear projection → concatenated → a linear projection; both 128-d, L2-normalised. A
memory bank m holds, per dataset sample, a moving average of f(v_I) (momentum 0.5). With sampled
negatives from the bank and temperature τ = 0.07,

    loss = λ · NCE(m_I, g(v_J)) + (1 − λ) · NCE(m_I, f(v_I)),  λ = 0.5,

and the bank rows of the batch are updated (under no_grad) after the loss. NCE here is its softmax
form (InfoNCE over the positive m_I and ``negatives`` sampled rows, ``fastssl.ops.info_nce_loss``, as
the "cross_entropy" loss of common PIRL implementations) rather than the paper's binary NCE with a
fixed normaliser. The bank (:class:`~fastssl.tasks.base.MemoryBank`) is sized by the required
``num_samples`` (the dataset size) and indexed by ``batch["ids"]``; negatives default to 4096, or
the whole bank when it is smaller.

Scaled to small images: v_I is a MoCo v2 view (crop 0.2–1, flip, colour jitter 0.4/0.4/0.4/0.1 with
p = 0.8, grayscale 0.2, blur) at ``image_size``; v_J is a puzzle of :func:`~fastssl.tasks.jigsaw.
jigsaw_geometry` (64 → cells of 21, tiles of 18; 32 → 10 / 9) cut from another random crop, each tile
normalised by its own mean and std, shuffled by a permutation from a maximal-Hamming set of 1000
(``permutations``; PIRL draws any of the 9! permutations — the set only spreads them out). The same
backbone sees both (ResNets pool globally, so 18-px tiles and 64-px views both work).

Example:
    >>> import torch
    >>> from fastssl.ragged import RaggedImages
    >>> task = PIRLTask("resnet10", image_size=32, num_samples=100, permutations=10)
    >>> ids = torch.tensor([3, 9])
    >>> batch = task.transform(RaggedImages.from_dense(torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)),
    ...                        ids, epoch=0)
    >>> batch["image"].shape, batch["tiles"].shape
    (torch.Size([2, 3, 32, 32]), torch.Size([2, 9, 3, 9, 9]))
    >>> batch.update(ids=ids, epoch=0)
    >>> task(batch)["loss"].item() > 0
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import random, recipes
from ..ops import jigsaw_tiles
from .._validation import check_int, check_number
from .base import MemoryBank, Task, TileTrunk, squares
from .jigsaw import jigsaw_geometry, permutation_set

random.PIRL_JIGSAW_CROP_VIEW = 2  #: view key of the jigsaw view's crop (the image view's crop uses 0, the tiles random.TASK_OP_VIEW)


class PIRLTask(Task):
    """Options: ``num_samples`` (required: the dataset size), ``dim`` (128), ``negatives`` (4096),
    ``temperature`` (0.07), ``momentum`` (0.5), ``lam`` (λ, 0.5), ``permutations`` (1000, or a tensor)."""

    name = "pirl"

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, num_samples: int,
                 dim: int = 128, negatives: int = 4096, temperature: float = 0.07, momentum: float = 0.5,
                 lam: float = 0.5, permutations=1000):
        check_int(num_samples, "num_samples", 2)
        self.negatives = check_int(negatives, "negatives", 1)
        self.temperature = check_number(temperature, "temperature", 0.0, open_low=True)
        self.momentum = check_number(momentum, "momentum", 0.0, 1.0)
        self.lam = check_number(lam, "lam", 0.0, 1.0)
        self.cell, self.tile, _ = jigsaw_geometry(check_int(image_size, "image_size", 6))
        self.view = recipes.mocov2(image_size).views[0]
        perms = permutation_set(permutations, 3)
        super().__init__(backbone, image_size, seed)
        self.register_buffer("permutations", perms, persistent=False)
        dim = check_int(dim, "dim")
        self.image_head = nn.Linear(self.feature_dim, dim)
        self.trunk = TileTrunk(self.feature_dim, 9, dim)
        self.jigsaw_head = nn.Linear(self.trunk.out_dim, dim)
        self.memory = MemoryBank(num_samples, dim, seed)

    @torch.no_grad()
    def transform(self, images, ids, epoch):
        image = squares(images, ids, epoch, self.image_size, seed=self.seed, scale=(0.2, 1.0), recipe=self.view)
        square = squares(images, ids, epoch, 3 * self.cell, seed=self.seed, view=random.PIRL_JIGSAW_CROP_VIEW)
        puzzle = jigsaw_tiles(square, permutations=self.permutations.to(square.device), grid=3, cell=self.cell,
                              tile=self.tile, ids=ids, seed=self.seed, epoch=epoch, view=random.TASK_OP_VIEW)
        return {"image": image, "tiles": puzzle.tiles}

    def forward(self, batch):
        ids, epoch = batch["ids"], int(batch["epoch"])
        f = F.normalize(self.image_head(self.backbone(batch["image"])).float(), dim=1)
        g = F.normalize(self.jigsaw_head(self.trunk(self.backbone, batch["tiles"])).float(), dim=1)
        jigsaw = self.memory.loss(g, ids, epoch, self.negatives, self.temperature)
        image = self.memory.loss(f, ids, epoch, self.negatives, self.temperature)
        loss = self.lam * jigsaw + (1 - self.lam) * image
        if self.training:
            self.memory.update(ids, f, self.momentum)
        return {"loss": loss, "nce_jigsaw": jigsaw.detach(), "nce_image": image.detach(),
                "invariance": (f.detach() * g.detach()).sum(1).mean()}
