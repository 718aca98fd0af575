// CPU bodies of MAE masking (specification: fastssl.reference.mae). Torch-free: csrc/mae.cpp splits
// the work over threads — first the per-image sort of the noise, then (image, output slot) pairs,
// each of which reads one patch straight from the image and writes it once (visible or target).
#pragma once

#include <cstdint>

namespace fastssl {
namespace cpu {
namespace mae {

// Where the patches of one image live: p, the width of the patch grid (W / p) and the element
// strides of the channel, row and column dimensions of the (3, H, W) image (any strides).
struct PatchGrid {
  int64_t patch;
  int64_t grid_width;
  int64_t channel_stride;
  int64_t row_stride;
  int64_t col_stride;

  int64_t values() const { return patch * patch * 3; }  // p * p * 3 values per patch
  // Element offset of the top-left pixel (channel 0) of patch `index` (row-major over the grid).
  int64_t offset(int64_t index) const {
    return (index / grid_width) * patch * row_stride + (index % grid_width) * patch * col_stride;
  }
};

// One row of noise (L values, no NaN) -> the masking's indices: patches sorted by (noise, index)
// ascending (a stable sort: ties keep the lower index first); the first len_keep are kept.
// Writes ids_keep (len_keep, sorted order), ids_restore (L, the rank of each patch), ids_masked
// (L - len_keep, ascending patch index) and mask (L, 1 = removed). `order` is L values of scratch.
void shuffle_row(const double* noise, int64_t L, int64_t len_keep, int64_t* order, int64_t* ids_keep,
                 int64_t* ids_restore, int64_t* ids_masked, float* mask);

// Copies the patch whose top-left pixel is `first` to `out` in (p, q, c) order, bit for bit: pass the
// images' elements as the unsigned integer of their size (uint16_t for float16 and bfloat16).
void gather_patch(const uint8_t* first, const PatchGrid& g, uint8_t* out);
void gather_patch(const uint16_t* first, const PatchGrid& g, uint16_t* out);
void gather_patch(const uint32_t* first, const PatchGrid& g, uint32_t* out);
void gather_patch(const uint64_t* first, const PatchGrid& g, uint64_t* out);

// The target of the patch at `first`, written in (p, q, c) order: its values, normalised per patch when
// `norm` ((x - mean) / sqrt(var + eps), var unbiased). The statistics are float64 sums, mean first,
// then the centred squares (two passes, no cancellation); each value is computed in float64 and
// rounded once to the output type. `planes`: 3 p² doubles of scratch. Float16/bfloat16 images go
// through float32 (exact), their targets through float32 to the half type (the same rounding as
// float64 -> half).
void patch_target(const uint8_t* first, const PatchGrid& g, bool norm, double eps, double* planes, float* out);
void patch_target(const float* first, const PatchGrid& g, bool norm, double eps, double* planes, float* out);
void patch_target(const double* first, const PatchGrid& g, bool norm, double eps, double* planes, double* out);

}  // namespace mae
}  // namespace cpu
}  // namespace fastssl
