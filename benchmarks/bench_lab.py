"""Benchmark of sRGB <-> CIE Lab and of colorization targets: fastssl's backends against the reference and kornia.

Cases (channels-first, B x 3 x S x S):
  rgb_to_lab uint8 -> float32, rgb_to_lab float32 -> float32, lab_to_rgb float32 -> float32,
  colorization_targets uint8 -> (L input, ab, k nearest bins + weights).

Providers: ``reference`` (fastssl.reference, pure PyTorch), ``torch.compile(reference)``, ``kornia``
(the peer library; colorization has none), and fastssl's ``cpp`` / ``triton`` / ``cuda`` backends
through ``fastssl.ops``. fastssl's float paths are timed with ``FASTSSL_CHECK_FINITE=0``; one extra row
per float case times the default backend with the check on, to show its cost.

Examples:
  python benchmarks/bench_lab.py --device cpu            # 32 x 3 x 224 x 224
  python benchmarks/bench_lab.py --device cuda           # 256 x 3 x 224 x 224
  python benchmarks/bench_lab.py --quick                 # a few seconds (smoke run)
Results: benchmarks/results/lab_<device>.json and .md (lab_<device>_quick.* under --quick; ``--out`` elsewhere).
"""

from __future__ import annotations

import os
import sys

import torch

import common
import fastssl
from fastssl.backends import unavailable_reason
from fastssl.reference import colorization as ref_colorization
from fastssl.reference import lab as ref_lab

FASTSSL_BACKENDS = ("cpp", "triton", "cuda")


# ------------------------------------------------------------------------------------------ providers


def with_finite_check(fn):
    """``fn`` run with FASTSSL_CHECK_FINITE=1 (fastssl reads the variable on every call)."""

    def call():
        os.environ["FASTSSL_CHECK_FINITE"] = "1"
        try:
            return fn()
        finally:
            os.environ["FASTSSL_CHECK_FINITE"] = "0"

    return call


def fastssl_providers(op, x: torch.Tensor, float_input: bool) -> list[common.Provider]:
    """fastssl's cpp / triton / cuda backends on ``op(x, backend=...)``, plus the default one with the finite check."""
    providers = []
    for backend in FASTSSL_BACKENDS:
        reason = unavailable_reason(backend, x.device)
        providers.append(common.Provider(f"fastssl {backend}", make=lambda b=backend: (lambda: op(x, backend=b)),
                                         skip=reason, note="finite check off" if float_input else ""))
    runnable = [b for b in FASTSSL_BACKENDS if unavailable_reason(b, x.device) is None]
    if float_input and runnable:
        backend = runnable[0] if x.device.type == "cpu" else ("cuda" if "cuda" in runnable else runnable[0])
        providers.append(common.Provider(
            f"fastssl {backend} + finite check", make=lambda: with_finite_check(lambda: op(x, backend=backend)),
            note="FASTSSL_CHECK_FINITE=1: one extra read (and a sync on GPU)"))
    return providers


def compiled_provider(fn, x: torch.Tensor, config: dict) -> common.Provider:
    """torch.compile of ``fn`` (a reference function of one tensor), skipped when compiling fails or is too slow."""
    name = "torch.compile(reference)"
    if config["quick"]:
        return common.Provider(name, skip="not run under --quick (compilation alone takes longer than the smoke run)")
    limit = config["compile_timeout_s"]

    def make():
        compiled = torch.compile(fn, dynamic=False)
        with common.time_limit(limit, "torch.compile (first call)"):
            compiled(x)
        return lambda: compiled(x)

    return common.Provider(name, make=make, note="first call s = compilation (less with a warm inductor cache)")


def kornia_provider(fn_name: str, x: torch.Tensor, from_uint8: bool = False) -> common.Provider:
    """kornia.color.<fn_name> on ``x``; kornia takes float RGB in [0, 1], so uint8 input is converted first."""
    try:
        import kornia.color
    except Exception as error:  # noqa: BLE001
        return common.Provider("kornia", skip=f"kornia is not importable ({type(error).__name__}: {error})")
    fn = getattr(kornia.color, fn_name)
    if from_uint8:
        return common.Provider("kornia", make=lambda: (lambda: fn(x.float().div_(255))),
                               note="includes uint8 -> float / 255 (kornia takes float)")
    return common.Provider("kornia", make=lambda: (lambda: fn(x)))


# ---------------------------------------------------------------------------------------------- cases


def image_bytes(x: torch.Tensor) -> int:
    return x.numel() * x.element_size()


def rgb_to_lab_case(x: torch.Tensor, config: dict) -> common.Workload:
    """rgb_to_lab of ``x`` (uint8 or float32) to float32 Lab."""
    uint8 = x.dtype == torch.uint8
    kind = "uint8" if uint8 else "float32"
    case = common.Case(f"rgb_to_lab {kind} -> float32", x.shape[0], image_bytes(x) + x.numel() * 4,
                       f"fastssl.ops.rgb_to_lab, {kind} (B, 3, H, W) = {tuple(x.shape)} -> float32 Lab")

    def reference():  # the accuracy oracle: float64 for uint8 input
        return ref_lab.rgb_to_lab(x).float()

    def reference_float32(t):  # what is timed: the reference at the precision the kernels use
        return ref_lab.rgb_to_lab(t.float() / 255 if t.dtype == torch.uint8 else t)

    providers = [common.Provider("reference", make=lambda: (lambda: reference_float32(x)),
                                 note="float32 on x / 255 (errors are measured against float64)" if uint8 else ""),
                 compiled_provider(reference_float32, x, config),
                 kornia_provider("rgb_to_lab", x, from_uint8=uint8)]
    providers += fastssl_providers(fastssl.ops.rgb_to_lab, x, float_input=not uint8)
    return common.Workload(case, providers, reference)


