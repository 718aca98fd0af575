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

from .. import models, random, recipes
from ..ops.augment import augment
from ..ops.nt_xent import info_nce_loss
from .._validation import check_int
from ..ragged import RaggedImages

IMAGENET_MEAN = torch.tensor(recipes.IMAGENET_MEAN).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor(recipes.IMAGENET_STD).view(1, 3, 1, 1)

#: A view with geometry only (crop, flip), values in [0, 1]: the base of the puzzle-cutting tasks.
PLAIN = recipes.ViewRecipe(jitter=(0.0, 0.0, 0.0, 0.0), jitter_p=0.0, grayscale_p=0.0, blur_p=0.0,
                           mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def square_view(recipe: recipes.ViewRecipe, size: int, scale: tuple[float, float] | None,
                flip: bool) -> recipes.ViewRecipe:
    """``recipe`` cut to ``size`` x ``size`` crops of ``scale`` (None: the whole image), flipped half of the time
    when ``flip``."""
    return replace(recipe, size=size, flip_p=0.5 if flip else 0.0, scale=scale or (1.0, 1.0))


def whole(params, sizes: torch.Tensor):
    """``params`` whose crops are the whole images of ``sizes`` (N, 2) = (H, W): crop = (0, 0, H, W)."""
    sizes = sizes.to(params.crop.device)
    return replace(params, crop=torch.cat([torch.zeros_like(sizes), sizes], 1))


def squares(images: RaggedImages, ids: torch.Tensor, epoch: int, size: int, *, seed: int,
            scale: tuple[float, float] | None = (0.35, 1.0), flip: bool = True, view: int = 0,
            recipe: recipes.ViewRecipe = PLAIN) -> torch.Tensor:
    """(B, 3, size, size) float32 in [0, 1] (with ``PLAIN``): a random resized crop of each image, or
    with ``scale=None`` the whole image squashed to the square (evaluation)."""
    vr = square_view(recipe, size, scale, flip)
    params = recipes.draw_view(vr, ids, images.host_sizes, seed=seed, epoch=epoch, view_index=view)
    if scale is None:
        params = whole(params, images.host_sizes)
    return augment(images, params)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of (B, 3, H, W) values in [0, 1]."""
    return (x - IMAGENET_MEAN.to(x)) / IMAGENET_STD.to(x)


class Task(nn.Module):
    """Base class: a backbone by name plus the task's heads (see the module docstring)."""

    name = "task"
    modality = "image"  #: what the task trains from: "image" or "video" (:class:`fastssl.tasks.video.VideoTask`)

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0):
        super().__init__()
        if self.modality == "image" and models.is_video_backbone(backbone):
            raise ValueError(f"{self.name} trains an image backbone; {backbone!r} is a video backbone")
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


# --- helpers shared by several tasks -------------------------------------------------------------------

class TileTrunk(nn.Module):
    """Siamese trunk of the puzzle tasks (jigsaw, relative position, PIRL's jigsaw view).

    ``trunk(backbone, tiles)``: (B, T, C, t, t) tiles → the shared backbone on all B·T tiles → a
    per-tile Linear + ReLU to ``dim`` (the papers' fc6, weights shared across tiles) → concatenated in
    tile order: (B, T·dim). The backbone is passed in (it stays the task's own ``backbone``).
    """

    def __init__(self, feature_dim: int, tiles: int, dim: int):
        super().__init__()
        self.tiles, self.dim = tiles, dim
        self.fc = nn.Sequential(nn.Linear(feature_dim, dim), nn.ReLU(inplace=True))

    @property
    def out_dim(self) -> int:
        return self.tiles * self.dim

    def forward(self, backbone: nn.Module, tiles: torch.Tensor) -> torch.Tensor:
        B, T = tiles.shape[:2]
        return self.fc(backbone(tiles.flatten(0, 1))).view(B, T * self.dim)


class MemoryBank(nn.Module):
    """Memory bank of L2-normalised embeddings, one row per dataset sample (Wu et al. 2018; PIRL).

    ``bank`` (N, D) float32 is a persistent buffer (saved in checkpoints), initialised to random unit
    vectors from ``seed``. :meth:`loss` is InfoNCE (softmax over the positive and ``negatives`` sampled
    rows, ``fastssl.ops.info_nce_loss``); :meth:`update` moves rows towards new embeddings
    (m_i ← normalise(momentum·m_i + (1 − momentum)·v_i)) and is called after the loss, without grad.
    Negatives are drawn with fastssl.random keyed by (seed, epoch, first id of the batch, view
    ``fastssl.random.MEMORY_BANK_VIEW``): the same batch order gives the same negatives (resume), with no global RNG.
    """


    def __init__(self, num_samples: int, dim: int, seed: int = 0):
        super().__init__()
        check_int(num_samples, "num_samples", 2)
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("bank", nn.functional.normalize(torch.randn(num_samples, dim, generator=g), dim=1))
        self.seed = seed

    def __len__(self) -> int:
        return self.bank.shape[0]

    def check_ids(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.to(self.bank.device, torch.int64)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= len(self)):
            raise ValueError(f"batch ids must lie in [0, num_samples) = [0, {len(self)}), got "
                             f"[{int(ids.min())}, {int(ids.max())}]: pass num_samples = the dataset size")
        return ids

    def loss(self, queries: torch.Tensor, ids: torch.Tensor, epoch: int, negatives: int,
             temperature: float) -> torch.Tensor:
        """InfoNCE of ``queries`` (B, D) against their bank rows ``ids`` (B,) and ``negatives`` sampled rows
        (all other rows when ``negatives`` >= N − 1). A sampled negative equal to the query's own id is left out."""
        ids = self.check_ids(ids)
        B, N = len(ids), len(self)
        if negatives >= N - 1:  # the whole bank (a copy: update() writes the bank before backward reads it)
            return info_nce_loss(queries, self.bank.to(queries.dtype, copy=True), ids, temperature)
        neg = random.randint(ids[:1], negatives, N, seed=self.seed, epoch=epoch,
                             view=random.MEMORY_BANK_VIEW)[0].to(ids.device)
        keys = torch.cat([self.bank[ids], self.bank[neg]]).to(queries.dtype)
        hit = neg[None, :] == ids[:, None]
        exclude = torch.where(hit.any(1), B + hit.to(torch.int8).argmax(1), torch.full_like(ids, -1))
        return info_nce_loss(queries, keys, torch.arange(B, device=ids.device), temperature, exclude_index=exclude)

    @torch.no_grad()
    def update(self, ids: torch.Tensor, values: torch.Tensor, momentum: float) -> None:
        ids = self.check_ids(ids)
        mixed = momentum * self.bank[ids] + (1 - momentum) * nn.functional.normalize(values.detach().float(), dim=1)
        self.bank[ids] = nn.functional.normalize(mixed, dim=1)
