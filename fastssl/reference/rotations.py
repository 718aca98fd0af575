"""RotNet rotations (Gidaris et al. 2018): the four rotations of each square image, with their labels.

Rotation k (k = 0, 1, 2, 3) turns the image by k x 90 degrees counter-clockwise, exactly as
``torch.rot90(x, k, dims=(-2, -1))``: out[i, j] = x[j, S-1-i] for k = 1, x[S-1-i, S-1-j] for k = 2,
x[S-1-j, i] for k = 3. The rotations are element permutations: lossless in every dtype.

Orders of the (4B, C, S, S) batch:
- ``"image"`` (RotNet's own batches): the 4 rotations of image b at rows 4b .. 4b+3, labels 0,1,2,3,0,1,...
- ``"rotation"``: all B images at 0 degrees, then all at 90, 180, 270; row k*B + b, labels 0..0,1..1,...
"""

from __future__ import annotations

import torch

ORDERS = ("image", "rotation")


def rotation_labels(batch: int, order: str, device=None) -> torch.Tensor:
    """(4 * batch,) int64 rotation index (0..3) of each output row for ``order``."""
    k = torch.arange(4, device=device)
    return k.repeat(batch) if order == "image" else k.repeat_interleave(batch)


def rotations(images: torch.Tensor, order: str = "image") -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, S, S) any dtype -> ((4B, C, S, S) same dtype, (4B,) int64 labels in 0..3)."""
    stacked = torch.stack([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)], dim=1 if order == "image" else 0)
    return stacked.flatten(0, 1).contiguous(), rotation_labels(images.shape[0], order, images.device)
