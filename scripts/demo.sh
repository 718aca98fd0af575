#!/usr/bin/env bash
# The main job until the trainers land: installs everything (scripts/setup_env.sh) and runs the
# benchmark of the implemented ops (Lab conversion, colorization targets) on built-in inputs — every
# available backend against the reference and the peers, with a readable table. No data download.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup_env.sh
# shellcheck disable=SC1091
. "${FASTSSL_VENV:-.venv}/bin/activate"
python benchmarks/bench_lab.py --quick "$@"
