"""Relative patch position (Doersch et al. 2015): center/neighbor patch pairs, labels, color dropping.

Geometry, labels, color dropping and the random slots are specified in
:mod:`fastssl.reference.relative_position`. Random parameters are drawn here (in PyTorch, on the
images' device) and handed to every backend, so all backends cut the same patches.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .. import _validation as v
from .. import random
from .._deprecation import renamed_arguments
from .._dtypes import kernel_dtypes, triton_reads
from ..backends import OpBackends, lazy, native
from ..reference import relative_position as reference
from ..reference.relative_position import DIRECTIONS, min_side  # noqa: F401  (public helpers)

DTYPES = (torch.uint8, torch.float32, torch.float16, torch.bfloat16, torch.float64)


class RelativePositionPairs(NamedTuple):
    """What :func:`relative_position_pairs` returns for B images and patches of P x P."""

    patches: torch.Tensor  #: (B, 2, 3, P, P) in the images' dtype: [:, 0] the center patch, [:, 1] the neighbor
    labels: torch.Tensor  #: (B,) int64 in 0..7: the neighbor's direction (0 top-left ... 7 bottom-right)
    corners: torch.Tensor  #: (B, 2, 2) int64 top-left (y, x) of the center and of the neighbor patch
    keep: torch.Tensor  #: (B, 2) int64: the channel each patch kept when color-dropped, -1 when not dropped


RELATIVE_POSITION = OpBackends(
    "relative_position_pairs",
    {
        "reference": reference.relative_position_pairs,
        "cpp": native("relative_position_pairs"),
        # the images and the noise table (arguments 0 and 4) share the dtype the kernel reads
        "triton": kernel_dtypes(lazy("fastssl.triton.relative_position", "relative_position_pairs"),
                                reads=triton_reads(DTYPES), converted=(0, 4)),
    },
)


@torch.library.custom_op("fastssl::relative_position_pairs", mutates_args=())
def _relative_position_pairs(images: torch.Tensor, corners: torch.Tensor, keep: torch.Tensor, keys: torch.Tensor,
                             table: torch.Tensor, patch: int, backend: str) -> torch.Tensor:
    return RELATIVE_POSITION(backend, images, corners, keep, keys, table, patch)


@_relative_position_pairs.register_fake
def _(images, corners, keep, keys, table, patch, backend):
    return images.new_empty(images.shape[0], 2, 3, patch, patch)


def _fill_tensor(fill, dtype) -> float | tuple:
    if fill is None:
        return 128.0 if dtype == torch.uint8 else 0.5
    return tuple(v.check_per_channel(fill, "drop_fill", 3).tolist())


@renamed_arguments(colour_drop="color_drop")
def relative_position_pairs(images: torch.Tensor, *, patch: int = 96, gap: int = 48, jitter: int = 7,
                            ids=None, seed: int = 0, epoch: int = 0, view: int = 0,
                            labels: torch.Tensor | None = None, positions: torch.Tensor | None = None,
                            offsets: torch.Tensor | None = None, color_drop: float = 0.0, drop_fill=None,
                            drop_noise: float | None = None, backend: str = "auto") -> RelativePositionPairs:
    """Cuts, per image, a center patch and one of its 8 neighbors; the label says which neighbor.

    The defaults are Doersch et al.'s: patches of 96 with a gap of 48 and up to 7 pixels of jitter
    (images of at least 3*96 + 2*48 + 2*7 = 398 pixels; scale all three down for smaller images).

    Args:
        images: (B, 3, H, W) uint8 or float, any strides; H, W >= 3 patch + 2 gap + 2 jitter.
        patch, gap, jitter: patch side, gap between neighboring patches, and the largest shift of the
            neighbor along each axis (pixels).
        ids: (B,) sample ids keying the randomness (default 0..B-1); ``seed``, ``epoch``, ``view`` likewise.
        labels: (B,) int64 in 0..7, the neighbor direction (drawn when None).
        positions: (B, 2) top-left (y, x) of the center patch (drawn when None).
        offsets: (B, 2) jitter (oy, ox) of the neighbor, each in [-jitter, jitter] (drawn when None).
        color_drop: probability, per patch, of keeping one random channel and replacing the two
            others with ``drop_fill + drop_noise * z`` (z ~ approximately N(0, 1)); 0 turns it off.
        drop_fill: number or 3 numbers in the images' units (default 0.5, or 128 for uint8).
        drop_noise: std of the noise in the images' units (default 0.01, or 2.55 for uint8).
        backend: "auto" | "reference" | "cpp" | "triton".
        colour_drop: deprecated name of ``color_drop`` (FutureWarning; removed in the next release).

    Returns:
        :class:`RelativePositionPairs` (patches (B, 2, 3, P, P), labels (B,), corners (B, 2, 2), keep (B, 2)).

    Example:
        >>> import torch, fastssl
        >>> x = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
        >>> out = fastssl.ops.relative_position_pairs(x, patch=16, gap=4, jitter=2, ids=torch.arange(4))
        >>> out.patches.shape, out.labels.dtype
        (torch.Size([4, 2, 3, 16, 16]), torch.int64)
    """
    v.check_rgb(images, "images", False, DTYPES, min_dim=4, max_dim=4)
    v.check_finite(images, "images")
    B, _, H, W = images.shape
    patch, gap, jitter = v.check_int(patch, "patch", 1), v.check_int(gap, "gap", 0), v.check_int(jitter, "jitter", 0)
    need = min_side(patch, gap, jitter)
    if H < need or W < need:
        raise ValueError(f"images of {H} x {W} are too small for patch={patch}, gap={gap}, jitter={jitter}: "
                         f"both sides must be >= 3*patch + 2*gap + 2*jitter = {need}")
    color_drop = v.check_number(color_drop, "color_drop", 0, 1, what="a probability")
    ids = random.batch_ids(ids, B, images.device)
    p = reference.draw(ids, H, W, patch, gap, jitter, color_drop, seed=seed, epoch=epoch, view=view)
    if labels is not None:
        p["labels"] = v.check_integer_tensor(labels, "labels", ((B,),), images.device)
        v.check_range(p["labels"], "labels", 0, 7)
    if offsets is not None:
        p["offsets"] = v.check_integer_tensor(offsets, "offsets", ((B, 2),), images.device)
        v.check_range(p["offsets"], "offsets", -jitter, jitter)
    if positions is not None:
        p["positions"] = v.check_integer_tensor(positions, "positions", ((B, 2),), images.device)
        margin = patch + gap + jitter
        v.check_range(p["positions"][:, 0], "positions[:, 0] (y)", margin, H - 2 * patch - gap - jitter)
        v.check_range(p["positions"][:, 1], "positions[:, 1] (x)", margin, W - 2 * patch - gap - jitter)
    corners = reference.patch_corners(p["positions"], p["offsets"], p["labels"], patch, gap)
    noise = drop_noise if drop_noise is not None else (2.55 if images.dtype == torch.uint8 else 0.01)
    table = reference.noise_table(_fill_tensor(drop_fill, images.dtype), noise, images.dtype, images.device)
    chosen = RELATIVE_POSITION.resolve(backend, images.device)
    out = _relative_position_pairs(images, corners, p["keep"], p["keys"], table, patch, chosen)
    return RelativePositionPairs(out, p["labels"], corners, p["keep"])
