#!/usr/bin/env bash
# Creates (or updates) the project's virtual environment in .venv and installs everything fastssl needs
# to build, test and benchmark: torch (CUDA build, with Triton), DALI, PyAV, the test tools, and fastssl
# itself with its native extension (CUDA kernels too when a CUDA toolkit is found).
#
# Environment: FASTSSL_VENV (default .venv), FASTSSL_BUILD_CUDA=0|1|auto (default auto), CUDA_HOME.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=${FASTSSL_VENV:-.venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
pip install --quiet --upgrade pip "setuptools>=64" wheel

# torch first: the extension is built against the torch it will run with (no build isolation).
pip install --quiet "torch>=2.11,<2.15" numpy ninja pybind11

if [ -z "${CUDA_HOME:-}" ]; then
  for candidate in /usr/local/cuda-13.0 /usr/local/cuda; do
    if [ -x "$candidate/bin/nvcc" ]; then export CUDA_HOME=$candidate; break; fi
  done
fi
if [ -z "${CUDA_HOME:-}" ] && command -v nvcc >/dev/null; then
  CUDA_HOME=$(dirname "$(dirname "$(command -v nvcc)")")
  export CUDA_HOME
fi

export MAX_JOBS=${MAX_JOBS:-$(nproc)}
export FASTSSL_BUILD_CUDA=${FASTSSL_BUILD_CUDA:-auto}
pip install --quiet --no-build-isolation -e ".[test,dali,train,video]"
python -m fastssl info
