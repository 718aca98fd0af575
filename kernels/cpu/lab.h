// CPU loops of the Lab conversion over contiguous pixel runs. Torch-free: the bindings in
// csrc/lab.cpp split the work over threads and call these on each chunk.
#pragma once

#include <cstdint>

namespace fastssl {
namespace cpu {

// Channels-first: three planes of n pixels in, three planes out.
void rgb_to_lab_planar(const float* r, const float* g, const float* b, float* L, float* A, float* B, int64_t n);
void rgb_to_lab_planar(const uint8_t* r, const uint8_t* g, const uint8_t* b, float* L, float* A, float* B,
                       int64_t n);
// Channels-last: n pixels of 3 interleaved channels in and out.
void rgb_to_lab_interleaved(const float* rgb, float* lab, int64_t n);
void rgb_to_lab_interleaved(const uint8_t* rgb, float* lab, int64_t n);

void lab_to_rgb_planar(const float* L, const float* A, const float* B, float* r, float* g, float* b, int64_t n,
                       bool clip);
void lab_to_rgb_interleaved(const float* lab, float* rgb, int64_t n, bool clip);

}  // namespace cpu
}  // namespace fastssl
