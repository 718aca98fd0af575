// CPU loop of the fused colorization targets, over rows of output cells of one image.
// Torch-free; csrc/colorization.cpp parallelises over (image, cell row).
#pragma once

#include <cstdint>

#include "../common/colorization.h"

namespace fastssl {
namespace cpu {

// For one image (uint8, 3 channels): writes l_out (H, W) = L - 50 for the pixels of cell rows
// [row_begin, row_end), and per cell ab_out (2, h, w), index_out (k, h, w), weight_out (k, h, w).
void colorization_targets_rows(const colorization::Args& args, const uint8_t* image, float* l_out, float* ab_out,
                               int64_t* index_out, float* weight_out, int64_t row_begin, int64_t row_end);

}  // namespace cpu
}  // namespace fastssl
