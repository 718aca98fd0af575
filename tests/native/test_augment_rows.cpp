// The vertical resize pass's weighted sum of uint8 rows: the body picked at run time (AVX2 on x86-64
// CPUs that have it) and the portable body both against a double-precision sum, over widths that
// exercise the 32-wide blocks and the tails, and tap counts from 1 to 9.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "../../kernels/cpu/augment.h"
#include "check.h"

int main() {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> weight(-0.5f, 1.0f);
  for (int64_t n : {1, 7, 8, 31, 32, 33, 64, 100, 672, 1503}) {
    for (int64_t taps : {1, 2, 3, 4, 5, 9}) {
      std::vector<std::vector<uint8_t>> storage(taps, std::vector<uint8_t>(n));
      std::vector<const uint8_t*> rows(taps);
      std::vector<float> k(taps);
      for (int64_t t = 0; t < taps; ++t) {
        for (auto& v : storage[t]) v = static_cast<uint8_t>(byte(rng));
        rows[t] = storage[t].data();
        k[t] = weight(rng);
      }
      std::vector<float> picked(n + 1, -1.0f), portable(n + 1, -1.0f);
      fastssl::cpu::weighted_rows_u8(rows.data(), k.data(), taps, n, picked.data());
      fastssl::cpu::weighted_rows_u8_portable(rows.data(), k.data(), taps, n, portable.data());
      for (int64_t x = 0; x < n; ++x) {
        double expected = 0.0, scale = 0.0;
        for (int64_t t = 0; t < taps; ++t) {
          expected += static_cast<double>(k[t]) * rows[t][x];
          scale += std::fabs(static_cast<double>(k[t])) * rows[t][x];
        }
        const double tolerance = 1e-6 * (scale + 1.0);  // float32 rounding of each partial sum
        CHECK(std::fabs(picked[x] - expected) <= tolerance, "picked body: n %lld taps %lld x %lld: %g vs %g",
              static_cast<long long>(n), static_cast<long long>(taps), static_cast<long long>(x), picked[x], expected);
        CHECK(std::fabs(portable[x] - expected) <= tolerance, "portable body: n %lld taps %lld x %lld: %g vs %g",
              static_cast<long long>(n), static_cast<long long>(taps), static_cast<long long>(x), portable[x],
              expected);
      }
      CHECK(picked[n] == -1.0f && portable[n] == -1.0f, "wrote past n = %lld", static_cast<long long>(n));
    }
  }
  return finish("augment_rows");
}
