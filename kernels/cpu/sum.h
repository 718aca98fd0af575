// Sums of many floats at float speed with near-double accuracy: float lanes over runs of kRun terms
// (vectorised), the runs added in double. As accurate as a double sum for the thousands of terms of a
// tile or a logit row. Example: blocked_sum(n, [x](int64_t i) { return x[i]; }) is the sum of x[0, n).
#pragma once

#include <cstdint>

namespace fastssl {
namespace cpu {

constexpr int64_t kRun = 64;

template <typename Fn>
inline double blocked_sum(int64_t n, Fn term) {
  double total = 0.0;
  for (int64_t start = 0; start < n; start += kRun) {
    const int64_t end = start + kRun < n ? start + kRun : n;
    float run = 0.0f;
#pragma omp simd reduction(+ : run)
    for (int64_t i = start; i < end; ++i) run += term(i);
    total += run;
  }
  return total;
}

}  // namespace cpu
}  // namespace fastssl
