// k-means on the CPU: the assignment of rows to their nearest centroid without the (N, K) distance
// matrix, and the per-cluster sums of the update. Torch-free: the matrix products and the threads come
// from the caller (csrc/kmeans.cpp supplies ATen's BLAS and thread pool) through Compute.
//
// Assignment of x (n, d) to c (k, d), float32, contiguous:
//   r_ij = ||c_j||^2 - 2 x_i . c_j              (||x_i||^2 is the same for every j: left out of the argmin)
//   a_i  = the lowest j with r_ij = min_j r_ij,  d_i = max(||x_i||^2 + r_{i a_i}, 0)
// Rows go in blocks of kRows, each block against the centroids in tiles of kCols: one matrix product per
// (block, tile) into a per-thread kRows x kCols buffer that stays in cache, reduced at once to a running
// (minimum, index) per row. Threads take contiguous runs of row blocks; each product runs on its caller's
// thread. The clamp at 0 removes the rounding of the expansion for a row on top of its centroid.
//
// Update: sums_j = sum_{i: a_i = j} x_i (accumulated in double, written float32) and counts_j. Threads own
// contiguous ranges of centroids and each scans every assignment for its own: every sum is added in row
// order whatever the thread count (deterministic), and an index outside [0, k) is ignored.
//
// Example (n = 2, k = 2, d = 1; x = (0, 3), c = (1, 2)): r_0 = (1 - 0, 4 - 0) -> a_0 = 0, d_0 = 1;
// r_1 = (1 - 6, 4 - 12) -> a_1 = 1, d_1 = 9 - 8 = 1.
#pragma once

#include <cstdint>
#include <functional>

namespace fastssl {
namespace cpu {
namespace kmeans {

constexpr int64_t kRows = 256;  // rows per block
constexpr int64_t kCols = 512;  // centroids per tile: a block's tile of products is 512 KiB of float32

// What the caller supplies: c (m, n) = a (m, d) . b (n, d)^T with row strides lda, ldb, ldc (called from
// inside parallel_for: it must run on the calling thread), and a loop that runs body(begin, end) over
// subranges covering [0, n) of at least `grain` items (but the last), on any number of threads at once.
struct Compute {
  std::function<void(int64_t m, int64_t n, int64_t d, const float* a, int64_t lda, const float* b, int64_t ldb,
                     float* c, int64_t ldc)>
      gemm_nt;
  std::function<void(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body)> parallel_for;
};

// assignment (n,) and distance (n,), written whole. k >= 1.
void assign(const float* x, const float* c, int64_t n, int64_t k, int64_t d, const Compute& compute,
            int64_t* assignment, float* distance);

// sums (k, d) and counts (k,), written whole.
void update(const float* x, const int64_t* assignment, int64_t n, int64_t k, int64_t d, const Compute& compute,
            float* sums, int64_t* counts);

}  // namespace kmeans
}  // namespace cpu
}  // namespace fastssl
