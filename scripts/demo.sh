#!/usr/bin/env bash
# The main job: installs everything (scripts/setup_env.sh), then `fastssl demo`: generates 2400 JPEGs of
# 6 shapes whose colour, size, position, tilt and background are random (no download), pretrains a
# ResNet-10 with SimCLR on them through the whole pipeline — decoding, fastssl's fused augmentation in
# the loader, NT-Xent — for 3 minutes on the CPU (the time is the stop), then scores the frozen
# features of held-out images (kNN and a linear probe) against the same network at random
# initialisation, prints the verdict and writes report.png / report.svg (loss and kNN per step) and
# report.json. Arguments go to `fastssl demo` (e.g. --minutes 1, --task rotation, --task all).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup_env.sh
# shellcheck disable=SC1091
. "${FASTSSL_VENV:-.venv}/bin/activate"
# On the CPU, torch's idle OpenMP threads would otherwise spin on the cores the decoder needs.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
python -m fastssl demo "$@"
