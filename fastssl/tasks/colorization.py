"""Colorization (Zhang et al. 2016): predict the distribution of ab colours from the lightness L.

Paper convention (``fastssl.ops.colorization_targets``): the network sees L − 50 (one channel, in
[−50, 50]); targets are at ¼ resolution, each the soft encoding of the cell's ab over its 5 nearest
bins of a spacing-10 ab grid (Gaussian σ = 5); the loss is the cross-entropy against these soft
targets, each pixel weighted by the class-rebalancing weight of its nearest bin,
w ∝ ((1 − λ) p̃ + λ / Q)^−1 with λ = 0.5 and p̃ the empirical bin prior smoothed by a Gaussian (σ = 5),
normalised so that E_p̃[w] = 1. Here Q = 261 in-gamut bins (``fastssl.ops.ab_bins``, which says why
not the paper's 313); targets pool the ab of each 4 x 4 cell (the op's "mean" pool).

Prior: estimated **online** from the nearest-bin counts of the first ``prior_batches`` training
batches (200 by default; counted in ``forward``, kept in the persistent buffer ``counts`` so that
checkpoints carry it), then frozen — the paper estimates it once over ImageNet. Until a batch is
seen the weights are all 1.

Scaled to small images: the encoder is the backbone's ``feature_map`` (stride 32, or 8 with the
small-input stem at <= 32 px) with ``in_channels = 1``; a 1x1 convolution gives the Q logits, upsampled
bilinearly to the ¼-resolution target grid (64 → 16 x 16, 32 → 8 x 8). ``features(x)`` converts
normalised RGB back to [0, 1], then to Lab, and feeds L − 50 to the encoder.

Example:
    >>> import torch
    >>> from fastssl.ragged import RaggedImages
    >>> task = ColorizationTask("resnet10", image_size=32)
    >>> batch = task.transform(RaggedImages.from_dense(torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)),
    ...                        torch.arange(2), epoch=0)
    >>> batch["inputs"].shape, batch["bin_index"].shape
    (torch.Size([2, 1, 32, 32]), torch.Size([2, 5, 8, 8]))
    >>> task(batch)["loss"].item() > 0
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import ab_bins, colorization_targets, rebalance_weights, rgb_to_lab, smoothed_prior
from ..ops.colorization import FACTOR, NUM_NEAREST, REBALANCE_LAMBDA, SIGMA
from .._validation import check_int, check_number
from .base import IMAGENET_MEAN, IMAGENET_STD, Task, squares


class ColorizationTask(Task):
    """Options: ``prior_batches`` (batches counted into the prior, 200; 0: no rebalancing), ``lam`` (λ, 0.5)."""

    name = "colorization"
    in_channels = 1

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, prior_batches: int = 200,
                 lam: float = REBALANCE_LAMBDA):
        check_int(image_size, "image_size", FACTOR)
        self.prior_batches = check_int(prior_batches, "prior_batches", 0)
        self.lam = check_number(lam, "lam", 0.0, 1.0)
        super().__init__(backbone, image_size, seed)
        if not hasattr(self.backbone, "feature_map"):
            raise ValueError(f"backbone must have a feature_map (a resnet) for colorization, got {backbone!r}")
        bins = ab_bins()
        self.register_buffer("bins", bins.float(), persistent=False)
        self.register_buffer("counts", torch.zeros(len(bins), dtype=torch.float64))
        self.register_buffer("batches_counted", torch.zeros((), dtype=torch.int64))
        self.head = nn.Conv2d(self.feature_dim, len(bins), 1)
        self._frozen_weights = None  # the weights once the prior is frozen: no host sync per step after that
        self.register_load_state_dict_post_hook(lambda module, keys: setattr(module, "_frozen_weights", None))

    @property
    def num_bins(self) -> int:
        return self.bins.shape[0]

    @torch.no_grad()
    def transform(self, images, ids, epoch):
        x = squares(images, ids, epoch, self.image_size, seed=self.seed)
        t = colorization_targets((x * 255).round_().to(torch.uint8), factor=FACTOR, k=NUM_NEAREST, sigma=SIGMA)
        return {"inputs": t.l_input, "bin_index": t.bin_index, "bin_weight": t.bin_weight}

    def class_weights(self) -> torch.Tensor:
        """(Q,) float32 rebalancing weights from the prior counted so far (all 1 before any count)."""
        if float(self.counts.sum()) == 0 or self.prior_batches == 0:
            return torch.ones(self.num_bins, device=self.counts.device)
        return rebalance_weights(smoothed_prior(self.counts, self.bins, SIGMA), self.lam).float()

    def logits(self, l_input: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(B, Q, h, w) bin logits for L − 50 inputs (B, 1, H, W) at the target grid ``size`` = (h, w)."""
        return F.interpolate(self.head(self.backbone.feature_map(l_input)), size=size, mode="bilinear",
                             align_corners=False)

    def forward(self, batch):
        index, weight = batch["bin_index"], batch["bin_weight"]
        class_weights = self._frozen_weights
        if class_weights is None:
            with torch.no_grad():
                if self.training and int(self.batches_counted) < self.prior_batches:
                    self.counts += torch.bincount(index[:, 0].reshape(-1), minlength=self.num_bins).to(self.counts)
                    self.batches_counted += 1
                class_weights = self.class_weights()
                if int(self.batches_counted) >= self.prior_batches:
                    self._frozen_weights = class_weights
        logits = self.logits(batch["inputs"], index.shape[-2:])
        log_p = F.log_softmax(logits.float(), dim=1)
        cross_entropy = -(log_p.gather(1, index) * weight).sum(1)  # (B, h, w)
        pixel_weight = class_weights.to(index.device)[index[:, 0]]
        accuracy = (logits.detach().argmax(1) == index[:, 0]).float().mean()
        return {"loss": (pixel_weight * cross_entropy).mean(), "accuracy": accuracy}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) features of ImageNet-normalised RGB (B, 3, S, S): the encoder on their L − 50."""
        rgb = (x * IMAGENET_STD.to(x) + IMAGENET_MEAN.to(x)).clamp(0, 1)
        return self.backbone(rgb_to_lab(rgb.float())[:, :1] - 50)
