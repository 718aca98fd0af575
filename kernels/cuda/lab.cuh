// CUDA launchers of the sRGB <-> CIE Lab conversion. Torch-free: raw device pointers, sizes and a
// stream; the torch glue is csrc/lab_cuda.cpp. The per-pixel maths is kernels/common/lab.h, the
// same functions the CPU loops call.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace fastssl {
namespace gpu {

// Element types of the launchers' buffers; each (input, output) pair is one kernel instantiation.
enum class Dtype : int { kUInt8, kFloat32, kFloat16, kBFloat16 };

// Contiguous (images, 3, pixels) when planar, (images, pixels, 3) when channels_last.
struct ImageGeometry {
  int64_t images;
  int64_t pixels;  // per channel plane, H * W
  bool channels_last;
};

// sRGB -> Lab. in: uint8 in [0, 255] (linearised exactly through the 256-entry table) or
// float32/float16/bfloat16 in [0, 1]; out: float32/float16/bfloat16. Returns the launch error.
cudaError_t rgb_to_lab(const void* in, Dtype in_type, void* out, Dtype out_type, const ImageGeometry& geometry,
                       cudaStream_t stream);

// Lab -> sRGB, clamped to [0, 1] when clip. in and out: float32/float16/bfloat16.
cudaError_t lab_to_rgb(const void* in, Dtype in_type, void* out, Dtype out_type, const ImageGeometry& geometry,
                       bool clip, cudaStream_t stream);

}  // namespace gpu
}  // namespace fastssl
