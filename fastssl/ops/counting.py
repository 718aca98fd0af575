"""Counting pretext inputs (Noroozi et al. 2017): the whole image and its 2x2 tiles, each resized to S x S.

The filter (area interpolation) and tile split are specified in :mod:`fastssl.reference.counting`.
"""

from __future__ import annotations

import torch

from .. import _validation as v
from .._dtypes import kernel_dtypes
from ..backends import OpBackends, lazy, native
from ..reference import counting as reference
from ..reference.counting import output_dtype, tile_boxes  # noqa: F401  (public helpers)

DTYPES = (torch.uint8, torch.float32, torch.float16, torch.bfloat16, torch.float64)


KERNEL_READS = (torch.uint8, torch.float32)  # and write float32: other dtypes go through float32 and back

COUNTING_TILES = OpBackends(
    "counting_tiles",
    {
        "reference": reference.counting_tiles,
        "cpp": kernel_dtypes(native("counting_tiles"), reads=KERNEL_READS),
        "triton": kernel_dtypes(lazy("fastssl.triton.counting", "counting_tiles"), reads=KERNEL_READS),
    },
)


@torch.library.custom_op("fastssl::counting_tiles", mutates_args=())
def _counting_tiles(images: torch.Tensor, size: int, backend: str) -> torch.Tensor:
    return COUNTING_TILES(backend, images, size)


@_counting_tiles.register_fake
def _(images, size, backend):
    B, C = images.shape[:2]
    return images.new_empty(B, 5, C, size, size, dtype=output_dtype(images.dtype))


def counting_tiles(images: torch.Tensor, *, size: int | None = None, backend: str = "auto") -> torch.Tensor:
    """The whole image and its four 2x2 tiles, each area-resized to ``size`` x ``size``, in one pass.

    Args:
        images: (B, C, H, W) uint8 or float, any strides, H, W >= 2.
        size: side S of the outputs (default min(H, W) // 2: the tiles of an even square image are
            then copied as they are and the whole image is 2x2-box averaged).
        backend: "auto" | "reference" | "cpp" | "triton".

    Returns:
        (B, 5, C, S, S): [:, 0] the whole image, [:, 1:5] the tiles top-left, top-right, bottom-left,
        bottom-right. float32 for uint8 input (values in [0, 255]), else the input's dtype.

    Example:
        >>> import torch, fastssl
        >>> x = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
        >>> out = fastssl.ops.counting_tiles(x, size=2)
        >>> out[0, 0, 0].tolist(), out[0, 2, 0].tolist()
        ([[2.5, 4.5], [10.5, 12.5]], [[2.0, 3.0], [6.0, 7.0]])
    """
    v.check_tensor(images, "images")
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
    if images.numel() == 0:
        raise ValueError(f"images is empty (shape {tuple(images.shape)})")
    if images.dtype not in DTYPES:
        raise TypeError(f"images must have dtype uint8 or a float dtype, got {images.dtype}")
    H, W = images.shape[-2:]
    if H < 2 or W < 2:
        raise ValueError(f"images must be at least 2 x 2 to have 2x2 tiles, got {H} x {W}")
    v.check_finite(images, "images")
    size = min(H, W) // 2 if size is None else size
    v.check_int(size, "size", 1)
    return _counting_tiles(images, size, COUNTING_TILES.resolve(backend, images.device))
