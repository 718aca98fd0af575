// CPU loop of the fused colorization targets, over rows of output cells of one image.
// Torch-free; csrc/colorization.cpp parallelises over (image, cell row).
#pragma once

#include <cstdint>

namespace fastssl {
namespace cpu {

struct ColorizationArgs {
  int64_t height, width;        // input pixels
  int64_t out_height, out_width;  // ceil(height / factor), ceil(width / factor)
  bool channels_last;           // image is (H, W, 3) instead of (3, H, W)
  int factor;                   // downsampling of the ab targets (4 in the paper)
  bool mean_pool;               // ab of a cell: mean over its pixels, else its top-left pixel
  const float* bins;            // (num_bins, 2) ab bin centres
  int num_bins;
  int k;                        // nearest bins kept, 1..8
  float inv_two_sigma2;         // 1 / (2 sigma^2)
};

// For one image (uint8, 3 channels): writes l_out (H, W) = L - 50 for the pixels of cell rows
// [row_begin, row_end), and per cell ab_out (2, h, w), index_out (k, h, w), weight_out (k, h, w).
void colorization_targets_rows(const ColorizationArgs& args, const uint8_t* image, float* l_out, float* ab_out,
                               int64_t* index_out, float* weight_out, int64_t row_begin, int64_t row_end);

}  // namespace cpu
}  // namespace fastssl
