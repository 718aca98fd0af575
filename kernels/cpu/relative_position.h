// Relative-position patch pairs of one image (specification: fastssl.reference.relative_position).
// Torch-free: csrc/relative_position.cpp splits images over threads.
#pragma once

#include <cstdint>

namespace fastssl {
namespace relative_position {

constexpr int64_t kNoiseLevels = 1021;  // sums of the 4 bytes of a 32-bit hash: 0 .. 1020

inline uint32_t byte_sum(uint32_t h) { return (h & 255u) + ((h >> 8) & 255u) + ((h >> 16) & 255u) + (h >> 24); }

}  // namespace relative_position

namespace cpu {

// image: 3 planes of H x W. corners: {y0, x0, y1, x1} top-left of the centre and the neighbour patch.
// keep: {k0, k1} channel kept by each patch, -1 = no colour dropping. key: the sample's noise key.
// table: 3 x kNoiseLevels values of the dropped channels. out: 2 patches x 3 planes of P x P.
// T is an unsigned integer of the element size (the op copies and looks up, it never computes).
template <typename T>
void relative_position_pair(const T* image, int64_t H, int64_t W, const int64_t* corners, const int64_t* keep,
                            uint32_t key, const T* table, int64_t P, T* out);

}  // namespace cpu
}  // namespace fastssl
