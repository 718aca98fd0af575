"""The pretext patch ops benchmark (issue 5): runs the per-op benchmarks in one process, one after another.

  jigsaw_tiles + hamming_permutations  -> benchmarks/bench_jigsaw.py
  mae_masking                          -> benchmarks/bench_mae.py
  rotations, relative_position_pairs, inpainting_masks, counting_tiles -> benchmarks/bench_pretext.py

Each writes its own JSON + Markdown table (with the copy bandwidth measured in its run) under
benchmarks/results/. Common flags are passed through: --device, --batch, --quick, --budget, --out.

  python benchmarks/bench_patches.py --device cpu --quick
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

MODULES = ("bench_jigsaw", "bench_mae", "bench_pretext")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--batch", type=int)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", type=float)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    passed = ["--device", args.device] + (["--quick"] if args.quick else [])
    for flag, value in (("--batch", args.batch), ("--budget", args.budget), ("--out", args.out)):
        if value is not None:
            passed += [flag, str(value)]
    failures = []
    for name in MODULES:
        print(f"== {name} {' '.join(passed)}", flush=True)
        try:
            status = importlib.import_module(name).main(passed)
        except Exception as error:  # noqa: BLE001  (one failing benchmark must not hide the others)
            print(f"{name} failed: {type(error).__name__}: {error}", flush=True)
            status = 1
        if status:
            failures.append(name)
    if failures:
        print("failed: " + ", ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
