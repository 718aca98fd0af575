"""Jigsaw puzzles (Noroozi & Favaro 2016) and Jigsaw++ (Noroozi et al. 2018): the Hamming permutation sets
and the fused tile gather, with tiles optionally taken from another image of the batch.

Conventions (region, cells, offsets, channel shift, grayscale, normalization, channel dropping,
random slots) are specified in :mod:`fastssl.reference.jigsaw`. Random parameters are drawn here
(in PyTorch, on the images' device) and handed to every backend, so all backends cut the same tiles;
the backends see only per-output-tile origins (already in puzzle order) and do the pixel work in one
pass: gather, grayscale, per-tile mean/std, channel drop, float32 store.
"""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .. import _validation as v
from .. import random
from .._deprecation import renamed_arguments
from .._dtypes import kernel_dtypes, triton_reads
from ..backends import OpBackends, lazy, native
from ..reference import jigsaw as reference
from ..reference.jigsaw import CRITERIA, EPS, hamming_stats  # noqa: F401  (public helpers)

DTYPES = (torch.uint8, torch.float32, torch.float16, torch.bfloat16, torch.float64)
CACHE_FORMAT = 1  # bump when the greedy algorithm or the enumeration order changes


# --- permutation set ----------------------------------------------------------------------------------


def cache_dir() -> Path:
    """``$FASTSSL_CACHE_DIR``, else ``$XDG_CACHE_HOME/fastssl``, else ``~/.cache/fastssl``."""
    if os.environ.get("FASTSSL_CACHE_DIR"):
        return Path(os.environ["FASTSSL_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastssl"


def _cache_path(n: int, grid: int, criterion: str, seed: int, min_distance: int | None) -> Path:
    rule = criterion if min_distance is None else f"{criterion}{min_distance}"
    return cache_dir() / f"jigsaw_permutations_v{CACHE_FORMAT}_grid{grid}_n{n}_{rule}_seed{seed}.npy"


def _valid_set(p: np.ndarray, n: int, grid: int) -> bool:
    """A cached array is used only when it is exactly what the arguments ask for: (n, T) distinct permutations."""
    T = grid * grid
    if p.shape != (n, T) or p.dtype != np.int64:
        return False
    if not (np.sort(p, axis=1) == np.arange(T)).all():
        return False
    return len(np.unique(p, axis=0)) == n


def _load(path: Path, n: int, grid: int) -> np.ndarray | None:
    try:
        p = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None  # missing, truncated or not an .npy file: recomputed
    return p if _valid_set(p, n, grid) else None


def _store(path: Path, p: np.ndarray) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one (temporary file + os.replace)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, p, allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as error:
        warnings.warn(f"could not cache the jigsaw permutations in {path.parent} ({error}); set FASTSSL_CACHE_DIR "
                      f"to a writable folder to avoid recomputing them", RuntimeWarning, stacklevel=4)


def _computed(n: int, grid: int, criterion: str, seed: int, min_distance: int | None) -> np.ndarray:
    if criterion != "min_distance":
        return reference.greedy_permutations(n, grid, criterion, seed).numpy()
    p = reference.min_distance_permutations(n, grid, min_distance, seed).numpy()
    if len(p) < n:
        raise ValueError(f"n={n} permutations of grid {grid} at pairwise Hamming distance >= {min_distance} cannot be "
                         f"reached: the greedy selection of seed {seed} runs out of candidates after {len(p)}; ask "
                         f"for at most {len(p)}, or a smaller min_distance")
    return p


@functools.lru_cache(maxsize=16)
def _permutations(n: int, grid: int, criterion: str, seed: int, min_distance: int | None, cache: bool) -> np.ndarray:
    path = _cache_path(n, grid, criterion, seed, min_distance)
    p = _load(path, n, grid) if cache else None
    if p is None:
        p = _computed(n, grid, criterion, seed, min_distance)
        if cache:
            _store(path, p)
    p.setflags(write=False)
    return p


def hamming_permutations(n: int, grid: int = 3, criterion: str = "maxmin", seed: int = 0, *,
                         min_distance: int | None = None, cache: bool = True) -> torch.Tensor:
    """The jigsaw permutation set: ``n`` permutations of the grid² cells, chosen greedily from all (grid²)!
    to be far apart in Hamming distance.

    - "maxmin" / "mean" (Noroozi & Favaro 2016, Algorithm 1): the first permutation is drawn by ``seed``;
      each next one is, among all candidates, the one whose minimum ("maxmin") or mean ("mean") Hamming
      distance to the chosen set is largest, the lowest lexicographic index winning ties.
    - "min_distance" (Jigsaw++, Noroozi et al. 2018: 701 permutations at distance >= 3): the candidates
      are visited in an order keyed by ``seed`` and each is taken when its distance to every one taken
      before is >= ``min_distance`` (3 unless given); the first ``n`` taken are the set. A ValueError says
      how many there are when the candidates run out before ``n``.

    The algorithms: :mod:`fastssl.reference.jigsaw`. Computed once (one core: "maxmin" about 0.4 s for
    n = 100 and 1.5 s for n = 1000; "min_distance" about 1 s for n up to a few thousand, most of it
    ordering the candidates) and cached on disk under :func:`cache_dir`, keyed by every argument; a
    corrupt cache file is recomputed. Every set of a criterion and seed is a prefix of the larger ones.

    Distances reached (grid 3, seed 0; min / mean over all pairs, :func:`hamming_stats`):

    ===================  ==============  ==============  ==============
    criterion            n = 100         n = 701         n = 1000
    ===================  ==============  ==============  ==============
    "maxmin"             6 / 8.0352                      5 / 7.9085
    "mean"               2 / 8.0800                      2 / 8.0080
    "min_distance" (3)   3 / 7.9949      3 / 8.0014
    ===================  ==============  ==============  ==============

    (Noroozi & Favaro report 2 / 8.00 for their 1000 "maximal" permutations, the "mean" rule. The
    "min_distance" greedy of seed 0 finds 38176 permutations at distance >= 3, 7947 at 4, 1503 at 5, 337 at 6.)

    Args:
        n: number of permutations, 1 <= n <= (grid²)!.
        grid: cells per side, 2 or 3 (a 4 x 4 grid has 16! permutations, too many to enumerate).
        criterion: "maxmin", "mean" or "min_distance".
        seed: picks the first permutation, or the visiting order (an int in [0, 2^32)).
        min_distance: with "min_distance", the least pairwise Hamming distance, 2 <= min_distance <= grid²
            (default 3); not allowed with the other criteria.
        cache: read and write the disk cache (the set is also kept in memory for the process).

    Returns:
        (n, grid²) int64 on the CPU; row i is permutation i: tile t of a puzzle shows cell row[t].

    Example:
        >>> import fastssl
        >>> p = fastssl.ops.hamming_permutations(100)
        >>> p.shape, fastssl.ops.jigsaw.hamming_stats(p)[0]
        (torch.Size([100, 9]), 6)
        >>> p = fastssl.ops.hamming_permutations(701, criterion="min_distance", min_distance=3)
        >>> p.shape, fastssl.ops.jigsaw.hamming_stats(p)[0]
        (torch.Size([701, 9]), 3)
    """
    v.check_int(grid, "grid", 2)
    if grid > reference.MAX_ENUMERATED_GRID:
        raise ValueError(f"grid must be 2 or 3: the greedy search enumerates all (grid²)! permutations, and "
                         f"({grid}²)! = {reference.permutation_count(grid):.3g} is too many; got grid={grid}")
    v.check_int(n, "n", 1)
    if n > reference.permutation_count(grid):
        raise ValueError(f"n must be <= (grid²)! = {reference.permutation_count(grid)} for grid={grid}, got {n}")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2^32), got {seed!r}")
    if criterion == "min_distance":
        min_distance = 3 if min_distance is None else v.check_int(min_distance, "min_distance", 2)
        if min_distance > grid * grid:
            raise ValueError(f"min_distance must be <= grid² = {grid * grid} (permutations differ in at most every "
                             f"position), got {min_distance}")
    elif min_distance is not None:
        raise ValueError(f"min_distance applies to criterion='min_distance' only, got min_distance={min_distance!r} "
                         f"with criterion={criterion!r}")
    return torch.from_numpy(_permutations(n, grid, criterion, seed, min_distance, bool(cache)).copy())


# --- tiles ---------------------------------------------------------------------------------------------


class JigsawTiles(NamedTuple):
    """What :func:`jigsaw_tiles` returns for B images, T = grid² cells and tiles of t x t pixels."""

    tiles: torch.Tensor  #: (B, T, 3, t, t) float32; tile i shows cell permutations[labels[b], i]
    labels: torch.Tensor  #: (B,) int64: the index of each puzzle's permutation in the set
    origins: torch.Tensor  #: (B, T, 3, 2) int64 top-left (y, x) in the image of each CELL's tile, per channel
    gray: torch.Tensor  #: (B, T) bool, per cell: the tile was made grayscale
    keep: torch.Tensor  #: (B, T) int64, per cell: the channel kept by channel dropping, -1 when none dropped
    replaced: torch.Tensor  #: (B, T) bool, per cell: the tile was read from image donors[b] (Jigsaw++)
    donors: torch.Tensor  #: (B,) int64 batch positions: where each puzzle's replaced cells come from

    @property
    def grey(self) -> torch.Tensor:
        """Deprecated name of :attr:`gray` (removed in the next release)."""
        warnings.warn("JigsawTiles.grey is deprecated and will be removed in the next release: use .gray",
                      FutureWarning, stacklevel=2)
        return self.gray


def _reference_call(images, origins, gray, keep, tile, normalize, eps, sources):
    return reference.tiles_at(images, origins, gray, keep, tile, normalize, eps, sources).float().contiguous()


JIGSAW_TILES = OpBackends(
    "jigsaw_tiles",
    {
        "reference": _reference_call,
        # The kernels write float32 tiles. The cpp kernel reads uint8/float32/float64, the Triton one every dtype.
        "cpp": kernel_dtypes(native("jigsaw_tiles"), reads=(torch.uint8, torch.float32, torch.float64),
                             cast_back=False),
        "triton": kernel_dtypes(lazy("fastssl.triton.jigsaw", "jigsaw_tiles"), reads=triton_reads(DTYPES),
                                cast_back=False),
    },
)


# sources: (B, T) int64 batch positions, the image each output tile is read from (None: its own).
@torch.library.custom_op("fastssl::jigsaw_tiles", mutates_args=())
def _jigsaw_tiles(images: torch.Tensor, origins: torch.Tensor, gray: torch.Tensor, keep: torch.Tensor, tile: int,
                  normalize: bool, eps: float, backend: str, sources: torch.Tensor | None = None) -> torch.Tensor:
    return JIGSAW_TILES(backend, images, origins, gray, keep, tile, normalize, eps, sources)


@_jigsaw_tiles.register_fake
def _(images, origins, gray, keep, tile, normalize, eps, backend, sources=None):
    return images.new_empty(origins.shape[0], origins.shape[1], 3, tile, tile, dtype=torch.float32)


def check_permutations(permutations, grid: int) -> torch.Tensor:
    """(P, grid²) integer tensor of distinct permutations of 0..grid²-1 -> int64 (errors name ``permutations``)."""
    T = grid * grid
    v.check_tensor(permutations, "permutations")
    if permutations.dim() != 2 or permutations.shape[1] != T or permutations.shape[0] == 0:
        raise ValueError(f"permutations must have shape (P, grid²) = (P, {T}) with P >= 1, got "
                         f"{tuple(permutations.shape)}")
    if permutations.dtype.is_floating_point or permutations.dtype.is_complex or permutations.dtype == torch.bool:
        raise TypeError(f"permutations must be an integer tensor, got {permutations.dtype}")
    p = permutations.to(torch.int64)
    if torch.compiler.is_compiling():  # value checks skipped while tracing, as in fastssl._validation
        return p
    rows_ok = (p.sort(dim=1).values == torch.arange(T, device=p.device)).all(dim=1)
    if not bool(rows_ok.all()):
        row = int((~rows_ok).nonzero()[0])
        raise ValueError(f"permutations row {row} is not a permutation of 0..{T - 1}: {p[row].tolist()}")
    unique, inverse = torch.unique(p, dim=0, return_inverse=True)
    if len(unique) != len(p):
        first = torch.full((len(unique),), -1, dtype=torch.int64, device=p.device)
        rows = torch.arange(len(p), device=p.device)
        first.scatter_reduce_(0, inverse, rows, reduce="amin", include_self=False)
        dup = int((first[inverse] != rows).nonzero()[0])
        raise ValueError(f"permutations has duplicate rows: row {dup} repeats row {int(first[inverse[dup]])}; "
                         f"the labels would be ambiguous")
    return p


def _check_geometry(images: torch.Tensor, grid: int, cell: int, tile: int, channel_shift: int, eps) -> None:
    v.check_int(grid, "grid", 2)
    v.check_int(cell, "cell", 1)
    v.check_int(tile, "tile", 1)
    v.check_int(channel_shift, "channel_shift", 0)
    if tile > cell:
        raise ValueError(f"tile must be <= cell (each tile lies inside its cell), got tile={tile}, cell={cell}")
    H, W = images.shape[-2:]
    if H < grid * cell or W < grid * cell:
        raise ValueError(f"images of {H} x {W} are too small for grid={grid}, cell={cell}: both sides must be "
                         f">= grid*cell = {grid * cell}")
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")


@renamed_arguments(greyscale="grayscale", grey="gray")
def jigsaw_tiles(images: torch.Tensor, permutation_index: torch.Tensor | None = None,
                 permutations: torch.Tensor | None = None, *, grid: int = 3, cell: int = 75, tile: int = 64,
                 offsets: torch.Tensor | None = None, channel_shift: int = 0, grayscale: float = 0.0,
                 channel_drop: float = 0.0, gray: torch.Tensor | None = None, keep: torch.Tensor | None = None,
                 grayscale_puzzle: float = 0.0, replace_tiles: int | torch.Tensor | None = None,
                 donors: torch.Tensor | None = None, normalize: bool = True, eps: float = EPS, ids=None, seed: int = 0,
                 epoch: int = 0, view: int = 0, backend: str = "auto") -> JigsawTiles:
    """Jigsaw puzzles in one fused pass: per image, grid x grid tiles, shuffled by a permutation of the set;
    with ``replace_tiles`` (Jigsaw++), some tiles taken from another image of the batch.

    The puzzle is the centered ``grid*cell`` square of each image (crop or resize to it first for
    Noroozi & Favaro's 225 -> 3 x 3 cells of 75 -> tiles of 64). Each cell holds a ``tile``-pixel tile
    at a random offset in [0, cell - tile]² (gap + jitter); output tile t is the tile of cell perm[t],
    perm = permutations[permutation_index[b]]. Per tile, optionally: each channel shifted by up to
    ``channel_shift`` pixels, grayscale (BT.601 luma), normalization by the tile's own per-channel mean
    and std ((x - mean) / sqrt(var + eps), biased variance, values in [0, 1] — uint8 / 255), and
    channel dropping (two channels set to 0). Every random choice comes from fastssl.random, keyed by
    (seed, epoch, ids[b], view) and by cell, so a sample gets the same puzzle in any batch.

    Jigsaw++ (Noroozi et al. 2018): with ``replace_tiles``, 0..replace_tiles of each puzzle's cells (a
    keyed draw per sample, or the counts given) read their tile from the donor image ``donors[b]`` instead
    of image b: the donor's pixels at the same cell and origins, with b's options, in the same pass. The
    label stays the permutation; ``replaced`` says which cells. The donor is another image of the batch:
    the batch is put in a keyed cyclic order (each sample's key from its own id, ties by id) and each
    sample takes the next one, so the donor is never the sample itself when B > 1, each image donates
    once, and the batch's order does not matter — but the donor, and so the replaced tiles' pixels,
    depend on which samples the batch holds (by design; the counts and cells replaced do not). A batch
    of one image replaces nothing. The rule in full: :mod:`fastssl.reference.jigsaw`.

    Args:
        images: (B, 3, H, W) uint8 in [0, 255] or float in [0, 1], any strides; H, W >= grid * cell.
        permutation_index: (B,) integer in [0, P): the label of each puzzle (drawn when None).
        permutations: (P, grid²) integer, distinct permutations; default ``hamming_permutations(100, grid)``.
        grid, cell, tile: cells per side, cell side, tile side (pixels); tile <= cell.
        offsets: (B, grid², 2) (y, x) of each cell's tile inside its cell, or (B, grid², 3, 2) per channel
            (then used exactly, without ``channel_shift``); each in [0, cell - tile]. Drawn when None.
        channel_shift: largest per-channel displacement (pixels; clamped to stay inside the cell).
        grayscale: probability, per tile, of grayscale; ``gray`` (B, grid²) bool gives it explicitly.
        channel_drop: probability, per tile, of keeping one random channel; ``keep`` (B, grid²) integer in
            -1..2 gives it explicitly (-1: nothing dropped).
        grayscale_puzzle: probability, per puzzle, that all its tiles are grayscale (with ``grayscale``:
            either makes a tile gray); ignored when ``gray`` is given.
        replace_tiles: None or 0 (nothing replaced: the plain puzzle, bit for bit); an int k in [0, grid²]:
            each puzzle replaces a uniform draw of 0..k cells; or a (B,) integer tensor of counts in
            [0, grid²], each puzzle's own.
        donors: (B,) integer batch positions in [0, B): the image each puzzle's replaced cells come from
            (drawn when None, as above).
        normalize: per-tile, per-channel standardization (else the [0, 1] values are written as they are).
        eps: added to the variance.
        ids: (B,) sample ids keying the randomness (default 0..B-1); likewise ``seed``, ``epoch``, ``view``.
        backend: "auto" | "reference" | "cpp" | "triton".
        greyscale, grey: deprecated names of ``grayscale`` and ``gray`` (FutureWarning; removed in the next release).

    Returns:
        :class:`JigsawTiles`: tiles (B, grid², 3, tile, tile) float32, labels (B,) int64 (=
        permutation_index), and the per-cell origins, gray and keep used, replaced (B, grid²) bool per
        cell (all False without ``replace_tiles``) and donors (B,) int64. Not differentiable.
        :func:`jigsaw_unpermute` puts the tiles back in cell order; ``replaced.gather(1, perm)`` gives the
        replaced puzzle positions.

    Example:
        >>> import torch, fastssl
        >>> x = torch.randint(0, 256, (4, 3, 225, 225), dtype=torch.uint8)
        >>> out = fastssl.ops.jigsaw_tiles(x, ids=torch.arange(4))
        >>> out.tiles.shape, out.labels.shape
        (torch.Size([4, 9, 3, 64, 64]), torch.Size([4]))
        >>> pp = fastssl.ops.jigsaw_tiles(x, replace_tiles=2, ids=torch.arange(4))
        >>> pp.replaced.shape, bool((pp.replaced.sum(1) <= 2).all()), bool((pp.donors != torch.arange(4)).all())
        (torch.Size([4, 9]), True, True)
    """
    v.check_rgb(images, "images", False, DTYPES, min_dim=4, max_dim=4)
    v.check_finite(images, "images")
    _check_geometry(images, grid, cell, tile, channel_shift, eps)
    grayscale = v.check_number(grayscale, "grayscale", 0, 1, what="a probability")
    channel_drop = v.check_number(channel_drop, "channel_drop", 0, 1, what="a probability")
    grayscale_puzzle = v.check_number(grayscale_puzzle, "grayscale_puzzle", 0, 1, what="a probability")
    device, (B, _, H, W), T = images.device, images.shape, grid * grid
    counts = _check_replace_tiles(replace_tiles, B, T, device)
    perms = hamming_permutations(100, grid) if permutations is None else permutations
    perms = check_permutations(perms, grid).to(device)
    ids = random.batch_ids(ids, B, device)
    p = reference.draw(ids, len(perms), T, cell - tile + 1, channel_shift, grayscale, channel_drop, seed=seed,
                       epoch=epoch, view=view, replace_tiles=counts if isinstance(counts, int) else 0,
                       grayscale_puzzle=grayscale_puzzle)
    if permutation_index is not None:
        p["permutation_index"] = v.check_integer_tensor(permutation_index, "permutation_index", ((B,),), device)
        v.check_range(p["permutation_index"], "permutation_index", 0, len(perms) - 1)
    shifts = p["shifts"] if channel_shift > 0 else None
    if offsets is not None:
        p["offsets"] = v.check_integer_tensor(offsets, "offsets", ((B, T, 2), (B, T, 3, 2)), device)
        v.check_range(p["offsets"], "offsets", 0, cell - tile)
        shifts = None if p["offsets"].dim() == 4 else shifts
    if gray is not None:
        v.check_tensor(gray, "gray")
        if tuple(gray.shape) != (B, T) or gray.dtype != torch.bool:
            raise ValueError(f"gray must be a bool tensor of shape {(B, T)}, got {gray.dtype} {tuple(gray.shape)}")
        p["gray"] = gray.to(device)
    if keep is not None:
        p["keep"] = v.check_integer_tensor(keep, "keep", ((B, T),), device)
        v.check_range(p["keep"], "keep", -1, 2)
    if donors is not None:
        p["donors"] = v.check_integer_tensor(donors, "donors", ((B,),), device)
        v.check_range(p["donors"], "donors", 0, B - 1)
    drawn = not isinstance(counts, torch.Tensor)
    replaced = reference.replaced_cells(p["cell_rank"], p["replace_count"] if drawn else counts)
    where = reference.origins(p["offsets"], shifts, H, W, grid, cell, tile)  # per cell
    cells = perms[p["permutation_index"]]  # (B, T): the cell shown at each puzzle position
    sources = None if counts is None else reference.sources(replaced, p["donors"]).gather(1, cells)
    tiles = _jigsaw_tiles(images, where.gather(1, cells[:, :, None, None].expand(B, T, 3, 2)).contiguous(),
                          p["gray"].gather(1, cells).to(torch.int64), p["keep"].gather(1, cells), tile,
                          bool(normalize), float(eps), JIGSAW_TILES.resolve(backend, device), sources)
    return JigsawTiles(tiles, p["permutation_index"], where, p["gray"], p["keep"], replaced, p["donors"])


def _check_replace_tiles(replace_tiles, B: int, T: int, device) -> int | torch.Tensor | None:
    """None (nothing replaced), the largest count (an int in [1, T]) or the (B,) int64 counts on ``device``."""
    if replace_tiles is None or (isinstance(replace_tiles, int) and not isinstance(replace_tiles, bool)
                                 and replace_tiles == 0):
        return None
    if isinstance(replace_tiles, torch.Tensor):
        counts = v.check_integer_tensor(replace_tiles, "replace_tiles", ((B,),), device)
        v.check_range(counts, "replace_tiles", 0, T)
        return counts
    v.check_int(replace_tiles, "replace_tiles", 0)
    if replace_tiles > T:
        raise ValueError(f"replace_tiles must be <= grid² = {T} (the cells of a puzzle), got {replace_tiles}")
    return replace_tiles


def jigsaw_unpermute(tiles: torch.Tensor, labels: torch.Tensor, permutations: torch.Tensor) -> torch.Tensor:
    """Puts puzzle tiles back in cell order: ``out[b, perm[t]] = tiles[b, t]``, perm = permutations[labels[b]].

    Args:
        tiles: (B, T, ...) any dtype (e.g. the tiles of :func:`jigsaw_tiles`, or per-tile features).
        labels: (B,) integer in [0, P).
        permutations: (P, T) the permutation set the puzzles were made with.

    Returns:
        (B, T, ...) like ``tiles``; out[b, c] is the tile of cell c (row-major in the grid).

    Example:
        >>> import torch, fastssl
        >>> perms = torch.tensor([[2, 0, 1, 3]])
        >>> fastssl.ops.jigsaw_unpermute(torch.tensor([[20, 0, 10, 30]]), torch.tensor([0]), perms).tolist()
        [[0, 10, 20, 30]]
    """
    v.check_tensor(tiles, "tiles")
    if tiles.dim() < 2:
        raise ValueError(f"tiles must have shape (B, T, ...), got {tuple(tiles.shape)}")
    T = tiles.shape[1]
    grid = int(round(T**0.5))
    if grid * grid != T:
        raise ValueError(f"tiles must have a square number of tiles in dimension 1, got {T}")
    perms = check_permutations(permutations, grid).to(tiles.device)
    labels = v.check_integer_tensor(labels, "labels", ((tiles.shape[0],),), tiles.device)
    v.check_range(labels, "labels", 0, len(perms) - 1)
    return reference.unpermute(tiles, labels, perms)
