#include "mae.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "../common/macros.h"

namespace fastssl {
namespace cpu {
namespace mae {

void shuffle_row(const double* noise, int64_t L, int64_t len_keep, int64_t* order, int64_t* ids_keep,
                 int64_t* ids_restore, int64_t* ids_masked, float* mask) {
  std::iota(order, order + L, int64_t{0});
  std::stable_sort(order, order + L, [noise](int64_t a, int64_t b) { return noise[a] < noise[b]; });
  for (int64_t rank = 0; rank < L; ++rank) ids_restore[order[rank]] = rank;
  std::copy(order, order + len_keep, ids_keep);
  int64_t masked = 0;
  for (int64_t j = 0; j < L; ++j) {
    const bool removed = ids_restore[j] >= len_keep;
    mask[j] = removed ? 1.0f : 0.0f;
    if (removed) ids_masked[masked++] = j;
  }
}

namespace {

// The bodies below are inlined into each FASTSSL_CPU_CLONES wrapper, so that the AVX2 clone
// vectorises the channel interleaving (stride-3 stores), which baseline x86-64 code leaves scalar.

// Rows of unit column stride (NCHW) interleave three channel runs; channels-last rows are already
// (q, c) runs; other strides are read element by element.
template <typename T>
__attribute__((always_inline)) inline void gather_body(const T* first, const PatchGrid& g, T* __restrict out) {
  const int64_t p = g.patch, cs = g.channel_stride, xs = g.col_stride;
  for (int64_t i = 0; i < p; ++i) {
    const T* __restrict r0 = first + i * g.row_stride;
    const T* __restrict r1 = r0 + cs;
    const T* __restrict r2 = r0 + 2 * cs;
    T* __restrict o = out + i * p * 3;
    if (xs == 3 && cs == 1) {
      std::copy(r0, r0 + 3 * p, o);
    } else if (xs == 1) {
      for (int64_t j = 0; j < p; ++j) {
        o[3 * j] = r0[j];
        o[3 * j + 1] = r1[j];
        o[3 * j + 2] = r2[j];
      }
    } else {
      for (int64_t j = 0; j < p; ++j) {
        o[3 * j] = r0[j * xs];
        o[3 * j + 1] = r1[j * xs];
        o[3 * j + 2] = r2[j * xs];
      }
    }
  }
}

// Sum of f(v[k]) over n values in 16 independent partial sums: vector adds that do not wait on each
// other (one running sum is bound by the add latency).
template <typename F>
__attribute__((always_inline)) inline double blocked_sum(const double* __restrict v, int64_t n, F f) {
  double part[16] = {};
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    for (int t = 0; t < 16; ++t) part[t] += f(v[k + t]);
  }
  double total = 0.0;
  for (; k < n; ++k) total += f(v[k]);
  for (int t = 0; t < 16; ++t) total += part[t];
  return total;
}

// The patch is converted to float64 planes (channel-major, contiguous: the statistics and the
// output run over one array in L1) and normalised from there.
template <typename T, typename Out>
__attribute__((always_inline)) inline void target_body(const T* first, const PatchGrid& g, bool norm, double eps,
                                                       double* __restrict planes, Out* __restrict out) {
  const int64_t p = g.patch, pp = p * p, n = 3 * pp, xs = g.col_stride;
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t i = 0; i < p; ++i) {
      const T* row = first + c * g.channel_stride + i * g.row_stride;
      double* __restrict plane_row = planes + c * pp + i * p;
      if (xs == 1) {
        for (int64_t j = 0; j < p; ++j) plane_row[j] = static_cast<double>(row[j]);
      } else {
        for (int64_t j = 0; j < p; ++j) plane_row[j] = static_cast<double>(row[j * xs]);
      }
    }
  }
  double mean = 0.0, inv_std = 1.0;
  if (norm) {
    mean = blocked_sum(planes, n, [](double x) { return x; }) / static_cast<double>(n);
    const double squares = blocked_sum(planes, n, [mean](double x) { return (x - mean) * (x - mean); });
    inv_std = 1.0 / std::sqrt(squares / static_cast<double>(n - 1) + eps);
  }
  const double* __restrict r = planes;
  const double* __restrict gr = planes + pp;
  const double* __restrict b = planes + 2 * pp;
  for (int64_t k = 0; k < pp; ++k) {
    out[3 * k] = static_cast<Out>((r[k] - mean) * inv_std);
    out[3 * k + 1] = static_cast<Out>((gr[k] - mean) * inv_std);
    out[3 * k + 2] = static_cast<Out>((b[k] - mean) * inv_std);
  }
}

}  // namespace

FASTSSL_CPU_CLONES void gather_patch(const uint8_t* first, const PatchGrid& g, uint8_t* out) {
  gather_body(first, g, out);
}
FASTSSL_CPU_CLONES void gather_patch(const uint16_t* first, const PatchGrid& g, uint16_t* out) {
  gather_body(first, g, out);
}
FASTSSL_CPU_CLONES void gather_patch(const uint32_t* first, const PatchGrid& g, uint32_t* out) {
  gather_body(first, g, out);
}
FASTSSL_CPU_CLONES void gather_patch(const uint64_t* first, const PatchGrid& g, uint64_t* out) {
  gather_body(first, g, out);
}

FASTSSL_CPU_CLONES void patch_target(const uint8_t* first, const PatchGrid& g, bool norm, double eps, double* planes,
                                     float* out) {
  target_body(first, g, norm, eps, planes, out);
}
FASTSSL_CPU_CLONES void patch_target(const float* first, const PatchGrid& g, bool norm, double eps, double* planes,
                                     float* out) {
  target_body(first, g, norm, eps, planes, out);
}
FASTSSL_CPU_CLONES void patch_target(const double* first, const PatchGrid& g, bool norm, double eps, double* planes,
                                     double* out) {
  target_body(first, g, norm, eps, planes, out);
}

}  // namespace mae
}  // namespace cpu
}  // namespace fastssl
