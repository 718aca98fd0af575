#include "rotations.h"

#include <algorithm>

#include "../common/macros.h"

namespace fastssl {
namespace cpu {

namespace {
constexpr int64_t kTile = 32;  // a 32 x 32 tile of every output stays in L1 while its columns are written
}

// Input (y, x) lands at (y, x) for k = 0, (S-1-x, y) for k = 1, (S-1-y, S-1-x) for k = 2 and
// (x, S-1-y) for k = 3 (rot90: out1[i][j] = in[j][S-1-i], out3[i][j] = in[S-1-j][i]).
template <typename T>
void rotate_plane4(const T* __restrict src, int64_t S, T* __restrict out0, T* __restrict out1, T* __restrict out2,
                   T* __restrict out3) {
  const int64_t last = S - 1;
  for (int64_t ty = 0; ty < S; ty += kTile) {
    const int64_t y_end = std::min(S, ty + kTile);
    for (int64_t tx = 0; tx < S; tx += kTile) {
      const int64_t x_end = std::min(S, tx + kTile);
      for (int64_t y = ty; y < y_end; ++y) {
        const T* row = src + y * S;
        T* row0 = out0 + y * S;
        T* row2 = out2 + (last - y) * S + last;
        for (int64_t x = tx; x < x_end; ++x) {
          const T v = row[x];
          row0[x] = v;
          row2[-x] = v;
          out1[(last - x) * S + y] = v;
          out3[x * S + (last - y)] = v;
        }
      }
    }
  }
}

#define FASTSSL_INSTANTIATE(T) template void rotate_plane4<T>(const T*, int64_t, T*, T*, T*, T*);
FASTSSL_FOR_EACH_ELEMENT_SIZE(FASTSSL_INSTANTIATE)
#undef FASTSSL_INSTANTIATE

}  // namespace cpu
}  // namespace fastssl
