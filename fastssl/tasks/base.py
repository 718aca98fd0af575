"""What every pretext task is: the inputs it cuts from a decoded batch, and the loss of its network on them.

A :class:`Task` is an ``nn.Module`` holding a backbone (by name, :func:`fastssl.models.backbone`) and its
heads. Training calls two methods:

- ``transform(images, ids, epoch) -> dict`` runs in the data loader's background thread, on the device
  of the decoded :class:`~fastssl.ragged.RaggedImages`, without gradients: it makes the task's inputs
  and labels with fastssl's ops (every random choice keyed by (seed, epoch, id), so a sample gets the
  same puzzle in any batch). It must not touch the module's parameters.
- ``forward(batch) -> dict`` returns ``{"loss": scalar tensor, <metric>: float tensor, ...}`` for a
  batch dict from the loader (the transform's entries plus ``ids``, ``labels``, ``epoch``).

Evaluation uses ``features(x)`` — (B, D) features of normalised (B, 3, S, S) images (``encoder_size``
pixels) — and ``feature_dim``. Tasks whose network does not take RGB (colorization) override
``features`` to prepare its input.

Example:
    >>> import torch
    >>> from fastssl.ragged import RaggedImages
    >>> images = RaggedImages.from_dense(torch.randint(0, 256, (2, 3, 40, 50), dtype=torch.uint8))
    >>> squares(images, torch.arange(2), epoch=0, size=32, seed=0).shape
    torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from .. import models, views
from ..ops.augment import augment
from ..ragged import RaggedImages

IMAGENET_MEAN = torch.tensor(views.IMAGENET_MEAN).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor(views.IMAGENET_STD).view(1, 3, 1, 1)

#: A view with geometry only (crop, flip), values in [0, 1]: the base of the puzzle-cutting tasks.
PLAIN = views.ViewRecipe(jitter=(0.0, 0.0, 0.0, 0.0), jitter_p=0.0, grayscale_p=0.0, blur_p=0.0,
                         mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def squares(images: RaggedImages, ids: torch.Tensor, epoch: int, size: int, *, seed: int,
            scale: tuple[float, float] | None = (0.35, 1.0), flip: bool = True, view: int = 0,
            recipe: views.ViewRecipe = PLAIN) -> torch.Tensor:
    """(B, 3, size, size) float32 in [0, 1] (with ``PLAIN``): a random resized crop of each image, or
    with ``scale=None`` the whole image squashed to the square (evaluation)."""
    vr = replace(recipe, size=size, flip_p=0.5 if flip else 0.0, scale=scale or (1.0, 1.0))
    params = views.draw_view(vr, ids, images.sizes, seed=seed, epoch=epoch, view_index=view)
    if scale is None:  # the whole image: crop = (0, 0, H, W)
        sizes = images.sizes.to(params.crop.device)
        params = replace(params, crop=torch.cat([torch.zeros_like(sizes), sizes], 1))
    return augment(images, params)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of (B, 3, H, W) values in [0, 1]."""
    return (x - IMAGENET_MEAN.to(x)) / IMAGENET_STD.to(x)


class Task(nn.Module):
    """Base class: a backbone by name plus the task's heads (see the module docstring)."""

    name = "task"

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0):
        super().__init__()
        self.image_size, self.seed = image_size, seed
        self.backbone = models.backbone(backbone, image_size=self.encoder_size(image_size), in_channels=self.in_channels)

    #: channels of the backbone's input (colorization: 1)
    in_channels = 3

    def encoder_size(self, image_size: int) -> int:
        """The side of the backbone's input for a task image of ``image_size`` (tiles are smaller)."""
        return image_size

    @property
    def feature_dim(self) -> int:
        return self.backbone.feature_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) features of normalised (B, 3, S, S) images, S = ``encoder_size(image_size)``."""
        return self.backbone(x)

    def transform(self, images: RaggedImages, ids: torch.Tensor, epoch: int) -> dict:
        raise NotImplementedError

    def forward(self, batch: dict) -> dict:
        raise NotImplementedError


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy (a detached scalar)."""
    return (logits.detach().argmax(1) == labels).float().mean()
