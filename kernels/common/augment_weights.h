// Antialiased resize weights of one axis, per output sample: the maths of
// fastssl/ops/augment_weights.py (its docstring derives them from ATen's _compute_weights_aa), in
// double and in the same order of operations, so that both give the same weights. Shared by the CPU
// loop (kernels/cpu/augment_weights.cpp) and future CUDA kernels.
//
// An input of length L resized to n samples, scale = L / n, stretch = max(scale, 1),
// support = filter_support * stretch; output i is centred at centre = scale (i + 0.5) and reads the
// inputs [xmin, xend), xmin = max(trunc(centre - support + 0.5), 0), xend = min(trunc(centre + support
// + 0.5), L); input j weighs filter((j - centre + 0.5) * (1 / stretch)), normalised over the run (a product
// with 1 / total).
#pragma once

#include <cmath>

#include "macros.h"

namespace fastssl {
namespace augment_weights {

constexpr double kKeysA = -0.5;  // Keys' cubic of the antialiased bicubic filter

struct Axis {
  double length, scale, stretch, support;
};

FASTSSL_HD Axis axis(int64_t length, int64_t out, bool bicubic) {
  const double L = static_cast<double>(length);
  const double scale = L / static_cast<double>(out);
  const double stretch = scale > 1.0 ? scale : 1.0;
  return {L, scale, stretch, (bicubic ? 2.0 : 1.0) * stretch};
}

FASTSSL_HD double centre(const Axis& a, int64_t i) { return a.scale * (static_cast<double>(i) + 0.5); }

FASTSSL_HD double run_begin(const Axis& a, int64_t i) {  // xmin
  const double x = trunc(centre(a, i) - a.support + 0.5);
  return x > 0.0 ? x : 0.0;
}

FASTSSL_HD double run_end(const Axis& a, int64_t i) {  // xend
  const double x = trunc(centre(a, i) + a.support + 0.5);
  return x < a.length ? x : a.length;
}

// The triangle max(1 - |t|, 0), or Keys' cubic (a + 2)|t|^3 - (a + 3)|t|^2 + 1 on [0, 1),
// a|t|^3 - 5a|t|^2 + 8a|t| - 4a on [1, 2), 0 beyond.
FASTSSL_HD double filter(double t, bool bicubic) {
  t = fabs(t);
  if (!bicubic) {
    const double w = 1.0 - t;
    return w > 0.0 ? w : 0.0;
  }
  const double a = kKeysA;
  if (t < 1.0) return ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
  if (t < 2.0) return ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a;
  return 0.0;
}

}  // namespace augment_weights
}  // namespace fastssl
