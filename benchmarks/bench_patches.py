"""The pretext patch ops benchmarks in one process, one after another.

  jigsaw_tiles + hamming_permutations  -> benchmarks/bench_jigsaw.py
  mae_masking                          -> benchmarks/bench_mae.py
  rotations, relative_position_pairs, inpainting_masks, counting_tiles -> benchmarks/bench_pretext.py

Each writes its own JSON + Markdown table (with the copy bandwidth measured in its run) under
benchmarks/results/. The flags go to each of them, so only the flags all three take are accepted:
--device, --batch, --quick, --budget, --out, --threads, --providers.

  python benchmarks/bench_patches.py --device cpu --quick
"""

from __future__ import annotations

import importlib
import sys

import common

MODULES = ("bench_jigsaw", "bench_mae", "bench_pretext")


def main(argv: list[str] | None = None) -> int:
    """Runs every benchmark of MODULES with ``argv``; nonzero when any failed (after running the others)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        return 0
    benchmarks = {name: importlib.import_module(name).BENCHMARK for name in MODULES}
    for benchmark in benchmarks.values():  # a flag one of them does not take stops the run before it starts
        common.argument_parser(benchmark)[0].parse_args(argv)
    failures = []
    for name, benchmark in benchmarks.items():
        print(f"== {name} {' '.join(argv)}", flush=True)
        try:
            status = common.main(benchmark, argv)
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
