// Box holes of context-encoder inpainting applied to one image (specification:
// fastssl.reference.inpainting). Torch-free: csrc/inpainting.cpp splits images over threads.
#pragma once

#include <cstdint>

namespace fastssl {
namespace cpu {

// image, out: C planes of H x W. boxes: K x {top, left, height, width} (clipped to the image).
// fill: C values. mask: H x W, 1 inside any box. T is an unsigned integer of the element size.
template <typename T>
void inpainting_masks(const T* image, int64_t C, int64_t H, int64_t W, const int64_t* boxes, int64_t K, const T* fill,
                   T* out, bool* mask);

}  // namespace cpu
}  // namespace fastssl
