// Torch bindings of the counting tiles: schema of fastssl_C::counting_tiles and its CPU
// implementation (threads over image x channel planes; each plane is read twice: whole and tiles).
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include "../kernels/cpu/counting.h"

namespace fastssl {
namespace {

template <typename T>
void counting_loop(const T* in, float* out, int64_t B, int64_t C, int64_t H, int64_t W, int64_t S) {
  const int64_t plane = S * S;
  at::parallel_for(0, B * C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / C, c = task % C;
      float* o[5];
      for (int64_t t = 0; t < 5; ++t) o[t] = out + ((b * 5 + t) * C + c) * plane;
      cpu::counting_tiles_plane(in + task * H * W, H, W, S, o[0], o[1], o[2], o[3], o[4]);
    }
  });
}

// images: (B, C, H, W) uint8 or float32 -> (B, 5, C, S, S) float32.
at::Tensor counting_tiles_cpu(const at::Tensor& images, int64_t size) {
  TORCH_CHECK(images.dim() == 4 && images.numel() > 0, "images must have shape (B, C, H, W), got ", images.sizes());
  TORCH_CHECK(images.size(2) >= 2 && images.size(3) >= 2, "images must be at least 2 x 2, got ", images.sizes());
  TORCH_CHECK(images.scalar_type() == at::kByte || images.scalar_type() == at::kFloat,
              "images must be uint8 or float32, got ", images.scalar_type());
  TORCH_CHECK(size >= 1, "size must be >= 1, got ", size);
  const at::Tensor in = images.contiguous();
  const int64_t B = in.size(0), C = in.size(1), H = in.size(2), W = in.size(3);
  at::Tensor out = at::empty({B, 5, C, size, size}, in.options().dtype(at::kFloat));
  if (in.scalar_type() == at::kByte) {
    counting_loop(in.const_data_ptr<uint8_t>(), out.data_ptr<float>(), B, C, H, W, size);
  } else {
    counting_loop(in.const_data_ptr<float>(), out.data_ptr<float>(), B, C, H, W, size);
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) { m.def("counting_tiles(Tensor images, int size) -> Tensor"); }

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) { m.impl("counting_tiles", &counting_tiles_cpu); }

}  // namespace fastssl
