#include "nt_xent.h"

#include <algorithm>
#include <cmath>
#include <vector>

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

int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, kGrainLogits / std::max<int64_t>(cols, 1)); }

// One block of logits: rows [r0, r1) x keys [c0, c1), stored (r1 - r0, c1 - c0).
struct Block {
  int64_t r0, r1, c0, c1;
  int64_t rows() const { return r1 - r0; }
  int64_t cols() const { return c1 - c0; }
};

// Row i of the block's logits, as the product left it (q_i . k_j): scaled and its excluded column masked.
FASTSSL_CPU_CLONES
void finish_logits(const Problem& p, const Block& b, int64_t i, float* __restrict row) {
  const float s = p.rq[i] * p.inv_tau;
  const float* __restrict rk = p.rk + b.c0;
  const int64_t n = b.cols();
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) row[j] = row[j] * s * rk[j];
  const int64_t e = p.exclude[i];
  if (e >= b.c0 && e < b.c1) row[e - b.c0] = -INFINITY;
}

// A row's log-sum-exp so far: sum = sum_j exp(a_ij - shift) over the key tiles seen, shift = their
// maximum (0 while that is infinite, so that an all -inf row gives -inf and a +inf logit +inf).
struct RunningLse {
  float top = -INFINITY, shift = 0.0f;
  double sum = 0.0;

  float value() const { return static_cast<float>(std::log(sum)) + shift; }
};

// Adds a tile's n logits of the row to its running log-sum-exp.
FASTSSL_CPU_CLONES
void add_tile(RunningLse& lse, const float* __restrict row, int64_t n) {
  float tile_top = -INFINITY;
#pragma omp simd reduction(max : tile_top)
  for (int64_t j = 0; j < n; ++j) tile_top = max_f(tile_top, row[j]);
  lse.top = max_f(lse.top, tile_top);
  const float shift = std::isinf(lse.top) ? 0.0f : lse.top;
  // sum == 0 (nothing kept yet) stays 0: rescaling it by exp(+large) would make it NaN.
  if (lse.sum != 0.0 && shift != lse.shift) lse.sum *= std::exp(static_cast<double>(lse.shift) - shift);
  lse.shift = shift;
  lse.sum += blocked_sum(n, [row, shift](int64_t j) { return exp_or_nan(row[j] - shift); });
}

// w_ij = g_i inv_tau exp(a_ij - lse_i), in place of the logits.
FASTSSL_CPU_CLONES
void row_weights(float* __restrict row, int64_t n, float lse, float g) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) row[j] = exp_or_nan(row[j] - lse) * g;
}

// Logits of block b into a (rows, cols), then each row through row_pass(i, row).
template <typename RowPass>
void logits(const Problem& p, const Compute& compute, const Block& b, float* a, RowPass row_pass) {
  compute.gemm({false, true, b.rows(), b.cols(), p.d, p.q + b.r0 * p.d, p.d, p.k + b.c0 * p.d, p.d, 0.0f, a,
                b.cols()});
  compute.parallel_for(b.rows(), row_grain(b.cols()), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* row = a + r * b.cols();
      finish_logits(p, b, b.r0 + r, row);
      row_pass(b.r0 + r, row);
    }
  });
}

// Every block, key tiles outer (a tile's keys are read by all row chunks in turn), rows inner.
template <typename BlockPass>
void for_each_block(const Problem& p, BlockPass block_pass) {
  const int64_t tile = key_tile(p.keys), step = chunk_rows(tile);
  for (int64_t c0 = 0; c0 < p.keys; c0 += tile) {
    for (int64_t r0 = 0; r0 < p.m; r0 += step) {
      block_pass(Block{r0, std::min(p.m, r0 + step), c0, std::min(p.keys, c0 + tile)});
    }
  }
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

int64_t key_tile(int64_t keys) { return std::max<int64_t>(1, std::min(keys, kKeyTile)); }

int64_t chunk_rows(int64_t keys) {
  return std::max<int64_t>(1, kChunkBytes / static_cast<int64_t>(sizeof(float) * std::max<int64_t>(keys, 1)));
}

int64_t lse_workspace(const Problem& p) {
  const int64_t tile = key_tile(p.keys);
  return std::min(p.m, chunk_rows(tile)) * tile;
}

int64_t grad_workspace(const Problem& p) { return lse_workspace(p) + (key_tile(p.keys) + p.m) * p.d; }

void lse(const Problem& p, const Compute& compute, float* workspace, float* lse) {
  std::vector<RunningLse> running(p.m);
  for_each_block(p, [&](const Block& b) {
    logits(p, compute, b, workspace, [&](int64_t i, const float* row) { add_tile(running[i], row, b.cols()); });
  });
  for (int64_t i = 0; i < p.m; ++i) lse[i] = running[i].value();
}

void grad(const Problem& p, const float* lse, const float* g, const Compute& compute, float* workspace, float* gq,
          float* gk) {
  float* a = workspace;
  float* ks = a + lse_workspace(p);            // rk_j k_j of the current key tile
  float* qs = ks + key_tile(p.keys) * p.d;     // rq_i q_i (only for gk)
  if (gk != nullptr) scale_rows(p.q, p.rq, p.m, p.d, compute, qs);
  if (p.m == 0 && gk != nullptr) std::fill(gk, gk + p.keys * p.d, 0.0f);
  int64_t scaled_tile = -1;
  for_each_block(p, [&](const Block& b) {
    if (scaled_tile != b.c0) {
      scale_rows(p.k + b.c0 * p.d, p.rk + b.c0, b.cols(), p.d, compute, ks);
      scaled_tile = b.c0;
    }
    logits(p, compute, b, a, [&](int64_t i, float* row) { row_weights(row, b.cols(), lse[i], g[i] * p.inv_tau); });
    // gq accumulates over key tiles, gk over row chunks.
    compute.gemm({false, false, b.rows(), p.d, b.cols(), a, b.cols(), ks, p.d, b.c0 == 0 ? 0.0f : 1.0f,
                  gq + b.r0 * p.d, p.d});
    if (gk != nullptr) {
      compute.gemm({true, false, b.cols(), p.d, b.rows(), a, b.cols(), qs + b.r0 * p.d, p.d,
                    b.r0 == 0 ? 0.0f : 1.0f, gk + b.c0 * p.d, p.d});
    }
  });
}

}  // namespace info_nce
}  // namespace cpu
}  // namespace fastssl
