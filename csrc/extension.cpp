// The fastssl._C Python module: build metadata only. The ops themselves are registered with the
// dispatcher (namespace fastssl_C) by the per-op files when this library is loaded, so this file
// needs pybind11 alone (not torch/extension.h, which costs a minute of compile time).
#include <pybind11/pybind11.h>

#ifndef FASTSSL_TORCH_VERSION
#error "setup.py defines FASTSSL_TORCH_VERSION, FASTSSL_CUDA_VERSION and FASTSSL_PYTHON_VERSION"
#endif

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastssl native kernels (C++ CPU, and CUDA when built with it)";
  m.def("build_info", [] {
    pybind11::dict info;
    info["torch"] = FASTSSL_TORCH_VERSION;
    info["cuda"] = FASTSSL_CUDA_VERSION;  // "" when built without CUDA
    info["python"] = FASTSSL_PYTHON_VERSION;
    info["cuda_archs"] = FASTSSL_CUDA_ARCHS;
#ifdef _OPENMP
    info["openmp"] = true;  // at::parallel_for runs on torch's threads (compiled without it: one thread)
#else
    info["openmp"] = false;
#endif
    return info;
  });
}
