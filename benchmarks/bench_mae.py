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

import sys

import torch

import common
from fastssl.ops import mae
from fastssl.reference import mae as ref_mae

FASTSSL_BACKENDS = ("cpp", "triton")


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


def cases(run: common.Run):
    """The one case: MAE masking of random float32 images with the same noise for every provider."""
    device, config = run.device, run.config
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
    yield common.Workload(case, providers, reference)


NOTES = [
    "GB/s counts the bytes strictly needed: images and noise read once; visible patches, targets of the "
    "masked patches, the mask and the int64 ids written once.",
    "max abs err: of the visible patches, against the reference (0 = bit-identical gather).",
    "MAE published normalises all L patches (it computes the loss on the masked ones); fastssl only the "
    "masked ones, which is all the loss needs.",
]


BENCHMARK = common.Benchmark(
    name="mae", doc=__doc__, cases=cases, baselines=("MAE published", "reference"), notes=NOTES,
    defaults={"cpu": {"batch": 64, "size": 224, "patch": 16, "mask_ratio": 0.75, "copy_mib": 256, "budget_s": 3.0},
              "cuda": {"batch": 256, "size": 224, "patch": 16, "mask_ratio": 0.75, "copy_mib": 1024, "budget_s": 2.0}},
    quick={"batch": 4, "size": 64, "copy_mib": 32, "budget_s": 0.2},
    flags=(common.flag("--size", type=int, help="image side in pixels"),
           common.flag("--patch", type=int, help="patch size"),
           common.flag("--mask-ratio", type=float, help="fraction of patches removed")),
    headline="batch {batch}, size {size}")


if __name__ == "__main__":
    sys.exit(common.main(BENCHMARK))
