// Jigsaw tiles (specification: fastssl.reference.jigsaw, tiles_at). Torch-free: csrc/jigsaw.cpp
// splits the (image, tile) pairs over threads and calls jigsaw_tile on each.
#pragma once

#include <cstdint>

namespace fastssl {
namespace jigsaw {

// Element strides of one (3, H, W) image, any layout (channels-last included).
struct Strides {
  int64_t channel, row, col;
};

// One output tile: where each channel is read and what is done to it.
struct TileSpec {
  const int64_t* origin;  // 3 x (y, x): top-left of channel ch's tile in the image (inside it)
  bool gray;              // replace the three channels by their luma
  int64_t keep;           // -1, or the only channel not set to 0
};

}  // namespace jigsaw

namespace cpu {

// Writes 3 planes of tile x tile float32 to `out`: the image's values (uint8 / 255), grayscaled
// when spec.gray, standardised per channel when `normalize` ((v - mean) / sqrt(var + eps), biased
// variance; float runs of 64 summed in double), channels other than spec.keep zeroed. T: uint8_t, float
// or double.
template <typename T>
void jigsaw_tile(const T* image, const jigsaw::Strides& strides, const jigsaw::TileSpec& spec, int64_t tile,
                 bool normalize, float eps, float* out);

}  // namespace cpu
}  // namespace fastssl
