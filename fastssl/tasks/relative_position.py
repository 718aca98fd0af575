"""Relative patch position (Doersch et al. 2015): where does the second patch lie around the first?

Paper convention: a centre patch of 96 px and one of its 8 neighbours, 48 px apart (half a patch),
the neighbour jittered by up to 7 px; both go through a shared trunk (fc6 per patch), the two
embeddings are concatenated and fc7/fc8 classify the 8 directions. Chromatic aberration is countered
by colour dropping: two of the three channels of each patch replaced by noise.

Scaled to small images: all three lengths are scaled by ``image_size / 398`` (398 = 3·96 + 2·48 + 2·7,
the smallest image the paper's geometry fits) and floored, the jitter kept at >= 1 px where it fits:
image_size 64 → patch 15, gap 7, jitter 1; 32 → patch 7, gap 3, jitter 1. The backbone sees one
patch (``encoder_size = patch``). ``color_drop`` (default 1.0, every patch, as the paper) is the
probability per patch; dropped channels are 0.5 ± 0.01 noise (``fastssl.ops.relative_position_pairs``).

The pair is cut from a random resized crop (scale 0.35–1, flip) of each image; patches are then
ImageNet-normalised. Every random choice is keyed by (seed, epoch, id).

Example:
    >>> import torch
    >>> from fastssl.ragged import RaggedImages
    >>> task = RelativePositionTask("resnet10", image_size=32)
    >>> batch = task.transform(RaggedImages.from_dense(torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)),
    ...                        torch.arange(2), epoch=0)
    >>> batch["patches"].shape, batch["targets"].shape
    (torch.Size([2, 2, 3, 7, 7]), torch.Size([2]))
    >>> task(batch)["loss"].item() > 0
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import models, random
from ..ops import relative_position_pairs
from ..ops.relative_position import min_side
from .._deprecation import renamed_arguments
from .._validation import check_int, check_number
from .base import Task, TileTrunk, accuracy, normalize, squares

PAPER_SIDE = 3 * 96 + 2 * 48 + 2 * 7  #: 398, the smallest image Doersch et al.'s geometry fits


def relative_position_geometry(image_size: int) -> tuple[int, int, int]:
    """(patch, gap, jitter) in pixels: the paper's 96 / 48 / 7 scaled to ``image_size``."""
    s = image_size / PAPER_SIDE
    patch, gap = max(1, int(96 * s)), int(48 * s)
    jitter = max(1, int(7 * s))
    if min_side(patch, gap, jitter) > image_size:
        jitter = 0
    if min_side(patch, gap, jitter) > image_size:
        raise ValueError(f"image_size must be >= 3 pixels for relative position, got {image_size}")
    return patch, gap, jitter


class RelativePositionTask(Task):
    """Options: ``patch``/``gap``/``jitter`` (default scaled, see the module docstring), ``color_drop``
    (1.0), ``patch_dim`` (fc6 per patch, 256), ``hidden`` (fc7, 512)."""

    name = "relative_position"

    @renamed_arguments(colour_drop="color_drop")
    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, patch: int | None = None,
                 gap: int | None = None, jitter: int | None = None, color_drop: float = 1.0, patch_dim: int = 256,
                 hidden: int = 512):
        check_int(image_size, "image_size", 3)
        d_patch, d_gap, d_jitter = relative_position_geometry(image_size)
        self.patch = d_patch if patch is None else check_int(patch, "patch", 1)
        self.gap = d_gap if gap is None else check_int(gap, "gap", 0)
        self.jitter = d_jitter if jitter is None else check_int(jitter, "jitter", 0)
        need = min_side(self.patch, self.gap, self.jitter)
        if need > image_size:
            raise ValueError(f"patch, gap and jitter need images of 3*patch + 2*gap + 2*jitter = {need} pixels, "
                             f"more than image_size={image_size}")
        self.color_drop = check_number(color_drop, "color_drop", 0.0, 1.0)
        super().__init__(backbone, image_size, seed)
        self.trunk = TileTrunk(self.feature_dim, 2, check_int(patch_dim, "patch_dim"))
        self.classifier = models.mlp(self.trunk.out_dim, check_int(hidden, "hidden"), 8)

    def encoder_size(self, image_size: int) -> int:
        return self.patch

    @torch.no_grad()
    def transform(self, images, ids, epoch):
        x = squares(images, ids, epoch, self.image_size, seed=self.seed)
        out = relative_position_pairs(x, patch=self.patch, gap=self.gap, jitter=self.jitter,
                                      color_drop=self.color_drop, ids=ids, seed=self.seed, epoch=epoch,
                                      view=random.TASK_OP_VIEW)
        patches = normalize(out.patches.flatten(0, 1)).view_as(out.patches)
        return {"patches": patches, "targets": out.labels}

    def forward(self, batch):
        logits = self.classifier(self.trunk(self.backbone, batch["patches"]))
        return {"loss": F.cross_entropy(logits, batch["targets"]), "accuracy": accuracy(logits, batch["targets"])}
