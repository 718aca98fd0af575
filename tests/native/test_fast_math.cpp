// fast_log2 / fast_exp2 / fast_pow / fast_cbrt against double-precision libm over a wide range.
#include <cmath>
#include <random>

#include "../../kernels/common/fast_math.h"
#include "check.h"

int main() {
  std::mt19937 rng(1234);
  std::uniform_real_distribution<double> log_uniform(-69.0, 69.0);  // x in [1e-30, 1e30]
  double worst_pow = 0, worst_cbrt = 0, worst_exp2 = 0;
  for (int i = 0; i < 200000; ++i) {
    const float x = static_cast<float>(std::exp(log_uniform(rng)));
    for (float p : {2.4f, 1.0f / 2.4f, 1.0f / 3.0f}) {
      const double exact = std::pow(static_cast<double>(x), static_cast<double>(p));
      if (exact > 1e38 || exact < 1e-37) continue;  // outside float's normal range
      worst_pow = std::fmax(worst_pow, std::fabs(fastssl::fast_pow(x, p) - exact) / exact);
    }
    const double c = std::cbrt(static_cast<double>(x));
    worst_cbrt = std::fmax(worst_cbrt, std::fabs(fastssl::fast_cbrt(x) - c) / c);
    const float y = static_cast<float>(log_uniform(rng)) * 1.8f;  // [-124, 124]
    const double e = std::exp2(static_cast<double>(y));
    worst_exp2 = std::fmax(worst_exp2, std::fabs(fastssl::fast_exp2(y) - e) / e);
  }
  // Far from 1, float's resolution of p * log2(x) (ulp 8e-6 at 100) bounds any exp2(p log2 x).
  CHECK(worst_pow < 1e-5, "pow relative error %g", worst_pow);
  // On the range the Lab formulas use (linearisation bases in [0.09, 1], gamma in [0.003, 1]), |p log2 x| < 21:
  // half an ulp of y there is 1e-6, i.e. 7e-7 relative after exp2, plus log2's own rounding.
  double worst_lab_pow = 0;
  for (int i = 0; i <= 100000; ++i) {
    const float x = 0.003f + i * (2.0f - 0.003f) / 100000;
    for (float p : {2.4f, 1.0f / 2.4f}) {
      const double exact = std::pow(static_cast<double>(x), static_cast<double>(p));
      worst_lab_pow = std::fmax(worst_lab_pow, std::fabs(fastssl::fast_pow(x, p) - exact) / exact);
    }
  }
  CHECK(worst_lab_pow < 2e-6, "pow relative error on [0.003, 2]: %g", worst_lab_pow);
  CHECK(worst_cbrt < 4e-7, "cbrt relative error %g", worst_cbrt);
  CHECK(worst_exp2 < 4e-7, "exp2 relative error %g", worst_exp2);
  CHECK(std::isinf(fastssl::fast_exp2(200.0f)), "exp2 saturates to inf");
  CHECK(fastssl::fast_exp2(-200.0f) == 0.0f, "exp2 underflows to 0");
  std::printf("worst relative errors: pow %.3g, cbrt %.3g, exp2 %.3g\n", worst_pow, worst_cbrt, worst_exp2);
  return finish("test_fast_math");
}
