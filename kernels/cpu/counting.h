// Area resizing of the whole image and its 2x2 tiles, for the counting pretext (specification:
// fastssl.reference.counting). Torch-free: csrc/counting.cpp builds one CountingPlan per call and
// splits the planes over threads.
#pragma once

#include <cstdint>
#include <vector>

namespace fastssl {
namespace cpu {

// Output k of a side n resized to S covers the inputs [begin[k], end[k]) (the area filter:
// floor(k n / S) to ceil((k + 1) n / S)); `width` is end - begin when it is the same for every k,
// else 0.
struct AreaSpans {
  std::vector<int32_t> begin, end;
  int64_t width = 0;
  AreaSpans(int64_t n, int64_t S);
};

// The index maths of one call, computed once: the spans of the 5 regions (whole, then the tiles
// row-major) along y and x, for planes of H x W resized to S x S.
struct CountingPlan {
  int64_t H, W, S;
  int64_t top[5], left[5];
  std::vector<AreaSpans> rows, cols;
  bool float_exact;  // uint8 sums of a box < 2^24: exact in float32 (and the division correctly rounded)
  bool int32_sums;   // uint8 sums of a box < 2^31: int32 column sums (else double)
  CountingPlan(int64_t H, int64_t W, int64_t S);
  int64_t scratch_size() const { return W; }  // int32 or double column sums per thread
};

// One plane (H x W, row-major) -> 5 planes of S x S: output (i, j) of a region is the mean of its
// box, rounded once to float32 (uint8: exact integer sums, divided in float32 when float_exact —
// the correctly rounded quotient, as the reference's float64 mean rounded to float32 — else in
// float64; float: sums and division in float64). `scratch`: plan.scratch_size() values, int32 for
// uint8 planes when plan.int32_sums, else double.
void counting_tiles_plane(const CountingPlan& plan, const uint8_t* plane, int32_t* scratch, float* const out[5]);
void counting_tiles_plane(const CountingPlan& plan, const uint8_t* plane, double* scratch, float* const out[5]);
void counting_tiles_plane(const CountingPlan& plan, const float* plane, double* scratch, float* const out[5]);

}  // namespace cpu
}  // namespace fastssl