def lab_to_rgb_case(lab: torch.Tensor, config: dict) -> common.Workload:
    """lab_to_rgb of float32 Lab (clip=True) to float32 RGB."""
    case = common.Case("lab_to_rgb float32 -> float32", lab.shape[0], 2 * image_bytes(lab),
                       f"fastssl.ops.lab_to_rgb (clip=True), float32 (B, 3, H, W) = {tuple(lab.shape)} -> float32 RGB")

    def reference():
        return ref_lab.lab_to_rgb(lab)

    providers = [common.Provider("reference", make=lambda: reference),
                 compiled_provider(lambda t: ref_lab.lab_to_rgb(t), lab, config),
                 kornia_provider("lab_to_rgb", lab)]
    providers += fastssl_providers(fastssl.ops.lab_to_rgb, lab, float_input=True)
    return common.Workload(case, providers, reference)


def colorization_bytes(images: torch.Tensor, factor: int, k: int) -> int:
    """uint8 input read once + L input (float32), ab (2 float32), k indices (int64) + k weights + rebalance (float32)."""
    B, _, H, W = images.shape
    cells = B * (-(-H // factor)) * (-(-W // factor))
    return image_bytes(images) + B * H * W * 4 + cells * (2 * 4 + k * 8 + k * 4 + 4)


def colorization_case(images: torch.Tensor) -> common.Workload:
    """colorization_targets of uint8 images with the paper's defaults (factor 4, k 5, sigma 5, 261 bins)."""
    factor, k = ref_colorization.FACTOR, ref_colorization.NUM_NEAREST
    bins = ref_colorization.ab_bins(device=images.device)
    case = common.Case("colorization_targets uint8", images.shape[0], colorization_bytes(images, factor, k),
                       f"fastssl.ops.colorization_targets, uint8 {tuple(images.shape)}, factor {factor}, k {k}, "
                       f"{bins.shape[0]} bins (no peer library implements it); max abs err is on the L input")

    def reference():
        return ref_colorization.colorization_targets(images, bins)

    providers = [common.Provider("reference", make=lambda: reference, note="float64, k-nearest by full distance")]
    for backend in FASTSSL_BACKENDS:
        providers.append(common.Provider(
            f"fastssl {backend}", skip=unavailable_reason(backend, images.device),
            make=lambda b=backend: (lambda: fastssl.ops.colorization_targets(images, backend=b))))
    return common.Workload(case, providers, reference)


def cases(run: common.Run) -> list[common.Workload]:
    """The four cases on random images of the configured size."""
    device, config = run.device, run.config
    generator = torch.Generator(device="cpu").manual_seed(0)
    shape = (config["batch"], 3, config["size"], config["size"])
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator).to(device)
    rgb = torch.rand(shape, generator=generator).to(device)
    lab = ref_lab.rgb_to_lab(rgb).float()  # Lab of real colours: the values lab_to_rgb sees in practice
    return [rgb_to_lab_case(images, config), rgb_to_lab_case(rgb, config), lab_to_rgb_case(lab, config),
            colorization_case(images)]


NOTES = [
    "GB/s counts the bytes strictly needed: the input read once and every output written once.",
    "fastssl rows run with FASTSSL_CHECK_FINITE=0 (no NaN/Inf check of float inputs); the "
    "'+ finite check' row runs the default backend with the check on.",
    "max abs err: against the reference output (Lab units for rgb_to_lab, [0, 1] for lab_to_rgb).",
    "first call s: the first call (compilation for torch.compile, extension/kernel loading for fastssl).",
]


BENCHMARK = common.Benchmark(
    name="lab", doc=__doc__, cases=cases, baselines=("reference", "kornia"), notes=NOTES,
    defaults={"cpu": {"batch": 32, "size": 224, "copy_mib": 256, "budget_s": 3.0, "compile_timeout_s": 180.0},
              "cuda": {"batch": 256, "size": 224, "copy_mib": 1024, "budget_s": 2.0, "compile_timeout_s": 300.0}},
    quick={"batch": 4, "size": 64, "copy_mib": 32, "budget_s": 0.2},
    flags=(common.flag("--size", type=int, help="image side in pixels"),
           common.flag("--compile-timeout", dest="compile_timeout_s", type=float,
                       help="seconds allowed for torch.compile's first call (not run under --quick)")),
    environ={"FASTSSL_CHECK_FINITE": "0"},  # read per call by fastssl; the "+ finite check" rows turn it on
    headline="batch {batch}, size {size}")


if __name__ == "__main__":
    sys.exit(common.main(BENCHMARK))
