#include "counting.h"

#include <vector>

namespace fastssl {
namespace cpu {

namespace {

// Area resize of the h x w region at `src` (row stride `stride`) to S x S.
template <typename T>
void area_resize(const T* src, int64_t stride, int64_t h, int64_t w, int64_t S, std::vector<double>& columns,
                 float* out) {
  columns.assign(w, 0.0);
  for (int64_t i = 0; i < S; ++i) {
    const int64_t r0 = i * h / S, r1 = ((i + 1) * h + S - 1) / S;
    std::fill(columns.begin(), columns.end(), 0.0);
    for (int64_t r = r0; r < r1; ++r) {
      const T* row = src + r * stride;
      for (int64_t x = 0; x < w; ++x) columns[x] += static_cast<double>(row[x]);
    }
    for (int64_t j = 0; j < S; ++j) {
      const int64_t c0 = j * w / S, c1 = ((j + 1) * w + S - 1) / S;
      double sum = 0.0;
      for (int64_t x = c0; x < c1; ++x) sum += columns[x];
      out[i * S + j] = static_cast<float>(sum / static_cast<double>((r1 - r0) * (c1 - c0)));
    }
  }
}

}  // namespace

template <typename T>
void counting_tiles_plane(const T* plane, int64_t H, int64_t W, int64_t S, float* out0, float* out1, float* out2,
                          float* out3, float* out4) {
  const int64_t h0 = H / 2, w0 = W / 2;
  std::vector<double> columns;
  area_resize(plane, W, H, W, S, columns, out0);
  area_resize(plane, W, h0, w0, S, columns, out1);
  area_resize(plane + w0, W, h0, W - w0, S, columns, out2);
  area_resize(plane + h0 * W, W, H - h0, w0, S, columns, out3);
  area_resize(plane + h0 * W + w0, W, H - h0, W - w0, S, columns, out4);
}

template void counting_tiles_plane<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t, float*, float*, float*, float*,
                                            float*);
template void counting_tiles_plane<float>(const float*, int64_t, int64_t, int64_t, float*, float*, float*, float*,
                                          float*);

}  // namespace cpu
}  // namespace fastssl
