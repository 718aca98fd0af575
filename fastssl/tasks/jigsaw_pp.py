"""Jigsaw++ (Noroozi et al. 2018): jigsaw puzzles in which some tiles come from another image.

Paper convention: a 3x3 jigsaw puzzle (:mod:`fastssl.tasks.jigsaw`) in which 0 to 2 tiles, at random
positions, are replaced by tiles of another image; the network still names the permutation of the
puzzle, from a set of 701 permutations at pairwise Hamming distance >= 3 — so the tiles left always
tell two permutations of the set apart (they differ in at least 3 positions, at most 2 are
replaced). Every tile is normalised by its own mean and std; the puzzle is grayscale 70% of the time.

Here: the puzzles of :class:`~fastssl.tasks.jigsaw.JigsawTask` (same geometry, the same siamese trunk
and classifier) made by ``fastssl.ops.jigsaw_tiles(replace_tiles=2, grayscale_puzzle=0.7)``: per
sample a keyed draw of 0..2 cells, read from the sample's donor — the next sample in a keyed cyclic
order of the batch, never itself — with the sample's own offsets; the whole puzzle gray with p = 0.7
(no per-tile gray by default). Permutations: ``hamming_permutations(701, grid, "min_distance",
min_distance=3)``. The batch also holds ``replaced`` (B, grid²) bool per puzzle position; with
``occlusion_weight`` > 0 a linear head on the concatenated tile features predicts it (a binary
cross-entropy per position added to the loss with that weight; the paper trains on the permutation only).

Example:
    >>> import torch
    >>> from fastssl.ragged import RaggedImages
    >>> task = JigsawPPTask("resnet10", image_size=32, permutations=30)
    >>> batch = task.transform(RaggedImages.from_dense(torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8)),
    ...                        torch.arange(4), epoch=0)
    >>> batch["tiles"].shape, batch["targets"].shape, batch["replaced"].shape
    (torch.Size([4, 9, 3, 9, 9]), torch.Size([4]), torch.Size([4, 9]))
    >>> bool((batch["replaced"].sum(1) <= 2).all()), task(batch)["loss"].item() > 0
    (True, True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import JigsawTiles, hamming_permutations
from .._validation import check_int, check_number
from .jigsaw import JigsawTask


class JigsawPPTask(JigsawTask):
    """Options: ``permutations`` (count or (P, grid²) tensor, 701), ``min_distance`` (3: of the counted set),
    ``replace_tiles`` (the most tiles replaced per puzzle, 2), ``grayscale_puzzle`` (0.7), ``grayscale`` (per
    tile, 0), ``occlusion_weight`` (0: permutation loss only); the jigsaw task's others (``grid``, ``cell``,
    ``tile``, ``channel_shift``, ``tile_dim``, ``hidden``) as there."""

    name = "jigsaw_pp"

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, permutations=701,
                 min_distance: int = 3, replace_tiles: int = 2, grayscale_puzzle: float = 0.7, grayscale: float = 0.0,
                 occlusion_weight: float = 0.0, **options):
        grid = check_int(options.get("grid", 3), "grid", 2)
        if not isinstance(permutations, torch.Tensor):
            permutations = hamming_permutations(check_int(permutations, "permutations", 1), grid, "min_distance",
                                                min_distance=check_int(min_distance, "min_distance", 2))
        self.replace_tiles = check_int(replace_tiles, "replace_tiles", 0)
        if self.replace_tiles > grid * grid:
            raise ValueError(f"replace_tiles must be <= grid² = {grid * grid}, got {replace_tiles}")
        self.grayscale_puzzle = check_number(grayscale_puzzle, "grayscale_puzzle", 0.0, 1.0, what="a probability")
        self.occlusion_weight = check_number(occlusion_weight, "occlusion_weight", 0.0)
        super().__init__(backbone, image_size, seed, permutations=permutations, grayscale=grayscale, **options)
        self.occlusion = nn.Linear(self.trunk.out_dim, grid * grid) if self.occlusion_weight > 0 else None

    def puzzle_options(self) -> dict:
        return {"replace_tiles": self.replace_tiles, "grayscale_puzzle": self.grayscale_puzzle}

    def inputs(self, puzzles: JigsawTiles) -> dict:
        shown = self.permutations.to(puzzles.labels.device)[puzzles.labels]  # (B, T): the cell at each position
        return {**super().inputs(puzzles), "replaced": puzzles.replaced.gather(1, shown)}

    def forward(self, batch):
        features = self.trunk(self.backbone, batch["tiles"])
        out = self.permutation_loss(features, batch["targets"])
        if self.occlusion is not None:
            logits = self.occlusion(features).float()
            replaced = batch["replaced"]
            out["loss"] = out["loss"] + self.occlusion_weight * F.binary_cross_entropy_with_logits(
                logits, replaced.float())
            out["occlusion_accuracy"] = ((logits.detach() > 0) == replaced).float().mean()
        return out
