#!/usr/bin/env bash
# Carries the wheels the GPU machine lacks (NVIDIA DALI and its dependencies, ~250 MB; that machine cannot
# download anything) to it through the device tool, whose calls carry at most 64 MiB of ignored files.
#
# Here (a machine with the package registry):
#   bash benchmarks/gpu_wheels.sh split
#     downloads the wheels for the GPU machine's Python into .gpu-wheels/ (ignored by git), packs them into
#     one tar and splits it into 60 MiB parts .gpu-wheels/part-00, part-01, ...; prints the calls to make.
# There, one device call per part, each carrying its part (carry: [".gpu-wheels/part-NN"]), less than 30 s
# apart so that the machine stays warm (it is handed back after 30 s idle, and with it the parts):
#   bash benchmarks/gpu_wheels.sh receive .gpu-wheels/part-NN
# and in the call after the last part:
#   bash benchmarks/gpu_wheels.sh install && bash benchmarks/run_gpu.sh
#
# Environment: PYTHON (default python), GPU_PYTHON_VERSION (the GPU machine's, default 3.12),
# STORE (where the parts gather on the GPU machine, outside the repository; default /tmp/fastssl-wheels).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python}
STORE=${STORE:-/tmp/fastssl-wheels}
HERE="$ROOT/.gpu-wheels"
# DALI, the libraries its "mixed" decoder loads, and its Python dependencies that are not in the GPU
# machine's environment (numpy, packaging and six are there), pinned to the
# versions pip resolves for DALI 2.4.0 (downloaded without dependency resolution). nvimgcodec's JPEG 2000
# and TIFF libraries are left out: the benchmarks decode JPEGs.
WHEELS=(nvidia-dali-cuda130==2.4.0 nvidia-nvimgcodec-cu13==0.9.0.20 nvidia-nvjpeg==13.3.2.43
        nvidia-libnvcomp-cu13==5.3.0.16 astunparse==1.6.3 gast==0.7.0 libcst==1.9.0 makefun==1.16.0 nvtx==0.2.17
        optree==0.20.0)

split_wheels() {
    rm -rf "$HERE"
    mkdir -p "$HERE/wheels"
    "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version "${GPU_PYTHON_VERSION:-3.12}" \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d "$HERE/wheels" "${WHEELS[@]}"
    tar -cf "$HERE/wheels.tar" -C "$HERE" wheels
    (cd "$HERE" && sha256sum wheels.tar >wheels.tar.sha256 && split -b 60M -d -a 2 wheels.tar part-)
    rm "$HERE/wheels.tar"
    local parts=("$HERE"/part-*)
    echo "${#parts[@]} parts in $HERE ($(du -sh "$HERE/wheels" | cut -f1) of wheels). Device calls, < 30 s apart:"
    for part in "${parts[@]}"; do
        local name=".gpu-wheels/$(basename "$part")"
        echo "  carry [\"$name\", \".gpu-wheels/wheels.tar.sha256\"]: bash benchmarks/gpu_wheels.sh receive $name"
    done
    echo "  then: bash benchmarks/gpu_wheels.sh install && bash benchmarks/run_gpu.sh"
}

receive() {
    local part=${1:?"receive needs the part's path, e.g. .gpu-wheels/part-00"}
    [ -f "$ROOT/$part" ] || { echo "no $part here: carry it with this call" >&2; exit 2; }
    mkdir -p "$STORE"
    cp "$ROOT/$part" "$STORE/"
    [ -f "$ROOT/.gpu-wheels/wheels.tar.sha256" ] && cp "$ROOT/.gpu-wheels/wheels.tar.sha256" "$STORE/"
    echo "$STORE now holds: $(cd "$STORE" && ls part-* | tr '\n' ' ')"
}

install_wheels() {
    [ -f "$STORE/wheels.tar.sha256" ] || { echo "no parts in $STORE: run receive first" >&2; exit 2; }
    cat "$STORE"/part-* >"$STORE/wheels.tar"
    (cd "$STORE" && sha256sum -c wheels.tar.sha256) || { echo "parts missing or damaged" >&2; exit 3; }
    tar -xf "$STORE/wheels.tar" -C "$STORE"
    "$PYTHON" -m pip install --no-index --no-deps "$STORE"/wheels/*.whl
    "$PYTHON" -c "import nvidia.dali as d; print('DALI', d.__version__)"
}

case "${1:-}" in
    split) split_wheels ;;
    receive) receive "${2:-}" ;;
    install) install_wheels ;;
    *) sed -n '2,17p' "${BASH_SOURCE[0]}"; exit 2 ;;
esac
