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

import argparse
import os
import sys
from pathlib import Path

os.environ["FASTSSL_CHECK_FINITE"] = "0"
os.environ.setdefault("KINETO_LOG_LEVEL", "5")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import common  # noqa: E402
from fastssl.backends import unavailable_reason  # noqa: E402
from fastssl.ops.counting import counting_tiles  # noqa: E402
from fastssl.ops.inpainting import inpainting_masks  # noqa: E402
from fastssl.ops.relative_position import relative_position_pairs  # noqa: E402
from fastssl.ops.rotations import rotations  # noqa: E402
from fastssl.reference import counting as ref_counting  # noqa: E402

NAME = "pretext"
FASTSSL_BACKENDS = ("cpp", "triton")
BASELINES = ("reference", "per-image loop")
DEFAULTS = {"cpu": {"batch": 64, "size": 224, "copy_mib": 256, "budget_s": 3.0},
            "cuda": {"batch": 256, "size": 224, "copy_mib": 1024, "budget_s": 2.0}}
QUICK = {"batch": 4, "size": 96, "copy_mib": 32, "budget_s": 0.2}
PAIRS = dict(patch=64, gap=8, jitter=4, colour_drop=0.5)
QUICK_PAIRS = dict(patch=24, gap=4, jitter=2, colour_drop=0.5)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_arguments(parser, "64 on CPU, 256 on CUDA",
                                "a few seconds: 4 x 3 x 96 x 96, short budget")
    return parser.parse_args(argv)


def fastssl_providers(call) -> list[common.Provider]:
    """``call(backend)`` for each fastssl backend that can run on the case's device."""
    return [common.Provider(f"fastssl {b}", make=lambda b=b: (lambda: call(b)), skip=unavailable_reason(b, DEVICE))
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
    return case, providers + fastssl_providers(lambda b: rotations(x, backend=b)), lambda: out


def pairs_case(x, pairs):
    ref = relative_position_pairs(x, **pairs, backend="reference")
    P = pairs["patch"]
    case = common.Case("relative_position_pairs uint8", x.shape[0],
                       2 * nbytes(ref.patches) + nbytes(ref.labels),  # the patches read + written, labels written
                       f"fastssl.ops.relative_position_pairs {tuple(x.shape)}, patch {P}, gap {pairs['gap']}, "
                       f"jitter {pairs['jitter']}, colour drop p={pairs['colour_drop']} -> {tuple(ref.patches.shape)}")
    providers = [
        common.Provider("reference", make=lambda: (lambda: relative_position_pairs(x, **pairs, backend="reference"))),
        common.Provider("per-image loop", make=lambda: (lambda: loop_pairs(x, ref)),
                        note="slicing + stack per image, no colour drop, parameters precomputed (mmselfsup-style)"),
    ]
    no_drop = dict(pairs, colour_drop=0.0)
    providers += fastssl_providers(lambda b: relative_position_pairs(x, **pairs, backend=b))
    providers += [common.Provider(f"fastssl {b}, no colour drop", skip=unavailable_reason(b, DEVICE),
                                  make=lambda b=b: (lambda: relative_position_pairs(x, **no_drop, backend=b)),
                                  note="what the per-image loop row does, plus drawing the parameters")
                  for b in FASTSSL_BACKENDS]
    return case, providers, lambda: ref.patches


def inpainting_case(x, mode):
    ref = inpainting_masks(x, mode, fill=117, backend="reference")
    case = common.Case(f"inpainting_masks {mode} uint8", x.shape[0], nbytes(x, ref.masked, ref.mask),
                       f"fastssl.ops.inpainting_masks {tuple(x.shape)}, mode {mode!r}, fill 117 -> masked + bool mask")
    providers = [
        common.Provider("reference", make=lambda: (lambda: inpainting_masks(x, mode, fill=117, backend="reference"))),
        common.Provider("per-image loop", make=lambda: (lambda: loop_inpaint(x, ref.boxes, 117)),
                        note="clone + slice fill per image (context-encoder data loaders)"),
    ]
    return (case, providers + fastssl_providers(lambda b: inpainting_masks(x, mode, fill=117, backend=b)),
            lambda: ref.masked)


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
    return case, providers + fastssl_providers(lambda b: counting_tiles(x, size=size, backend=b)), lambda: ref


# ----------------------------------------------------------------------------------------------- main

DEVICE = torch.device("cpu")

NOTES = [
    "GB/s counts the bytes strictly needed: the input read once and every output written once "
    "(relative position: the two patches read and written, not the whole image).",
    "% of copy = GB/s / the copy bandwidth measured at the start of this run on the same device.",
    "× vs X = time of X / time of the row (above 1: faster). Times are medians after warmup.",
    "per-image loop: the peers' per-sample transforms (VISSL, mmselfsup) applied image by image in Python.",
    "Random parameters (positions, boxes) are drawn with fastssl.random inside every fastssl row.",
]


def main(argv=None) -> int:
    global DEVICE
    args = parse_args(argv)
    DEVICE = common.resolve_device(args.device)
    config = dict(DEFAULTS[args.device], **(QUICK if args.quick else {}))
    config.update({k: v for k, v in (("batch", args.batch), ("budget_s", args.budget)) if v is not None})
    env, bandwidth = common.start(NAME, DEVICE, config["copy_mib"], f"batch {config['batch']}, size {config['size']}")
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (config["batch"], 3, config["size"], config["size"]), dtype=torch.uint8,
                      generator=generator).to(DEVICE)
    pairs = QUICK_PAIRS if args.quick else PAIRS
    builders = [lambda: rotations_case(x), lambda: pairs_case(x, pairs), lambda: inpainting_case(x, "center"),
                lambda: inpainting_case(x, "random_block"), lambda: counting_case(x)]
    cases, rows, skipped = [], [], []
    for build in builders:
        case, providers, expected = build()
        print(case.name, flush=True)
        case_rows, case_skipped = common.run_case(case, providers, DEVICE, bandwidth["gb_per_s"], expected=expected,
                                                  budget_s=config["budget_s"], memory=False)
        cases.append(case)
        rows += case_rows
        skipped += case_skipped
    common.add_speedups(rows, BASELINES)
    env["load_average_end"] = common.load_average()
    paths = common.write_results(NAME, DEVICE, env, bandwidth, cases, rows, skipped, BASELINES, NOTES, args.out,
                                 config, tag="quick" if args.quick else "")
    print("wrote " + " and ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
