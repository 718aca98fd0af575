"""Relative patch position (Doersch, Gupta & Efros 2015): a center patch, one of its 8 neighbors, the label.

Geometry. Patches of P x P sit on a 3 x 3 grid of pitch P + gap. The center patch's top-left corner is
``position`` = (y, x); the neighbor in direction (dy, dx) (each in {-1, 0, 1}, not both 0) starts at
``position + (dy, dx) * (P + gap) + offset``, where ``offset`` = (oy, ox), each in [-jitter, jitter].
The label is the neighbor's index in the 3 x 3 grid, row-major, with the center removed:
0 top-left, 1 top, 2 top-right, 3 left, 4 right, 5 bottom-left, 6 bottom, 7 bottom-right.
An image of H x W holds every layout when H, W >= 3P + 2 gap + 2 jitter; the center's corner is drawn
in [P + gap + jitter, H - 2P - gap - jitter] (and likewise in x).

Color dropping (against chromatic aberration). With probability ``color_drop``, independently per
patch, one channel (uniform over the 3) is kept and the two others are replaced by noise:
``fill[c] + noise_std * z``, where z is a zero-mean unit-variance approximately Gaussian number: the sum
s of the 4 bytes of a 32-bit hash (s in 0..1020), z = (s - 510) / sqrt(4 (256^2 - 1) / 12). The values
for the 1021 possible s are tabulated once per call in float64 and stored in the output dtype (rounded
and clamped to [0, 255] for uint8), so every backend writes identical values. Doersch et al. used
noise of about 1/100 of the channel's std; the defaults here are fill = mid-range (0.5, or 128 for
uint8) and noise_std = 1/100 of the range.

Randomness (fastssl.random, keyed by (seed, epoch, id, view); slots fastssl.random.RELATIVE_POSITION_SLOTS):
slot 0 the label, 1-2 the center (y, x), 3-4 the offset (y, x), 5-6 whether each patch drops color, 7-8
the channel each keeps, 9 the key of the noise: the hash of value n of a sample is fmix32(key ^ n)
(fastssl.random.fmix32), n = ((patch * 3 + channel) * P + y) * P + x.
"""

from __future__ import annotations

import math

import torch

from .. import random as frandom

SLOTS = frandom.RELATIVE_POSITION_SLOTS
NOISE_LEVELS = 1021  # sums of 4 bytes: 0 .. 1020
NOISE_SCALE = 1.0 / math.sqrt(4 * (256**2 - 1) / 12)

# (dy, dx) of label 0..7: the 3 x 3 grid row-major without its center.
DIRECTIONS = tuple((g // 3 - 1, g % 3 - 1) for g in range(9) if g != 4)


def directions(labels: torch.Tensor) -> torch.Tensor:
    """(B,) labels 0..7 -> (B, 2) int64 (dy, dx)."""
    return torch.tensor(DIRECTIONS, dtype=torch.int64, device=labels.device)[labels]


def min_side(patch: int, gap: int, jitter: int) -> int:
    """The smallest image side holding every layout."""
    return 3 * patch + 2 * gap + 2 * jitter


def draw(ids: torch.Tensor, height: int, width: int, patch: int, gap: int, jitter: int, color_drop: float, *,
         seed: int, epoch: int, view: int) -> dict[str, torch.Tensor]:
    """Random parameters per sample: labels (B,), positions (B, 2), offsets (B, 2), keep (B, 2), keys (B,).

    ``keep[b, p]`` is the channel patch p (0 center, 1 neighbor) keeps, or -1 when it keeps all three.
    """
    key = dict(seed=seed, epoch=epoch, view=view)
    margin = patch + gap + jitter
    u = frandom.uniform(ids, SLOTS.noise_key, dtype=torch.float64, **key)  # every slot before the noise key
    span = torch.tensor([height - 3 * patch - 2 * gap - 2 * jitter + 1, width - 3 * patch - 2 * gap - 2 * jitter + 1],
                        dtype=torch.float64, device=ids.device)
    labels = (u[:, SLOTS.label] * 8).floor().long()
    positions = margin + (u[:, SLOTS.position:SLOTS.position + 2] * span).floor().long()
    offsets = (u[:, SLOTS.offset:SLOTS.offset + 2] * (2 * jitter + 1)).floor().long() - jitter
    drop = u[:, SLOTS.drop:SLOTS.drop + 2] < color_drop
    keep = torch.where(drop, (u[:, SLOTS.keep:SLOTS.keep + 2] * 3).floor().long(), -1)
    keys = frandom.bits(ids, [SLOTS.noise_key], **key)[:, 0]
    return {"labels": labels, "positions": positions, "offsets": offsets, "keep": keep, "keys": keys}


def patch_corners(positions: torch.Tensor, offsets: torch.Tensor, labels: torch.Tensor, patch: int,
                  gap: int) -> torch.Tensor:
    """(B, 2, 2) int64 top-left (y, x) of the center patch and of the neighbor patch."""
    neighbor = positions + directions(labels) * (patch + gap) + offsets
    return torch.stack((positions, neighbor), dim=1)


def noise_table(fill, noise_std: float, dtype: torch.dtype, device=None) -> torch.Tensor:
    """(3, 1021) value written for noise sum s in channel c, in ``dtype`` (rounded/clamped for uint8)."""
    fill = torch.as_tensor(fill, dtype=torch.float64, device=device).expand(3)
    s = torch.arange(NOISE_LEVELS, dtype=torch.float64, device=device)
    table = fill[:, None] + noise_std * NOISE_SCALE * (s - 510)
    if dtype == torch.uint8:
        table = table.round().clamp(0, 255)
    return table.to(dtype)


def noise_sums(keys: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, 2, 3, P, P) int64 in 0..1020: the byte sums of fmix32(key ^ n) for every (patch, channel, y, x)."""
    n = torch.arange(2 * 3 * patch * patch, dtype=torch.int64, device=keys.device)
    h = frandom.fmix32(keys[:, None] ^ n[None, :])
    s = (h & 255) + ((h >> 8) & 255) + ((h >> 16) & 255) + (h >> 24)
    return s.view(-1, 2, 3, patch, patch)


def extract(images: torch.Tensor, corners: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) and (B, 2, 2) corners -> (B, 2, C, P, P) copies of the two patches."""
    rows = corners[..., 0, None] + torch.arange(patch, device=images.device)  # (B, 2, P)
    cols = corners[..., 1, None] + torch.arange(patch, device=images.device)
    b = torch.arange(images.shape[0], device=images.device)[:, None, None, None]
    out = images.permute(0, 2, 3, 1)[b, rows[..., :, None], cols[..., None, :]]  # (B, 2, P, P, C)
    return out.permute(0, 1, 4, 2, 3)


def color_drop(patches: torch.Tensor, keep: torch.Tensor, keys: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Replaces every channel but ``keep[b, p]`` of patch (b, p) by tabulated noise (keep = -1: untouched)."""
    P = patches.shape[-1]
    values = table[torch.arange(3, device=table.device)[:, None, None], noise_sums(keys, P)]  # (B, 2, 3, P, P)
    channel = torch.arange(3, device=keep.device).view(1, 1, 3, 1, 1)
    dropped = (keep[..., None, None, None] >= 0) & (channel != keep[..., None, None, None])
    return torch.where(dropped, values, patches)


def relative_position_pairs(images, corners, keep, keys, table, patch: int) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 2, 3, P, P) in the images' dtype: the two patches, color-dropped per ``keep``."""
    return color_drop(extract(images, corners, patch), keep, keys, table).contiguous()
