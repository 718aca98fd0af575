#include "counting.h"

#include <algorithm>

#include "../common/macros.h"

namespace fastssl {
namespace cpu {

AreaSpans::AreaSpans(int64_t n, int64_t S) : begin(S), end(S), width(n % S == 0 ? n / S : 0) {
  for (int64_t k = 0; k < S; ++k) {
    begin[k] = static_cast<int32_t>(k * n / S);
    end[k] = static_cast<int32_t>(((k + 1) * n + S - 1) / S);
  }
}

CountingPlan::CountingPlan(int64_t H, int64_t W, int64_t S) : H(H), W(W), S(S) {
  const int64_t h0 = H / 2, w0 = W / 2;
  const int64_t heights[5] = {H, h0, h0, H - h0, H - h0}, widths[5] = {W, w0, W - w0, w0, W - w0};
  const int64_t tops[5] = {0, 0, 0, h0, h0}, lefts[5] = {0, 0, w0, 0, w0};
  int64_t largest = 0;
  for (int r = 0; r < 5; ++r) {
    top[r] = tops[r];
    left[r] = lefts[r];
    rows.emplace_back(heights[r], S);
    cols.emplace_back(widths[r], S);
    int64_t tallest = 0, widest = 0;
    for (int64_t k = 0; k < S; ++k) {
      tallest = std::max<int64_t>(tallest, rows.back().end[k] - rows.back().begin[k]);
      widest = std::max<int64_t>(widest, cols.back().end[k] - cols.back().begin[k]);
    }
    largest = std::max(largest, tallest * widest);
  }
  float_exact = largest * 255 < (int64_t{1} << 24);
  int32_sums = largest * 255 < (int64_t{1} << 31);
}

namespace {

// Mean of a box from its sum: integer sums (uint8) in float32 when exact, else float64.
__attribute__((always_inline)) inline float box_mean(int32_t sum, int64_t count, bool float_exact) {
  return float_exact ? static_cast<float>(sum) / static_cast<float>(count)
                     : static_cast<float>(static_cast<double>(sum) / static_cast<double>(count));
}
__attribute__((always_inline)) inline float box_mean(double sum, int64_t count, bool) {
  return static_cast<float>(sum / static_cast<double>(count));
}

// One output row from the column sums of its `height` input rows. Equal spans of 1 and 2 columns
// (the default: tiles copied, the whole image halved) get loops the compiler vectorises.
template <typename Acc>
__attribute__((always_inline)) inline void row_means(const Acc* c, const AreaSpans& cols, int64_t height, int64_t S,
                                                     bool exact, float* __restrict o) {
  const int64_t k = cols.width;
  if (k == 1) {
    for (int64_t j = 0; j < S; ++j) o[j] = box_mean(c[j], height, exact);
  } else if (k == 2) {
    for (int64_t j = 0; j < S; ++j) o[j] = box_mean(c[2 * j] + c[2 * j + 1], 2 * height, exact);
  } else {
    for (int64_t j = 0; j < S; ++j) {
      Acc sum = 0;
      for (int64_t x = cols.begin[j]; x < cols.end[j]; ++x) sum += c[x];
      o[j] = box_mean(sum, height * (cols.end[j] - cols.begin[j]), exact);
    }
  }
}

// Area resize of one region (row stride `stride`): per output row, its input rows summed into
// `columns` (contiguous, vectorised), then the spans of columns averaged.
template <typename T, typename Acc>
__attribute__((always_inline)) inline void area_resize(const T* src, int64_t stride, const AreaSpans& rows,
                                                       const AreaSpans& cols, int64_t S, bool exact,
                                                       Acc* __restrict columns, float* out) {
  const int64_t w = cols.end[S - 1];
  for (int64_t i = 0; i < S; ++i) {
    const T* row = src + rows.begin[i] * stride;
    for (int64_t x = 0; x < w; ++x) columns[x] = static_cast<Acc>(row[x]);
    for (int64_t r = rows.begin[i] + 1; r < rows.end[i]; ++r) {
      row += stride;
      for (int64_t x = 0; x < w; ++x) columns[x] += static_cast<Acc>(row[x]);
    }
    row_means(columns, cols, rows.end[i] - rows.begin[i], S, exact, out + i * S);
  }
}

template <typename T, typename Acc>
__attribute__((always_inline)) inline void tiles_plane(const CountingPlan& plan, const T* plane, Acc* scratch,
                                                       float* const out[5]) {
  for (int r = 0; r < 5; ++r) {
    area_resize(plane + plan.top[r] * plan.W + plan.left[r], plan.W, plan.rows[r], plan.cols[r], plan.S,
                plan.float_exact, scratch, out[r]);
  }
}

}  // namespace

FASTSSL_CPU_CLONES
void counting_tiles_plane(const CountingPlan& plan, const uint8_t* plane, int32_t* scratch, float* const out[5]) {
  tiles_plane(plan, plane, scratch, out);
}

void counting_tiles_plane(const CountingPlan& plan, const uint8_t* plane, double* scratch, float* const out[5]) {
  tiles_plane(plan, plane, scratch, out);
}

FASTSSL_CPU_CLONES
void counting_tiles_plane(const CountingPlan& plan, const float* plane, double* scratch, float* const out[5]) {
  tiles_plane(plan, plane, scratch, out);
}

}  // namespace cpu
}  // namespace fastssl
