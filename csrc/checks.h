// Input checks shared by the bindings. Messages name the argument and read like sentences.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <initializer_list>
#include <optional>

namespace fastssl {

// A CPU tensor of `dtype` (any when nullopt) and `shape`, a size per dimension (-1: any size); returns it
// contiguous. Example: check_tensor(crop, "crop", at::kLong, {B, 4}) accepts a (B, 4) int64 tensor and
// otherwise fails with "crop must have shape [8, 4] (-1: any), got [8, 5]".
inline at::Tensor check_tensor(const at::Tensor& t, const char* name, std::optional<at::ScalarType> dtype,
                               std::initializer_list<int64_t> shape) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor, got one on ", t.device());
  TORCH_CHECK(!dtype || t.scalar_type() == *dtype, name, " must be ", *dtype, ", got ", t.scalar_type());
  bool ok = t.dim() == static_cast<int64_t>(shape.size());
  for (int64_t dim = 0; ok && dim < t.dim(); ++dim) ok = shape.begin()[dim] < 0 || t.size(dim) == shape.begin()[dim];
  TORCH_CHECK(ok, name, " must have shape ", c10::IntArrayRef(shape), " (-1: any), got ", t.sizes());
  return t.contiguous();
}

// Calls fn(T{}) with T the unsigned integer of t's element size (1, 2, 4 or 8 bytes): the kernels that
// move values without computing on them have one instantiation per size, which serves every dtype of it
// (their kernels/cpu files instantiate FASTSSL_FOR_EACH_ELEMENT_SIZE). Example:
//   dispatch_element_size(in, "images", [&](auto bits) { using T = decltype(bits); ... });
template <typename Fn>
void dispatch_element_size(const at::Tensor& t, const char* name, Fn&& fn) {
  switch (t.element_size()) {
    case 1: return fn(uint8_t{});
    case 2: return fn(uint16_t{});
    case 4: return fn(uint32_t{});
    case 8: return fn(uint64_t{});
    default: TORCH_CHECK(false, name, " must have 1, 2, 4 or 8-byte elements, got ", t.scalar_type());
  }
}

// (*, 3, H, W) (or (*, H, W, 3) when channels_last) with at least one pixel.
inline void check_rgb_layout(const at::Tensor& t, const char* name, bool channels_last) {
  TORCH_CHECK(t.dim() >= 3, name, " must have shape ", channels_last ? "(*, H, W, 3)" : "(*, 3, H, W)",
              ", got ", t.sizes());
  const int64_t c = channels_last ? t.size(-1) : t.size(-3);
  TORCH_CHECK(c == 3, name, " must have 3 channels in dimension ", channels_last ? -1 : -3, ", got ", c,
              " (shape ", t.sizes(), ")");
  TORCH_CHECK(t.numel() > 0, name, " is empty (shape ", t.sizes(), ")");
}

inline bool is_float_type(at::ScalarType s) {
  return s == at::kFloat || s == at::kHalf || s == at::kBFloat16;
}

// Pixels per channel plane and number of images in a contiguous (*, 3, H, W) / (*, H, W, 3) tensor.
struct RgbGeometry {
  int64_t images;  // product of the leading dimensions
  int64_t pixels;  // H * W
};

inline RgbGeometry rgb_geometry(const at::Tensor& t, bool channels_last) {
  const int64_t pixels = channels_last ? t.size(-3) * t.size(-2) : t.size(-2) * t.size(-1);
  return {t.numel() / (3 * pixels), pixels};
}

// (..., 2) int64 (y, x) corners of side x side squares, clamped so that each square lies inside an H x W
// image: the kernels index memory with them, and the public op checks the values, but a direct call of the
// registered op (or a torch.compile graph, whose checks are skipped) must not read outside the image.
inline at::Tensor squares_inside(const at::Tensor& corners, int64_t side, int64_t H, int64_t W) {
  return at::stack({corners.select(-1, 0).clamp(0, H - side), corners.select(-1, 1).clamp(0, W - side)}, -1)
      .contiguous();
}

}  // namespace fastssl
