// CUDA implementation of fastssl_C::colorization_targets (schema and CPU version in
// csrc/colorization.cpp; same checks and outputs).
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../kernels/cuda/colorization.cuh"
#include "colorization.h"

namespace fastssl {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> colorization_targets_cuda(
    const at::Tensor& images, const at::Tensor& bins, bool channels_last, int64_t factor, bool mean_pool, int64_t k,
    double sigma) {
  const ColorizationShapes s = check_colorization_args(images, bins, channels_last, factor, k, sigma);
  const c10::cuda::CUDAGuard guard(images.device());
  const at::Tensor in = images.contiguous();
  const at::Tensor centres = bins.contiguous();
  ColorizationOutputs out = allocate_colorization_outputs(s, k, in.options());
  const colorization::Args args = colorization_args(s, centres, channels_last, factor, mean_pool, k, sigma);
  C10_CUDA_CHECK(gpu::colorization_targets(args, s.batch, in.const_data_ptr<uint8_t>(),
                                           out.l.mutable_data_ptr<float>(), out.ab.mutable_data_ptr<float>(),
                                           out.index.mutable_data_ptr<int64_t>(),
                                           out.weight.mutable_data_ptr<float>(), at::cuda::getCurrentCUDAStream()));
  return {out.l, out.ab, out.index, out.weight};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastssl_C, CUDA, m) { m.impl("colorization_targets", &colorization_targets_cuda); }

}  // namespace fastssl
