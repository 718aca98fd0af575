// Per-pixel sRGB <-> CIE Lab maths, shared by the CPU loops (kernels/cpu/lab.cpp) and the CUDA
// kernels (kernels/cuda/lab.cu). The specification is fastssl/reference/lab.py; the constants are
// those of scikit-image and kornia (sRGB, D65 white, 2° observer):
//   linearise:  x > 0.04045 ? ((x + 0.055) / 1.055)^2.4 : x / 12.92
//   XYZ = M rgb_lin,  M = [[0.412453, 0.357580, 0.180423],
//                          [0.212671, 0.715160, 0.072169],
//                          [0.019334, 0.119193, 0.950227]]
//   f(t) = t > 0.008856 ? t^(1/3) : 7.787 t + 16/116,  t = XYZ / white, white = (0.95047, 1, 1.08883)
//   L = 116 f(Y) - 16,  a = 500 (f(X) - f(Y)),  b = 200 (f(Y) - f(Z))
// Here the white-point division is folded into the matrix rows (kRgbToXyzN) and its inverse into
// the columns of M^-1 (kXyzNToRgb); both were computed in double precision from the constants above.
//
// Each power is evaluated on an argument clamped to its branch threshold, so the branch that is not
// taken never sees 0 or a negative number: every finite input gives a finite output. NaN in any
// channel gives NaN in every output channel.
#pragma once

#include "fast_math.h"

namespace fastssl {
namespace lab {

constexpr float kLinearThreshold = 0.04045f;
constexpr float kGammaThreshold = 0.0031308f;
constexpr float kFThreshold = 0.008856f;
constexpr float kFInvThreshold = 0.2068966f;
constexpr float kFSlope = 7.787f;
constexpr float kFOffset = 16.0f / 116.0f;

FASTSSL_HD float srgb_to_linear(float x) {
  const float base = max_f((x + 0.055f) * (1.0f / 1.055f), (kLinearThreshold + 0.055f) / 1.055f);
  return select(x > kLinearThreshold, fast_pow(base, 2.4f), x * (1.0f / 12.92f));
}

FASTSSL_HD float linear_to_srgb(float x) {
  const float base = max_f(x, kGammaThreshold);
  return select(x > kGammaThreshold, 1.055f * fast_pow(base, 1.0f / 2.4f) - 0.055f, 12.92f * x);
}

FASTSSL_HD float lab_f(float t) {
  return select(t > kFThreshold, fast_cbrt(max_f(t, kFThreshold)), kFSlope * t + kFOffset);
}

FASTSSL_HD float lab_f_inv(float f) {
  return select(f > kFInvThreshold, f * f * f, (f - kFOffset) * (1.0f / kFSlope));
}

// Linear RGB -> Lab. Input of any finite range; L in [0, 100] for linear RGB in [0, 1].
FASTSSL_HD void linear_rgb_to_lab(float r, float g, float b, float& L, float& A, float& B) {
  // M with each row divided by the white point component. The matrices are local constants because
  // nvcc does not let device code read namespace-scope constexpr arrays.
  constexpr float kRgbToXyzN[3][3] = {
      {0.4339463633781182f, 0.3762138731364483f, 0.1898250339305817f},
      {0.212671f, 0.71516f, 0.072169f},
      {0.017756674595666908f, 0.10946887943939825f, 0.8727046462716862f},
  };
  const float fx = lab_f(kRgbToXyzN[0][0] * r + kRgbToXyzN[0][1] * g + kRgbToXyzN[0][2] * b);
  const float fy = lab_f(kRgbToXyzN[1][0] * r + kRgbToXyzN[1][1] * g + kRgbToXyzN[1][2] * b);
  const float fz = lab_f(kRgbToXyzN[2][0] * r + kRgbToXyzN[2][1] * g + kRgbToXyzN[2][2] * b);
  L = 116.0f * fy - 16.0f;
  A = 500.0f * (fx - fy);
  B = 200.0f * (fy - fz);
}

FASTSSL_HD void rgb_to_lab(float r, float g, float b, float& L, float& A, float& B) {
  linear_rgb_to_lab(srgb_to_linear(r), srgb_to_linear(g), srgb_to_linear(b), L, A, B);
  const bool nan = (r != r) | (g != g) | (b != b);
  const float qnan = bits_as_float(0x7fc00000u);
  L = select(nan, qnan, L);
  A = select(nan, qnan, A);
  B = select(nan, qnan, B);
}

// Lab -> sRGB; with clip the result is clamped to [0, 1] (out-of-gamut Lab, as scikit-image does).
FASTSSL_HD void lab_to_rgb(float L, float A, float B, bool clip, float& r, float& g, float& b) {
  const float fy = (L + 16.0f) * (1.0f / 116.0f);
  const float fx = fy + A * (1.0f / 500.0f);
  const float fz = fy - B * (1.0f / 200.0f);
  const float x = lab_f_inv(fx), y = lab_f_inv(fy), z = lab_f_inv(fz);
  // M^-1 with each column multiplied by the white point component.
  constexpr float kXyzNToRgb[3][3] = {
      {3.079980302271805f, -1.5371515162713185f, -0.5428213080224701f},
      {-0.9212477523232383f, 1.8759900014898907f, 0.045247339514465995f},
      {0.05289046109881183f, -0.20404133836651123f, 1.1512320119619401f},
  };
  r = linear_to_srgb(kXyzNToRgb[0][0] * x + kXyzNToRgb[0][1] * y + kXyzNToRgb[0][2] * z);
  g = linear_to_srgb(kXyzNToRgb[1][0] * x + kXyzNToRgb[1][1] * y + kXyzNToRgb[1][2] * z);
  b = linear_to_srgb(kXyzNToRgb[2][0] * x + kXyzNToRgb[2][1] * y + kXyzNToRgb[2][2] * z);
  // Branch-free clipping (bounds of +-inf when not clipping) keeps the CPU loops vectorisable.
  const float lo = clip ? 0.0f : -bits_as_float(0x7f800000u), hi = clip ? 1.0f : bits_as_float(0x7f800000u);
  r = clamp_f(r, lo, hi);
  g = clamp_f(g, lo, hi);
  b = clamp_f(b, lo, hi);
  const bool nan = (L != L) | (A != A) | (B != B);
  const float qnan = bits_as_float(0x7fc00000u);
  r = select(nan, qnan, r);
  g = select(nan, qnan, g);
  b = select(nan, qnan, b);
}

}  // namespace lab
}  // namespace fastssl
