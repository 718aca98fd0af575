// Torch binding of the fused per-sample augmentation: schema of fastssl_C::augment and its CPU
// implementation (threads over samples, handed out by cpu::AugmentQueue). The resize weights come
// precomputed (start, weights and per-sample tap counts; flip folded into the x weights), by
// fastssl_C::axis_weights (csrc/augment_weights.cpp) in the cpp backend; the kernel body is
// kernels/cpu/augment.cpp.
//
// Checks: the arguments' devices, dtypes and shapes, and the scalar arguments that size the kernel's
// buffers; no tensor value is read. The values (crops inside their images, offsets inside data, orders
// that are permutations, finite factors, sigma >= 0) are checked once, by the public op
// (fastssl.ops.augment: AugmentParams.validate, RaggedImages), and the weights come from axis_weights:
// this binding trusts them.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "../kernels/cpu/augment.h"
#include "checks.h"
#include "host_pool.h"

namespace fastssl {
namespace {

cpu::OutDtype out_dtype(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat:
      return cpu::OutDtype::kFloat32;
    case at::kBFloat16:
      return cpu::OutDtype::kBFloat16;
    case at::kHalf:
      return cpu::OutDtype::kFloat16;
    default:
      TORCH_CHECK(false, "dtype must be float32, bfloat16 or float16, got ", dtype);
  }
}

at::Tensor augment_cpu(const at::Tensor& data_, const at::Tensor& offsets_, const at::Tensor& sizes_,
                       const at::Tensor& crop_, const at::Tensor& y_start_, const at::Tensor& y_weights_,
                       const at::Tensor& taps_, const at::Tensor& x_start_, const at::Tensor& x_weights_, const at::Tensor& factors_,
                       const at::Tensor& order_, const at::Tensor& grayscale_, const at::Tensor& blur_sigma_,
                       const at::Tensor& solarize_, int64_t blur_kernel, at::ArrayRef<double> mean,
                       at::ArrayRef<double> std, bool clamp, at::ScalarType dtype, bool channels_last) {
  const at::Tensor data = check_tensor(data_, "data", at::kByte, {-1});
  const at::Tensor offsets = check_tensor(offsets_, "offsets", at::kLong, {-1});
  const int64_t B = offsets.size(0);
  TORCH_CHECK(B > 0, "offsets is empty: the batch has no image");
  const at::Tensor sizes = check_tensor(sizes_, "sizes", at::kLong, {B, 2});
  const at::Tensor crop = check_tensor(crop_, "crop", at::kLong, {B, 4});
  const at::Tensor y_start = check_tensor(y_start_, "y_start", at::kInt, {B, -1});
  const int64_t out_h = y_start.size(1);
  const at::Tensor y_weights = check_tensor(y_weights_, "y_weights", at::kFloat, {B, out_h, -1});
  const at::Tensor taps = check_tensor(taps_, "taps", at::kInt, {B, 2});
  const at::Tensor x_start = check_tensor(x_start_, "x_start", at::kInt, {B, -1});
  const int64_t out_w = x_start.size(1);
  const at::Tensor x_weights = check_tensor(x_weights_, "x_weights", at::kFloat, {B, out_w, -1});
  TORCH_CHECK(out_h > 0 && out_w > 0, "the output size (", out_h, ", ", out_w, ") must be positive");
  TORCH_CHECK(y_weights.size(2) > 0 && x_weights.size(2) > 0, "y_weights and x_weights need at least one tap");
  const at::Tensor factors = check_tensor(factors_, "factors", at::kFloat, {B, 4});
  const at::Tensor order = check_tensor(order_, "order", at::kLong, {B, 4});
  const at::Tensor grayscale = check_tensor(grayscale_, "grayscale", at::kBool, {B});
  const at::Tensor blur_sigma = check_tensor(blur_sigma_, "blur_sigma", at::kFloat, {B});
  const at::Tensor solarize = check_tensor(solarize_, "solarize", at::kBool, {B});
  TORCH_CHECK(blur_kernel >= 1 && blur_kernel % 2 == 1, "blur_kernel must be odd and >= 1, got ", blur_kernel);
  TORCH_CHECK(mean.size() == 3, "mean must have 3 values, got ", mean.size());
  TORCH_CHECK(std.size() == 3, "std must have 3 values, got ", std.size());
  const cpu::OutDtype kind = out_dtype(dtype);

  const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  at::Tensor out = pooled_empty({B, 3, out_h, out_w}, data.options().dtype(dtype), format);
  cpu::AugmentArgs args{};
  args.data = data.const_data_ptr<uint8_t>();
  args.offsets = offsets.const_data_ptr<int64_t>();
  args.sizes = sizes.const_data_ptr<int64_t>();
  args.crop = crop.const_data_ptr<int64_t>();
  args.y_start = y_start.const_data_ptr<int32_t>();
  args.y_weights = y_weights.const_data_ptr<float>();
  args.y_stride = y_weights.size(2);
  args.taps = taps.const_data_ptr<int32_t>();
  args.x_start = x_start.const_data_ptr<int32_t>();
  args.x_weights = x_weights.const_data_ptr<float>();
  args.x_stride = x_weights.size(2);
  args.factors = factors.const_data_ptr<float>();
  args.order = order.const_data_ptr<int64_t>();
  args.grayscale = grayscale.const_data_ptr<bool>();
  args.blur_sigma = blur_sigma.const_data_ptr<float>();
  args.solarize = solarize.const_data_ptr<bool>();
  args.out_h = out_h;
  args.out_w = out_w;
  args.blur_kernel = blur_kernel;
  for (int c = 0; c < 3; ++c) {
    args.mean[c] = static_cast<float>(mean[c]);
    args.std[c] = static_cast<float>(std[c]);
  }
  args.clamp = clamp;
  args.dtype = kind;
  args.channels_last = channels_last;
  args.out = out.data_ptr();
  cpu::AugmentQueue queue(args, B);
  const int64_t workers = std::min<int64_t>(B, at::get_num_threads());
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) { queue.work(); });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) {
  m.def(
      "augment(Tensor data, Tensor offsets, Tensor sizes, Tensor crop, Tensor y_start, Tensor y_weights, "
      "Tensor taps, Tensor x_start, Tensor x_weights, Tensor factors, Tensor order, Tensor grayscale, Tensor blur_sigma, "
      "Tensor solarize, int blur_kernel, float[] mean, float[] std, bool clamp, ScalarType dtype, "
      "bool channels_last) -> Tensor");
}

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) { m.impl("augment", &augment_cpu); }

}  // namespace fastssl
