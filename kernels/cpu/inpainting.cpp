#include "inpainting.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../common/macros.h"

namespace fastssl {
namespace cpu {

namespace {

// Columns of row y inside any box, as sorted disjoint runs [begin, end) written to `runs` (2 values
// each, room for K runs); returns how many.
int64_t hole_runs(const int64_t* boxes, int64_t K, int64_t y, int64_t W, int64_t* runs) {
  int64_t n = 0;
  for (int64_t k = 0; k < K; ++k) {
    const int64_t* b = boxes + 4 * k;
    if (y < b[0] || y >= b[0] + b[2]) continue;
    const int64_t left = std::max<int64_t>(0, b[1]), right = std::min(W, b[1] + b[3]);
    if (left >= right) continue;
    int64_t i = n++;  // insertion by begin: K is a handful of boxes
    for (; i > 0 && runs[2 * (i - 1)] > left; --i) {
      runs[2 * i] = runs[2 * (i - 1)];
      runs[2 * i + 1] = runs[2 * (i - 1) + 1];
    }
    runs[2 * i] = left;
    runs[2 * i + 1] = right;
  }
  int64_t merged = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (merged > 0 && runs[2 * i] <= runs[2 * merged - 1]) {
      runs[2 * merged - 1] = std::max(runs[2 * merged - 1], runs[2 * i + 1]);
    } else {
      runs[2 * merged] = runs[2 * i];
      runs[2 * merged + 1] = runs[2 * i + 1];
      ++merged;
    }
  }
  return merged;
}

}  // namespace

// The image is copied whole (one memcpy: the planes are contiguous), then the holes are filled row
// by row; the rewritten rows are still in cache, so the output is streamed out about once.
template <typename T>
void inpainting_masks(const T* image, int64_t C, int64_t H, int64_t W, const int64_t* boxes, int64_t K, const T* fill,
                   T* out, bool* mask) {
  std::memcpy(out, image, static_cast<size_t>(C * H * W) * sizeof(T));
  std::memset(mask, 0, static_cast<size_t>(H * W));
  std::vector<int64_t> runs(2 * static_cast<size_t>(K));
  for (int64_t y = 0; y < H; ++y) {
    const int64_t n = hole_runs(boxes, K, y, W, runs.data());
    for (int64_t r = 0; r < n; ++r) {
      const int64_t begin = runs[2 * r], length = runs[2 * r + 1] - begin;
      std::memset(mask + y * W + begin, 1, static_cast<size_t>(length));
      for (int64_t c = 0; c < C; ++c) std::fill_n(out + (c * H + y) * W + begin, length, fill[c]);
    }
  }
}

#define FASTSSL_INSTANTIATE(T) \
  template void inpainting_masks<T>(const T*, int64_t, int64_t, int64_t, const int64_t*, int64_t, const T*, T*, bool*);
FASTSSL_FOR_EACH_ELEMENT_SIZE(FASTSSL_INSTANTIATE)
#undef FASTSSL_INSTANTIATE

}  // namespace cpu
}  // namespace fastssl
