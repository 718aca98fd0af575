"""Jigsaw puzzles (Noroozi & Favaro 2016) and Jigsaw++ (Noroozi et al. 2018): the permutation sets and the
shuffled, normalized tiles, some of them taken from another image of the batch.

Permutation set. All (grid²)! permutations of the cells are enumerated in lexicographic order
(``itertools.permutations``), so grid is 2 (24) or 3 (362880). The set is grown greedily: the first
permutation is drawn by ``seed`` (:func:`first_index`), then each pick is the candidate farthest from
the chosen ones in Hamming distance (positions where two permutations differ) — with "maxmin" the
largest minimum distance to the chosen set, with "mean" the largest mean distance — the lowest
lexicographic index winning ties. A running min (or sum) over all candidates is updated with one
vectorized distance computation per pick, so 1000 picks from 9! take about a second.

With "min_distance" (Jigsaw++: 701 permutations at distance >= 3) the candidates are visited in a keyed
random order (:func:`visiting_order`) and each is taken when its distance to every permutation taken
before is >= ``min_distance`` (a random greedy packing): the first n taken are the set. Candidates within
the distance of a pick are struck out with one vectorized distance computation per pick, over the
candidates not yet visited (701 picks from 9! in about 0.3 s, after about 0.5 s ordering the
candidates). Distance 3 lets a puzzle with up to 2 unknown (replaced) tiles still name its permutation:
two permutations of the set differ in at least one of the tiles left.

Tiles. The puzzle region is the centered ``grid*cell`` square of each image (the top-left pixel of the
region is ((H - grid*cell) // 2, (W - grid*cell) // 2)); cell c = (cy, cx) = divmod(c, grid), row-major,
spans ``cell`` pixels. The tile of cell c is ``tile`` x ``tile`` pixels at ``offset[c]`` = (oy, ox) in
[0, cell - tile]² inside the cell (gap + jitter). Options, per tile (keyed by its cell):

* channel shift (against chromatic aberration): channel ch is read at offset[c] + shift[c, ch],
  each shift component in [-channel_shift, channel_shift], clamped back into [0, cell - tile];
* grayscale: all three channels become 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601 luma);
* normalization: each channel of each tile becomes (x - mean) / sqrt(var + eps), mean and the biased
  (population) variance over the tile's pixels, values scaled to [0, 1] first (uint8 / 255);
* channel dropping: all channels but ``keep[c]`` (0..2, -1 = none dropped) are set to 0;
* whole-puzzle grayscale: every tile of the puzzle is grayscale (or-ed with the per-tile choice).

Jigsaw++ (replaced cells): a cell marked replaced reads its tile from the donor image ``donors[b]``
(a batch position) instead of image b — the same cell, the same origins, the same options — so the
puzzle holds ``count[b]`` tiles of another image; everything else (label, offsets, options) is b's.
Which cells: the ``count[b]`` cells with the lowest keys (ties: the lower cell); with a single image in
the batch nothing is replaced. Which donor: every sample of the batch gets a key, the batch is put in
the cyclic order of (key, id) (ties between equal ids: batch position), and each sample's donor is the
next one in that order (:func:`donors`). So a donor is never the sample itself when B > 1, every image
donates to exactly one other, and the donors do not depend on the order of the batch — only on which
samples it holds (in another batch a sample may get another donor: by design).

Output tile t is the tile of cell perm[t], perm = permutations[permutation_index[b]]; the label is
permutation_index. Un-permuting: ``cells[b, perm[t]] = tiles[b, t]``.

Randomness (fastssl.random, keyed by (seed, epoch, id, view); slots fastssl.random.jigsaw_slots), with
T = grid² cells: slot 0 the
permutation index, 1 + 2c + a the offset of cell c along axis a (0 = y), 1 + 2T + 6c + 2ch + a the
shift of channel ch, 1 + 8T + c grayscale, 1 + 9T + c dropping, 1 + 10T + c the kept channel,
1 + 11T the number of replaced cells, 2 + 11T + c the key of cell c, 2 + 12T the donor key, 3 + 12T the
whole-puzzle grayscale.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import torch

from .. import random as frandom
from .augment import GRAY_WEIGHTS

CRITERIA = ("maxmin", "mean", "min_distance")
EPS = 1e-6
ORDER_SLOT = 1  #: fastssl.random slot of the "min_distance" visiting order (id = candidate index)
MAX_ENUMERATED_GRID = 3  # 16! permutations of a 4 x 4 grid cannot be enumerated


# --- permutation set --------------------------------------------------------------------------------


@functools.cache
def all_permutations(grid: int) -> np.ndarray:
    """((grid²)!, grid²) uint8, read-only: every permutation of 0..grid²-1 in lexicographic order (3.3 MB for grid 3)."""
    p = np.array(list(itertools.permutations(range(grid * grid))), dtype=np.uint8)
    p.setflags(write=False)
    return p


def first_index(count: int, seed: int) -> int:
    """The index of the first pick among ``count`` candidates: fastssl.random of (seed, id 0, slot 0)."""
    return int(frandom.randint(torch.zeros(1, dtype=torch.int64), 1, count, seed=seed)[0, 0])


def hamming_to(columns: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """(N,) uint8 Hamming distance of every candidate to ``perm``; ``columns`` is (T, N), one row per position."""
    distance = np.zeros(columns.shape[1], dtype=np.uint8)
    for position, value in enumerate(perm):
        distance += columns[position] != value
    return distance


def greedy_permutations(n: int, grid: int = 3, criterion: str = "maxmin", seed: int = 0) -> torch.Tensor:
    """(n, grid²) int64: the greedy maximal-Hamming-distance set (see the module docstring).

    Unchecked arguments (fastssl.ops.hamming_permutations checks and caches).
    """
    candidates = all_permutations(grid)
    columns = np.ascontiguousarray(candidates.T)
    chosen = np.zeros(len(candidates), dtype=bool)
    score = np.full(len(candidates), np.iinfo(np.int32).max if criterion == "maxmin" else 0, dtype=np.int32)
    picks = [first_index(len(candidates), seed)]
    for _ in range(n - 1):
        chosen[picks[-1]] = True
        distance = hamming_to(columns, candidates[picks[-1]])
        if criterion == "maxmin":
            np.minimum(score, distance, out=score)
        else:
            score += distance  # the mean over the chosen set orders candidates as the sum does
        picks.append(int(np.argmax(np.where(chosen, -1, score))))  # argmax: the first (lowest) index of the max
    return torch.from_numpy(candidates[picks].astype(np.int64))


def visiting_order(count: int, seed: int) -> np.ndarray:
    """(count,) int64: candidate indices sorted by their keys, fastssl.random of (seed, id = index, slot
    :data:`ORDER_SLOT`); equal keys in index order."""
    keys = frandom.bits(torch.arange(count), torch.tensor([ORDER_SLOT]), seed=seed)[:, 0]
    return torch.argsort(keys * count + torch.arange(count)).numpy()


def min_distance_permutations(n: int, grid: int, min_distance: int, seed: int) -> torch.Tensor:
    """(k, grid²) int64, k <= n: the keyed random greedy set at pairwise distance >= ``min_distance`` (see the
    module docstring); k < n when the candidates run out first. Unchecked arguments."""
    candidates = all_permutations(grid)[visiting_order(len(all_permutations(grid)), seed)]
    columns = np.ascontiguousarray(candidates.T)
    alive = np.ones(len(candidates), dtype=bool)  # not yet within min_distance of a pick
    picks, start = [], 0
    while len(picks) < n:
        step = int(np.argmax(alive[start:]))  # the first live candidate from start on
        if not alive[start + step]:
            break
        pick = start + step
        picks.append(pick)
        start = pick + 1  # candidates before the pick are picked or struck out already
        alive[start:] &= hamming_to(columns[:, start:], candidates[pick]) >= min_distance
    return torch.from_numpy(candidates[picks].astype(np.int64))


def hamming_stats(permutations: torch.Tensor) -> tuple[int, float]:
    """(min, mean) Hamming distance over all pairs of distinct rows of (P, T) ``permutations`` (P >= 2)."""
    p = permutations.to(torch.int64)
    distance = (p[:, None, :] != p[None, :, :]).sum(-1)
    off_diagonal = ~torch.eye(len(p), dtype=torch.bool)
    return int(distance[off_diagonal].min()), float(distance[off_diagonal].double().mean())


# --- random parameters --------------------------------------------------------------------------------


def draw(ids: torch.Tensor, num_permutations: int, cells: int, span: int, channel_shift: int, grayscale: float,
         channel_drop: float, *, seed: int, epoch: int, view: int, replace_tiles: int = 0,
         grayscale_puzzle: float = 0.0) -> dict[str, torch.Tensor]:
    """Random parameters per sample (B = len(ids), T = ``cells``), all int64 or bool on the device of ``ids``.

    ``span`` = cell - tile + 1 offsets per axis. Returns permutation_index (B,), offsets (B, T, 2),
    shifts (B, T, 3, 2) in [-channel_shift, channel_shift], gray (B, T) bool (per tile with probability
    ``grayscale``, every tile of the puzzle with probability ``grayscale_puzzle``), keep (B, T) in -1..2,
    replace_count (B,) in [0, replace_tiles], cell_rank (B, T) (each cell's place in the sample's keyed
    order of cells) and donors (B,) batch positions (:func:`donors`).
    """
    T, slots = cells, frandom.jigsaw_slots(cells)
    h = frandom.bits(ids, slots.count, seed=seed, epoch=epoch, view=view)  # (B, S) 32-bit hashes
    B = h.shape[0]

    def below(x, high):  # multiply-shift to [0, high), as fastssl.random.randint
        return (x * high) >> 32

    def uniform(x):
        return (x >> 8).to(torch.float64) / 2**24

    offsets = below(h[:, slots.offsets:slots.offsets + 2 * T], span).view(B, T, 2)
    shifts = below(h[:, slots.shifts:slots.shifts + 6 * T], 2 * channel_shift + 1).view(B, T, 3, 2) - channel_shift
    gray = uniform(h[:, slots.gray:slots.gray + T]) < grayscale
    gray |= (uniform(h[:, slots.puzzle_gray]) < grayscale_puzzle)[:, None]
    drop = uniform(h[:, slots.drop:slots.drop + T]) < channel_drop
    keep = torch.where(drop, below(h[:, slots.keep:slots.keep + T], 3), -1)
    return {"permutation_index": below(h[:, slots.permutation], num_permutations), "offsets": offsets, "shifts": shifts,
            "gray": gray, "keep": keep, "replace_count": below(h[:, slots.replace_count], replace_tiles + 1),
            "cell_rank": cell_ranks(h[:, slots.replace_order:slots.replace_order + T]),
            "donors": donors(h[:, slots.donor], ids)}


def cell_ranks(keys: torch.Tensor) -> torch.Tensor:
    """(B, T) int64: the place of each cell when a sample's cells are sorted by their (B, T) 32-bit ``keys``
    (equal keys: the lower cell first)."""
    T = keys.shape[1]
    order = torch.argsort(keys * T + torch.arange(T, device=keys.device), dim=1)
    return torch.argsort(order, dim=1)


def replaced_cells(cell_rank: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(B, T) bool: the ``counts[b]`` cells of lowest rank; none when B = 1 (no other image to take them from)."""
    return (cell_rank < counts[:, None]) & (cell_rank.shape[0] > 1)


