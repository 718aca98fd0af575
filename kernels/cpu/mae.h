// CPU bodies of MAE masking (specification: fastssl.reference.mae). Torch-free: csrc/mae.cpp splits
// the work over threads — first the per-image sort of the noise, then (image, output slot) pairs,
// each of which reads one patch straight from the image and writes it once (visible or target).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace fastssl {
namespace cpu {
namespace mae {

// Where the patches of one image live: p, the width of the patch grid (W / p) and the element
// strides of the channel, row and column dimensions of the (3, H, W) image (any strides).
struct PatchGrid {
  int64_t patch;
  int64_t grid_width;
  int64_t channel_stride;
  int64_t row_stride;
  int64_t col_stride;

  int64_t values() const { return patch * patch * 3; }  // p * p * 3 values per patch
  // Element offset of the top-left pixel (channel 0) of patch `index` (row-major over the grid).
  int64_t offset(int64_t index) const {
    return (index / grid_width) * patch * row_stride + (index % grid_width) * patch * col_stride;
  }
};

// One row of noise (L values, no NaN) -> the masking's indices: patches sorted by (noise, index)
// ascending (a stable sort: ties keep the lower index first); the first len_keep are kept.
// Writes ids_keep (len_keep, sorted order), ids_restore (L, the rank of each patch), ids_masked
// (L - len_keep, ascending patch index) and mask (L, 1 = removed). `order` is L values of scratch.
void shuffle_row(const double* noise, int64_t L, int64_t len_keep, int64_t* order, int64_t* ids_keep,
                 int64_t* ids_restore, int64_t* ids_masked, float* mask);

// Copies the patch whose top-left pixel is `first` to `out` in (p, q, c) order.
template <typename T>
inline void gather_patch(const T* first, const PatchGrid& g, T* out) {
  const int64_t p = g.patch, cs = g.channel_stride;
  for (int64_t i = 0; i < p; ++i) {
    const T* row = first + i * g.row_stride;
    T* o = out + i * p * 3;
    for (int64_t j = 0; j < p; ++j) {
      const T* px = row + j * g.col_stride;
      o[3 * j] = px[0];
      o[3 * j + 1] = px[cs];
      o[3 * j + 2] = px[2 * cs];
    }
  }
}

// A pixel as double: arithmetic types directly, the half types (which convert to float) through float.
template <typename T>
inline double to_double(T v) {
  if constexpr (std::is_arithmetic_v<T>) {
    return static_cast<double>(v);
  } else {
    return static_cast<double>(static_cast<float>(v));
  }
}

// Calls fn(k, value) for every value of the patch at `first`, k its index in (p, q, c) order; the
// innermost loop runs along a row of one channel plane.
template <typename T, typename Fn>
inline void for_each_value(const T* first, const PatchGrid& g, Fn fn) {
  const int64_t p = g.patch;
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t i = 0; i < p; ++i) {
      const T* row = first + c * g.channel_stride + i * g.row_stride;
      for (int64_t j = 0; j < p; ++j) fn((i * p + j) * 3 + c, to_double(row[j * g.col_stride]));
    }
  }
}

// double -> the target's type (float32 rounding first for the half types, which convert from float).
template <typename Out>
inline Out from_double(double v) {
  if constexpr (std::is_same_v<Out, double>) {
    return v;
  } else {
    return static_cast<Out>(static_cast<float>(v));
  }
}

// The target of the patch at `first`, written in (p, q, c) order: its values, normalised per patch when
// `norm`. The statistics are sums in double over the patch read row by row (contiguous runs of the
// image planes, still in L1 on the later passes): mean first, then the centred squares (two passes,
// no cancellation). Each value is computed in double and rounded once to Out.
template <typename T, typename Out>
inline void patch_target(const T* first, const PatchGrid& g, bool norm, double eps, Out* out) {
  const int64_t n = g.values();
  double mean = 0.0, inv_std = 1.0;
  if (norm) {
    double sum = 0.0;
    for_each_value(first, g, [&](int64_t, double x) { sum += x; });
    mean = sum / static_cast<double>(n);
    double squares = 0.0;
    for_each_value(first, g, [&](int64_t, double x) { squares += (x - mean) * (x - mean); });
    inv_std = 1.0 / std::sqrt(squares / static_cast<double>(n - 1) + eps);
  }
  for_each_value(first, g, [&](int64_t k, double x) { out[k] = from_double<Out>((x - mean) * inv_std); });
}

}  // namespace mae
}  // namespace cpu
}  // namespace fastssl
