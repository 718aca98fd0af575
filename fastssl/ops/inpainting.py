"""Context-encoder inpainting masks (Pathak et al. 2016): masked input, hole mask and target.

Modes, hole geometry, fill and randomness are specified in :mod:`fastssl.reference.inpainting`.
Box holes ("center", "random_block") are drawn in PyTorch and applied by the chosen backend in one
pass (read the image once, write the masked image and the mask). "random_region" needs a per-image
order statistic: it runs in PyTorch (mask and fill) whatever the backend.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .. import _validation as v
from .. import random
from ..backends import OpBackends, lazy, native
from ..reference import inpainting as reference
from ..reference.inpainting import MODES, center_box  # noqa: F401  (public helpers)

DTYPES = (torch.uint8, torch.float32, torch.float16, torch.bfloat16, torch.float64)


class InpaintingBatch(NamedTuple):
    """What :func:`inpainting_masks` returns for B images of C x H x W."""

    masked: torch.Tensor  #: (B, C, H, W) in the images' dtype: the network input, hole = fill
    mask: torch.Tensor  #: (B, 1, H, W) bool, True in the hole
    target: torch.Tensor  #: (B, C, H, W): the original images (the loss uses ``mask``)
    boxes: torch.Tensor | None  #: (B, K, 4) int64 (top, left, height, width) of box holes; None for random_region


INPAINTING_MASKS = OpBackends(
    "inpainting_masks",
    {
        "reference": reference.inpainting_masks,
        "cpp": native("inpainting_masks"),
        "triton": lazy("fastssl.triton.inpainting", "inpainting_masks"),
    },
)


@torch.library.custom_op("fastssl::inpainting_masks", mutates_args=())
def _inpainting_masks(images: torch.Tensor, boxes: torch.Tensor, fill: torch.Tensor, backend: str
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    masked, mask = INPAINTING_MASKS(backend, images, boxes, fill)
    return masked, mask


@_inpainting_masks.register_fake
def _(images, boxes, fill, backend):
    B, C, H, W = images.shape
    return images.new_empty(B, C, H, W), images.new_empty(B, 1, H, W, dtype=torch.bool)


def _fill(fill, images: torch.Tensor) -> torch.Tensor:
    """(C,) fill in the images' dtype from a number or C numbers."""
    values = v.check_per_channel(fill, "fill", images.shape[1])
    if images.dtype == torch.uint8:
        values = values.round().clamp(0, 255)
    return values.to(dtype=images.dtype, device=images.device).contiguous()


def _boxes(mode, ids, H, W, overlap, blocks, min_fraction, max_fraction, key) -> torch.Tensor:
    if mode == "center":
        if not isinstance(overlap, int) or overlap < 0 or 2 * overlap >= min(H // 2, W // 2):
            raise ValueError(f"overlap must be an integer in [0, min(H, W) // 4) so the hole is not empty, "
                             f"got {overlap!r} for {H} x {W} images")
        return torch.tensor(center_box(H, W, overlap), dtype=torch.int64, device=ids.device).expand(len(ids), 1, 4)
    v.check_int(blocks, "blocks", 1)
    min_fraction = v.check_number(min_fraction, "min_fraction", 0, 1)
    max_fraction = v.check_number(max_fraction, "max_fraction", 0, 1)
    if min_fraction > max_fraction:
        raise ValueError(f"min_fraction ({min_fraction}) must be <= max_fraction ({max_fraction})")
    return reference.random_boxes(ids, H, W, blocks, min_fraction, max_fraction, **key)


def inpainting_masks(images: torch.Tensor, mode: str = "center", *, fill=0.0, overlap: int = 0, blocks: int = 4,
                     min_fraction: float = 0.1, max_fraction: float = 0.25, fraction: float = 0.25, grid: int = 4,
                     ids=None, seed: int = 0, epoch: int = 0, view: int = 0,
                     backend: str = "auto") -> InpaintingBatch:
    """Holes for context-encoder inpainting: the masked input, the mask and the target.

    Args:
        images: (B, C, H, W) uint8 or float, any strides.
        mode: "center" (the central H/2 x W/2 box, 1/4 of the area, as Pathak et al.), "random_block"
            (``blocks`` random boxes per image, sides in [min_fraction, max_fraction] of the image's) or
            "random_region" (one blob of ``fraction`` of the area from ``grid`` x ``grid`` smoothed noise).
        fill: value of the hole: a number or one per channel (e.g. the dataset mean), in the images'
            units (rounded for uint8).
        overlap: "center" only: pixels by which the hole is shrunk on each side.
        ids: (B,) sample ids keying the randomness (default 0..B-1); ``seed``, ``epoch``, ``view`` likewise.
        backend: "auto" | "reference" | "cpp" | "triton".

    Returns:
        :class:`InpaintingBatch`: ``masked`` (B, C, H, W), ``mask`` (B, 1, H, W) bool (True = hole),
        ``target`` the original ``images`` (no copy) and ``boxes`` (B, K, 4) for box modes.

    Example:
        >>> import torch, fastssl
        >>> x = torch.ones(2, 3, 8, 8)
        >>> out = fastssl.ops.inpainting_masks(x, "center")
        >>> out.mask.float().mean().item(), out.masked[0, 0, 4].tolist()
        (0.25, [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    """
    v.check_tensor(images, "images")
    if images.dim() != 4 or images.numel() == 0:
        raise ValueError(f"images must have shape (B, C, H, W) with at least one pixel, got {tuple(images.shape)}")
    if images.dtype not in DTYPES:
        raise TypeError(f"images must have dtype uint8 or a float dtype, got {images.dtype}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    B, _, H, W = images.shape
    if H < 2 or W < 2:
        raise ValueError(f"images must be at least 2 x 2, got {H} x {W}")
    v.check_finite(images, "images")
    fill_values = _fill(fill, images)
    ids = random.batch_ids(ids, B, images.device)
    key = dict(seed=seed, epoch=epoch, view=view)
    chosen = INPAINTING_MASKS.resolve(backend, images.device)
    if mode == "random_region":
        v.check_int(grid, "grid", 1)
        mask = reference.region_mask(ids, H, W, grid, v.check_number(fraction, "fraction", 0, 1), **key)
        return InpaintingBatch(reference.apply_mask(images, mask, fill_values), mask, images, None)
    boxes = _boxes(mode, ids, H, W, overlap, blocks, min_fraction, max_fraction, key).contiguous()
    masked, mask = _inpainting_masks(images, boxes, fill_values, chosen)
    return InpaintingBatch(masked, mask, images, boxes)
