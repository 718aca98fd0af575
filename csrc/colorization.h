// Shared by the CPU (csrc/colorization.cpp) and CUDA (csrc/colorization_cuda.cpp) bindings.
#pragma once

#include <torch/types.h>

#include "../kernels/common/colorization.h"

namespace fastssl {

struct ColorizationShapes {
  int64_t batch, height, width, out_height, out_width;
};

struct ColorizationOutputs {
  at::Tensor l;       // (B, 1, H, W) float32: L - 50
  at::Tensor ab;      // (B, 2, h, w) float32
  at::Tensor index;   // (B, k, h, w) int64
  at::Tensor weight;  // (B, k, h, w) float32
};

ColorizationShapes check_colorization_args(const at::Tensor& images, const at::Tensor& bins, bool channels_last,
                                           int64_t factor, int64_t k, double sigma);
ColorizationOutputs allocate_colorization_outputs(const ColorizationShapes& s, int64_t k,
                                                  const at::TensorOptions& options);
// The kernels' arguments; `bins` must be contiguous float32 and outlive the call.
colorization::Args colorization_args(const ColorizationShapes& s, const at::Tensor& bins, bool channels_last,
                                      int64_t factor, bool mean_pool, int64_t k, double sigma);

}  // namespace fastssl
