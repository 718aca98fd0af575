#include "mae.h"

#include <algorithm>
#include <numeric>

namespace fastssl {
namespace cpu {
namespace mae {

void shuffle_row(const double* noise, int64_t L, int64_t len_keep, int64_t* order, int64_t* ids_keep,
                 int64_t* ids_restore, int64_t* ids_masked, float* mask) {
  std::iota(order, order + L, int64_t{0});
  std::stable_sort(order, order + L, [noise](int64_t a, int64_t b) { return noise[a] < noise[b]; });
  for (int64_t rank = 0; rank < L; ++rank) ids_restore[order[rank]] = rank;
  std::copy(order, order + len_keep, ids_keep);
  int64_t masked = 0;
  for (int64_t j = 0; j < L; ++j) {
    const bool removed = ids_restore[j] >= len_keep;
    mask[j] = removed ? 1.0f : 0.0f;
    if (removed) ids_masked[masked++] = j;
  }
}

}  // namespace mae
}  // namespace cpu
}  // namespace fastssl
