#!/usr/bin/env bash
# The test command: installs everything (scripts/setup_env.sh), then runs the native kernel tests
# (CMake + ctest) and the Python suite, Triton kernels included through Triton's CPU interpreter.
# GPU-only tests carry the `cuda` marker and skip without a GPU.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup_env.sh
# shellcheck disable=SC1091
. "${FASTSSL_VENV:-.venv}/bin/activate"

echo "== native kernels: CMake build + ctest"
cmake_args=(-S . -B build-native -DCMAKE_BUILD_TYPE=Release)
if [ -n "${CUDA_HOME:-}" ] || [ -x /usr/local/cuda-13.0/bin/nvcc ]; then
  cmake_args+=(-DCMAKE_CUDA_COMPILER="${CUDA_HOME:-/usr/local/cuda-13.0}/bin/nvcc")
fi
cmake "${cmake_args[@]}" >/dev/null
cmake --build build-native -j "$(nproc)"
ctest --test-dir build-native --output-on-failure

echo "== Python suite"
set +e
TRITON_INTERPRET=${TRITON_INTERPRET:-1} python -m pytest -q "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure of the suite" >&2
  exit 1
fi
exit "$status"
