"""RotNet rotations in Triton: one program reads a TILE x TILE tile of one plane and writes it to all four rotations.

The grid is one-dimensional, planes x tiles per plane: programs (plane, tile) in plane-major order.

Rotation by k quarter turns counter-clockwise (torch.rot90): input (y, x) lands at (y, x) for k = 0,
(S-1-x, y) for k = 1, (S-1-y, S-1-x) for k = 2 and (x, S-1-y) for k = 3. For k = 1 and 3 the tile is
transposed in registers first, so that every store runs along output rows.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import device_guard

TILE = 32


@triton.jit
def _rotations_kernel(x_ptr, out_ptr, B, C, S, tiles, IMAGE_MAJOR: tl.constexpr, TILE: tl.constexpr):
    # One axis for planes x tiles: the grid's second axis stops at 65535 (S > 8160 has more tiles per plane).
    pid = tl.program_id(0)
    plane = pid // (tiles * tiles)
    t = pid % (tiles * tiles)
    b = plane // C
    c = plane % C
    ry = (t // tiles) * TILE + tl.arange(0, TILE)
    rx = (t % tiles) * TILE + tl.arange(0, TILE)
    last = S - 1
    mask = (ry[:, None] < S) & (rx[None, :] < S)
    # int64 plane offsets; S may be the constant 1 (Triton specializes int arguments equal to 1).
    v = tl.load(x_ptr + plane.to(tl.int64) * S * S + ry[:, None] * S + rx[None, :], mask=mask)
    vt = tl.trans(v)  # vt[a, b] = in[ry[b], rx[a]]
    mask_t = (rx[:, None] < S) & (ry[None, :] < S)
    for k in tl.static_range(4):
        if IMAGE_MAJOR:
            row = 4 * b + k
        else:
            row = k * B + b
        base = out_ptr + (row.to(tl.int64) * C + c) * S * S
        if k == 0:
            tl.store(base + ry[:, None] * S + rx[None, :], v, mask=mask)
        elif k == 1:
            tl.store(base + (last - rx)[:, None] * S + ry[None, :], vt, mask=mask_t)
        elif k == 2:
            tl.store(base + (last - ry)[:, None] * S + (last - rx)[None, :], v, mask=mask)
        else:
            tl.store(base + rx[:, None] * S + (last - ry)[None, :], vt, mask=mask_t)


def rotations(images: torch.Tensor, image_major: bool) -> torch.Tensor:
    """(B, C, S, S) integer-typed (the op views any dtype as same-size integers) -> (4B, C, S, S)."""
    x = images.contiguous()
    B, C, S, _ = x.shape
    out = torch.empty(4 * B, C, S, S, dtype=x.dtype, device=x.device)
    tiles = triton.cdiv(S, TILE)
    if out.numel() == 0:
        return out
    with device_guard(x):
        _rotations_kernel[(B * C * tiles * tiles,)](x, out, B, C, S, tiles, IMAGE_MAJOR=image_major, TILE=TILE)
    return out
