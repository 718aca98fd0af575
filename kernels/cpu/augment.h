// CPU kernel of the fused per-sample augmentation: one read of each decoded image -> one view.
// Torch-free: csrc/augment.cpp checks the tensors, fills AugmentArgs and calls AugmentQueue::work on
// each thread of the ATen thread pool.
//
// Per sample b (the specification is fastssl/reference/augment.py):
//   1. resize the crop (separable, weights from fastssl/ops/augment_weights.py, flip folded into the
//      x weights): per output row, a vertical pass over the crop's uint8 rows (interleaved RGB, read
//      in place) into a float row, then a horizontal pass of that row into three planes of a float32
//      (3, h, w) scratch image in [0, 1];
//   2. the colour ops in the sample's order, one vectorised pass each; contrast first reduces the
//      gray mean of the image as it is at that point;
//   3. grayscale (one plane, shared by the three channels from then on);
//   4. Gaussian blur, separable, reflect padding then replicate (as the reference);
//   5. solarize, normalise, cast and store in one pass (NCHW or NHWC; float32, bfloat16 or float16).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace fastssl {
namespace cpu {

enum class OutDtype : int { kFloat32, kBFloat16, kFloat16 };

// Everything one call needs; every pointer is to a contiguous buffer of the documented shape.
struct AugmentArgs {
  const uint8_t* data;      // packed images, image b at data + offsets[b], (H_b, W_b, 3) uint8
  const int64_t* offsets;   // (B,)
  const int64_t* sizes;     // (B, 2) H, W
  const int64_t* crop;      // (B, 4) top, left, height, width (inside the image)
  const int32_t* y_start;   // (B, out_h): first crop row of each output row
  const float* y_weights;   // (B, out_h, y_stride); the first taps[b][0] of each row are read
  int64_t y_stride;
  const int32_t* taps;      // (B, 2): taps per output row (y) and column (x) of each sample
  const int32_t* x_start;   // (B, out_w): first crop column of each output column (flip folded in)
  const float* x_weights;   // (B, out_w, x_stride); the first taps[b][1] of each row are read
  int64_t x_stride;
  const float* factors;     // (B, 4) brightness, contrast, saturation, hue
  const int64_t* order;     // (B, 4) permutation of 0..3: the colour ops in the order applied
  const bool* grayscale;    // (B,)
  const float* blur_sigma;  // (B,) 0 = no blur
  const bool* solarize;     // (B,)
  int64_t out_h, out_w;
  int64_t blur_kernel;      // odd number of taps
  float mean[3], std[3];
  bool clamp;               // clamp the resized image to [0, 1] (bicubic)
  OutDtype dtype;
  bool channels_last;       // output (B, h, w, 3) in memory instead of (B, 3, h, w)
  void* out;
};

// Per-thread buffers, grown on demand and reused over the samples a thread processes.
struct AugmentScratch {
  std::vector<float> image;  // 3 planes of out_h * out_w
  std::vector<float> row;    // one vertically resized crop row, crop width * 3 (interleaved)
  std::vector<const float*> rows;    // blur: the rows one weighted sum reads
  std::vector<const uint8_t*> source_rows;  // resize: the source rows of an output row's non-zero taps
  std::vector<float> row_weights;    // and their weights
  std::vector<float> temp;   // blur: one plane after the horizontal pass
  std::vector<float> padded; // blur: one padded row
};

// Writes view b of the batch into args.out.
void augment_sample(const AugmentArgs& args, int64_t b, AugmentScratch& scratch);

// The samples of a batch, handed out one at a time from a shared counter: their cost varies
// several-fold (crop size, blur or not), so a static split of the batch would leave threads idle. A
// sample's view does not depend on the thread that computes it. They go in the order of their source
// image: the views of one image (a batch repeated for several views has equal offsets) run back to
// back, the second reading the image from cache.
//
// Example: AugmentQueue queue(args, batch); then queue.work() on each of any number of threads.
class AugmentQueue {
 public:
  AugmentQueue(const AugmentArgs& args, int64_t batch);
  // Computes samples, with scratch buffers of its own, until none is left.
  void work();

 private:
  const AugmentArgs& args_;
  std::vector<int64_t> order_;
  std::atomic<int64_t> next_{0};
};

// The vertical resize pass: dst[x] = sum_t k[t] rows[t][x] for x < n (uint8 rows, float weights and sums),
// the taps added in order. weighted_rows_u8 runs an AVX2 body where the CPU has one, else the portable
// body; both are here so that tests/native checks the one this CPU does not pick.
void weighted_rows_u8(const uint8_t* const* rows, const float* k, int64_t taps, int64_t n, float* dst);
void weighted_rows_u8_portable(const uint8_t* const* rows, const float* k, int64_t taps, int64_t n, float* dst);

}  // namespace cpu
}  // namespace fastssl
