// Colour constants shared by every kernel that converts colours, on the CPU and the GPU.
//
//   gray(r, g, b) = 0.299 r + 0.587 g + 0.114 b   (ITU-R BT.601 luma, GRAY_WEIGHTS of
//                                                  fastssl/reference/augment.py; augment and jigsaw)
//   srgb_table().v[v] = linearise(v / 255), v in 0..255, linearise(x) = x > 0.04045 ?
//                       ((x + 0.055) / 1.055)^2.4 : x / 12.92 (sRGB, as fastssl/reference/lab.py)
//
// Example: color::gray(1, 1, 1) is 1 (to float rounding); color::srgb_table().v[255] is 1.
#pragma once

#include <cmath>

#include "macros.h"

namespace fastssl {
namespace color {

constexpr float kGrayR = 0.299f, kGrayG = 0.587f, kGrayB = 0.114f;

FASTSSL_HD float gray(float r, float g, float b) { return kGrayR * r + kGrayG * g + kGrayB * b; }

// The 256 linear values of the uint8 sRGB levels, which make uint8 linearisation exact: evaluated in
// double precision and rounded once. A plain struct, so that CUDA kernels take it by value.
struct SrgbTable {
  float v[256];
};

// Host only: computed on first use, the same object for every caller.
inline const SrgbTable& srgb_table() {
  static const SrgbTable table = [] {
    SrgbTable t;
    for (int v = 0; v < 256; ++v) {
      const double x = v / 255.0;
      t.v[v] = static_cast<float>(x > 0.04045 ? std::pow((x + 0.055) / 1.055, 2.4) : x / 12.92);
    }
    return t;
  }();
  return table;
}

}  // namespace color
}  // namespace fastssl
