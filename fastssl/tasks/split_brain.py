"""Split-Brain autoencoders (Zhang, Isola & Efros 2017): a network split along its channels into two halves, each
predicting the Lab channels that the other one sees, both as classifications (the paper's best, "cl,cl").

- **The split.** Splitting every layer's channels into two groups with no connection between the groups is the same
  as two networks of half the width, so the encoder (:class:`SplitBrainEncoder`) is two backbones of the chosen
  ResNet at ``width`` times the channels (0.5: together as wide as one backbone, with half its weights — the
  cross-group ones are gone). ``l_net`` sees L − 50 (one channel, colorization's input); ``ab_net`` sees a and b
  (two channels, in Lab units as they are: the same unit as L − 50, both within about ±110).
- **L → ab** (``l_net``): colorization's loss unchanged (:mod:`fastssl.tasks.colorization`, which this task
  extends): the mean ab of each 4 x 4 cell (``fastssl.ops.colorization_targets``) soft-encoded over its 5 nearest
  bins of the spacing-10 ab grid (σ = 5, Q = 261 in-gamut bins), cross-entropy against these soft targets, each
  cell weighted by the class-rebalancing weight of its nearest bin (λ = ``lam``, the prior counted online over the
  first ``prior_batches`` batches, then frozen; ``prior_batches=0``: no rebalancing).
- **ab → L** (``ab_net``): L in ``l_bins`` uniform bins of [0, 100] (50: width 2); the target is the bin of the
  mean L of each 4 x 4 cell (a hard label, :func:`lightness_bins`), the loss the plain per-cell cross-entropy.
- Each half is dense: its ``feature_map`` → a 1x1 convolution → bilinear upsampling to the ¼-resolution target
  grid (64 → 16 x 16), as colorization does. The loss is the sum of the two cross-entropies.

Input: the decoded image → a random resized crop and flip (colorization's ``squares``) → uint8 → Lab
(``fastssl.ops.rgb_to_lab``). ``features(x)`` converts the evaluator's normalised RGB back to [0, 1], then to Lab,
runs both halves and concatenates their pooled features: ``feature_dim`` = both halves' (256 + 256 for a
ResNet-18 at width 0.5).

Example:
    >>> import torch
    >>> from fastssl.ragged import RaggedImages
    >>> task = SplitBrainTask("resnet10", image_size=32)
    >>> batch = task.transform(RaggedImages.from_dense(torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)),
    ...                        torch.arange(2), epoch=0)
    >>> batch["inputs"].shape, batch["bin_index"].shape, batch["l_index"].shape
    (torch.Size([2, 3, 32, 32]), torch.Size([2, 5, 8, 8]), torch.Size([2, 8, 8]))
    >>> task(batch)["loss"].item() > 0, task.feature_dim
    (True, 512)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import models
from .._validation import check_int, check_number
from ..ops import colorization_targets, rgb_to_lab
from ..ops.colorization import FACTOR, NUM_NEAREST, REBALANCE_LAMBDA, SIGMA
from .base import IMAGENET_MEAN, IMAGENET_STD, accuracy, squares
from .colorization import ColorizationTask

L_BINS = 50


def lightness_bins(lightness: torch.Tensor, bins: int = L_BINS) -> torch.Tensor:
    """int64 bin of each L value among ``bins`` uniform bins of [0, 100] (bin i holds [100 i / bins, 100 (i+1) / bins),
    the last one 100 too; values beyond [0, 100] go to the end bins).

    Example:
        >>> lightness_bins(torch.tensor([0.0, 1.9, 2.0, 55.0, 100.0])).tolist()
        [0, 0, 1, 27, 49]
    """
    edges = torch.linspace(0, 100, bins + 1, dtype=lightness.dtype, device=lightness.device)[1:-1]
    return torch.bucketize(lightness, edges, right=True)


def split_input(lab: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) Lab → the encoder's input: L − 50 (colorization's input), then a and b as they are."""
    return torch.cat([lab[:, :1] - 50, lab[:, 1:]], 1)


