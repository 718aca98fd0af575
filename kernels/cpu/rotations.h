// RotNet rotations of one square plane into its four rotations (0, 90, 180, 270 degrees
// counter-clockwise, as torch.rot90). Torch-free: csrc/rotations.cpp splits planes over threads.
#pragma once

#include <cstdint>

namespace fastssl {
namespace cpu {

// src: S x S row-major. out[k]: S x S row-major rotation by k quarter turns, for k = 0..3.
// T is an unsigned integer of the element size: rotations move bits, whatever the dtype.
template <typename T>
void rotate_plane4(const T* src, int64_t S, T* out0, T* out1, T* out2, T* out3);

}  // namespace cpu
}  // namespace fastssl
