"""Per-sample multi-view augmentation: ``augment(images, params)`` and the transform-style :class:`Augment`.

Status: the specification (``fastssl.reference.augment``), the parameters and recipes
(``fastssl.views``) and ragged batches (``fastssl.ragged``) exist; the fused kernels (cpp, cuda,
triton) do not yet, so every backend but ``reference`` raises :class:`fastssl.BackendUnavailable`.
"""

from __future__ import annotations

import torch

from ..backends import OpBackends
from ..ragged import RaggedImages
from ..reference import augment as reference
from ..views import AugmentParams, Recipe, draw

AUGMENT = OpBackends("augment", {"reference": reference.augment})


def _image_sizes(images) -> torch.Tensor:
    if isinstance(images, RaggedImages):
        return images.sizes
    if isinstance(images, torch.Tensor):
        if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"images must be a uint8 (B, 3, H, W) tensor, a list of (3, H, W) uint8 tensors or "
                             f"RaggedImages, got {tuple(images.shape)} {images.dtype}")
        if images.shape[0] == 0:
            raise ValueError("images is empty")
        return torch.tensor([list(images.shape[2:])] * images.shape[0], dtype=torch.int64)
    if isinstance(images, (list, tuple)):
        return RaggedImages.from_list(list(images)).sizes
    raise TypeError(f"images must be a tensor, a list of tensors or RaggedImages, got {type(images).__name__}")


def _device(images) -> torch.device:
    if isinstance(images, RaggedImages):
        return images.device
    return images.device if isinstance(images, torch.Tensor) else images[0].device


def augment(images, params: AugmentParams, *, backend: str = "auto") -> torch.Tensor:
    """One augmented view of every image, a deterministic function of ``params``.

    Args:
        images: uint8 images: a dense (B, 3, H, W) tensor, a list of (3, H_b, W_b) tensors, or
            :class:`fastssl.ragged.RaggedImages` (what a decoder hands over).
        params: :class:`fastssl.views.AugmentParams` for the B samples (e.g. from :func:`fastssl.views.draw`).
        backend: "auto" | "reference" (the fused cpp / cuda / triton kernels are not implemented yet).

    Returns:
        (B, 3, h, w) with (h, w) = ``params.size``, ``params.dtype``, normalised by ``params.mean/std``,
        channels_last memory format when ``params.channels_last``.

    Example:
        >>> import torch
        >>> from fastssl import views
        >>> images = torch.randint(0, 256, (2, 3, 64, 80), dtype=torch.uint8)
        >>> params = views.draw(views.simclr(size=32), torch.arange(2), torch.tensor([[64, 80]] * 2), seed=0)
        >>> augment(images, params[0]).shape
        torch.Size([2, 3, 32, 32])
    """
    if not isinstance(params, AugmentParams):
        raise TypeError(f"params must be fastssl.views.AugmentParams, got {type(params).__name__}")
    params.validate(_image_sizes(images))
    return AUGMENT(AUGMENT.resolve(backend, _device(images)), images, params)


class Augment(torch.nn.Module):
    """Transform-style wrapper: draws each view's parameters from ``recipe`` and applies them.

    ``forward(images, ids, epoch)`` returns ``(views, params)``: a list with one (B, 3, h, w) tensor per
    view of the recipe, and the :class:`AugmentParams` that made each — the same for the same
    (seed, epoch, id) whatever the batch.

    Example:
        >>> import torch
        >>> from fastssl import views
        >>> transform = Augment(views.simclr(size=32), seed=0)
        >>> out, params = transform(torch.randint(0, 256, (4, 3, 48, 48), dtype=torch.uint8), torch.arange(4), epoch=0)
        >>> [v.shape for v in out]
        [torch.Size([4, 3, 32, 32]), torch.Size([4, 3, 32, 32])]
    """

    def __init__(self, recipe: Recipe, *, seed: int = 0, dtype: torch.dtype = torch.float32,
                 channels_last: bool = False, backend: str = "auto"):
        super().__init__()
        self.recipe, self.seed, self.dtype, self.channels_last, self.backend = recipe, seed, dtype, channels_last, backend

    def forward(self, images, ids: torch.Tensor, epoch: int = 0):
        sizes = _image_sizes(images)
        params = draw(self.recipe, ids, sizes, seed=self.seed, epoch=epoch, dtype=self.dtype,
                      channels_last=self.channels_last)
        return [augment(images, p, backend=self.backend) for p in params], params
