// Area resizing of the whole image and its 2x2 tiles, for the counting pretext (specification:
// fastssl.reference.counting). Torch-free: csrc/counting.cpp splits planes over threads.
#pragma once

#include <cstdint>

namespace fastssl {
namespace cpu {

// One plane of H x W (row-major) -> 5 planes of S x S (whole, then tiles row-major), area filter:
// output (i, j) of a region h x w is the mean of rows [i h / S, ceil((i+1) h / S)) and the same in
// x; sums and the division in double, rounded once to float. T: uint8_t or float.
template <typename T>
void counting_tiles_plane(const T* plane, int64_t H, int64_t W, int64_t S, float* out0, float* out1, float* out2,
                          float* out3, float* out4);

}  // namespace cpu
}  // namespace fastssl
