// InfoNCE / NT-Xent on the CPU without the (M, K) logit matrix: the logits of a block of rows and
// keys at a time, their log-sum-exp, and the gradient. Torch-free: the matrix products and the
// threads come from the caller (csrc/nt_xent.cpp supplies ATen's BLAS and thread pool; tests/native
// a plain loop), through Compute.
//
//   a_ij  = (q_i . k_j) rq_i rk_j inv_tau, and -inf at j = exclude_i (exclude_i = -1: no column)
//   lse_i = log sum_j exp(a_ij)
//   w_ij  = g_i inv_tau exp(a_ij - lse_i) (0 at the excluded column)
//   gq_i  = sum_j w_ij rk_j k_j,   gk_j = sum_i w_ij rq_i q_i
// i.e. gq, gk are the gradients of sum_i g_i lse_i with respect to the scaled rows rq_i q_i and
// rk_j k_j. rq / rk are per-row scales (inverse norms when the loss normalises, ones otherwise).
//
// The logits are computed in blocks of (rows x key tile): a key tile is at most kKeyTile columns,
// and a block holds at most kChunkBytes of float32 logits, so the workspace is
// O(block + (tile + M) D) whatever M and K are. Each row's log-sum-exp is online over the key tiles
// (Milakov & Gimelshein 2018): a running maximum and a running sum, rescaled when the maximum grows;
// with a single tile (K <= kKeyTile) that is the plain max-shifted sum. Exponentials are fast_exp2
// (kernels/common/fast_math.h, a few ulp), NaN passed through: a NaN logit gives a NaN lse.
//
// The queue form of InfoNCE (MoCo: queries against a long shared queue of negatives, K >> M) needs
// gq only: grad() with gk = nullptr skips the key gradient and its product.
//
// Example (M = K = 2, D = 1, q = k = (1, 2), scales 1, inv_tau 1, exclude = (0, 1)): lse_0 = a_01 = 2,
// lse_1 = a_10 = 2.
#pragma once

#include <cstdint>
#include <functional>

namespace fastssl {
namespace cpu {
namespace info_nce {

constexpr int64_t kChunkBytes = int64_t{32} << 20;  // float32 logits per block: 32 MiB
constexpr int64_t kKeyTile = 8192;                   // columns per key tile: a 32 KiB row of logits

// C (m, n) = op(A) (m, k) op(B) (k, n) + beta C, all row-major with leading dimensions lda, ldb, ldc;
// op(X) = X^T when trans_x (X then stored (k, m) / (n, k)). With beta = 0, C is only written.
struct Product {
  bool trans_a, trans_b;
  int64_t m, n, k;
  const float* a;
  int64_t lda;
  const float* b;
  int64_t ldb;
  float beta;
  float* c;
  int64_t ldc;
};

// What the caller supplies: a matrix product, and a loop that runs body(begin, end) over subranges
// covering [0, n) of at least `grain` items (but the last), on any number of threads at once.
struct Compute {
  std::function<void(const Product&)> gemm;
  std::function<void(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body)> parallel_for;
};

// Contiguous float32 inputs: q (m, d), k (keys, d), rq (m,), rk (keys,); exclude (m,) int64 in
// [-1, keys) (other values exclude nothing).
struct Problem {
  const float* q;
  const float* k;
  const float* rq;
  const float* rk;
  const int64_t* exclude;
  int64_t m, keys, d;
  float inv_tau;
};

// Columns per key tile; rows per block for rows of `keys` logits; the floats of workspace lse() and
// grad() need.
int64_t key_tile(int64_t keys);
int64_t chunk_rows(int64_t keys);
int64_t lse_workspace(const Problem& p);
int64_t grad_workspace(const Problem& p);

// lse (m,).
void lse(const Problem& p, const Compute& compute, float* workspace, float* lse);

// gq (m, d) and gk (keys, d) from lse (m,) and g (m,), both written whole; gk = nullptr: gq only.
void grad(const Problem& p, const float* lse, const float* g, const Compute& compute, float* workspace, float* gq,
          float* gk);

}  // namespace info_nce
}  // namespace cpu
}  // namespace fastssl
