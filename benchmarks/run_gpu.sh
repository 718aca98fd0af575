#!/usr/bin/env bash
# The one script to run on a GPU machine: build fastssl._C with CUDA in place, run the CUDA and Triton
# tests (tests/triton included: every launch compiled for sm_80/sm_90, the device guard), write the
# kernel resource table, run every benchmarks/bench_*.py --device cuda, and collect everything in one folder.
#
#   bash benchmarks/run_gpu.sh                 # results in benchmarks/results
#   OUT=/some/dir bash benchmarks/run_gpu.sh   # results elsewhere
#
# Works offline (no pip downloads). DALI is not on the GPU machine: benchmarks/gpu_wheels.sh carries its
# wheels there in parts first (without it the DALI providers and tests are skipped). Environment knobs:
#   OUT                     output folder (default benchmarks/results)
#   PYTHON                  interpreter (default python)
#   CUDA_HOME               CUDA toolkit (default: found from nvcc, else /usr/local/cuda)
#   FASTSSL_CUDA_ARCHS      CUDA archs to compile (default 9.0; TORCH_CUDA_ARCH_LIST follows it)
#   FASTSSL_SKIP_BUILD=1    use the extension already built (skip the build step)
#   BENCH_ARGS              extra arguments for every benchmark (e.g. "--quick")
#
# Every step runs even when an earlier one failed; the summary ($OUT/run_gpu_summary.md) says which
# failed, and the script exits nonzero when any did.

set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
OUT=${OUT:-$ROOT/benchmarks/results}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PYTHON=${PYTHON:-python}
SUMMARY="$OUT/run_gpu_summary.md"
STEPS=()
FAILED=()

# step NAME COMMAND...: runs COMMAND with its output in $OUT/NAME.log, records status and duration.
step() {
    local name=$1 start rc status
    shift
    local log="$OUT/$name.log"
    echo "== $name: $*"
    start=$(date +%s)
    "$@" >"$log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then
        status=ok
    elif [ "$rc" -eq 5 ] && [ "${name#pytest}" != "$name" ]; then
        status="ok (no tests collected)"  # pytest's exit code 5
    else
        status="FAILED (exit $rc)"
        FAILED+=("$name")
    fi
    STEPS+=("| $name | $status | $(($(date +%s) - start)) | $(basename "$log") |")
    echo "   -> $status ($(($(date +%s) - start)) s, log $log)"
    [ "$status" = ok ] || tail -n 15 "$log" | sed 's/^/   | /'
}

# The CUDA toolkit: $CUDA_HOME, else the one nvcc belongs to, else /usr/local/cuda.
detect_cuda_home() {
    if [ -n "${CUDA_HOME:-}" ]; then
        echo "$CUDA_HOME"
    elif command -v nvcc >/dev/null 2>&1; then
        dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")"
    elif [ -x /usr/local/cuda/bin/nvcc ]; then
        echo /usr/local/cuda
    fi
}

# Builds fastssl._C with CUDA: an editable pip install, else setup.py build_ext --inplace.
build_extension() {
    CUDA_HOME=$(detect_cuda_home)
    export CUDA_HOME
    export PATH="${CUDA_HOME:+$CUDA_HOME/bin:}$PATH"
    export FASTSSL_BUILD_CUDA=1
    export FASTSSL_CUDA_ARCHS=${FASTSSL_CUDA_ARCHS:-9.0}
    export TORCH_CUDA_ARCH_LIST=$FASTSSL_CUDA_ARCHS
    export MAX_JOBS=${MAX_JOBS:-$(nproc)}
    echo "CUDA_HOME=$CUDA_HOME FASTSSL_CUDA_ARCHS=$FASTSSL_CUDA_ARCHS MAX_JOBS=$MAX_JOBS"
    command -v nvcc && nvcc --version | tail -n 2
    if "$PYTHON" -m pip install --no-build-isolation --no-deps --no-index -v -e .; then
        return 0
    fi
    echo "pip install -e . failed; falling back to: $PYTHON setup.py build_ext --inplace"
    "$PYTHON" setup.py build_ext --inplace
}

# Fails unless fastssl._C loads here and was built with CUDA; prints its build info.
check_extension() {
    "$PYTHON" - <<'EOF'
import sys
import torch
from fastssl import _native

state = _native.state()
print("fastssl._C:", state.info or state.reason)
print("torch", torch.__version__, "cuda available:", torch.cuda.is_available())
sys.exit(0 if state.has_cuda and torch.cuda.is_available() else 1)
EOF
}

# Device name, driver, versions and date, to $OUT/environment.txt.
record_environment() {
    date -u +"date: %Y-%m-%dT%H:%M:%SZ"
    echo "host: $(hostname)"
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) $(git --no-optional-locks -C "$ROOT" status --porcelain 2>/dev/null | wc -l) changed file(s)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1
    command -v nvcc >/dev/null 2>&1 && nvcc --version | tail -n 2
    "$PYTHON" - <<'EOF'
import platform, torch
print("python", platform.python_version())
print("torch", torch.__version__, "cuda", torch.version.cuda)
for name in ("triton", "numpy", "kornia", "pytest"):
    try:
        print(name, __import__(name).__version__)
    except Exception as error:
        print(name, "absent:", type(error).__name__)
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))
EOF
}

step environment record_environment
if [ "${FASTSSL_SKIP_BUILD:-0}" = 1 ]; then
    echo "== build: skipped (FASTSSL_SKIP_BUILD=1)"
    STEPS+=("| build | skipped (FASTSSL_SKIP_BUILD=1) | 0 | |")
else
    step build build_extension
fi
step extension check_extension
step pytest_cuda "$PYTHON" -m pytest -m cuda -q --junitxml="$OUT/pytest_cuda.xml"
step pytest_triton "$PYTHON" -m pytest -m "triton and not cuda" -q --junitxml="$OUT/pytest_triton.xml"
# Every Triton launch compiled for sm_80/sm_90 (tests/triton/test_compile.py is not triton-marked) and the
# table of registers, spills and shared memory per kernel.
step pytest_triton_compile "$PYTHON" -m pytest tests/triton -q --junitxml="$OUT/pytest_triton_compile.xml"
step triton_compile_table "$PYTHON" tests/triton/compile_cases.py --out "$OUT/triton_compile.md"
for bench in "$ROOT"/benchmarks/bench_*.py; do
    [ -e "$bench" ] || continue
    # shellcheck disable=SC2086  # BENCH_ARGS is a list of words
    step "$(basename "$bench" .py)_cuda" "$PYTHON" "$bench" --device cuda --out "$OUT" ${BENCH_ARGS:-}
done

{
    echo "# run_gpu.sh summary"
    echo
    echo '```'
    cat "$OUT/environment.log"
    echo '```'
    echo
    echo "| step | status | seconds | log |"
    echo "|---|---|---|---|"
    printf '%s\n' "${STEPS[@]}"
    echo
    if [ ${#FAILED[@]} -eq 0 ]; then echo "All steps passed."; else echo "Failed: ${FAILED[*]}"; fi
} >"$SUMMARY"
echo "summary: $SUMMARY"
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "FAILED steps: ${FAILED[*]}"
    exit 1
fi
echo "all steps passed"
