// Torch bindings of the fused colorization targets: schema of fastssl_C::colorization_targets and
// its CPU implementation (threads over image x cell row). CUDA: csrc/colorization_cuda.cpp.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../kernels/common/colorization.h"
#include "../kernels/cpu/colorization.h"
#include "checks.h"
#include "colorization.h"
#include "host_pool.h"

namespace fastssl {

ColorizationShapes check_colorization_args(const at::Tensor& images, const at::Tensor& bins, bool channels_last,
                                           int64_t factor, int64_t k, double sigma) {
  check_rgb_layout(images, "images", channels_last);
  TORCH_CHECK(images.dim() == 4, "images must have shape ", channels_last ? "(B, H, W, 3)" : "(B, 3, H, W)",
              ", got ", images.sizes());
  TORCH_CHECK(images.scalar_type() == at::kByte, "images must be uint8, got ", images.scalar_type());
  TORCH_CHECK(bins.dim() == 2 && bins.size(1) == 2 && bins.size(0) > 0,
              "bins must have shape (Q, 2) with Q > 0, got ", bins.sizes());
  TORCH_CHECK(bins.scalar_type() == at::kFloat, "bins must be float32, got ", bins.scalar_type());
  TORCH_CHECK(bins.device() == images.device(), "bins must be on the device of images (", images.device(),
              "), got ", bins.device());
  TORCH_CHECK(factor >= 1, "factor must be >= 1, got ", factor);
  TORCH_CHECK(k >= 1 && k <= colorization::kMaxK && k <= bins.size(0), "k must be in [1, min(",
              colorization::kMaxK, ", Q=", bins.size(0), ")], got ", k);
  TORCH_CHECK(sigma > 0, "sigma must be > 0, got ", sigma);
  ColorizationShapes s;
  s.batch = images.size(0);
  s.height = channels_last ? images.size(1) : images.size(2);
  s.width = channels_last ? images.size(2) : images.size(3);
  s.out_height = (s.height + factor - 1) / factor;
  s.out_width = (s.width + factor - 1) / factor;
  return s;
}

ColorizationOutputs allocate_colorization_outputs(const ColorizationShapes& s, int64_t k,
                                                  const at::TensorOptions& options) {
  const auto f = options.dtype(at::kFloat);
  return {pooled_empty({s.batch, 1, s.height, s.width}, f), pooled_empty({s.batch, 2, s.out_height, s.out_width}, f),
          pooled_empty({s.batch, k, s.out_height, s.out_width}, options.dtype(at::kLong)),
          pooled_empty({s.batch, k, s.out_height, s.out_width}, f)};
}

colorization::Args colorization_args(const ColorizationShapes& s, const at::Tensor& bins, bool channels_last,
                                      int64_t factor, bool mean_pool, int64_t k, double sigma) {
  return {s.height,
          s.width,
          s.out_height,
          s.out_width,
          channels_last,
          static_cast<int>(factor),
          mean_pool,
          bins.const_data_ptr<float>(),
          static_cast<int>(bins.size(0)),
          static_cast<int>(k),
          static_cast<float>(1.0 / (2.0 * sigma * sigma))};
}

namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> colorization_targets_cpu(
    const at::Tensor& images, const at::Tensor& bins, bool channels_last, int64_t factor, bool mean_pool, int64_t k,
    double sigma) {
  const ColorizationShapes s = check_colorization_args(images, bins, channels_last, factor, k, sigma);
  const at::Tensor in = images.contiguous();
  const at::Tensor centers = bins.contiguous();
  ColorizationOutputs out = allocate_colorization_outputs(s, k, in.options());
  const colorization::Args args = colorization_args(s, centers, channels_last, factor, mean_pool, k, sigma);
  const int64_t cells = s.out_height * s.out_width, pixels = s.height * s.width;
  at::parallel_for(0, s.batch * s.out_height, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end;) {
      // A run of cell rows within one image.
      const int64_t b = task / s.out_height, row = task % s.out_height;
      const int64_t rows = std::min(end - task, s.out_height - row);
      cpu::colorization_targets_rows(args, in.data_ptr<uint8_t>() + b * 3 * pixels,
                                     out.l.data_ptr<float>() + b * pixels, out.ab.data_ptr<float>() + b * 2 * cells,
                                     out.index.data_ptr<int64_t>() + b * k * cells,
                                     out.weight.data_ptr<float>() + b * k * cells, row, row + rows);
      task += rows;
    }
  });
  return {out.l, out.ab, out.index, out.weight};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) {
  m.def(
      "colorization_targets(Tensor images, Tensor bins, bool channels_last, int factor, bool mean_pool, int k, "
      "float sigma) -> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) { m.impl("colorization_targets", &colorization_targets_cpu); }

}  // namespace fastssl
