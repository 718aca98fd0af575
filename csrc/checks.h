// Input checks shared by the bindings. Messages name the argument and read like sentences.
#pragma once

#include <torch/types.h>

namespace fastssl {

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

}  // namespace fastssl
