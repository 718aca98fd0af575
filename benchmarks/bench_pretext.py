"""Benchmark of the pretext-task ops: rotations, relative-position pairs, inpainting holes, counting tiles.

Per op: fastssl's backends (cpp / triton through ``fastssl.ops``), the pure-PyTorch reference, and the
peers' way — a Python loop over the images of the batch, as the per-sample transforms of VISSL and
mmselfsup do (rot90 per image, slicing per image, in-place fill per image, interpolate per tile).

Cases (uint8, B x 3 x 224 x 224; B = 64 on CPU, 256 on CUDA):
  rotations (4 rotations, image order), relative_position_pairs (patch 64, gap 8, jitter 4, colour drop 0.5),
  inpainting_masks center and random_block (4 blocks), counting_tiles (S = 112, float32 out).

Examples:
  python benchmarks/bench_pretext.py --device cpu
  python benchmarks/bench_pretext.py --device cuda
  python benchmarks/bench_pretext.py --quick
Results: benchmarks/results/pretext_<device>.json and .md (``--out`` elsewhere).
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

import common
from fastssl.backends import unavailable_reason
from fastssl.ops.counting import counting_tiles
from fastssl.ops.inpainting import inpainting_masks
from fastssl.ops.relative_position import relative_position_pairs
from fastssl.ops.rotations import rotations
from fastssl.reference import counting as ref_counting

FASTSSL_BACKENDS = ("cpp", "triton")
PAIRS = dict(patch=64, gap=8, jitter=4, color_drop=0.5)  # relative_position_pairs' geometry


def fastssl_providers(call, device: torch.device) -> list[common.Provider]:
    """``call(backend)`` for each fastssl backend (skipped where it cannot run on ``device``)."""
    return [common.Provider(f"fastssl {b}", make=lambda b=b: (lambda: call(b)), skip=unavailable_reason(b, device))
            for b in FASTSSL_BACKENDS]


# ------------------------------------------------------------------------------------------ peers' way


def loop_rotations(x):
    return torch.stack([torch.rot90(img, k, dims=(-2, -1)) for img in x for k in range(4)])


def loop_pairs(x, out):
    """Per image: slice the centre and the neighbour patch (parameters from fastssl's draw) and stack."""
    P = out.patches.shape[-1]
    pairs = []
    for img, ((cy, cx), (ny, nx)) in zip(x, out.corners.tolist()):
        pairs.append(torch.stack((img[:, cy:cy + P, cx:cx + P], img[:, ny:ny + P, nx:nx + P])))
    return torch.stack(pairs)


def loop_inpaint(x, boxes, fill):
    masked, masks = [], []
    for img, image_boxes in zip(x, boxes.tolist()):
        img = img.clone()
        mask = torch.zeros(1, *img.shape[-2:], dtype=torch.bool)
        for top, left, h, w in image_boxes:
            img[:, top:top + h, left:left + w] = fill
            mask[:, top:top + h, left:left + w] = True
        masked.append(img)
        masks.append(mask)
    return torch.stack(masked), torch.stack(masks)


def loop_counting(x, size):
    out = []
    for img in x.float():
        views = [img[:, t:t + h, l:l + w] for t, l, h, w in ref_counting.tile_boxes(*img.shape[-2:])]
        out.append(torch.stack([F.interpolate(v[None], size=(size, size), mode="area")[0] for v in views]))
    return torch.stack(out)


# ---------------------------------------------------------------------------------------------- cases


def nbytes(*tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def rotations_case(x):
    out, labels = rotations(x, backend="reference")
    case = common.Case("rotations uint8", x.shape[0], nbytes(x, out, labels),
                       f"fastssl.ops.rotations {tuple(x.shape)} -> {tuple(out.shape)}")
    providers = [common.Provider("reference", make=lambda: (lambda: rotations(x, backend="reference"))),
                 common.Provider("per-image loop", make=lambda: (lambda: loop_rotations(x)),
                                 note="rot90 per image and k, then stack (RotNet/VISSL per-sample transform)")]
    return common.Workload(case, providers + fastssl_providers(lambda b: rotations(x, backend=b), x.device),
                           lambda: out)


def pairs_case(x, pairs):
    ref = relative_position_pairs(x, **pairs, backend="reference")
    P = pairs["patch"]
    case = common.Case("relative_position_pairs uint8", x.shape[0],
                       2 * nbytes(ref.patches) + nbytes(ref.labels),  # the patches read + written, labels written
                       f"fastssl.ops.relative_position_pairs {tuple(x.shape)}, patch {P}, gap {pairs['gap']}, "
                       f"jitter {pairs['jitter']}, color drop p={pairs['color_drop']} -> {tuple(ref.patches.shape)}")
    providers = [
        common.Provider("reference", make=lambda: (lambda: relative_position_pairs(x, **pairs, backend="reference"))),
        common.Provider("per-image loop", make=lambda: (lambda: loop_pairs(x, ref)),
                        note="slicing + stack per image, no colour drop, parameters precomputed (mmselfsup-style)"),
    ]
    no_drop = dict(pairs, color_drop=0.0)
    providers += fastssl_providers(lambda b: relative_position_pairs(x, **pairs, backend=b), x.device)
    providers += [common.Provider(f"fastssl {b}, no colour drop", skip=unavailable_reason(b, x.device),
                                  make=lambda b=b: (lambda: relative_position_pairs(x, **no_drop, backend=b)),
                                  note="what the per-image loop row does, plus drawing the parameters")
                  for b in FASTSSL_BACKENDS]
    return common.Workload(case, providers, lambda: ref.patches)


def inpainting_case(x, mode):
    ref = inpainting_masks(x, mode, fill=117, backend="reference")
    case = common.Case(f"inpainting_masks {mode} uint8", x.shape[0], nbytes(x, ref.masked, ref.mask),
                       f"fastssl.ops.inpainting_masks {tuple(x.shape)}, mode {mode!r}, fill 117 -> masked + bool mask")
    providers = [
        common.Provider("reference", make=lambda: (lambda: inpainting_masks(x, mode, fill=117, backend="reference"))),
        common.Provider("per-image loop", make=lambda: (lambda: loop_inpaint(x, ref.boxes, 117)),
                        note="clone + slice fill per image (context-encoder data loaders)"),
    ]
    return common.Workload(case, providers + fastssl_providers(lambda b: inpainting_masks(x, mode, fill=117, backend=b),
                                                               x.device), lambda: ref.masked)


def counting_case(x):
    size = x.shape[-1] // 2
    ref = counting_tiles(x, size=size, backend="reference")
    case = common.Case("counting_tiles uint8 -> float32", x.shape[0], nbytes(x, ref),
                       f"fastssl.ops.counting_tiles {tuple(x.shape)}, size {size} -> {tuple(ref.shape)} float32")
    providers = [
        common.Provider("reference", make=lambda: (lambda: counting_tiles(x, size=size, backend="reference")),
                        note="float64 adaptive_avg_pool2d per view"),
        common.Provider("per-image loop", make=lambda: (lambda: loop_counting(x, size)),
                        note="F.interpolate(mode='area') per image and view, float32"),
    ]
    return common.Workload(case, providers + fastssl_providers(lambda b: counting_tiles(x, size=size, backend=b),
                                                               x.device), lambda: ref)


def cases(run: common.Run):
    """The five cases on the same random uint8 images."""
    config = run.config
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (config["batch"], 3, config["size"], config["size"]), dtype=torch.uint8,
                      generator=generator).to(run.device)
    yield rotations_case(x)
    yield pairs_case(x, config["pairs"])
    yield inpainting_case(x, "center")
    yield inpainting_case(x, "random_block")
    yield counting_case(x)


NOTES = [
    "GB/s counts the bytes strictly needed: the input read once and every output written once "
    "(relative position: the two patches read and written, not the whole image).",
    "per-image loop: the peers' per-sample transforms (VISSL, mmselfsup) applied image by image in Python.",
    "Random parameters (positions, boxes) are drawn with fastssl.random inside every fastssl row.",
]


BENCHMARK = common.Benchmark(
    name="pretext", doc=__doc__, cases=cases, baselines=("reference", "per-image loop"), notes=NOTES,
    defaults={"cpu": {"batch": 64, "size": 224, "pairs": PAIRS, "copy_mib": 256, "budget_s": 3.0, "memory": False},
              "cuda": {"batch": 256, "size": 224, "pairs": PAIRS, "copy_mib": 1024, "budget_s": 2.0, "memory": False}},
    quick={"batch": 4, "size": 96, "pairs": dict(patch=24, gap=4, jitter=2, color_drop=0.5), "copy_mib": 32,
           "budget_s": 0.2},
    environ={"FASTSSL_CHECK_FINITE": "0"},
    headline="batch {batch}, size {size}")


if __name__ == "__main__":
    sys.exit(common.main(BENCHMARK))
