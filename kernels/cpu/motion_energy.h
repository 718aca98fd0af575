// Motion energy and frame-difference sums of video clips (specification: fastssl.reference.motion_energy).
// Torch-free: csrc/motion_energy.cpp builds the plans once per call and splits the work over threads.
//
// Both kernels read every frame once: they walk the frames of a clip a stripe of rows at a time (the
// same stripe of each frame in turn), so the one frame a pair shares is still in cache when the next
// pair reads it, and nothing but a stripe-sized scratch is written besides the outputs.
#pragma once

#include <cstdint>

namespace fastssl {
namespace cpu {

// Where the values of one clip are: element strides of its frames, channels and rows. Rows are
// contiguous (unit column stride); the bindings copy a clip whose columns are strided.
struct ClipLayout {
  int64_t frames, channels, height, width;
  int64_t frame_stride, channel_stride, row_stride;
};

// motion_energy's index maths: pooled grid H' x W' (= H / pool x W / pool, remainder ignored), and the
// pooled rows of one stripe (about kStripeElements input values per frame).
struct MotionEnergyPlan {
  ClipLayout layout;
  int64_t pool, pooled_height, pooled_width, stripe_rows;
  double scale;  // 1 / (pool^2 x (255 for uint8))^2 / (C H' W'): from sums of squared box-sum differences
  MotionEnergyPlan(const ClipLayout& layout, int64_t pool, bool uint8);
  int64_t scratch_size() const;  // floats per thread: two pooled stripes and one row of column sums
};

// energy[i] for the pairs of frames (first + i, first + i + 1), i < pairs, of one clip (`clip`: its
// frame 0). Box sums in float32 (exact for uint8 while pool <= 256), squared differences summed in
// float32 runs added in float64, one rounding to float32 at the end. `scratch`: plan.scratch_size() floats.
void motion_energy_pairs(const MotionEnergyPlan& plan, const uint8_t* clip, int64_t first, int64_t pairs,
                         float* scratch, float* energy);
void motion_energy_pairs(const MotionEnergyPlan& plan, const float* clip, int64_t first, int64_t pairs,
                         float* scratch, float* energy);

// frame_difference_sum's stripes: rows [stripe x stripe_rows, ...) of one channel plane.
struct DifferencePlan {
  ClipLayout layout;
  int64_t stripe_rows, stripes;
  explicit DifferencePlan(const ClipLayout& layout);
};

// out (rows x W, contiguous) = mean over t of |x[t + 1] - x[t]| for rows [y0, y0 + rows) of one channel
// (`channel`: its plane in frame 0), summed in float32 (uint8: exact integer sums while T <= 65793, then
// one division).
void frame_difference_stripe(const DifferencePlan& plan, const uint8_t* channel, int64_t y0, int64_t rows, float* out);
void frame_difference_stripe(const DifferencePlan& plan, const float* channel, int64_t y0, int64_t rows, float* out);

}  // namespace cpu
}  // namespace fastssl
