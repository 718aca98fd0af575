// Per-cell maths of the colorization targets (Zhang et al. 2016), shared by the CPU loop
// (kernels/cpu/colorization.cpp) and the CUDA kernel (kernels/cuda/colorization.cu).
// Specification: fastssl/reference/colorization.py.
#pragma once

#include "fast_math.h"

namespace fastssl {
namespace colorization {

constexpr int kMaxK = 8;

// The arguments of one batch, the same for the CPU loop and the CUDA kernel (passed by value).
struct Args {
  int64_t height, width;          // input pixels
  int64_t out_height, out_width;  // ceil(height / factor), ceil(width / factor)
  bool channels_last;             // image is (H, W, 3) instead of (3, H, W)
  int factor;                     // downsampling of the ab targets (4 in the paper)
  bool mean_pool;                 // ab of a cell: mean over its pixels, else its top-left pixel
  const float* bins;              // (num_bins, 2) ab bin centres
  int num_bins;
  int k;                          // nearest bins kept, 1..kMaxK
  float inv_two_sigma2;           // 1 / (2 sigma^2)
};

// The k nearest ab bins of (a, b) among Q bins (bins[2q], bins[2q+1]), nearest first, ties to the
// lower bin index, and their soft-encoding weights exp(-d^2 / (2 sigma^2)) normalised to sum 1.
//
// Slots are sorted by (distance, bin index). Bins arrive in index order, so a new bin goes before the
// first slot it is strictly nearer than (ties keep the earlier bin: the order of the reference's
// stable sort); from there on every slot shifts down by one, the last one falling off.
FASTSSL_HD void nearest_bins(float a, float b, const float* bins, int num_bins, int k,
                             float inv_two_sigma2, int64_t* index, float* weight) {
  float best_d2[kMaxK];
  int32_t best_q[kMaxK];
FASTSSL_UNROLL
  for (int j = 0; j < kMaxK; ++j) {
    best_d2[j] = bits_as_float(0x7f800000u);
    best_q[j] = -1;
  }
  // best_d2[k - 1], kept apart: indexing best_d2 with the runtime k would put it in GPU local memory.
  float kth_d2 = bits_as_float(0x7f800000u);
  for (int q = 0; q < num_bins; ++q) {
    const float da = a - bins[2 * q], db = b - bins[2 * q + 1];
    float d2 = da * da + db * db;
    int32_t carried = q;
    if (!(d2 < kth_d2)) continue;
    bool shifting = false;
FASTSSL_UNROLL
    for (int j = 0; j < kMaxK; ++j) {
      if (j < k && (shifting || d2 < best_d2[j])) {
        shifting = true;
        const float td = best_d2[j];
        const int32_t tq = best_q[j];
        best_d2[j] = d2;
        best_q[j] = carried;
        d2 = td;
        carried = tq;
      }
    }
    kth_d2 = best_d2[0];  // the slots are sorted: the largest of the first k
FASTSSL_UNROLL
    for (int j = 1; j < kMaxK; ++j) kth_d2 = j < k ? max_f(kth_d2, best_d2[j]) : kth_d2;
  }
  float total = 0.0f;
FASTSSL_UNROLL
  for (int j = 0; j < kMaxK; ++j) {
    if (j < k) {
      // exp(-(d2_j - d2_0) / (2 sigma^2)): shifted by the nearest distance, the first weight is 1
      // and the sum never underflows.
      const float w = fast_exp2((best_d2[0] - best_d2[j]) * inv_two_sigma2 * 1.44269504088896341f);
      weight[j] = w;
      total += w;
    }
  }
FASTSSL_UNROLL
  for (int j = 0; j < kMaxK; ++j) {
    if (j < k) {
      weight[j] /= total;
      index[j] = best_q[j];
    }
  }
}

}  // namespace colorization
}  // namespace fastssl
