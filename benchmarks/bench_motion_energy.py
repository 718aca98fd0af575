"""Benchmark of the clip motion signals: motion_energy and frame_difference_sum against the reference.

Cases (B x T x 3 x S x S clips): motion_energy of uint8 clips with pool 1 and pool 4 (-> (B, T - 1)
float32), frame_difference_sum of uint8 clips (-> float32) and of float16 clips (-> float16).

Providers: ``reference`` (fastssl.reference.motion_energy in float32 on uint8 / 255: pooled frames and
differences as whole tensors, the way a PyTorch loader computes them), and fastssl's ``cpp`` / ``triton``
through ``fastssl.ops`` (one read of each frame, nothing written but the outputs).

Examples:
  python benchmarks/bench_motion_energy.py --device cpu     # 8 clips of 16 frames of 112 x 112
  python benchmarks/bench_motion_energy.py --device cuda    # 64 clips of 16 frames of 112 x 112
  python benchmarks/bench_motion_energy.py --quick          # a few seconds (smoke run)
Results: benchmarks/results/motion_energy_<device>.json and .md (motion_energy_<device>_quick.* under --quick;
``--out`` elsewhere).
"""

from __future__ import annotations

import sys

import torch

import common
from fastssl.backends import unavailable_reason
from fastssl.ops.motion_energy import frame_difference_sum, motion_energy
from fastssl.reference import motion_energy as reference

FASTSSL_BACKENDS = ("cpp", "triton")


def float_values(clips: torch.Tensor) -> torch.Tensor:
    """What the timed reference reads: float32 values (uint8 / 255), or the float clips as they are."""
    return clips.float() / 255 if clips.dtype == torch.uint8 else clips


def workload(name: str, clips: torch.Tensor, op, reference_op, output_bytes: int, description: str) -> common.Workload:
    kind = str(clips.dtype).replace("torch.", "")
    case = common.Case(f"{name} {kind}", clips.shape[0], clips.numel() * clips.element_size() + output_bytes,
                       f"{description}, {kind} clips {tuple(clips.shape)}")
    exact = clips.double() / 255 if clips.dtype == torch.uint8 else clips.double()
    providers = [common.Provider("reference", make=lambda: (lambda: reference_op(float_values(clips))),
                                 note="float32 whole-tensor ops (errors against float64)")]
    providers += [common.Provider(f"fastssl {b}", make=lambda b=b: (lambda: op(clips, backend=b)),
                                  skip=unavailable_reason(b, clips.device)) for b in FASTSSL_BACKENDS]
    return common.Workload(case, providers, expected=lambda: reference_op(exact))


def cases(run: common.Run):
    config = run.config
    B, T, S = config["batch"], config["frames"], config["size"]
    generator = torch.Generator().manual_seed(0)
    clips = torch.randint(0, 256, (B, T, 3, S, S), dtype=torch.uint8, generator=generator).to(run.device)
    for pool in (1, 4):
        yield workload(f"motion_energy pool {pool}", clips, lambda x, backend, p=pool: motion_energy(
            x, pool=p, backend=backend), lambda x, p=pool: reference.motion_energy(x, p), B * (T - 1) * 4,
            f"fastssl.ops.motion_energy(pool={pool}) -> (B, T - 1) float32")
    yield workload("frame_difference_sum", clips, frame_difference_sum, reference.frame_difference_sum,
                   B * 3 * S * S * 4, "fastssl.ops.frame_difference_sum -> (B, 3, S, S) float32")
    half = (clips.float() / 255).half()
    yield workload("frame_difference_sum", half, frame_difference_sum, reference.frame_difference_sum,
                   B * 3 * S * S * 2, "fastssl.ops.frame_difference_sum -> (B, 3, S, S) float16")


NOTES = [
    "GB/s counts the bytes strictly needed: the clips read once and the outputs written once.",
    "max abs err: against the float64 reference (energy and [0, 1] pixel units).",
    "the cpp backend converts float16 clips to a float32 copy first (its kernels read uint8 and float32).",
]


BENCHMARK = common.Benchmark(
    name="motion_energy", doc=__doc__, cases=cases, baselines=("reference",), notes=NOTES,
    defaults={"cpu": {"batch": 8, "frames": 16, "size": 112, "copy_mib": 256, "budget_s": 2.0},
              "cuda": {"batch": 64, "frames": 16, "size": 112, "copy_mib": 1024, "budget_s": 2.0}},
    quick={"batch": 2, "frames": 8, "size": 64, "copy_mib": 32, "budget_s": 0.2},
    flags=(common.flag("--frames", type=int, help="frames per clip"),
           common.flag("--size", type=int, help="frame side in pixels")),
    headline="batch {batch}, frames {frames}, size {size}")


if __name__ == "__main__":
    sys.exit(common.main(BENCHMARK))
