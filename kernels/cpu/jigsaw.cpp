#include "jigsaw.h"

#include <cmath>

#include "../common/color.h"
#include "sum.h"

namespace fastssl {
namespace cpu {

namespace {

template <typename T>
constexpr float value_scale() {
  return sizeof(T) == 1 ? 1.0f / 255.0f : 1.0f;
}

// Copies channel `ch`'s tile into a contiguous float plane (the one strided read of the image) and
// returns the plane's sum, taken while the row is in registers.
template <typename T>
double gather_plane(const T* image, const jigsaw::Strides& s, const int64_t* origin, int64_t tile, float* plane) {
  constexpr float scale = value_scale<T>();
  const T* src = image + origin[0] * s.row + origin[1] * s.col;
  double sum = 0.0;
  for (int64_t y = 0; y < tile; ++y) {
    const T* row = src + y * s.row;
    float* dst = plane + y * tile;
    if (s.col == 1) {
#pragma omp simd
      for (int64_t x = 0; x < tile; ++x) dst[x] = static_cast<float>(row[x]) * scale;
    } else {
      for (int64_t x = 0; x < tile; ++x) dst[x] = static_cast<float>(row[x * s.col]) * scale;
    }
    sum += blocked_sum(tile, [dst](int64_t i) { return dst[i]; });
  }
  return sum;
}

void to_gray(float* r, float* g, float* b, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float luma = color::gray(r[i], g[i], b[i]);
    r[i] = g[i] = b[i] = luma;
  }
}

// Two passes (mean, then squared deviations): accurate for nearly flat tiles.
void standardise(float* v, int64_t n, double sum, float eps) {
  const float mean = static_cast<float>(sum / n);
  const double squares = blocked_sum(n, [v, mean](int64_t i) { return (v[i] - mean) * (v[i] - mean); });
  const float rstd = static_cast<float>(1.0 / std::sqrt(squares / n + static_cast<double>(eps)));
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) v[i] = (v[i] - mean) * rstd;
}

}  // namespace

template <typename T>
void jigsaw_tile(const T* image, const jigsaw::Strides& strides, const jigsaw::TileSpec& spec, int64_t tile,
                 bool normalize, float eps, float* out) {
  const int64_t n = tile * tile;
  double sums[3];
  for (int64_t ch = 0; ch < 3; ++ch) {
    sums[ch] = gather_plane(image + ch * strides.channel, strides, spec.origin + 2 * ch, tile, out + ch * n);
  }
  if (spec.gray) {
    to_gray(out, out + n, out + 2 * n, n);
    sums[0] = sums[1] = sums[2] = blocked_sum(n, [out](int64_t i) { return out[i]; });
  }
  for (int64_t ch = 0; ch < 3; ++ch) {
    float* plane = out + ch * n;
    if (spec.keep >= 0 && spec.keep != ch) {
      for (int64_t i = 0; i < n; ++i) plane[i] = 0.0f;
    } else if (normalize) {
      standardise(plane, n, sums[ch], eps);
    }
  }
}

#define FASTSSL_INSTANTIATE(T)                                                                              \
  template void jigsaw_tile<T>(const T*, const jigsaw::Strides&, const jigsaw::TileSpec&, int64_t, bool, float, \
                               float*);
FASTSSL_INSTANTIATE(uint8_t)
FASTSSL_INSTANTIATE(float)
FASTSSL_INSTANTIATE(double)
#undef FASTSSL_INSTANTIATE

}  // namespace cpu
}  // namespace fastssl
