#include "nt_xent.h"

#include <algorithm>
#include <cmath>

#include "../common/fast_math.h"
#include "sum.h"

namespace fastssl {
namespace cpu {
namespace info_nce {

namespace {

constexpr int64_t kGrainLogits = 32768;  // logits per parallel task

FASTSSL_HD float exp_or_nan(float x) {
  return select(x != x, x, fast_exp2(x * 1.44269504088896341f));
}

int64_t row_grain(int64_t keys) { return std::max<int64_t>(1, kGrainLogits / std::max<int64_t>(keys, 1)); }

// Row i of the chunk's logits, as the product left it (q_i . k_j): scaled and its excluded column masked.
FASTSSL_CPU_CLONES
void finish_logits(const Problem& p, int64_t i, float* __restrict row) {
  const float s = p.rq[i] * p.inv_tau;
  const float* __restrict rk = p.rk;
#pragma omp simd
  for (int64_t j = 0; j < p.keys; ++j) row[j] = row[j] * s * rk[j];
  const int64_t e = p.exclude[i];
  if (e >= 0 && e < p.keys) row[e] = -INFINITY;
}

// log sum_j exp(row_j), shifted by the row's maximum (by 0 when that is infinite, so that an all
// -inf row gives -inf and a +inf logit +inf).
FASTSSL_CPU_CLONES
float row_lse(const float* __restrict row, int64_t n) {
  float top = -INFINITY;
#pragma omp simd reduction(max : top)
  for (int64_t j = 0; j < n; ++j) top = max_f(top, row[j]);
  const float shift = std::isinf(top) ? 0.0f : top;
  const double sum = blocked_sum(n, [row, shift](int64_t j) { return exp_or_nan(row[j] - shift); });
  return static_cast<float>(std::log(sum)) + shift;
}

// w_ij = g_i inv_tau exp(a_ij - lse_i), in place of the logits.
FASTSSL_CPU_CLONES
void row_weights(float* __restrict row, int64_t n, float lse, float g) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) row[j] = exp_or_nan(row[j] - lse) * g;
}

// Logits of rows [r0, r1) into a ((r1 - r0), keys), then each row through row_pass(i, row).
template <typename RowPass>
void chunk(const Problem& p, const Compute& compute, int64_t r0, int64_t r1, float* a, RowPass row_pass) {
  compute.gemm({false, true, r1 - r0, p.keys, p.d, p.q + r0 * p.d, p.d, p.k, p.d, 0.0f, a, p.keys});
  compute.parallel_for(r1 - r0, row_grain(p.keys), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* row = a + r * p.keys;
      finish_logits(p, r0 + r, row);
      row_pass(r0 + r, row);
    }
  });
}

// dst (rows, d) = src rows times scale.
void scale_rows(const float* src, const float* scale, int64_t rows, int64_t d, const Compute& compute, float* dst) {
  compute.parallel_for(rows, std::max<int64_t>(1, kGrainLogits / std::max<int64_t>(d, 1)),
                       [&](int64_t begin, int64_t end) {
                         for (int64_t i = begin; i < end; ++i)
                           for (int64_t c = 0; c < d; ++c) dst[i * d + c] = src[i * d + c] * scale[i];
                       });
}

}  // namespace

int64_t chunk_rows(int64_t keys) {
  return std::max<int64_t>(1, kChunkBytes / static_cast<int64_t>(sizeof(float) * std::max<int64_t>(keys, 1)));
}

int64_t lse_workspace(const Problem& p) { return std::min(p.m, chunk_rows(p.keys)) * p.keys; }

int64_t grad_workspace(const Problem& p) { return lse_workspace(p) + (p.keys + p.m) * p.d; }

void lse(const Problem& p, const Compute& compute, float* workspace, float* lse) {
  const int64_t step = chunk_rows(p.keys);
  for (int64_t r0 = 0; r0 < p.m; r0 += step) {
    chunk(p, compute, r0, std::min(p.m, r0 + step), workspace,
          [&](int64_t i, const float* row) { lse[i] = row_lse(row, p.keys); });
  }
}

void grad(const Problem& p, const float* lse, const float* g, const Compute& compute, float* workspace, float* gq,
          float* gk) {
  float* a = workspace;
  float* ks = a + lse_workspace(p);  // rk_j k_j
  float* qs = ks + p.keys * p.d;     // rq_i q_i
  scale_rows(p.k, p.rk, p.keys, p.d, compute, ks);
  scale_rows(p.q, p.rq, p.m, p.d, compute, qs);
  if (p.m == 0) std::fill(gk, gk + p.keys * p.d, 0.0f);
  const int64_t step = chunk_rows(p.keys);
  for (int64_t r0 = 0; r0 < p.m; r0 += step) {
    const int64_t r1 = std::min(p.m, r0 + step), rows = r1 - r0;
    chunk(p, compute, r0, r1, a, [&](int64_t i, float* row) { row_weights(row, p.keys, lse[i], g[i] * p.inv_tau); });
    compute.gemm({false, false, rows, p.d, p.keys, a, p.keys, ks, p.d, 0.0f, gq + r0 * p.d, p.d});
    compute.gemm({true, false, p.keys, p.d, rows, a, p.keys, qs + r0 * p.d, p.d, r0 == 0 ? 0.0f : 1.0f, gk, p.d});
  }
}

}  // namespace info_nce
}  // namespace cpu
}  // namespace fastssl
