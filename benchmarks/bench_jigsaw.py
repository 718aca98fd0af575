"""Benchmark of jigsaw tiles: fastssl's fused gather against the reference and a per-image crop loop.

Case: Noroozi & Favaro's geometry, B x 3 x 225 x 225 images -> 3 x 3 cells of 75 -> tiles of 64,
shuffled by one of 100 maximal-Hamming permutations, each tile normalised by its own per-channel mean
and std; uint8 and float32 input; and Jigsaw++ on the uint8 images (0-2 tiles per puzzle read from
another image of the batch). Every provider cuts the same tiles (same offsets, labels, replaced cells
and donors).

Providers: ``reference`` (fastssl.reference.jigsaw, pure PyTorch, float64 for uint8), ``per-image loop``
(what peers do: per image, per tile, slice + normalise in Python), fastssl's ``cpp`` and ``triton``
through ``fastssl.ops.jigsaw_tiles`` (drawing and permuting the parameters included).

Examples:
  python benchmarks/bench_jigsaw.py --device cpu       # 64 images
  python benchmarks/bench_jigsaw.py --device cuda      # 256 images
  python benchmarks/bench_jigsaw.py --quick            # a few seconds (smoke run)
Results: benchmarks/results/jigsaw_<device>.json and .md (jigsaw_<device>_quick.* under --quick; ``--out`` elsewhere).
"""

from __future__ import annotations

import sys

import torch

import common
import fastssl.ops.jigsaw as jigsaw
from fastssl.backends import unavailable_reason
from fastssl.reference import jigsaw as reference

FASTSSL_BACKENDS = ("cpp", "triton")
GEOMETRY = dict(grid=3, cell=75, tile=64)


# ------------------------------------------------------------------------------------------ providers


def crop_loop(images: torch.Tensor, cells: torch.Tensor, origins: torch.Tensor, tile: int,
              sources: torch.Tensor) -> torch.Tensor:
    """The peers' way: per image, per puzzle position, slice the cell's tile (from image sources[b, cell]) and
    normalise it in Python."""
    out = torch.empty(images.shape[0], cells.shape[1], 3, tile, tile, device=images.device)
    for b in range(images.shape[0]):
        for t, c in enumerate(cells[b].tolist()):
            y, x = origins[b, c, 0].tolist()
            crop = images[int(sources[b, c]), :, y:y + tile, x:x + tile].float()
            if images.dtype == torch.uint8:
                crop = crop / 255
            mean = crop.mean((1, 2), keepdim=True)
            var = crop.var((1, 2), unbiased=False, keepdim=True)
            out[b, t] = (crop - mean) / torch.sqrt(var + reference.EPS)
    return out


def workload(images: torch.Tensor, perms: torch.Tensor, config: dict, replace_tiles: int = 0) -> common.Workload:
    """jigsaw_tiles of ``images`` (uint8 or float32) with fixed labels and offsets; with ``replace_tiles``, Jigsaw++
    with the replaced cells and donors drawn once (ids 0..B-1) and then given to every provider."""
    B, g, cell, tile = images.shape[0], config["grid"], config["cell"], config["tile"]
    T = g * g
    generator = torch.Generator().manual_seed(1)
    labels = torch.randint(0, len(perms), (B,), generator=generator).to(images.device)
    offsets = torch.randint(0, cell - tile + 1, (B, T, 2), generator=generator).to(images.device)
    geometry = {k: config[k] for k in ("grid", "cell", "tile")}
    kind = "uint8" if images.dtype == torch.uint8 else "float32"
    drawn = jigsaw.jigsaw_tiles(images, labels, perms, offsets=offsets, replace_tiles=replace_tiles or None,
                                backend="reference", **geometry)
    replaced, donors = drawn.replaced, drawn.donors
    pixels = B * T * 3 * tile * tile
    name = f"jigsaw_tiles {kind}" + (f" replace_tiles {replace_tiles}" if replace_tiles else "")
    case = common.Case(name, B, pixels * (images.element_size() + 4),
                       f"fastssl.ops.jigsaw_tiles, {kind} {tuple(images.shape)}, grid {g}, cell {cell}, tile {tile}, "
                       f"{len(perms)} permutations, normalize=True"
                       + (f", 0..{replace_tiles} tiles per puzzle from a donor image" if replace_tiles else "")
                       + "; bytes = the tiles' pixels read once + float32 tiles written once")
    kwargs = dict(offsets=offsets, **geometry)
    if replace_tiles:
        kwargs.update(replace_tiles=replaced.sum(1), donors=donors)
    origins = reference.origins(offsets, None, images.shape[2], images.shape[3], g, cell, tile)

    def expected():
        return reference.jigsaw_tiles(images, labels, perms, offsets, **geometry, replaced=replaced, donors=donors)

    cells = perms.to(images.device)[labels]
    sources = reference.sources(replaced, donors)
    providers = [common.Provider("reference", make=lambda: expected,
                                 note="float64" if kind == "uint8" else "float32"),
                 common.Provider("per-image loop", make=lambda: (lambda: crop_loop(images, cells, origins, tile,
                                                                                   sources)),
                                 note="Python loop over images x tiles, torch ops per tile")]
    for backend in FASTSSL_BACKENDS:
        providers.append(common.Provider(
            f"fastssl {backend}", skip=unavailable_reason(backend, images.device),
            make=lambda b=backend: (lambda: jigsaw.jigsaw_tiles(images, labels, perms, **kwargs, backend=b).tiles),
            note="includes parameter drawing, checks and permuting (Python)"))
    return common.Workload(case, providers, expected)


def cases(run: common.Run):
    """The same random images as uint8, then as float32 in [0, 1]; then Jigsaw++ (701 permutations at distance 3,
    0-2 tiles replaced) on the uint8 images."""
    size = run.config["grid"] * run.config["cell"]
    perms = jigsaw.hamming_permutations(100, run.config["grid"])
    generator = torch.Generator().manual_seed(0)
    shape = (run.config["batch"], 3, size, size)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator).to(run.device)
    for x in (images, images.float().div_(255)):
        yield workload(x, perms, run.config)
    plus = jigsaw.hamming_permutations(701, run.config["grid"], "min_distance", min_distance=3)
    yield workload(images, plus, run.config, replace_tiles=2)


NOTES = [
    "GB/s counts the bytes strictly needed: the tiles' pixels read once (not the whole image) and the float32 "
    "tiles written once.",
    "max abs err: against the reference output (normalised units, O(1)).",
    "fastssl rows run with FASTSSL_CHECK_FINITE=0.",
]


BENCHMARK = common.Benchmark(
    name="jigsaw", doc=__doc__, cases=cases, baselines=("reference", "per-image loop"), notes=NOTES,
    defaults={"cpu": {"batch": 64, "copy_mib": 256, "budget_s": 3.0, **GEOMETRY},
              "cuda": {"batch": 256, "copy_mib": 1024, "budget_s": 2.0, **GEOMETRY}},
    quick={"batch": 4, "copy_mib": 32, "budget_s": 0.2},
    environ={"FASTSSL_CHECK_FINITE": "0"},  # the float case times the kernels, not the NaN check
    headline="batch {batch}, grid {grid}, cell {cell}, tile {tile}")


if __name__ == "__main__":
    sys.exit(common.main(BENCHMARK))
