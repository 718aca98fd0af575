// CPU loops of the fused augmentation's resize weights (the maths: kernels/common/augment_weights.h;
// the specification and the layout: fastssl/ops/augment_weights.py). Torch-free; the binding is
// csrc/augment_weights.cpp.
#pragma once

#include <cstdint>

namespace fastssl {
namespace cpu {

// The longest run of inputs any of the `out` outputs of an axis of `length` reads: the sample's taps.
int32_t axis_taps(int64_t length, int64_t out, bool bicubic);

// One sample's start (out,) and weights (out, stride) for `taps` (from axis_taps) <= stride: output i
// reads the inputs start[i] + [0, taps), start[i] <= length - taps; weights beyond its run are 0, those
// past `taps` too. `flip` reverses the outputs.
void axis_weights(int64_t length, int64_t out, bool bicubic, int32_t taps, int64_t stride, bool flip,
                  int32_t* start, float* weights);

}  // namespace cpu
}  // namespace fastssl
