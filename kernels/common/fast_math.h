// Branch-free log2 / exp2 / pow / cbrt for positive normal floats, built from arithmetic and bit
// operations only, so that gcc vectorises the CPU loops that call them (libm's powf/cbrtf are
// scalar calls) and the CUDA kernels compute the same formulas as the CPU. The same formulas, not
// the same bits: nvcc contracts a * b + c into one FMA (one rounding instead of two) where gcc may
// not, so host and device results agree to a few ulp. Code that compares a result with a threshold
// (nearest bin, gamut edge) can therefore decide differently on the two sides when it lies within a
// few ulp of the threshold.
//
// Accuracy (checked by tests/native/test_fast_math.cpp against double precision): relative error
// below 4e-7 for log2-based pow on [1e-30, 1e30] and for cbrt on the same range.
//
// Callers pass arguments that are already clamped away from 0 (the Lab formulas only use the
// power branch above a threshold), so denormals, zero, infinities and NaN are not handled here.
#pragma once

#include "macros.h"

namespace fastssl {

// log2(x) = e + log2(m), x = m * 2^e with m in [sqrt(1/2), sqrt(2)).
// ln(m) = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = (m - 1) / (m + 1), |s| <= 0.1716, so the
// series truncated after s^11 has a relative error below 1e-10 — far under float precision.
FASTSSL_HD float fast_log2(float x) {
  const uint32_t bits = float_as_bits(x);
  int32_t e = static_cast<int32_t>((bits >> 23) & 0xffu) - 127;
  float m = bits_as_float((bits & 0x007fffffu) | 0x3f800000u);  // [1, 2)
  const bool big = m > 1.41421356237f;
  m = select(big, 0.5f * m, m);
  e += big ? 1 : 0;
  const float s = (m - 1.0f) / (m + 1.0f);
  const float s2 = s * s;
  const float series =
      1.0f + s2 * (1.0f / 3.0f + s2 * (1.0f / 5.0f + s2 * (1.0f / 7.0f + s2 * (1.0f / 9.0f + s2 * (1.0f / 11.0f)))));
  const float ln_m = 2.0f * s * series;
  return static_cast<float>(e) + ln_m * 1.44269504088896341f;
}

// 2^y = 2^n * sqrt(2) * exp(u), n = floor(y), u = (y - n - 1/2) ln 2 in [-0.347, 0.347];
// exp(u) by its Taylor series to u^7 (remainder < 6e-9). Saturates to +inf / 0 outside the
// float range.
FASTSSL_HD float fast_exp2(float y) {
  float yc = y < -126.0f ? -126.0f : y;
  yc = yc > 127.0f ? 127.0f : yc;
  const int32_t n = static_cast<int32_t>(yc + 126.0f) - 126;  // floor(yc): the sum is >= 0
  const float u = (yc - static_cast<float>(n) - 0.5f) * 0.693147180559945309f;
  const float p =
      1.0f + u * (1.0f + u * (0.5f + u * (1.0f / 6.0f + u * (1.0f / 24.0f + u * (1.0f / 120.0f + u * (1.0f / 720.0f + u * (1.0f / 5040.0f)))))));
  const float scale = bits_as_float(static_cast<uint32_t>(n + 127) << 23);
  float r = p * 1.41421356237309505f * scale;
  r = y > 128.0f ? bits_as_float(0x7f800000u) : r;
  return y < -126.0f ? 0.0f : r;
}

FASTSSL_HD float fast_pow(float x, float p) { return fast_exp2(p * fast_log2(x)); }

// cbrt by an exponent-dividing bit trick (within ~6%) and three Newton steps
// y <- (2y + x / y^2) / 3, each squaring the relative error: 6e-2 -> 4e-3 -> 2e-5 -> 4e-10.
FASTSSL_HD float fast_cbrt(float x) {
  float y = bits_as_float(float_as_bits(x) / 3u + 0x2a5137a0u);
  y = (2.0f * y + x / (y * y)) * (1.0f / 3.0f);
  y = (2.0f * y + x / (y * y)) * (1.0f / 3.0f);
  y = (2.0f * y + x / (y * y)) * (1.0f / 3.0f);
  return y;
}

}  // namespace fastssl
