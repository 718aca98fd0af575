#!/usr/bin/env bash
# The main job: installs everything (scripts/setup_env.sh), then `fastssl demo`: pretrains a small
# ResNet with SimCLR on the embedded procedural JPEG set (no download) through the whole pipeline —
# decoding, fastssl's fused augmentation in the loader, NT-Xent — for a few minutes on the CPU (less on
# a GPU), scores its frozen features by kNN and a linear probe against the same network at random
# initialisation, prints the report and saves the loss curve (SVG). Arguments go to `fastssl demo`
# (e.g. --task rotation, --minutes 1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup_env.sh
# shellcheck disable=SC1091
. "${FASTSSL_VENV:-.venv}/bin/activate"
python -m fastssl demo "$@"
