"""Context encoders (Pathak et al. 2016): reconstruct a hole of the image from its context.

Paper convention: a 128-pixel image with its central 64 x 64 region removed (filled with the mean
pixel); an encoder → a decoder of up-convolutions predicts the region; the loss is the L2 error on
the region — the input hole is 4 px smaller on each side than the predicted region, and that
overlap band weighs 10x — plus, optionally, an adversarial term (λ_rec = 0.999, λ_adv = 0.001).
Holes: ``fastssl.ops.inpainting_masks`` "center" (default), "random_block", "random_region".

Here:

- input: a random resized crop (scale 0.35–1, flip), ImageNet-normalised, the hole filled with the
  ImageNet mean (0 after normalisation); target: the normalised image (reconstructed linearly, no tanh).
- overlap ("center" only): scaled from 4 px at 128, ``round(4 · image_size / 128)`` — 2 px at 64,
  1 px at 32; ``overlap_weight`` (10) is the weight of that band against 1 in the hole. The loss is
  the weighted mean of the squared error over the region (hole + band) and the channels.
- network: the backbone's ``feature_map`` (stride 32, or 8 with the small-input stem at <= 32 px) →
  transposed convolutions (4x4, stride 2, BatchNorm, ReLU; channels halved down to 32) up to the
  image size → a 3x3 convolution to RGB. The paper's channel-wise fully connected bottleneck is left out.
- adversarial term (``adversarial_weight`` > 0, default 0): a small discriminator (strided convs,
  LeakyReLU, no normalisation) tells the real image from the context with the predicted hole pasted in.
  Both players learn from the one ``loss`` the trainer back-propagates, with no second optimizer:
  ``loss = (1 − λ) rec + λ · gen + disc`` where ``gen`` = BCE(D(fake), real) is computed through a copy
  of D whose parameters are detached (so it moves only the generator) and ``disc`` = ½[BCE(D(real),
  real) + BCE(D(fake.detach()), fake)] sees a detached fake (so it moves only D).
  :meth:`InpaintingTask.discriminator_parameters` lists D's parameters for a trainer that wants
  its own learning rate for them.

Example:
    >>> import torch
    >>> from fastssl.ragged import RaggedImages
    >>> task = InpaintingTask("resnet10", image_size=32)
    >>> batch = task.transform(RaggedImages.from_dense(torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)),
    ...                        torch.arange(2), epoch=0)
    >>> batch["inputs"].shape, batch["weights"].shape
    (torch.Size([2, 3, 32, 32]), torch.Size([2, 1, 32, 32]))
    >>> task(batch)["loss"].item() > 0
    True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .. import random, recipes
from ..ops import inpainting_masks
from ..ops.inpainting import MODES, center_box
from .._validation import check_int, check_number
from .base import Task, normalize, squares


def paper_overlap(image_size: int) -> int:
    """Pathak et al.'s 4-pixel overlap at 128 px, scaled to ``image_size``."""
    return round(4 * image_size / 128)


