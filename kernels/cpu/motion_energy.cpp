#include "motion_energy.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "../common/macros.h"
#include "sum.h"

namespace fastssl {
namespace cpu {

namespace {

// Input values one stripe reads per frame: small enough that a stripe of the frame a pair shares with
// the next one is still in L1/L2 when that pair reads it.
constexpr int64_t kStripeElements = 8192;

int64_t stripe_rows_for(int64_t row_elements, int64_t rows) {
  return std::max<int64_t>(1, std::min<int64_t>(rows, kStripeElements / std::max<int64_t>(row_elements, 1)));
}

// Box sums of `rows` pooled rows from pooled row y0 of one channel plane: out[r W' + x'] = sum of the
// pool x pool values of cell (y0 + r, x'); `columns` holds W' pool column sums of one pooled row.
template <typename T>
__attribute__((always_inline)) inline void box_sums(const MotionEnergyPlan& plan, const T* plane, int64_t y0,
                                                    int64_t rows, float* __restrict columns, float* __restrict out) {
  const int64_t pool = plan.pool, Wp = plan.pooled_width, used = Wp * pool, stride = plan.layout.row_stride;
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = plane + (y0 + r) * pool * stride;
    float* o = out + r * Wp;
    if (pool == 1) {
      for (int64_t x = 0; x < Wp; ++x) o[x] = static_cast<float>(row[x]);
      continue;
    }
    for (int64_t x = 0; x < used; ++x) columns[x] = static_cast<float>(row[x]);
    for (int64_t dy = 1; dy < pool; ++dy) {
      row += stride;
      for (int64_t x = 0; x < used; ++x) columns[x] += static_cast<float>(row[x]);
    }
    for (int64_t x = 0; x < Wp; ++x) {
      float sum = 0.0f;
      for (int64_t dx = 0; dx < pool; ++dx) sum += columns[x * pool + dx];
      o[x] = sum;
    }
  }
}

template <typename T>
__attribute__((always_inline)) inline void energy_pairs(const MotionEnergyPlan& plan, const T* clip, int64_t first,
                                                        int64_t pairs, float* scratch, float* energy) {
  const ClipLayout& l = plan.layout;
  const int64_t Wp = plan.pooled_width, cells = plan.stripe_rows * Wp;
  float* prev = scratch;
  float* cur = scratch + cells;
  float* columns = scratch + 2 * cells;
  std::vector<double> sums(pairs, 0.0);
  for (int64_t c = 0; c < l.channels; ++c) {
    for (int64_t y0 = 0; y0 < plan.pooled_height; y0 += plan.stripe_rows) {
      const int64_t rows = std::min(plan.stripe_rows, plan.pooled_height - y0), n = rows * Wp;
      for (int64_t k = 0; k <= pairs; ++k) {
        box_sums(plan, clip + (first + k) * l.frame_stride + c * l.channel_stride, y0, rows, columns, cur);
        if (k > 0) {
          sums[k - 1] += blocked_sum(n, [prev, cur](int64_t i) {
            const float d = cur[i] - prev[i];
            return d * d;
          });
        }
        std::swap(prev, cur);
      }
    }
  }
  for (int64_t i = 0; i < pairs; ++i) energy[i] = static_cast<float>(sums[i] * plan.scale);
}

__attribute__((always_inline)) inline float absolute_difference(uint8_t a, uint8_t b) {
  return static_cast<float>(std::abs(static_cast<int32_t>(a) - static_cast<int32_t>(b)));
}
__attribute__((always_inline)) inline float absolute_difference(float a, float b) { return std::fabs(a - b); }

template <typename T>
__attribute__((always_inline)) inline void difference_stripe(const DifferencePlan& plan, const T* channel, int64_t y0,
                                                             int64_t rows, float* __restrict out) {
  const ClipLayout& l = plan.layout;
  const int64_t W = l.width;
  for (int64_t t = 0; t + 1 < l.frames; ++t) {
    const T* a = channel + t * l.frame_stride + y0 * l.row_stride;
    const T* b = a + l.frame_stride;
    for (int64_t r = 0; r < rows; ++r) {
      const T* __restrict ra = a + r * l.row_stride;
      const T* __restrict rb = b + r * l.row_stride;
      float* __restrict o = out + r * W;
      if (t == 0) {
        for (int64_t x = 0; x < W; ++x) o[x] = absolute_difference(rb[x], ra[x]);
      } else {
        for (int64_t x = 0; x < W; ++x) o[x] += absolute_difference(rb[x], ra[x]);
      }
    }
  }
  // uint8 sums are integers below 2^24 (exact): dividing once rounds the mean correctly.
  const float count = static_cast<float>((l.frames - 1) * (std::is_same_v<T, uint8_t> ? 255 : 1));
  for (int64_t i = 0; i < rows * W; ++i) out[i] /= count;
}

}  // namespace

MotionEnergyPlan::MotionEnergyPlan(const ClipLayout& layout, int64_t pool, bool uint8)
    : layout(layout),
      pool(pool),
      pooled_height(layout.height / pool),
      pooled_width(layout.width / pool),
      stripe_rows(stripe_rows_for(pool * layout.width, layout.height / pool)) {
  const double norm = static_cast<double>(pool * pool) * (uint8 ? 255.0 : 1.0);
  scale = 1.0 / (norm * norm) / static_cast<double>(layout.channels * pooled_height * pooled_width);
}

int64_t MotionEnergyPlan::scratch_size() const { return 2 * stripe_rows * pooled_width + pooled_width * pool; }

DifferencePlan::DifferencePlan(const ClipLayout& layout)
    : layout(layout), stripe_rows(stripe_rows_for(layout.width, layout.height)) {
  stripes = (layout.height + stripe_rows - 1) / stripe_rows;
}

FASTSSL_CPU_CLONES
void motion_energy_pairs(const MotionEnergyPlan& plan, const uint8_t* clip, int64_t first, int64_t pairs,
                         float* scratch, float* energy) {
  energy_pairs(plan, clip, first, pairs, scratch, energy);
}

FASTSSL_CPU_CLONES
void motion_energy_pairs(const MotionEnergyPlan& plan, const float* clip, int64_t first, int64_t pairs,
                         float* scratch, float* energy) {
  energy_pairs(plan, clip, first, pairs, scratch, energy);
}

FASTSSL_CPU_CLONES
void frame_difference_stripe(const DifferencePlan& plan, const uint8_t* channel, int64_t y0, int64_t rows, float* out) {
  difference_stripe(plan, channel, y0, rows, out);
}

FASTSSL_CPU_CLONES
void frame_difference_stripe(const DifferencePlan& plan, const float* channel, int64_t y0, int64_t rows, float* out) {
  difference_stripe(plan, channel, y0, rows, out);
}

}  // namespace cpu
}  // namespace fastssl
