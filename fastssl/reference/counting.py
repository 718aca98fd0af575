"""Counting pretext inputs (Noroozi, Pirsiavash & Favaro 2017): the whole image and its 2x2 tiles at one size.

For an image of H x W, the tiles split it at h0 = H // 2 and w0 = W // 2 (for odd sizes the bottom and
right tiles are one pixel larger), row-major: 1 top-left, 2 top-right, 3 bottom-left, 4 bottom-right.
Index 0 is the whole image. Each of the 5 is resized to S x S by **area interpolation**, the filter of
``F.interpolate(mode="area")`` = ``adaptive_avg_pool2d``: output pixel (i, j) of a region of h x w is the
mean of rows [floor(i h / S), ceil((i + 1) h / S)) x cols [floor(j w / S), ceil((j + 1) w / S)) — an
exact box average for integer ratios (the anti-aliased downsampling the paper's "downsample" needs),
nearest-neighbor-like replication when upsampling.

Output dtype: float32 for uint8 input (values stay in [0, 255]), else the input's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TILES = 5


def tile_boxes(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) of the whole image and of its 4 tiles, row-major."""
    h0, w0 = height // 2, width // 2
    return [(0, 0, height, width), (0, 0, h0, w0), (0, w0, h0, width - w0), (h0, 0, height - h0, w0),
            (h0, w0, height - h0, width - w0)]


def output_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype == torch.uint8 else dtype


def counting_tiles(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, 5, C, size, size): whole image then the 4 tiles, each area-resized.

    Computes in float64 for uint8/float64 input (float32 otherwise) and returns :func:`output_dtype`.
    """
    compute = torch.float64 if images.dtype in (torch.uint8, torch.float64) else torch.float32
    x = images.to(compute)
    views = [F.adaptive_avg_pool2d(x[..., t:t + h, l:l + w], size) for t, l, h, w in tile_boxes(*x.shape[-2:])]
    return torch.stack(views, dim=1).to(output_dtype(images.dtype)).contiguous()
