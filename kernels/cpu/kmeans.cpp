#include "kmeans.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "../common/macros.h"
#include "sum.h"

namespace fastssl {
namespace cpu {
namespace kmeans {

namespace {

constexpr int64_t kGrainElements = 32768;  // floats per parallel task of the small loops
constexpr int64_t kSerialUpdate = int64_t{1} << 18;  // updates of fewer row elements run on one thread

// r_j = cn_j - 2 s_j in place of the products s_j; returns min_j r_j (+inf when every r_j is NaN).
FASTSSL_CPU_CLONES
float finish_row(float* __restrict row, const float* __restrict cn, int64_t cols) {
  float best = INFINITY;
#pragma omp simd reduction(min : best)
  for (int64_t j = 0; j < cols; ++j) {
    const float r = cn[j] - 2.0f * row[j];
    row[j] = r;
    best = r < best ? r : best;
  }
  return best;
}

// The lowest j with row_j == value, or cols when there is none.
FASTSSL_CPU_CLONES
int64_t first_equal(const float* __restrict row, int64_t cols, float value) {
  int64_t first = cols;
#pragma omp simd reduction(min : first)
  for (int64_t j = 0; j < cols; ++j) first = (row[j] == value && j < first) ? j : first;
  return first;
}

FASTSSL_CPU_CLONES
float squared_norm(const float* __restrict v, int64_t d) {
  return static_cast<float>(blocked_sum(d, [v](int64_t j) { return v[j] * v[j]; }));
}

FASTSSL_CPU_CLONES
void add_row(double* __restrict acc, const float* __restrict v, int64_t d) {
#pragma omp simd
  for (int64_t j = 0; j < d; ++j) acc[j] += v[j];
}

// Rows [r0, r1) (at most kRows) against every centroid, tile by tile.
void assign_block(const float* x, const float* c, const float* cn, int64_t r0, int64_t r1, int64_t k, int64_t d,
                  const Compute& compute, float* tile, int64_t* assignment, float* distance) {
  const int64_t rows = r1 - r0;
  float best[kRows];
  int64_t index[kRows];
  std::fill(best, best + rows, INFINITY);
  std::fill(index, index + rows, int64_t{0});
  for (int64_t c0 = 0; c0 < k; c0 += kCols) {
    const int64_t cols = std::min(kCols, k - c0);
    compute.gemm_nt(rows, cols, d, x + r0 * d, d, c + c0 * d, d, tile, cols);
    for (int64_t r = 0; r < rows; ++r) {
      float* row = tile + r * cols;
      const float tile_best = finish_row(row, cn + c0, cols);
      if (tile_best < best[r]) {  // strict: an equal minimum of a later tile keeps the lower index
        const int64_t j = first_equal(row, cols, tile_best);
        best[r] = tile_best;
        index[r] = c0 + (j < cols ? j : 0);
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float total = squared_norm(x + (r0 + r) * d, d) + best[r];
    assignment[r0 + r] = index[r];
    distance[r0 + r] = total > 0.0f ? total : (total == total ? 0.0f : total);  // NaN stays NaN
  }
}

}  // namespace

void assign(const float* x, const float* c, int64_t n, int64_t k, int64_t d, const Compute& compute,
            int64_t* assignment, float* distance) {
  std::vector<float> cn(static_cast<size_t>(k));
  compute.parallel_for(k, std::max<int64_t>(1, kGrainElements / std::max<int64_t>(d, 1)),
                       [&](int64_t begin, int64_t end) {
                         for (int64_t j = begin; j < end; ++j) cn[j] = squared_norm(c + j * d, d);
                       });
  const int64_t blocks = (n + kRows - 1) / kRows;
  const int64_t tile_floats = kRows * std::min(kCols, k);
  compute.parallel_for(blocks, 1, [&](int64_t begin, int64_t end) {
    std::unique_ptr<float[]> tile(new float[tile_floats]);
    for (int64_t b = begin; b < end; ++b) {
      assign_block(x, c, cn.data(), b * kRows, std::min(n, (b + 1) * kRows), k, d, compute, tile.get(), assignment,
                   distance);
    }
  });
}

void update(const float* x, const int64_t* assignment, int64_t n, int64_t k, int64_t d, const Compute& compute,
            float* sums, int64_t* counts) {
  // Every thread scans all n assignments: worth it only when the rows' elements outweigh that.
  compute.parallel_for(k, n * d < kSerialUpdate ? k : 1, [&](int64_t begin, int64_t end) {
    std::vector<double> acc(static_cast<size_t>((end - begin) * d), 0.0);
    std::vector<int64_t> count(static_cast<size_t>(end - begin), 0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j = assignment[i];
      if (j < begin || j >= end) continue;
      add_row(acc.data() + (j - begin) * d, x + i * d, d);
      ++count[j - begin];
    }
    for (int64_t j = begin; j < end; ++j) {
      counts[j] = count[j - begin];
      const double* a = acc.data() + (j - begin) * d;
      float* s = sums + j * d;
      for (int64_t t = 0; t < d; ++t) s[t] = static_cast<float>(a[t]);
    }
  });
}

}  // namespace kmeans
}  // namespace cpu
}  // namespace fastssl
