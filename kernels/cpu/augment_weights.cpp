#include "augment_weights.h"

#include <algorithm>
#include <vector>

#include "../common/augment_weights.h"

namespace fastssl {
namespace cpu {

namespace aw = augment_weights;

int32_t axis_taps(int64_t length, int64_t out, bool bicubic) {
  const aw::Axis a = aw::axis(length, out, bicubic);
  double taps = 0.0;
  for (int64_t i = 0; i < out; ++i) taps = std::max(taps, aw::run_end(a, i) - aw::run_begin(a, i));
  return static_cast<int32_t>(taps);
}

void axis_weights(int64_t length, int64_t out, bool bicubic, int32_t taps, int64_t stride, bool flip,
                  int32_t* start, float* weights) {
  const aw::Axis a = aw::axis(length, out, bicubic);
  double w[64];  // a run longer than 64 taps (downscaling by > 32) takes the heap
  std::vector<double> heap;
  double* run = w;
  if (stride > 64) {
    heap.resize(static_cast<size_t>(stride));
    run = heap.data();
  }
  const double inv_stretch = 1.0 / a.stretch;
  for (int64_t i = 0; i < out; ++i) {
    const double begin = aw::run_begin(a, i), end = aw::run_end(a, i), centre = aw::centre(a, i);
    const double first = std::min(begin, a.length - static_cast<double>(taps));
    // Summed in order over all `stride` entries (zeros add nothing), as the specification's cumsum.
    double total = 0.0;
    for (int64_t j = 0; j < stride; ++j) {
      const double pos = first + static_cast<double>(j);
      const bool inside = pos >= begin && pos < end;
      run[j] = inside ? aw::filter((pos - centre + 0.5) * inv_stretch, bicubic) : 0.0;
      total += run[j];
    }
    const double norm = 1.0 / (total != 0.0 ? total : 1.0);
    const int64_t o = flip ? out - 1 - i : i;
    start[o] = static_cast<int32_t>(first);
    for (int64_t j = 0; j < stride; ++j) weights[o * stride + j] = static_cast<float>(run[j] * norm);
  }
}

}  // namespace cpu
}  // namespace fastssl
