#include "relative_position.h"

#include <cstring>

#include "../common/hash.h"
#include "../common/macros.h"

namespace fastssl {
namespace cpu {

namespace {

template <typename T>
void copy_patch(const T* plane, int64_t W, int64_t y0, int64_t x0, int64_t P, T* out) {
  for (int64_t y = 0; y < P; ++y) std::memcpy(out + y * P, plane + (y0 + y) * W + x0, P * sizeof(T));
}

// Value n of the sample's noise stream is fmix32(key ^ n), n = ((patch * 3 + channel) * P + y) * P + x.
template <typename T>
void noise_patch(uint32_t key, uint32_t first, const T* levels, int64_t P, T* out) {
  for (int64_t i = 0; i < P * P; ++i) {
    const uint32_t h = hash::fmix32(key ^ (first + static_cast<uint32_t>(i)));
    out[i] = levels[relative_position::byte_sum(h)];
  }
}

}  // namespace

template <typename T>
void relative_position_pair(const T* image, int64_t H, int64_t W, const int64_t* corners, const int64_t* keep,
                            uint32_t key, const T* table, int64_t P, T* out) {
  for (int64_t p = 0; p < 2; ++p) {
    for (int64_t c = 0; c < 3; ++c) {
      T* dst = out + (p * 3 + c) * P * P;
      if (keep[p] >= 0 && keep[p] != c) {
        noise_patch(key, static_cast<uint32_t>((p * 3 + c) * P * P), table + c * relative_position::kNoiseLevels,
                    P, dst);
      } else {
        copy_patch(image + c * H * W, W, corners[2 * p], corners[2 * p + 1], P, dst);
      }
    }
  }
}

#define FASTSSL_INSTANTIATE(T)                                                                                \
  template void relative_position_pair<T>(const T*, int64_t, int64_t, const int64_t*, const int64_t*, uint32_t, \
                                          const T*, int64_t, T*);
FASTSSL_FOR_EACH_ELEMENT_SIZE(FASTSSL_INSTANTIATE)
#undef FASTSSL_INSTANTIATE

}  // namespace cpu
}  // namespace fastssl
