#include "inpainting.h"

#include <algorithm>

namespace fastssl {
namespace cpu {

namespace {

// Marks row y of the mask: true on the columns of every box that covers the row.
void mask_row(const int64_t* boxes, int64_t K, int64_t y, int64_t W, bool* row) {
  std::fill(row, row + W, false);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t* b = boxes + 4 * k;
    if (y < b[0] || y >= b[0] + b[2]) continue;
    const int64_t left = std::max<int64_t>(0, b[1]), right = std::min(W, b[1] + b[3]);
    if (left < right) std::fill(row + left, row + right, true);
  }
}

}  // namespace

template <typename T>
void inpaint_boxes(const T* image, int64_t C, int64_t H, int64_t W, const int64_t* boxes, int64_t K, const T* fill,
                   T* out, bool* mask) {
  for (int64_t y = 0; y < H; ++y) {
    bool* m = mask + y * W;
    mask_row(boxes, K, y, W, m);
    for (int64_t c = 0; c < C; ++c) {
      const T* src = image + (c * H + y) * W;
      T* dst = out + (c * H + y) * W;
      const T value = fill[c];
      for (int64_t x = 0; x < W; ++x) dst[x] = m[x] ? value : src[x];
    }
  }
}

#define FASTSSL_INSTANTIATE(T) \
  template void inpaint_boxes<T>(const T*, int64_t, int64_t, int64_t, const int64_t*, int64_t, const T*, T*, bool*);
FASTSSL_INSTANTIATE(uint8_t)
FASTSSL_INSTANTIATE(uint16_t)
FASTSSL_INSTANTIATE(uint32_t)
FASTSSL_INSTANTIATE(uint64_t)
#undef FASTSSL_INSTANTIATE

}  // namespace cpu
}  // namespace fastssl
