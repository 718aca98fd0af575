"""Context-encoder inpainting masks (Pathak et al. 2016): a hole, the masked input, the target.

Every hole is a union of axis-aligned boxes (top, left, height, width), except ``random_region``.

- ``"center"``: the central box of half the height and width (1/4 of the area), top = (H - H//2) // 2,
  left = (W - W//2) // 2, shrunk by ``overlap`` pixels on each side (Pathak's overlap: the network
  sees a little context inside the central region; the loss may weight it differently).
- ``"random_block"``: ``blocks`` boxes per image; each side is uniform in
  [max(1, round(min_fraction * side)), max(1, floor(max_fraction * side))] and the box uniform inside the image.
- ``"random_region"``: a blob: a ``grid`` x ``grid`` uniform noise field, upsampled bilinearly
  (align_corners=False) to H x W; the hole is the round(fraction * H * W) pixels of highest value
  (threshold at that order statistic; ties, which have probability ~0, may add pixels).

Masked input: pixels of the hole hold ``fill[c]`` (0, or a per-channel dataset mean, in the images'
units), the rest the original. The target is the original image itself (no copy): the loss uses
the mask (e.g. ``((pred - target)**2 * mask).sum() / mask.sum()``).

Randomness (fastssl.random, keyed by (seed, epoch, id, view)): random_block uses slots 4k..4k+3 for
block k (height, width, top, left; fastssl.random.INPAINTING_BLOCK_SLOTS per block); random_region slots
0..grid^2-1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import random as frandom

MODES = ("center", "random_block", "random_region")


def center_box(height: int, width: int, overlap: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the central half-side box shrunk by ``overlap`` on each side."""
    h, w = height // 2, width // 2
    return ((height - h) // 2 + overlap, (width - w) // 2 + overlap, h - 2 * overlap, w - 2 * overlap)


def _side_range(side: int, min_fraction: float, max_fraction: float) -> tuple[int, int]:
    high = max(1, int(max_fraction * side))
    return min(high, max(1, round(min_fraction * side))), high


def random_boxes(ids: torch.Tensor, height: int, width: int, blocks: int, min_fraction: float,
                 max_fraction: float, *, seed: int, epoch: int, view: int) -> torch.Tensor:
    """(B, blocks, 4) int64 (top, left, height, width) of random boxes inside a H x W image."""
    per_block = frandom.INPAINTING_BLOCK_SLOTS
    u = frandom.uniform(ids, per_block * blocks, seed=seed, epoch=epoch, view=view, dtype=torch.float64)
    u = u.view(-1, blocks, per_block)
    (h_lo, h_hi), (w_lo, w_hi) = _side_range(height, min_fraction, max_fraction), _side_range(width, min_fraction,
                                                                                              max_fraction)
    h = h_lo + (u[..., 0] * (h_hi - h_lo + 1)).floor().long()
    w = w_lo + (u[..., 1] * (w_hi - w_lo + 1)).floor().long()
    top = (u[..., 2] * (height - h + 1)).floor().long()
    left = (u[..., 3] * (width - w + 1)).floor().long()
    return torch.stack((top, left, h, w), dim=-1)


def boxes_mask(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, K, 4) boxes -> (B, 1, H, W) bool, True inside any box."""
    y = torch.arange(height, device=boxes.device).view(1, 1, height, 1)
    x = torch.arange(width, device=boxes.device).view(1, 1, 1, width)
    top, left, h, w = (boxes[..., i, None, None] for i in range(4))
    inside = (y >= top) & (y < top + h) & (x >= left) & (x < left + w)  # (B, K, H, W)
    return inside.any(dim=1, keepdim=True)


def region_mask(ids: torch.Tensor, height: int, width: int, grid: int, fraction: float, *, seed: int, epoch: int,
                view: int) -> torch.Tensor:
    """(B, 1, H, W) bool blob holes of about ``fraction`` of the area (see the module docstring)."""
    noise = frandom.uniform(ids, grid * grid, seed=seed, epoch=epoch, view=view, dtype=torch.float64)
    field = F.interpolate(noise.view(-1, 1, grid, grid), size=(height, width), mode="bilinear",
                          align_corners=False).flatten(1)
    count = round(fraction * height * width)
    if count == 0:
        return torch.zeros(field.shape[0], 1, height, width, dtype=torch.bool, device=ids.device)
    threshold = field.kthvalue(field.shape[1] - count + 1, dim=1, keepdim=True).values
    return (field >= threshold).view(-1, 1, height, width)


def apply_mask(images: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Hole pixels (mask True) take ``fill[c]`` (a (C,) tensor in the images' dtype), the rest the original."""
    return torch.where(mask, fill.view(1, -1, 1, 1), images).contiguous()


def inpainting_masks(images: torch.Tensor, boxes: torch.Tensor,
                     fill: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Box holes: (B, C, H, W), (B, K, 4) boxes, (C,) fill -> masked (B, C, H, W), mask (B, 1, H, W) bool.

    What every backend of :func:`fastssl.ops.inpainting_masks` computes once the boxes are drawn."""
    mask = boxes_mask(boxes, *images.shape[-2:])
    return apply_mask(images, mask, fill), mask
