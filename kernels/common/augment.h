// Per-pixel maths of the fused augmentation, shared by the CPU loops (kernels/cpu/augment.cpp) and
// future CUDA kernels. Specification: fastssl/reference/augment.py. Every function works on float32
// RGB in [0, 1] and is branch-free (selects only), so that gcc vectorises the loops that call it.
//
//   gray(r, g, b)         = color::gray (kernels/common/color.h): 0.299 r + 0.587 g + 0.114 b
//   brightness f          : clamp(f x)
//   contrast f, mean m    : clamp(f x + (1 - f) m), m = mean of gray over the image (computed by the caller)
//   saturation f          : clamp(f x + (1 - f) gray(x))
//   hue h                 : RGB -> HSV, H <- (H + h) mod 1, HSV -> RGB, clamp
//   solarize              : x >= 0.5 ? 1 - x : x
//   normalise             : (x - mean) / std (as (x - mean) * (1 / std))
#pragma once

#include <cmath>

#include "macros.h"

namespace fastssl {
namespace augment {

FASTSSL_HD float clamp01(float x) { return clamp_f(x, 0.0f, 1.0f); }

// f x + (1 - f) m, clamped: contrast (m the image's mean gray) and saturation (m the pixel's gray).
FASTSSL_HD float blend(float x, float f, float m) { return clamp01(f * x + (1.0f - f) * m); }

// x rounded to an integer (to even at ties) for |x| < 2^22: adding 1.5 * 2^23 leaves no fraction bits, so
// the float adder rounds; subtracting it again is exact. Relies on the compiler keeping the two additions
// (no -ffast-math / -fassociative-math in any build of these kernels).
FASTSSL_HD float round_nearest(float x) {
  constexpr float kShifter = 12582912.0f;  // 1.5 * 2^23
  return (x + kShifter) - kShifter;
}

// Hue rotation by `shift` turns: the reference's rgb_to_hsv -> (H + shift) mod 1 -> hsv_to_rgb, in a
// form without divisions by 6, sector tables or mod (equal up to float32 rounding, a few ulp).
//
// RGB -> HSV: v = max, delta = max - min (= v s), and with rc = (v - r) / delta (likewise gc, bc),
// 6 H = bc - gc when v == r, else 2 + rc - bc when v == g, else 4 + gc - rc (H = 0 when delta = 0).
// HSV -> RGB, with the hue in sextants K = 6 H: channel n (5 for r, 3 for g, 1 for b) is
// v - delta m(n + K), where m(k) = clamp(min(k, 4 - k), 0, 1) for k mod 6 in [0, 6) — the sector
// formulas p = v (1 - s), q = v (1 - s f), t = v (1 - s (1 - f)) as one function, with v s = delta.
// On [0, 6), m(k) = clamp(2 - |k - 2|, 0, 1), and |k - 2| >= 3 gives 0, so with the period folded in,
// m(k) = clamp(2 - |t|, 0, 1), t = (k - 2) - 6 round((k - 2) / 6) in [-3, 3]. Any rounding to an
// integer nearest to (k - 2) / 6 will do: the two candidates at a tie give t = 3 and t = -3, both m = 0.
// So round_nearest's two additions serve (instead of floor(x + 0.5), four instructions without SSE4.1).
// The result needs no clamp: with m = clamp(2 - |t|, 0, 1) in [0, 1] and delta = max - min rounded (so
// 0 <= delta <= v), v - delta m lies in [v - delta, v], inside [0, 1] whenever the pixel is (a bilinear
// resize can leave it an ulp above 1, and the result then within an ulp of the clamped one).
FASTSSL_HD float hue_channel(float k_minus_2, float v, float delta) {
  const float t = k_minus_2 - 6.0f * round_nearest(k_minus_2 * (1.0f / 6.0f));
  return v - delta * clamp01(2.0f - fabsf(t));
}

FASTSSL_HD void hue_shift(float& r, float& g, float& b, float shift) {
  const float v = max_f(r, max_f(g, b));
  const float mn = min_f(r, min_f(g, b));
  const float delta = v - mn;
  const float inv_delta = 1.0f / select(delta > 0.0f, delta, 1.0f);
  const float rc = (v - r) * inv_delta, gc = (v - g) * inv_delta, bc = (v - b) * inv_delta;
  const float h6 = select(v == r, bc - gc, select(v == g, 2.0f + rc - bc, 4.0f + gc - rc));  // in [-1, 5]
  const float k = h6 + 6.0f * shift;  // the rotated hue in sextants, not reduced: hue_channel folds the period
  r = hue_channel(k + 3.0f, v, delta);
  g = hue_channel(k + 1.0f, v, delta);
  b = hue_channel(k - 1.0f, v, delta);
}

FASTSSL_HD float solarize(float x) { return select(x >= 0.5f, 1.0f - x, x); }

// (x - mean) / std as a product with inv_std = 1 / std, computed once per channel: a division per value
// was the costliest instruction of the store pass; the two differ by about one ulp.
FASTSSL_HD float normalise(float x, float mean, float inv_std) { return (x - mean) * inv_std; }

// float32 -> bfloat16 bits, rounded to nearest even: add 0x7fff plus the lowest kept bit, truncate.
// NaN stays a (quiet) NaN.
FASTSSL_HD uint16_t float_to_bf16_bits(float x) {
  const uint32_t u = float_as_bits(x);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? 0x7fc0u : rounded);
}

// float32 -> float16 bits, rounded to nearest even, with subnormals, overflow to inf and NaN.
// Normal range (|x| >= 2^-14): rebias the exponent (127 -> 15, i.e. subtract 112 << 23) and round
// the 13 dropped mantissa bits as in float_to_bf16_bits; a carry into the exponent is the correct
// rounding, and a result >= 2^16 (float exponent 143) is inf.
// Subnormal range: |x| + 0.5 has an ulp of 2^-24, the float16 subnormal step, so the float adder
// rounds |x| / 2^-24 to the nearest even integer; subtracting the bits of 0.5 leaves that integer,
// which is also the float16 encoding (1024 = the smallest normal when it rounds up).
FASTSSL_HD uint16_t float_to_half_bits(float x) {
  const uint32_t u = float_as_bits(x);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  const uint32_t rounded = a + 0xfffu + ((a >> 13) & 1u);
  const uint32_t normal = rounded >= (143u << 23) ? 0x7c00u : (rounded - (112u << 23)) >> 13;
  const uint32_t subnormal = float_as_bits(bits_as_float(a) + 0.5f) - 0x3f000000u;
  uint32_t h = a < (113u << 23) ? subnormal : normal;
  h = a > 0x7f800000u ? 0x7e00u : h;
  return static_cast<uint16_t>(sign | h);
}

// Blur padding: the index of the pixel that padded position p (in [-half, n + half)) reads.
// The reference reflects by r = min(half, n - 1) pixels (edge not repeated), then replicates the
// outermost reflected pixel for the remaining half - r: positions left of -r read pixel r, positions
// right of n - 1 + r read pixel n - 1 - r.
FASTSSL_HD int64_t blur_source_index(int64_t p, int64_t n, int64_t half) {
  const int64_t r = half < n - 1 ? half : n - 1;
  int64_t q = p < 0 ? -p : p;
  q = q > 2 * (n - 1) - q ? 2 * (n - 1) - q : q;  // reflect at the right edge too: q <= n - 1 unless clipped
  q = p < -r ? r : q;
  q = p > n - 1 + r ? n - 1 - r : q;
  return q;
}

}  // namespace augment
}  // namespace fastssl
