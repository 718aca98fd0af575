"""Jigsaw puzzles (Noroozi & Favaro 2016): which permutation of a fixed set shuffled the 3x3 tiles?

Paper convention: a 225-pixel crop → 3x3 cells of 75 → a random 64-pixel tile inside each cell
(gap + jitter) → colour jitter per tile (each channel shifted by 0–2 px) → every tile normalised by
its own mean and std → tile t shows cell perm[t], perm one of a set of 100 (or 1000) permutations
chosen greedily to maximise the Hamming distance; a siamese trunk (shared weights) embeds each tile
(fc6), the 9 embeddings are concatenated, and fc7/fc8 classify the permutation.

Scaled to small images, keeping the paper's ratios (tile/cell = 64/75, shift = 2 px per 64 px):

- ``cell = image_size // grid`` and ``tile = round(cell · 64 / 75)``: image_size 64 → cells of 21,
  tiles of 18 (a 63-pixel puzzle square); 32 → cells of 10, tiles of 9.
- ``channel_shift = round(2 · tile / 64)`` (1 px at 64, 0 at 32); grayscale tiles with p = 0.3 by
  default (against chromatic shortcuts; 0 turns it off).
- the backbone sees one tile: ``encoder_size = tile`` (resnets use their small-input stem below 33 px).
- permutations: ``hamming_permutations(100, grid)`` ("maxmin", min distance 6) unless ``permutations``
  is another count or an explicit (P, grid²) tensor.

The puzzle square is a random resized crop (scale 0.35–1, flip) of each image; tiles and labels come
from ``fastssl.ops.jigsaw_tiles`` keyed by (seed, epoch, id), so a sample gets the same puzzle in any batch.

Example:
    >>> import torch
    >>> from fastssl.ragged import RaggedImages
    >>> task = JigsawTask("resnet10", image_size=32, permutations=10)
    >>> batch = task.transform(RaggedImages.from_dense(torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)),
    ...                        torch.arange(2), epoch=0)
    >>> batch["tiles"].shape, batch["targets"].shape, task.encoder_size(32)
    (torch.Size([2, 9, 3, 9, 9]), torch.Size([2]), 9)
    >>> task(batch)["loss"].item() > 0
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import models, random
from ..ops import JigsawTiles, hamming_permutations, jigsaw_tiles
from ..ops.jigsaw import check_permutations
from .._deprecation import renamed_arguments
from .._validation import check_int, check_number
from .base import Task, TileTrunk, accuracy, squares

TILE_OVER_CELL = 64 / 75  #: Noroozi & Favaro: 64-pixel tiles in 75-pixel cells


def jigsaw_geometry(image_size: int, grid: int = 3) -> tuple[int, int, int]:
    """(cell, tile, channel_shift) in pixels for a puzzle of ``grid`` x ``grid`` cut from ``image_size`` pixels."""
    check_int(grid, "grid", 2)
    cell = image_size // grid
    if cell < 2:
        raise ValueError(f"image_size must be >= 2 * grid = {2 * grid} for grid={grid}, got {image_size}")
    tile = max(1, round(cell * TILE_OVER_CELL))
    return cell, tile, round(2 * tile / 64)


def permutation_set(permutations, grid: int) -> torch.Tensor:
    """(P, grid²) int64: ``hamming_permutations(permutations, grid)`` for a count, or the checked tensor."""
    if isinstance(permutations, torch.Tensor):
        return check_permutations(permutations, grid).cpu()
    return hamming_permutations(check_int(permutations, "permutations", 1), grid)


class JigsawTask(Task):
    """Options: ``grid`` (3), ``permutations`` (count or (P, grid²) tensor, 100), ``cell``/``tile``/
    ``channel_shift`` (default: scaled, see the module docstring), ``grayscale`` (0.3), ``tile_dim``
    (per-tile fc6, 256), ``hidden`` (fc7, 1024)."""

    name = "jigsaw"

    @renamed_arguments(greyscale="grayscale")
    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, grid: int = 3,
                 permutations=100, cell: int | None = None, tile: int | None = None,
                 channel_shift: int | None = None, grayscale: float = 0.3, tile_dim: int = 256, hidden: int = 1024):
        check_int(image_size, "image_size", 2)
        d_cell, d_tile, d_shift = jigsaw_geometry(image_size, grid)
        self.grid = grid
        self.cell = d_cell if cell is None else check_int(cell, "cell", 1)
        self.tile = d_tile if tile is None else check_int(tile, "tile", 1)
        if self.tile > self.cell:
            raise ValueError(f"tile must be <= cell, got tile={self.tile}, cell={self.cell}")
        if grid * self.cell > image_size:
            raise ValueError(f"cell must be <= image_size // grid = {image_size // grid}, got cell={self.cell}")
        self.channel_shift = d_shift if channel_shift is None else check_int(channel_shift, "channel_shift", 0)
        self.grayscale = check_number(grayscale, "grayscale", 0.0, 1.0)
        perms = permutation_set(permutations, grid)
        super().__init__(backbone, image_size, seed)
        self.register_buffer("permutations", perms, persistent=False)
        self.trunk = TileTrunk(self.feature_dim, grid * grid, check_int(tile_dim, "tile_dim"))
        self.classifier = models.mlp(self.trunk.out_dim, check_int(hidden, "hidden"), len(perms))

    def encoder_size(self, image_size: int) -> int:
        return self.tile

    @torch.no_grad()
    def transform(self, images, ids, epoch):
        x = squares(images, ids, epoch, self.grid * self.cell, seed=self.seed)
        out = jigsaw_tiles(x, permutations=self.permutations.to(x.device), grid=self.grid, cell=self.cell,
                           tile=self.tile, channel_shift=self.channel_shift, grayscale=self.grayscale,
                           ids=ids, seed=self.seed, epoch=epoch, view=random.TASK_OP_VIEW, **self.puzzle_options())
        return self.inputs(out)

    def puzzle_options(self) -> dict:
        """More options of ``jigsaw_tiles`` (Jigsaw++ replaces tiles: fastssl.tasks.jigsaw_pp)."""
        return {}

    def inputs(self, puzzles: JigsawTiles) -> dict:
        """The batch entries made of the puzzles."""
        return {"tiles": puzzles.tiles, "targets": puzzles.labels}

    def forward(self, batch):
        return self.permutation_loss(self.trunk(self.backbone, batch["tiles"]), batch["targets"])

    def permutation_loss(self, features: torch.Tensor, targets: torch.Tensor) -> dict:
        """Cross-entropy and accuracy of the permutation classifier on the trunk's (B, T·tile_dim) features."""
        logits = self.classifier(features)
        return {"loss": F.cross_entropy(logits, targets), "accuracy": accuracy(logits, targets)}
