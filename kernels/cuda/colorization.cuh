// CUDA launcher of the fused colorization targets. Torch-free: raw device pointers, sizes and a
// stream; the torch glue is csrc/colorization_cuda.cpp. Same semantics and arguments as the CPU loop
// (kernels/cpu/colorization.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../common/colorization.h"

namespace fastssl {
namespace gpu {

// images: (batch, 3, H, W) uint8, or (batch, H, W, 3) when args.channels_last; args.bins is a
// device pointer to (num_bins, 2) float32. Writes, all contiguous:
//   l (batch, 1, H, W) = L - 50, ab (batch, 2, h, w), index (batch, k, h, w), weight (batch, k, h, w).
// Returns the launch error.
cudaError_t colorization_targets(const colorization::Args& args, int64_t batch, const uint8_t* images, float* l,
                                 float* ab, int64_t* index, float* weight, cudaStream_t stream);

}  // namespace gpu
}  // namespace fastssl
