#include "lab.h"

#include "../common/color.h"
#include "../common/lab.h"

namespace fastssl {
namespace cpu {

FASTSSL_CPU_CLONES
void rgb_to_lab_planar(const float* __restrict r, const float* __restrict g, const float* __restrict b,
                       float* __restrict L, float* __restrict A, float* __restrict B, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) lab::rgb_to_lab(r[i], g[i], b[i], L[i], A[i], B[i]);
}

FASTSSL_CPU_CLONES
void rgb_to_lab_planar(const uint8_t* __restrict r, const uint8_t* __restrict g, const uint8_t* __restrict b,
                       float* __restrict L, float* __restrict A, float* __restrict B, int64_t n) {
  const float* lin = color::srgb_table().v;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) lab::linear_rgb_to_lab(lin[r[i]], lin[g[i]], lin[b[i]], L[i], A[i], B[i]);
}

FASTSSL_CPU_CLONES
void rgb_to_lab_interleaved(const float* __restrict rgb, float* __restrict lab, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i)
    lab::rgb_to_lab(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], lab[3 * i], lab[3 * i + 1], lab[3 * i + 2]);
}

FASTSSL_CPU_CLONES
void rgb_to_lab_interleaved(const uint8_t* __restrict rgb, float* __restrict lab, int64_t n) {
  const float* lin = color::srgb_table().v;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i)
    lab::linear_rgb_to_lab(lin[rgb[3 * i]], lin[rgb[3 * i + 1]], lin[rgb[3 * i + 2]], lab[3 * i], lab[3 * i + 1],
                           lab[3 * i + 2]);
}

FASTSSL_CPU_CLONES
void lab_to_rgb_planar(const float* __restrict L, const float* __restrict A, const float* __restrict B,
                       float* __restrict r, float* __restrict g, float* __restrict b, int64_t n, bool clip) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) lab::lab_to_rgb(L[i], A[i], B[i], clip, r[i], g[i], b[i]);
}

FASTSSL_CPU_CLONES
void lab_to_rgb_interleaved(const float* __restrict lab, float* __restrict rgb, int64_t n, bool clip) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i)
    lab::lab_to_rgb(lab[3 * i], lab[3 * i + 1], lab[3 * i + 2], clip, rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
}

}  // namespace cpu
}  // namespace fastssl