class SplitBrainEncoder(nn.Module):
    """Two halves of one split network: ``l_net`` on channel 0 (L − 50), ``ab_net`` on channels 1-2 (a, b), each
    the ResNet ``backbone`` at ``width`` times the channels. (B, 3, H, W) → (B, feature_dim), the two halves'
    pooled features concatenated (L half first)."""

    def __init__(self, backbone: str, width: float, image_size: int):
        super().__init__()
        self.l_net = models.backbone(backbone, image_size=image_size, in_channels=1, width=width)
        self.ab_net = models.backbone(backbone, image_size=image_size, in_channels=2, width=width)
        self.feature_dim = self.l_net.feature_dim + self.ab_net.feature_dim

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.l_net(inputs[:, :1]), self.ab_net(inputs[:, 1:])], 1)


def _dense(head: nn.Module, feature_map: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(head(feature_map), size=size, mode="bilinear", align_corners=False)


class SplitBrainTask(ColorizationTask):
    """Options: ``l_bins`` (L bins of ab → L, 50), ``width`` (each half's channel multiplier, 0.5), and
    colorization's ``prior_batches`` (200; 0: no rebalancing) and ``lam`` (0.5) for L → ab."""

    name = "split_brain"
    in_channels = 3  #: L − 50, a, b (the encoder gives channel 0 to one half, channels 1-2 to the other)

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, l_bins: int = L_BINS,
                 width: float = 0.5, prior_batches: int = 200, lam: float = REBALANCE_LAMBDA):
        if not backbone.startswith("resnet"):
            raise ValueError(f"split_brain's halves are ResNets (a feature_map and a width), got backbone {backbone!r}")
        self.l_bins = check_int(l_bins, "l_bins", 2)
        self.width = check_number(width, "width", 0.0, open_low=True)
        super().__init__(backbone, image_size, seed, prior_batches=prior_batches, lam=lam)
        # the base classes built one full-width backbone and colorization's head on it: replaced by the two halves
        self.backbone = SplitBrainEncoder(backbone, width, self.encoder_size(image_size))
        self.head = nn.Conv2d(self.backbone.l_net.feature_dim, self.num_bins, 1)
        self.l_head = nn.Conv2d(self.backbone.ab_net.feature_dim, l_bins, 1)

    @torch.no_grad()
    def transform(self, images, ids, epoch):
        rgb = (squares(images, ids, epoch, self.image_size, seed=self.seed) * 255).round_().to(torch.uint8)
        lab = rgb_to_lab(rgb)
        ab = colorization_targets(rgb, factor=FACTOR, k=NUM_NEAREST, sigma=SIGMA)
        lightness = F.avg_pool2d(lab[:, 0], FACTOR)  # the mean L of each cell, on colorization's target grid
        return {"inputs": split_input(lab), "bin_index": ab.bin_index, "bin_weight": ab.bin_weight,
                "l_index": lightness_bins(lightness, self.l_bins)}

    def logits(self, inputs: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(B, Q, h, w) ab-bin logits of the L half for encoder inputs (B, 3, H, W) at the target grid ``size``."""
        return _dense(self.head, self.backbone.l_net.feature_map(inputs[:, :1]), size)

    def l_logits(self, inputs: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(B, l_bins, h, w) L-bin logits of the ab half for encoder inputs (B, 3, H, W) at the target grid ``size``."""
        return _dense(self.l_head, self.backbone.ab_net.feature_map(inputs[:, 1:]), size)

    def forward(self, batch):
        colorization = super().forward(batch)  # L → ab: the rebalanced soft-target cross-entropy (and the prior)
        l_index = batch["l_index"]
        l_logits = self.l_logits(batch["inputs"], l_index.shape[-2:])
        l_loss = F.cross_entropy(l_logits.float(), l_index)
        return {"loss": colorization["loss"] + l_loss, "ab_loss": colorization["loss"].detach(),
                "l_loss": l_loss.detach(), "ab_accuracy": colorization["accuracy"],
                "l_accuracy": accuracy(l_logits, l_index)}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) features of ImageNet-normalised RGB (B, 3, S, S): both halves on their Lab channels, concatenated."""
        rgb = (x * IMAGENET_STD.to(x) + IMAGENET_MEAN.to(x)).clamp(0, 1)
        return self.backbone(split_input(rgb_to_lab(rgb.float())))
