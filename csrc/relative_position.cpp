// Torch bindings of the relative-position patch pairs: schema of fastssl_C::relative_position_pairs
// and its CPU implementation (threads over images). Parameters are drawn in Python.
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include "../kernels/cpu/relative_position.h"
#include "checks.h"
#include "host_pool.h"

namespace fastssl {
namespace {

template <typename T>
void pairs_loop(const at::Tensor& in, const at::Tensor& corners, const at::Tensor& keep, const at::Tensor& keys,
                const at::Tensor& table, int64_t P, at::Tensor& out) {
  const int64_t B = in.size(0), H = in.size(2), W = in.size(3);
  const T* src = static_cast<const T*>(in.const_data_ptr());
  const T* levels = static_cast<const T*>(table.const_data_ptr());
  const int64_t* corner = corners.const_data_ptr<int64_t>();
  const int64_t* kept = keep.const_data_ptr<int64_t>();
  const int64_t* key = keys.const_data_ptr<int64_t>();
  T* dst = static_cast<T*>(out.data_ptr());
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      cpu::relative_position_pair(src + b * 3 * H * W, H, W, corner + 4 * b, kept + 2 * b,
                                  static_cast<uint32_t>(key[b]), levels, P, dst + b * 6 * P * P);
    }
  });
}

// Shapes and dtypes only: fastssl.ops.relative_position checks the values (labels, positions, offsets).
void check_pairs_args(const at::Tensor& images, const at::Tensor& corners, const at::Tensor& keep,
                      const at::Tensor& keys, const at::Tensor& table, int64_t P) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "images must have shape (B, 3, H, W), got ", images.sizes());
  const int64_t B = images.size(0), H = images.size(2), W = images.size(3);
  TORCH_CHECK(P >= 1 && P <= H && P <= W, "patch must be in [1, min(H, W)], got ", P, " for images of ", H, " x ",
              W);
  check_tensor(corners, "corners", at::kLong, {B, 2, 2});
  check_tensor(keep, "keep", at::kLong, {B, 2});
  check_tensor(keys, "keys", at::kLong, {B});
  check_tensor(table, "table", images.scalar_type(), {3, relative_position::kNoiseLevels});
}

// The kernel copies every patch whole, trusting its corner: the corners are clamped into the image
// (squares_inside). keep is only compared with the channel, so any value is safe.
at::Tensor relative_position_pairs_cpu(const at::Tensor& images, const at::Tensor& corners, const at::Tensor& keep,
                                       const at::Tensor& keys, const at::Tensor& table, int64_t patch) {
  check_pairs_args(images, corners, keep, keys, table, patch);
  const at::Tensor in = images.contiguous();
  at::Tensor out = pooled_empty({in.size(0), 2, 3, patch, patch}, in.options());
  const auto c = squares_inside(corners, patch, in.size(2), in.size(3));
  const auto k = keep.contiguous(), s = keys.contiguous(), t = table.contiguous();
  dispatch_element_size(in, "images", [&](auto bits) { pairs_loop<decltype(bits)>(in, c, k, s, t, patch, out); });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) {
  m.def("relative_position_pairs(Tensor images, Tensor corners, Tensor keep, Tensor keys, Tensor table, "
        "int patch) -> Tensor");
}

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) { m.impl("relative_position_pairs", &relative_position_pairs_cpu); }

}  // namespace fastssl
