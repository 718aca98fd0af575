"""RotNet rotations (Gidaris et al. 2018): every image at 0, 90, 180 and 270 degrees, in one pass.

Conventions (order, direction) are specified in :mod:`fastssl.reference.rotations`.
"""

from __future__ import annotations

import torch

from .. import _validation as v
from .._dtypes import BITS_DTYPES, as_bits
from ..backends import OpBackends, lazy, native
from ..reference import rotations as reference
from ..reference.rotations import ORDERS, rotation_labels

ROTATIONS = OpBackends(
    "rotations",
    {
        "reference": lambda x, image_major: reference.rotations(x, "image" if image_major else "rotation")[0],
        "cpp": as_bits(native("rotations")),  # the kernels copy bits: any dtype of 1-8 bytes
        "triton": as_bits(lazy("fastssl.triton.rotations", "rotations")),
    },
)


@torch.library.custom_op("fastssl::rotations", mutates_args=())
def _rotations(images: torch.Tensor, image_major: bool, backend: str) -> torch.Tensor:
    return ROTATIONS(backend, images, image_major)


@_rotations.register_fake
def _(images, image_major, backend):
    B, C, S, _ = images.shape
    return images.new_empty(4 * B, C, S, S)


def rotations(images: torch.Tensor, *, order: str = "image", backend: str = "auto"
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The 4 rotations of each square image (counter-clockwise, as ``torch.rot90(x, k, dims=(-2, -1))``).

    Reads each image once and writes its four rotations; an exact permutation of the elements.

    Args:
        images: (B, C, S, S), any dtype whose elements are 1, 2, 4 or 8 bytes (uint8, float, bool, ...),
            any strides. Must be square: crop first.
        order: "image" (RotNet's batches: rows 4b..4b+3 are image b at 0, 90, 180, 270 degrees) or
            "rotation" (rows kB..kB+B-1 are every image at k x 90 degrees).
        backend: "auto" | "reference" | "cpp" | "triton".

    Returns:
        (rotated, labels): (4B, C, S, S) in the dtype of ``images``, and (4B,) int64 in 0..3, the number
        of quarter turns; ``torch.rot90(rotated[i], -labels[i], dims=(-2, -1))`` is the original image.

    Example:
        >>> import torch, fastssl
        >>> x = torch.arange(4, dtype=torch.uint8).view(1, 1, 2, 2)
        >>> out, labels = fastssl.ops.rotations(x)
        >>> out[1, 0].tolist(), labels.tolist()
        ([[1, 3], [0, 2]], [0, 1, 2, 3])
    """
    v.check_tensor(images, "images")
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, S, S), got {tuple(images.shape)}")
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"images must be square (B, C, S, S), got H x W = {images.shape[-2]} x {images.shape[-1]}; "
                         f"crop them first")
    if images.numel() == 0:
        raise ValueError(f"images is empty (shape {tuple(images.shape)})")
    if images.element_size() not in BITS_DTYPES:
        raise TypeError(f"images must have 1, 2, 4 or 8-byte elements, got {images.dtype}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    out = _rotations(images, order == "image", ROTATIONS.resolve(backend, images.device))
    return out, rotation_labels(images.shape[0], order, images.device)
