// Torch bindings of MAE masking: the schema of fastssl_C::mae_masking and its CPU implementation.
// Two parallel phases: the stable sort of each image's noise (threads over images), then every
// (image, output slot) pair gathers one patch straight from the pixels (threads over pairs): slots
// [0, len_keep) are the visible patches, the others the targets of the masked patches.
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include <tuple>
#include <vector>

#include "../kernels/cpu/mae.h"
#include "host_pool.h"

namespace fastssl {
namespace {

using Outputs = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
constexpr double kNormPixEps = 1e-6;
constexpr int64_t kSlotGrain = 16;  // patches per task: about 48 KiB of float32 output

void check_inputs(const at::Tensor& images, const at::Tensor& noise, int64_t p, int64_t len_keep) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "images must have shape (B, 3, H, W), got ", images.sizes());
  const auto t = images.scalar_type();
  TORCH_CHECK(t == at::kByte || t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16,
              "images must be uint8, float32, float64, float16 or bfloat16, got ", t);
  TORCH_CHECK(p >= 1, "patch_size must be >= 1, got ", p);
  TORCH_CHECK(images.size(2) % p == 0 && images.size(3) % p == 0, "patch_size ", p,
              " must divide the image height and width, got ", images.sizes());
  const int64_t L = (images.size(2) / p) * (images.size(3) / p);
  TORCH_CHECK(noise.dim() == 2 && noise.size(0) == images.size(0) && noise.size(1) == L,
              "noise must have shape (B, L) = (", images.size(0), ", ", L, "), got ", noise.sizes());
  TORCH_CHECK(noise.is_floating_point(), "noise must be a floating-point tensor, got ", noise.scalar_type());
  TORCH_CHECK(len_keep >= 0 && len_keep <= L, "len_keep must be in [0, L = ", L, "], got ", len_keep);
}

cpu::mae::PatchGrid patch_grid(const at::Tensor& images, int64_t p) {
  return {p, images.size(3) / p, images.stride(1), images.stride(2), images.stride(3)};
}

// Phase 1: ids_keep, ids_restore, ids_masked and mask of every image.
void shuffle_all(const at::Tensor& noise64, int64_t len_keep, at::Tensor& ids_keep, at::Tensor& ids_restore,
                 at::Tensor& ids_masked, at::Tensor& mask) {
  const int64_t B = noise64.size(0), L = noise64.size(1), M = L - len_keep;
  const double* noise = noise64.data_ptr<double>();
  int64_t *keep = ids_keep.data_ptr<int64_t>(), *restore = ids_restore.data_ptr<int64_t>();
  int64_t* masked = ids_masked.data_ptr<int64_t>();
  float* m = mask.data_ptr<float>();
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> order(L);
    for (int64_t b = begin; b < end; ++b) {
      cpu::mae::shuffle_row(noise + b * L, L, len_keep, order.data(), keep + b * len_keep, restore + b * L,
                            masked + b * M, m + b * L);
    }
  });
}

// Phase 2: one patch per (image, slot), read from the image and written once. Visible patches are
// copied as the unsigned integers of the element size (Bits); targets are computed from `source`
// (the images, or their float32 copy for the half types) in T and written in Out.
template <typename Bits, typename T, typename Out>
void gather_all(const at::Tensor& images, const at::Tensor& source, int64_t p, const at::Tensor& ids_keep,
                const at::Tensor& ids_masked, bool norm_pix, at::Tensor& visible, at::Tensor& targets) {
  const int64_t B = images.size(0), K = ids_keep.size(1), M = ids_masked.size(1), L = K + M, P = 3 * p * p;
  const cpu::mae::PatchGrid g = patch_grid(images, p), sg = patch_grid(source, p);
  const int64_t image_stride = images.stride(0), source_stride = source.stride(0);
  const Bits* pixels = static_cast<const Bits*>(images.const_data_ptr());
  const T* values = static_cast<const T*>(source.const_data_ptr());
  const int64_t *keep = ids_keep.const_data_ptr<int64_t>(), *masked = ids_masked.const_data_ptr<int64_t>();
  Bits* vis = static_cast<Bits*>(visible.data_ptr());
  Out* tgt = static_cast<Out*>(targets.data_ptr());
  at::parallel_for(0, B * L, kSlotGrain, [&](int64_t begin, int64_t end) {
    std::vector<double> planes(P);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / L, slot = task % L;
      if (slot < K) {
        cpu::mae::gather_patch(pixels + b * image_stride + g.offset(keep[b * K + slot]), g, vis + (b * K + slot) * P);
      } else {
        const int64_t j = slot - K;
        cpu::mae::patch_target(values + b * source_stride + sg.offset(masked[b * M + j]), sg, norm_pix, kNormPixEps,
                               planes.data(), tgt + (b * M + j) * P);
      }
    }
  });
}

Outputs mae_masking_cpu(const at::Tensor& images, const at::Tensor& noise, int64_t patch_size, int64_t len_keep,
                        bool norm_pix) {
  check_inputs(images, noise, patch_size, len_keep);
  const int64_t B = images.size(0), p = patch_size, w = images.size(3) / p;
  const int64_t L = (images.size(2) / p) * w, M = L - len_keep, P = p * p * 3;
  // float64 holds every float16/bfloat16/float32 value exactly, so the sort order is the noise's own.
  const at::Tensor noise64 = noise.to(at::kDouble).contiguous();
  const auto i64 = images.options().dtype(at::kLong);
  at::Tensor ids_keep = pooled_empty({B, len_keep}, i64), ids_restore = pooled_empty({B, L}, i64);
  at::Tensor ids_masked = pooled_empty({B, M}, i64);
  at::Tensor mask = pooled_empty({B, L}, images.options().dtype(at::kFloat));
  shuffle_all(noise64, len_keep, ids_keep, ids_restore, ids_masked, mask);

  const auto type = images.scalar_type();
  at::Tensor visible = pooled_empty({B, len_keep, P}, images.options());
  // float32 targets but for float64 images (the half types' are rounded to their type at the end).
  at::Tensor targets = pooled_empty({B, M, P}, images.options().dtype(type == at::kDouble ? at::kDouble : at::kFloat));
  if (type == at::kByte) {
    gather_all<uint8_t, uint8_t, float>(images, images, p, ids_keep, ids_masked, norm_pix, visible, targets);
  } else if (type == at::kFloat) {
    gather_all<uint32_t, float, float>(images, images, p, ids_keep, ids_masked, norm_pix, visible, targets);
  } else if (type == at::kDouble) {
    gather_all<uint64_t, double, double>(images, images, p, ids_keep, ids_masked, norm_pix, visible, targets);
  } else {
    gather_all<uint16_t, float, float>(images, images.to(at::kFloat), p, ids_keep, ids_masked, norm_pix, visible,
                                       targets);
    targets = targets.to(type);
  }
  return std::make_tuple(visible, mask, ids_keep, ids_restore, ids_masked, targets);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) {
  m.def("mae_masking(Tensor images, Tensor noise, int patch_size, int len_keep, bool norm_pix) -> "
        "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) {
  m.impl("mae_masking", &mae_masking_cpu);
}

}  // namespace fastssl
