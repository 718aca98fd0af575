// Torch bindings of the RotNet rotations: schema of fastssl_C::rotations and its CPU implementation
// (threads over image x channel planes; each plane is read once and written four times).
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include "../kernels/cpu/rotations.h"
#include "checks.h"
#include "host_pool.h"

namespace fastssl {
namespace {

template <typename T>
void rotations_loop(const T* in, T* out, int64_t B, int64_t C, int64_t S, bool image_major) {
  const int64_t plane = S * S;
  at::parallel_for(0, B * C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / C, c = task % C;
      T* dst[4];
      for (int64_t k = 0; k < 4; ++k) {
        const int64_t row = image_major ? 4 * b + k : k * B + b;
        dst[k] = out + (row * C + c) * plane;
      }
      cpu::rotate_plane4(in + task * plane, S, dst[0], dst[1], dst[2], dst[3]);
    }
  });
}

// images: (B, C, S, S) of 1/2/4/8-byte integers (the Python side views any dtype as these).
at::Tensor rotations_cpu(const at::Tensor& images, bool image_major) {
  TORCH_CHECK(images.dim() == 4, "images must have shape (B, C, S, S), got ", images.sizes());
  TORCH_CHECK(images.size(2) == images.size(3), "images must be square, got ", images.size(2), " x ",
              images.size(3));
  TORCH_CHECK(images.numel() > 0, "images is empty (shape ", images.sizes(), ")");
  const at::Tensor in = images.contiguous();
  const int64_t B = in.size(0), C = in.size(1), S = in.size(2);
  at::Tensor out = pooled_empty({4 * B, C, S, S}, in.options());
  dispatch_element_size(in, "images", [&](auto bits) {
    using T = decltype(bits);
    rotations_loop(static_cast<const T*>(in.const_data_ptr()), static_cast<T*>(out.data_ptr()), B, C, S, image_major);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) { m.def("rotations(Tensor images, bool image_major) -> Tensor"); }

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) { m.impl("rotations", &rotations_cpu); }

}  // namespace fastssl
