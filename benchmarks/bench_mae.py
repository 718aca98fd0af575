"""Benchmark of MAE masking with the patch gather: fastssl's backends against MAE's published routine.

Case: float32 images (B, 3, S, S), patch 16, mask ratio 0.75, norm-pix targets; the noise is drawn
once and given to every provider, so all of them compute the same masks.

Providers:
  ``MAE published``: the transcription in fastssl.reference.mae (``published_patchify`` +
  ``published_random_masking`` on the patchified tokens + ``published_norm_pix_target``, which, as in
  MAE's forward_loss, normalises every patch); ``reference`` (fastssl.reference.mae.mae_masking:
  targets of the masked patches only); fastssl's ``cpp`` / ``triton`` through ``fastssl.ops.mae``;
  and the default backend with the noise drawn from fastssl.random by sample ids (``+ keyed noise``).

Examples:
  python benchmarks/bench_mae.py --device cpu            # 64 x 3 x 224 x 224
  python benchmarks/bench_mae.py --device cuda           # 256 x 3 x 224 x 224
  python benchmarks/bench_mae.py --quick                 # a few seconds (smoke run)
Results: benchmarks/results/mae_<device>.json and .md (mae_<device>_quick.* under --quick; ``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import common  # noqa: E402
from fastssl.ops import mae  # noqa: E402
from fastssl.reference import mae as ref_mae  # noqa: E402

NAME = "mae"
FASTSSL_BACKENDS = ("cpp", "triton")
BASELINES = ("MAE published", "reference")
DEFAULTS = {"cpu": {"batch": 64, "size": 224, "patch": 16, "mask_ratio": 0.75, "copy_mib": 256, "budget_s": 3.0},
            "cuda": {"batch": 256, "size": 224, "patch": 16, "mask_ratio": 0.75, "copy_mib": 1024, "budget_s": 2.0}}
QUICK = {"batch": 4, "size": 64, "copy_mib": 32, "budget_s": 0.2}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_arguments(parser, "64 on CPU, 256 on CUDA",
                                "a few seconds: 4 x 3 x 64 x 64, short budget, no memory")
    parser.add_argument("--size", type=int, help="image side in pixels (default 224)")
    parser.add_argument("--patch", type=int, help="patch size (default 16)")
    parser.add_argument("--mask-ratio", type=float, help="fraction of patches removed (default 0.75)")
    return parser.parse_args(argv)


def settings(args: argparse.Namespace) -> dict:
    """The run's parameters: device defaults, then --quick, then explicit flags."""
    config = dict(DEFAULTS[args.device])
    if args.quick:
        config.update(QUICK)
    for key, value in (("batch", args.batch), ("size", args.size), ("patch", args.patch),
                       ("mask_ratio", args.mask_ratio), ("budget_s", args.budget)):
        if value is not None:
            config[key] = value
    config["quick"] = args.quick
    config["memory"] = not (args.quick and args.device == "cpu")
    return config


def bytes_needed(images: torch.Tensor, p: int, len_keep: int) -> int:
    """Images and noise read once; visible patches, targets (float32), mask (float32) and the int64 ids written once."""
    B, _, H, W = images.shape
    L, n = (H // p) * (W // p), 3 * p * p
    read = images.numel() * images.element_size() + B * L * 4
    written = B * L * n * 4 + B * L * 4 + B * (len_keep + L + (L - len_keep)) * 8
    return read + written


def published(images: torch.Tensor, noise: torch.Tensor, p: int, mask_ratio: float):
    """MAE's routine: patchify, random_masking of the patch tokens, norm-pix targets of every patch."""
    x_masked, mask, ids_restore = ref_mae.published_random_masking(ref_mae.published_patchify(images, p), mask_ratio,
                                                                   noise)
    return x_masked, mask, ids_restore, ref_mae.published_norm_pix_target(images, p)


def build_case(device: torch.device, config: dict):
    generator = torch.Generator(device="cpu").manual_seed(0)
    B, S, p, ratio = config["batch"], config["size"], config["patch"], config["mask_ratio"]
    images = torch.rand(B, 3, S, S, generator=generator).to(device)
    L = (S // p) ** 2
    noise = torch.rand(B, L, generator=generator).to(device)
    ids = torch.arange(B, device=device)
    len_keep = ref_mae.keep_count(L, ratio)
    case = common.Case(f"mae_masking float32 p={p} ratio={ratio}", B, bytes_needed(images, p, len_keep),
                       f"(B, 3, H, W) = {tuple(images.shape)}, L = {L}, {len_keep} kept, norm-pix targets")

    def reference():
        return ref_mae.mae_masking(images, noise, p, len_keep, True)

    providers = [common.Provider("MAE published", make=lambda: (lambda: published(images, noise, p, ratio)),
                                 note="targets of all L patches, as MAE's forward_loss"),
                 common.Provider("reference", make=lambda: reference)]
    for backend in FASTSSL_BACKENDS:
        providers.append(common.Provider(
            f"fastssl {backend}", skip=mae.MAE_MASKING.unavailable_reason(backend, device),
            make=lambda b=backend: (lambda: mae.mae_masking(images, p, ratio, noise, backend=b))))
    default = mae.MAE_MASKING.resolve("auto", device)
    providers.append(common.Provider(
        f"fastssl {default} + keyed noise",
        make=lambda: (lambda: mae.mae_masking(images, p, ratio, ids=ids, epoch=1, backend=default)),
        note="noise drawn from fastssl.random by sample id (max abs err: other masks)"))
    return case, providers, reference


NOTES = [
    "GB/s counts the bytes strictly needed: images and noise read once; visible patches, targets of the "
    "masked patches, the mask and the int64 ids written once.",
    "% of copy = GB/s / the copy bandwidth measured at the start of this run on the same device.",
    "× vs X = time of X / time of the row (above 1: faster than X). Times are medians after warmup.",
    "max abs err: of the visible patches, against the reference (0 = bit-identical gather).",
    "MAE published normalises all L patches (it computes the loss on the masked ones); fastssl only the "
    "masked ones, which is all the loss needs.",
]


def main(argv=None) -> int:
    args = parse_args(argv)
    device = common.resolve_device(args.device)
    config = settings(args)
    env, bandwidth = common.start(NAME, device, config["copy_mib"], f"batch {config['batch']}, size {config['size']}")
    case, providers, reference = build_case(device, config)
    print(case.name, flush=True)
    rows, skipped = common.run_case(case, providers, device, bandwidth["gb_per_s"], expected=reference,
                                    budget_s=config["budget_s"], memory=config["memory"])
    common.add_speedups(rows, BASELINES)
    env["load_average_end"] = common.load_average()
    memory_method = next((r.memory_method for r in rows if r.memory_method), "not measured")
    notes = NOTES + [f"peak extra MiB: {memory_method}."]
    paths = common.write_results(NAME, device, env, bandwidth, [case], rows, skipped, BASELINES, notes, args.out,
                                 config, tag="quick" if config["quick"] else "")
    print("wrote " + " and ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
