#include "colorization.h"

#include <algorithm>
#include <vector>

#include "../common/colorization.h"
#include "../common/lab.h"
#include "lab.h"

namespace fastssl {
namespace cpu {

void colorization_targets_rows(const colorization::Args& args, const uint8_t* image, float* l_out, float* ab_out,
                               int64_t* index_out, float* weight_out, int64_t row_begin, int64_t row_end) {
  const int64_t H = args.height, W = args.width, h = args.out_height, w = args.out_width;
  const int64_t plane = H * W, cells = h * w;
  std::vector<float> L(W), A(W), B(W), sum_a(w), sum_b(w);
  std::vector<float> lab(args.channels_last ? 3 * W : 0);
  std::vector<int64_t> idx(args.k);
  std::vector<float> wt(args.k);
  for (int64_t i = row_begin; i < row_end; ++i) {
    std::fill(sum_a.begin(), sum_a.end(), 0.0f);
    std::fill(sum_b.begin(), sum_b.end(), 0.0f);
    const int64_t y0 = i * args.factor, y1 = std::min<int64_t>(y0 + args.factor, H);
    // Convert a strip of `factor` full-resolution rows with the vectorised row loops; keep L,
    // accumulate ab per cell.
    for (int64_t y = y0; y < y1; ++y) {
      if (args.channels_last) {
        rgb_to_lab_interleaved(image + 3 * y * W, lab.data(), W);
        for (int64_t x = 0; x < W; ++x) {
          L[x] = lab[3 * x];
          A[x] = lab[3 * x + 1];
          B[x] = lab[3 * x + 2];
        }
      } else {
        rgb_to_lab_planar(image + y * W, image + plane + y * W, image + 2 * plane + y * W, L.data(), A.data(),
                          B.data(), W);
      }
      float* l_row = l_out + y * W;
      for (int64_t x = 0; x < W; ++x) l_row[x] = L[x] - 50.0f;
      if (args.mean_pool) {
        for (int64_t x = 0; x < W; ++x) {
          sum_a[x / args.factor] += A[x];
          sum_b[x / args.factor] += B[x];
        }
      } else if (y == y0) {
        for (int64_t j = 0; j < w; ++j) {
          sum_a[j] = A[j * args.factor];
          sum_b[j] = B[j * args.factor];
        }
      }
    }
    for (int64_t j = 0; j < w; ++j) {
      float a = sum_a[j], b = sum_b[j];
      if (args.mean_pool) {
        const int64_t x0 = j * args.factor, x1 = std::min<int64_t>(x0 + args.factor, W);
        const float inv_count = 1.0f / static_cast<float>((y1 - y0) * (x1 - x0));
        a *= inv_count;
        b *= inv_count;
      }
      const int64_t cell = i * w + j;
      ab_out[cell] = a;
      ab_out[cells + cell] = b;
      colorization::nearest_bins(a, b, args.bins, args.num_bins, args.k, args.inv_two_sigma2, idx.data(), wt.data());
      for (int t = 0; t < args.k; ++t) {
        index_out[t * cells + cell] = idx[t];
        weight_out[t * cells + cell] = wt[t];
      }
    }
  }
}

}  // namespace cpu
}  // namespace fastssl