def donors(keys: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(B,) int64: each sample's donor, the next sample (a batch position) in the cyclic order of the batch
    sorted by (key, id), equal pairs in batch order; ``keys`` (B,) 32-bit. Never the sample itself when B > 1.

    Example:
        >>> donors(torch.tensor([30, 10, 20]), torch.tensor([5, 6, 7])).tolist()  # cyclic order 1, 2, 0
        [1, 2, 0]
    """
    order = torch.sort((keys >> 1) * 2**32 + ids, stable=True).indices  # exact in int64: ids < 2^32
    following = torch.empty_like(order)
    following[order] = order.roll(-1)
    return following


def sources(replaced: torch.Tensor, donors: torch.Tensor) -> torch.Tensor:
    """(B, T) int64: the image (batch position) each cell's tile is read from: ``donors[b]`` where replaced, else b."""
    own = torch.arange(replaced.shape[0], device=replaced.device)[:, None]
    return torch.where(replaced, donors[:, None], own)


def origins(offsets: torch.Tensor, shifts: torch.Tensor | None, height: int, width: int, grid: int, cell: int,
            tile: int) -> torch.Tensor:
    """(B, T, 3, 2) int64 top-left (y, x) in the image of each cell's tile, per channel.

    ``offsets`` (B, T, 2) or per channel (B, T, 3, 2) in [0, cell - tile]; ``shifts`` (B, T, 3, 2) are
    added and the sum clamped to [0, cell - tile] (None: no shift).
    """
    if offsets.dim() == 3:
        offsets = offsets[:, :, None, :].expand(-1, -1, 3, -1)
    if shifts is not None:
        offsets = (offsets + shifts).clamp(0, cell - tile)
    T = grid * grid
    c = torch.arange(T, device=offsets.device)
    corner = torch.stack((c // grid, c % grid), dim=-1) * cell  # (T, 2)
    region = torch.tensor([(height - grid * cell) // 2, (width - grid * cell) // 2], device=offsets.device)
    return offsets + (region + corner)[None, :, None, :]


# --- tiles ----------------------------------------------------------------------------------------------


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for uint8 and float64 input (exact), float32 otherwise."""
    return torch.float64 if dtype in (torch.uint8, torch.float64) else torch.float32


def crop(images: torch.Tensor, origins: torch.Tensor, tile: int, sources: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 3, H, W), (B, T, 3, 2) origins -> (B, T, 3, tile, tile) copies (channel ch read at its own origin);
    tile (b, t) read from image ``sources[b, t]`` ((B, T) batch positions; None: image b)."""
    B, T = origins.shape[:2]
    r = torch.arange(tile, device=images.device)
    rows = origins[..., 0, None] + r  # (B, T, 3, tile)
    cols = origins[..., 1, None] + r
    b = torch.arange(B, device=images.device).view(B, 1, 1, 1, 1) if sources is None else sources.view(B, T, 1, 1, 1)
    ch = torch.arange(3, device=images.device).view(1, 1, 3, 1, 1)
    return images[b, ch, rows[..., :, None], cols[..., None, :]]


def finish(tiles: torch.Tensor, gray: torch.Tensor, keep: torch.Tensor, normalize: bool, eps: float) -> torch.Tensor:
    """Grayscale, normalization and channel dropping of float (B, T, 3, t, t) tiles; gray (B, T) bool, keep (B, T)."""
    weights = torch.tensor(GRAY_WEIGHTS, dtype=tiles.dtype, device=tiles.device).view(1, 1, 3, 1, 1)
    luma = (tiles * weights).sum(2, keepdim=True).expand_as(tiles)
    tiles = torch.where(gray[..., None, None, None], luma, tiles)
    if normalize:
        mean = tiles.mean((-2, -1), keepdim=True)
        var = (tiles - mean).square().mean((-2, -1), keepdim=True)
        tiles = (tiles - mean) / torch.sqrt(var + eps)
    channel = torch.arange(3, device=tiles.device).view(1, 1, 3, 1, 1)
    dropped = (keep[..., None, None, None] >= 0) & (channel != keep[..., None, None, None])
    return torch.where(dropped, torch.zeros((), dtype=tiles.dtype, device=tiles.device), tiles)


def tiles_at(images: torch.Tensor, origins: torch.Tensor, gray: torch.Tensor, keep: torch.Tensor, tile: int,
             normalize: bool, eps: float = EPS, sources: torch.Tensor | None = None) -> torch.Tensor:
    """The backend contract: output tile t read at origins[b, t] of image sources[b, t] (b when None; all
    already in output order); float32 or float64."""
    x = crop(images, origins, tile, sources).to(compute_dtype(images.dtype))
    if images.dtype == torch.uint8:
        x = x / 255
    return finish(x, gray.bool(), keep, normalize, eps)


def jigsaw_tiles(images: torch.Tensor, permutation_index: torch.Tensor, permutations: torch.Tensor,
                 offsets: torch.Tensor, *, grid: int, cell: int, tile: int, shifts: torch.Tensor | None = None,
                 gray: torch.Tensor | None = None, keep: torch.Tensor | None = None, normalize: bool = True,
                 eps: float = EPS, replaced: torch.Tensor | None = None,
                 donors: torch.Tensor | None = None) -> torch.Tensor:
    """The whole op, written plainly: cut every cell's tile (from the donor image where replaced), finish it,
    then shuffle: out[:, t] = tile[perm[t]].

    Shapes: images (B, 3, H, W); permutation_index (B,); permutations (P, T); offsets (B, T, 2) or
    (B, T, 3, 2); shifts (B, T, 3, 2); gray (B, T) bool; keep (B, T) int; replaced (B, T) bool per cell;
    donors (B,) batch positions. Returns (B, T, 3, tile, tile).
    """
    B, T = images.shape[0], grid * grid
    where = origins(offsets, shifts, images.shape[2], images.shape[3], grid, cell, tile)
    gray = torch.zeros(B, T, dtype=torch.bool) if gray is None else gray
    keep = torch.full((B, T), -1, dtype=torch.int64) if keep is None else keep
    read_from = None if replaced is None else sources(replaced, donors)
    in_cell_order = tiles_at(images, where, gray, keep, tile, normalize, eps, read_from)
    perm = permutations[permutation_index].to(torch.int64)  # (B, T): the cell shown at each position
    return in_cell_order[torch.arange(B)[:, None], perm]


def unpermute(tiles: torch.Tensor, permutation_index: torch.Tensor, permutations: torch.Tensor) -> torch.Tensor:
    """Inverse of the shuffle: (B, T, ...) tiles in puzzle order -> in cell order (cells[b, perm[t]] = tiles[b, t])."""
    perm = permutations[permutation_index].to(device=tiles.device, dtype=torch.int64)
    out = torch.empty_like(tiles)
    out[torch.arange(tiles.shape[0], device=tiles.device)[:, None], perm] = tiles
    return out


def permutation_count(grid: int) -> int:
    return math.factorial(grid * grid)
