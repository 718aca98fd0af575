// Torch binding of the fused per-sample augmentation: schema of fastssl_C::augment and its CPU
// implementation (threads over samples, handed out by cpu::AugmentQueue). The resize weights come
// precomputed (start, weights and per-sample tap counts; flip folded into the x weights), by
// fastssl_C::axis_weights (csrc/augment_weights.cpp) in the cpp backend; the kernel body is
// kernels/cpu/augment.cpp.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>

#include "../kernels/cpu/augment.h"
#include "checks.h"
#include "host_pool.h"

namespace fastssl {
namespace {

// Every image inside data, every crop inside its image.
void check_boxes(const at::Tensor& data, const at::Tensor& offsets, const at::Tensor& sizes, const at::Tensor& crop) {
  const int64_t* off = offsets.const_data_ptr<int64_t>();
  const int64_t* hw = sizes.const_data_ptr<int64_t>();
  const int64_t* box = crop.const_data_ptr<int64_t>();
  for (int64_t b = 0; b < offsets.size(0); ++b) {
    const int64_t H = hw[2 * b], W = hw[2 * b + 1];
    TORCH_CHECK(H > 0 && W > 0, "sizes[", b, "] must be positive, got (", H, ", ", W, ")");
    TORCH_CHECK(off[b] >= 0 && off[b] + H * W * 3 <= data.numel(), "offsets[", b, "] = ", off[b],
                " with sizes[", b, "] = (", H, ", ", W, ") points outside data (", data.numel(), " bytes)");
    const int64_t* c = box + 4 * b;
    TORCH_CHECK(c[0] >= 0 && c[1] >= 0 && c[2] >= 1 && c[3] >= 1 && c[0] + c[2] <= H && c[1] + c[3] <= W,
                "crop[", b, "] = (", c[0], ", ", c[1], ", ", c[2], ", ", c[3], ") (top, left, height, width) lies "
                "outside image ", b, " of size (", H, ", ", W, ")");
  }
}

// Each output of sample b reads taps[b][axis] inputs from its start: all inside the crop.
void check_starts(const at::Tensor& start, const at::Tensor& weights, const at::Tensor& taps_, const at::Tensor& crop,
                  int axis, const char* name) {
  const int64_t B = start.size(0), n = start.size(1), stride = weights.size(2);
  const int32_t* s = start.const_data_ptr<int32_t>();
  const int32_t* taps = taps_.const_data_ptr<int32_t>();
  const int64_t* box = crop.const_data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t length = box[4 * b + 2 + axis], t = taps[2 * b + axis];
    TORCH_CHECK(t >= 1 && t <= std::min(stride, length), "taps[", b, ", ", axis, "] = ", t, " must be in [1, ",
                std::min(stride, length), "] (crop length ", length, ", ", stride, " weights per output)");
    const int64_t last = length - t;
    for (int64_t i = 0; i < n; ++i) {
      TORCH_CHECK(s[b * n + i] >= 0 && s[b * n + i] <= last, name, "[", b, ", ", i, "] = ", s[b * n + i],
                  " must be in [0, ", last, "] (crop length ", length, ", ", t, " taps)");
    }
  }
}

// The colour kernels are compiled for finite values (kernels/cpu/augment.cpp): factors must be finite.
void check_per_sample(const at::Tensor& order, const at::Tensor& sigma, const at::Tensor& factors) {
  const int64_t* o = order.const_data_ptr<int64_t>();
  const float* s = sigma.const_data_ptr<float>();
  const float* f = factors.const_data_ptr<float>();
  static const char* const kFactorNames[4] = {"brightness", "contrast", "saturation", "hue"};
  for (int64_t b = 0; b < order.size(0); ++b) {
    for (int k = 0; k < 4; ++k)
      TORCH_CHECK(std::isfinite(f[4 * b + k]), "factors[", b, "][", k, "] (", kFactorNames[k], ") must be finite, got ",
                  f[4 * b + k]);
    int seen = 0;
    for (int k = 0; k < 4; ++k) seen |= (o[4 * b + k] >= 0 && o[4 * b + k] < 4) ? 1 << o[4 * b + k] : 16;
    TORCH_CHECK(seen == 15, "order[", b, "] must be a permutation of 0..3");
    TORCH_CHECK(std::isfinite(s[b]) && s[b] >= 0, "blur_sigma[", b, "] must be finite and >= 0, got ", s[b]);
  }
}

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
  for (int c = 0; c < 3; ++c) TORCH_CHECK(std[c] > 0, "std must be > 0, got std[", c, "] = ", std[c]);
  const cpu::OutDtype kind = out_dtype(dtype);
  check_boxes(data, offsets, sizes, crop);
  check_starts(y_start, y_weights, taps, crop, 0, "y_start");
  check_starts(x_start, x_weights, taps, crop, 1, "x_start");
  check_per_sample(order, blur_sigma, factors);

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
