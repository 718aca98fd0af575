"""Builds fastssl._C: the C++ CPU kernels always, the CUDA kernels when a toolkit and a CUDA build of
torch are present (FASTSSL_BUILD_CUDA=0|1|auto, default auto).

Sources come from the folder layout, the same rule CMakeLists.txt applies (no second list):
  CPU:  csrc/*.cpp (except *_cuda.cpp), kernels/cpu/*.cpp
  CUDA: csrc/*_cuda.cpp, kernels/cuda/*.cu
The CUDA arch list is explicit (FASTSSL_CUDA_ARCHS, default "8.0;9.0"): never detected from a GPU.

Build against the torch you run with: pip install --no-build-isolation -e .
"""

import glob
import os
import sys
import sysconfig

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CUDA_ARCHS = "8.0;9.0"


def _sources(*patterns, exclude_suffix=None):
    found = []
    for pattern in patterns:
        found += sorted(glob.glob(os.path.join(ROOT, pattern)))
    if exclude_suffix:
        found = [f for f in found if not f.endswith(exclude_suffix)]
    return [os.path.relpath(f, ROOT) for f in found]


def _want_cuda(torch, cpp_extension):
    mode = os.environ.get("FASTSSL_BUILD_CUDA", "auto").lower()
    if mode not in ("0", "1", "auto"):
        sys.exit(f"FASTSSL_BUILD_CUDA must be 0, 1 or auto, got {mode!r}")
    have = torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None
    if mode == "1" and not have:
        sys.exit(
            "FASTSSL_BUILD_CUDA=1 but "
            + ("torch is a CPU build" if torch.version.cuda is None else "no CUDA toolkit was found (set CUDA_HOME)")
        )
    return have if mode == "auto" else mode == "1"


def _cuda_extra_includes():
    # torch's CUDA headers include cublas/cusparse headers that a bare nvcc toolkit may lack; CUDA
    # builds of torch ship them in site-packages/nvidia/cu*/include.
    site = sysconfig.get_paths()["purelib"]
    return sorted(d for d in glob.glob(os.path.join(site, "nvidia", "cu*", "include")) if os.path.isdir(d))


def _extensions():
    import torch
    from torch.utils import cpp_extension

    with_cuda = _want_cuda(torch, cpp_extension)
    archs = os.environ.get("FASTSSL_CUDA_ARCHS", DEFAULT_CUDA_ARCHS)
    if with_cuda:
        os.environ["TORCH_CUDA_ARCH_LIST"] = archs
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    macros = [
        ("FASTSSL_TORCH_VERSION", f'"{torch.__version__}"'),
        ("FASTSSL_CUDA_VERSION", f'"{torch.version.cuda if with_cuda else ""}"'),
        ("FASTSSL_PYTHON_VERSION", f'"{py}"'),
        ("FASTSSL_CUDA_ARCHS", f'"{archs if with_cuda else ""}"'),
    ]
    # -fno-trapping-math lets gcc if-convert the branch-free selects of kernels/common (no FP traps are used).
    # -fopenmp: at::parallel_for is an inline template over `#pragma omp parallel` (torch's CPU builds use
    # OpenMP); compiled without it, every csrc loop silently runs on one thread. The extension then needs
    # libgomp.so.1, the runtime torch itself loads (one OpenMP runtime in the process).
    cxx_flags = ["-O3", "-fopenmp", "-fno-trapping-math"]
    link_flags = ["-fopenmp"]
    sources = _sources("csrc/*.cpp", "kernels/cpu/*.cpp", exclude_suffix="_cuda.cpp")
    if not with_cuda:
        return [cpp_extension.CppExtension("fastssl._C", sources, define_macros=macros,
                                           extra_compile_args={"cxx": cxx_flags}, extra_link_args=link_flags)]
    macros.append(("FASTSSL_WITH_CUDA", "1"))
    sources += _sources("csrc/*_cuda.cpp", "kernels/cuda/*.cu")
    return [
        cpp_extension.CUDAExtension(
            "fastssl._C",
            sources,
            define_macros=macros,
            include_dirs=_cuda_extra_includes(),
            extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "-lineinfo"]},
            extra_link_args=link_flags,
        )
    ]


def _cmdclass():
    from torch.utils.cpp_extension import BuildExtension

    return {"build_ext": BuildExtension.with_options(use_ninja=True)}


setup(
    packages=find_packages(include=["fastssl", "fastssl.*"]),
    ext_modules=_extensions(),
    cmdclass=_cmdclass(),
)
