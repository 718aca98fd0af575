// Torch bindings of the jigsaw tiles: schema of fastssl_C::jigsaw_tiles and its CPU implementation
// (threads over (image, tile) pairs). Parameters are drawn and permuted in Python (fastssl.ops.jigsaw).
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include <optional>

#include "../kernels/cpu/jigsaw.h"
#include "checks.h"
#include "host_pool.h"

namespace fastssl {
namespace {

// Shapes and dtypes only: fastssl.ops.jigsaw checks the values (offsets, keep, sources) before they reach here.
void check_jigsaw_args(const at::Tensor& images, const at::Tensor& origins, const at::Tensor& gray,
                       const at::Tensor& keep, const std::optional<at::Tensor>& sources, int64_t tile) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "images must have shape (B, 3, H, W), got ", images.sizes());
  const auto type = images.scalar_type();
  TORCH_CHECK(type == at::kByte || type == at::kFloat || type == at::kDouble,
              "images must be uint8, float32 or float64, got ", type);
  const int64_t B = images.size(0), H = images.size(2), W = images.size(3);
  TORCH_CHECK(tile >= 1 && tile <= H && tile <= W, "tile must be in [1, min(H, W)], got ", tile, " for images of ",
              H, " x ", W);
  check_tensor(origins, "origins", at::kLong, {B, -1, 3, 2});
  const int64_t T = origins.size(1);
  check_tensor(gray, "gray", at::kLong, {B, T});
  check_tensor(keep, "keep", at::kLong, {B, T});
  if (sources) check_tensor(*sources, "sources", at::kLong, {B, T});
}

// The kernel reads every tile whole, trusting its origin and image: the caller clamps the origins
// (squares_inside) and the sources (into the batch). `source` is null when each tile reads its own image.
template <typename T>
void tiles_loop(const at::Tensor& images, const at::Tensor& origins, const at::Tensor& gray, const at::Tensor& keep,
                const int64_t* source, int64_t tile, bool normalize, float eps, at::Tensor& out) {
  const int64_t T_ = origins.size(1), tasks = origins.size(0) * T_, plane = tile * tile;
  const T* src = images.const_data_ptr<T>();
  const jigsaw::Strides strides{images.stride(1), images.stride(2), images.stride(3)};
  const int64_t image_stride = images.stride(0);
  const int64_t* origin = origins.const_data_ptr<int64_t>();
  const int64_t* gray_flag = gray.const_data_ptr<int64_t>();
  const int64_t* kept = keep.const_data_ptr<int64_t>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const jigsaw::TileSpec spec{origin + 6 * task, gray_flag[task] != 0, kept[task]};
      const int64_t image = source ? source[task] : task / T_;
      cpu::jigsaw_tile(src + image * image_stride, strides, spec, tile, normalize, static_cast<float>(eps),
                       dst + task * 3 * plane);
    }
  });
}

at::Tensor jigsaw_tiles_cpu(const at::Tensor& images, const at::Tensor& origins, const at::Tensor& gray,
                            const at::Tensor& keep, int64_t tile, bool normalize, double eps,
                            const std::optional<at::Tensor>& sources) {
  check_jigsaw_args(images, origins, gray, keep, sources, tile);
  // The kernel reads the images at their strides (no copy); the small parameter tensors are made contiguous.
  const auto o = squares_inside(origins, tile, images.size(2), images.size(3));
  const auto g = gray.contiguous(), k = keep.contiguous();
  const auto s = sources ? std::optional<at::Tensor>(sources->clamp(0, images.size(0) - 1).contiguous()) : std::nullopt;
  const int64_t* source = s ? s->const_data_ptr<int64_t>() : nullptr;
  at::Tensor out = pooled_empty({origins.size(0), origins.size(1), 3, tile, tile}, images.options().dtype(at::kFloat));
  switch (images.scalar_type()) {
    case at::kByte: tiles_loop<uint8_t>(images, o, g, k, source, tile, normalize, static_cast<float>(eps), out); break;
    case at::kFloat: tiles_loop<float>(images, o, g, k, source, tile, normalize, static_cast<float>(eps), out); break;
    default: tiles_loop<double>(images, o, g, k, source, tile, normalize, static_cast<float>(eps), out); break;
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) {
  m.def("jigsaw_tiles(Tensor images, Tensor origins, Tensor gray, Tensor keep, int tile, bool normalize, "
        "float eps, Tensor? sources=None) -> Tensor");
}

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) { m.impl("jigsaw_tiles", &jigsaw_tiles_cpu); }

}  // namespace fastssl
