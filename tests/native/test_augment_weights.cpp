// Resize weights of the fused augmentation: every output's run lies inside the input, its weights sum
// to 1 (the triangle's are >= 0), and a flip reverses the outputs.
#include <cmath>
#include <cstdint>
#include <vector>

#include "../../kernels/cpu/augment_weights.h"
#include "check.h"

int main() {
  for (bool bicubic : {false, true}) {
    for (int64_t length : {1, 2, 5, 17, 224, 333, 500, 4000}) {
      for (int64_t out : {1, 3, 96, 224}) {
        const int32_t taps = fastssl::cpu::axis_taps(length, out, bicubic);
        CHECK(taps >= 1 && taps <= length, "taps %d for length %lld", taps, static_cast<long long>(length));
        const int64_t stride = taps + 2;
        std::vector<int32_t> start(out), flipped_start(out);
        std::vector<float> w(out * stride), flipped(out * stride);
        fastssl::cpu::axis_weights(length, out, bicubic, taps, stride, false, start.data(), w.data());
        fastssl::cpu::axis_weights(length, out, bicubic, taps, stride, true, flipped_start.data(), flipped.data());
        for (int64_t i = 0; i < out; ++i) {
          CHECK(start[i] >= 0 && start[i] + taps <= length, "start %d taps %d length %lld", start[i], taps,
                static_cast<long long>(length));
          double total = 0.0;
          for (int64_t j = 0; j < stride; ++j) {
            const float v = w[i * stride + j];
            total += v;
            CHECK(j < taps || v == 0.0f, "weight %g beyond the taps", v);
            CHECK(bicubic || v >= 0.0f, "negative triangle weight %g", v);
            CHECK(v == flipped[(out - 1 - i) * stride + j], "flip does not reverse output %lld",
                  static_cast<long long>(i));
          }
          CHECK(std::fabs(total - 1.0) < 1e-6, "weights of output %lld sum to %g", static_cast<long long>(i), total);
          CHECK(start[i] == flipped_start[out - 1 - i], "flip does not reverse the starts");
        }
      }
    }
  }
  return finish("augment_weights");
}
