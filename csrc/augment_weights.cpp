// Torch binding of the resize weights of the fused augmentation: fastssl_C::axis_weights, the same
// (start, weights, taps) as fastssl/ops/augment_weights.py's axis_weights for CPU tensors, computed by
// kernels/cpu/augment_weights.cpp (samples in parallel).
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>

#include "../kernels/cpu/augment_weights.h"

namespace fastssl {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> axis_weights_cpu(const at::Tensor& length_, int64_t out,
                                                                 bool bicubic, const std::optional<at::Tensor>& flip_) {
  TORCH_CHECK(length_.device().is_cpu() && length_.scalar_type() == at::kLong && length_.dim() == 1,
              "length must be a (B,) int64 CPU tensor, got ", length_.scalar_type(), " of shape ", length_.sizes(),
              " on ", length_.device());
  TORCH_CHECK(out >= 1, "out must be >= 1, got ", out);
  const at::Tensor length = length_.contiguous();
  const int64_t B = length.size(0);
  const int64_t* L = length.const_data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) TORCH_CHECK(L[b] >= 1, "length[", b, "] must be >= 1, got ", L[b]);
  at::Tensor flip;
  if (flip_.has_value()) {
    flip = flip_->contiguous();
    TORCH_CHECK(flip.device().is_cpu() && flip.scalar_type() == at::kBool && flip.dim() == 1 && flip.size(0) == B,
                "flip must be a (", B, ",) bool CPU tensor, got ", flip.scalar_type(), " of shape ", flip.sizes());
  }
  const bool* flips = flip.defined() ? flip.const_data_ptr<bool>() : nullptr;

  at::Tensor taps = at::empty({B}, length.options().dtype(at::kInt));
  int32_t* t = taps.data_ptr<int32_t>();
  for (int64_t b = 0; b < B; ++b) t[b] = cpu::axis_taps(L[b], out, bicubic);
  const int64_t stride = B > 0 ? *std::max_element(t, t + B) : 0;
  at::Tensor start = at::empty({B, out}, taps.options());
  at::Tensor weights = at::empty({B, out, stride}, length.options().dtype(at::kFloat));
  int32_t* s = start.data_ptr<int32_t>();
  float* w = weights.data_ptr<float>();
  at::parallel_for(0, B, 16, [&](int64_t first, int64_t last) {
    for (int64_t b = first; b < last; ++b)
      cpu::axis_weights(L[b], out, bicubic, t[b], stride, flips != nullptr && flips[b], s + b * out,
                        w + b * out * stride);
  });
  return {start, weights, taps};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) {
  m.def("axis_weights(Tensor length, int out, bool bicubic, Tensor? flip) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) { m.impl("axis_weights", &axis_weights_cpu); }

}  // namespace fastssl