def decoder(in_channels: int, upsamplings: int, width: int = 256) -> nn.Sequential:
    """``upsamplings`` x (ConvTranspose 4x4 stride 2, BatchNorm, ReLU), then a 3x3 conv to 3 channels."""
    layers: list[nn.Module] = []
    c = in_channels
    for i in range(upsamplings):
        out = max(32, width >> i)
        layers += [nn.ConvTranspose2d(c, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
        c = out
    layers.append(nn.Conv2d(c, 3, 3, padding=1))
    return nn.Sequential(*layers)


def discriminator(image_size: int) -> nn.Sequential:
    """(B, 3, S, S) → (B, 1) logits: strided 4x4 convs with LeakyReLU(0.2) down to about 4 px, mean pool, linear."""
    layers: list[nn.Module] = []
    c, side = 3, image_size
    for out in (32, 64, 128, 256):
        if side <= 4:
            break
        layers += [nn.Conv2d(c, out, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        c, side = out, side // 2
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1))


class InpaintingTask(Task):
    """Options: ``mode`` ("center"), ``overlap`` (center only; default scaled), ``overlap_weight`` (10),
    ``adversarial_weight`` (λ, 0), ``blocks`` / ``min_fraction`` / ``max_fraction`` (random_block) and
    ``fraction`` (random_region) as in ``fastssl.ops.inpainting_masks``."""

    name = "inpainting"

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, mode: str = "center",
                 overlap: int | None = None, overlap_weight: float = 10.0, adversarial_weight: float = 0.0,
                 blocks: int = 4, min_fraction: float = 0.1, max_fraction: float = 0.25, fraction: float = 0.25):
        check_int(image_size, "image_size", 4)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        if overlap is not None and mode != "center":
            raise ValueError(f"overlap applies to mode='center' only, got overlap={overlap!r} with mode={mode!r}")
        self.overlap = paper_overlap(image_size) if overlap is None else check_int(overlap, "overlap", 0)
        if mode == "center" and 2 * self.overlap >= image_size // 2:
            raise ValueError(f"overlap must be < image_size // 4 = {image_size // 4} so the hole is not empty, "
                             f"got {self.overlap}")
        self.overlap_weight = check_number(overlap_weight, "overlap_weight", 0.0)
        self.adversarial_weight = check_number(adversarial_weight, "adversarial_weight", 0.0, 1.0)
        self.hole_options = dict(blocks=blocks, min_fraction=min_fraction, max_fraction=max_fraction, fraction=fraction)
        super().__init__(backbone, image_size, seed)
        if not hasattr(self.backbone, "feature_map"):
            raise ValueError(f"backbone must have a feature_map (a resnet) for inpainting, got {backbone!r}")
        was_training = self.backbone.training
        with torch.no_grad():
            side = self.backbone.eval().feature_map(torch.zeros(1, 3, image_size, image_size)).shape[-1]
        self.backbone.train(was_training)
        self.decoder = decoder(self.feature_dim, max(0, math.ceil(math.log2(image_size / side))))
        self.discriminator = discriminator(image_size) if self.adversarial_weight > 0 else None
        if mode != "center":  # the op checks these options: fail here, at construction, with their names
            inpainting_masks(torch.zeros(1, 3, image_size, image_size), mode, **self.hole_options)

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """The adversarial discriminator's parameters (empty without the adversarial term)."""
        return [] if self.discriminator is None else list(self.discriminator.parameters())

    @torch.no_grad()
    def transform(self, images, ids, epoch):
        x = squares(images, ids, epoch, self.image_size, seed=self.seed)
        options = dict(overlap=self.overlap) if self.mode == "center" else self.hole_options
        out = inpainting_masks(x, self.mode, fill=recipes.IMAGENET_MEAN, ids=ids, seed=self.seed, epoch=epoch,
                               view=random.TASK_OP_VIEW, **options)
        weights = out.mask.float()
        if self.mode == "center" and self.overlap > 0:  # the band between the hole and the predicted region
            top, left, h, w = center_box(self.image_size, self.image_size, 0)
            region = torch.zeros_like(weights)
            region[:, :, top:top + h, left:left + w] = 1
            weights = weights + self.overlap_weight * (region - weights)
        return {"inputs": normalize(out.masked), "targets": normalize(x), "weights": weights}

    def reconstruct(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) prediction of the whole normalised image from the masked input."""
        pred = self.decoder(self.backbone.feature_map(inputs))
        if pred.shape[-1] != self.image_size:
            pred = F.interpolate(pred, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return pred

    def adversarial_losses(self, fake: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(generator term, discriminator term), see the module docstring: the first moves only the
        generator (D's parameters detached), the second only D (``fake`` detached)."""
        frozen = {k: p.detach() for k, p in self.discriminator.named_parameters()}
        fake_logits = functional_call(self.discriminator, frozen, (fake,))
        generator = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        real_logits, detached_logits = self.discriminator(real), self.discriminator(fake.detach())
        disc = 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                      + F.binary_cross_entropy_with_logits(detached_logits, torch.zeros_like(detached_logits)))
        return generator, disc

    def forward(self, batch):
        inputs, targets, weights = batch["inputs"], batch["targets"], batch["weights"]
        pred = self.reconstruct(inputs)
        squared = (pred.float() - targets).pow(2).mean(1, keepdim=True)
        reconstruction = (weights * squared).sum() / weights.sum().clamp_min(1)
        out = {"reconstruction": reconstruction.detach()}
        if self.discriminator is None:
            return {"loss": reconstruction, **out}
        hole = (weights > 0).to(pred.dtype)
        generator, disc = self.adversarial_losses(targets * (1 - hole) + pred * hole, targets)
        lam = self.adversarial_weight
        loss = (1 - lam) * reconstruction + lam * generator + disc
        return {"loss": loss, **out, "adversarial": generator.detach(), "discriminator": disc.detach()}
