// Torch bindings of the inpainting box holes: schema of fastssl_C::inpainting_masks and its CPU
// implementation (threads over images). Boxes are drawn in Python (fastssl.ops.inpainting).
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include <tuple>

#include "../kernels/cpu/inpainting.h"
#include "checks.h"
#include "host_pool.h"

namespace fastssl {
namespace {

template <typename T>
void inpaint_loop(const at::Tensor& in, const at::Tensor& boxes, const at::Tensor& fill, at::Tensor& out,
                  at::Tensor& mask) {
  const int64_t B = in.size(0), C = in.size(1), H = in.size(2), W = in.size(3), K = boxes.size(1);
  const T* src = static_cast<const T*>(in.const_data_ptr());
  const T* values = static_cast<const T*>(fill.const_data_ptr());
  const int64_t* box = boxes.const_data_ptr<int64_t>();
  T* dst = static_cast<T*>(out.data_ptr());
  bool* holes = mask.data_ptr<bool>();
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      cpu::inpainting_masks(src + b * C * H * W, C, H, W, box + b * 4 * K, K, values, dst + b * C * H * W,
                         holes + b * H * W);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> inpainting_masks_cpu(const at::Tensor& images, const at::Tensor& boxes,
                                                        const at::Tensor& fill) {
  TORCH_CHECK(images.dim() == 4 && images.numel() > 0, "images must have shape (B, C, H, W), got ", images.sizes());
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  const at::Tensor b = check_tensor(boxes, "boxes", at::kLong, {B, -1, 4});
  const at::Tensor f = check_tensor(fill, "fill", images.scalar_type(), {C});
  const at::Tensor in = images.contiguous();
  at::Tensor out = pooled_empty(in.sizes(), in.options());
  at::Tensor mask = pooled_empty({B, 1, H, W}, in.options().dtype(at::kBool));
  dispatch_element_size(in, "images", [&](auto bits) { inpaint_loop<decltype(bits)>(in, b, f, out, mask); });
  return {out, mask};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) {
  m.def("inpainting_masks(Tensor images, Tensor boxes, Tensor fill) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) { m.impl("inpainting_masks", &inpainting_masks_cpu); }

}  // namespace fastssl
