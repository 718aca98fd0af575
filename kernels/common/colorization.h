// Per-cell maths of the colorization targets (Zhang et al. 2016), shared by the CPU loop
// (kernels/cpu/colorization.cpp) and the CUDA kernel (kernels/cuda/colorization.cu).
// Specification: fastssl/reference/colorization.py.
#pragma once

#include "fast_math.h"

namespace fastssl {
namespace colorization {

constexpr int kMaxK = 8;

// The k nearest ab bins of (a, b) among Q bins (bins[2q], bins[2q+1]), nearest first, ties to the
// lower bin index, and their soft-encoding weights exp(-d^2 / (2 sigma^2)) normalised to sum 1.
//
// Insertion by carrying the candidate through the sorted slots: at each slot the smaller of
// (carried, slot) stays, the larger is carried on. Strict '<' keeps the earlier bin on ties, which
// is the order a stable sort by distance gives (the reference's torch.sort(stable=True)).
FASTSSL_HD void nearest_bins(float a, float b, const float* bins, int num_bins, int k,
                             float inv_two_sigma2, int64_t* index, float* weight) {
  float best_d2[kMaxK];
  int32_t best_q[kMaxK];
#pragma unroll
  for (int j = 0; j < kMaxK; ++j) {
    best_d2[j] = bits_as_float(0x7f800000u);
    best_q[j] = -1;
  }
  for (int q = 0; q < num_bins; ++q) {
    const float da = a - bins[2 * q], db = b - bins[2 * q + 1];
    float d2 = da * da + db * db;
    int32_t carried = q;
    if (!(d2 < best_d2[k - 1])) continue;
#pragma unroll
    for (int j = 0; j < kMaxK; ++j) {
      if (j < k && d2 < best_d2[j]) {
        const float td = best_d2[j];
        const int32_t tq = best_q[j];
        best_d2[j] = d2;
        best_q[j] = carried;
        d2 = td;
        carried = tq;
      }
    }
  }
  float total = 0.0f;
#pragma unroll
  for (int j = 0; j < kMaxK; ++j) {
    if (j < k) {
      // exp(-(d2_j - d2_0) / (2 sigma^2)): shifted by the nearest distance, the first weight is 1
      // and the sum never underflows.
      const float w = fast_exp2((best_d2[0] - best_d2[j]) * inv_two_sigma2 * 1.44269504088896341f);
      weight[j] = w;
      total += w;
    }
  }
#pragma unroll
  for (int j = 0; j < kMaxK; ++j) {
    if (j < k) {
      weight[j] /= total;
      index[j] = best_q[j];
    }
  }
}

}  // namespace colorization
}  // namespace fastssl
