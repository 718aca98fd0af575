// Torch bindings of the counting tiles: schema of fastssl_C::counting_tiles and its CPU
// implementation (one plan of the index maths per call; threads over image x channel planes, each
// with its own column sums).
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "../kernels/cpu/counting.h"
#include "host_pool.h"

namespace fastssl {
namespace {

template <typename T, typename Acc>
void counting_loop(const cpu::CountingPlan& plan, const T* in, float* out, int64_t B, int64_t C) {
  const int64_t plane = plan.S * plan.S, H = plan.H, W = plan.W;
  at::parallel_for(0, B * C, 1, [&](int64_t begin, int64_t end) {
    std::vector<Acc> scratch(plan.scratch_size());
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / C, c = task % C;
      float* o[5];
      for (int64_t t = 0; t < 5; ++t) o[t] = out + ((b * 5 + t) * C + c) * plane;
      cpu::counting_tiles_plane(plan, in + task * H * W, scratch.data(), o);
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
  const int64_t B = in.size(0), C = in.size(1);
  const cpu::CountingPlan plan(in.size(2), in.size(3), size);
  at::Tensor out = pooled_empty({B, 5, C, size, size}, in.options().dtype(at::kFloat));
  if (in.scalar_type() == at::kFloat) {
    counting_loop<float, double>(plan, in.const_data_ptr<float>(), out.data_ptr<float>(), B, C);
  } else if (plan.int32_sums) {
    counting_loop<uint8_t, int32_t>(plan, in.const_data_ptr<uint8_t>(), out.data_ptr<float>(), B, C);
  } else {
    counting_loop<uint8_t, double>(plan, in.const_data_ptr<uint8_t>(), out.data_ptr<float>(), B, C);
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) { m.def("counting_tiles(Tensor images, int size) -> Tensor"); }

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) { m.impl("counting_tiles", &counting_tiles_cpu); }

}  // namespace fastssl
