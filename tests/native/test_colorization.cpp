// nearest_bins against a brute-force sort; the CPU loop's pooling on a hand-made image.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "../../kernels/common/color.h"
#include "../../kernels/common/colorization.h"
#include "../../kernels/common/lab.h"
#include "../../kernels/cpu/colorization.h"
#include "../../kernels/cpu/lab.h"
#include "check.h"

int main() {
  // A grid of bins at spacing 10 over [-50, 50]^2.
  std::vector<float> bins;
  for (int a = -50; a <= 50; a += 10)
    for (int b = -50; b <= 50; b += 10) bins.push_back(a), bins.push_back(b);
  const int Q = static_cast<int>(bins.size() / 2);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> ab(-60.0f, 60.0f);
  for (int trial = 0; trial < 2000; ++trial) {
    const float a = trial == 0 ? 5.0f : ab(rng), b = trial == 0 ? 5.0f : ab(rng);  // trial 0: a 4-way tie
    for (int k : {1, 5, 8}) {
      int64_t index[8];
      float weight[8];
      fastssl::colorization::nearest_bins(a, b, bins.data(), Q, k, 1.0f / 50.0f, index, weight);
      std::vector<int> order(Q);
      std::iota(order.begin(), order.end(), 0);
      std::vector<float> d2(Q);
      for (int q = 0; q < Q; ++q) d2[q] = (a - bins[2 * q]) * (a - bins[2 * q]) + (b - bins[2 * q + 1]) * (b - bins[2 * q + 1]);
      std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return d2[x] < d2[y]; });
      double total = 0;
      for (int j = 0; j < k; ++j) total += std::exp(-(d2[order[j]] - d2[order[0]]) / 50.0);
      for (int j = 0; j < k; ++j) {
        CHECK(index[j] == order[j], "trial %d k %d slot %d: %lld vs %d", trial, k, j, (long long)index[j], order[j]);
        const double w = std::exp(-(d2[order[j]] - d2[order[0]]) / 50.0) / total;
        CHECK(std::fabs(weight[j] - w) < 1e-5, "weight trial %d slot %d", trial, j);
      }
    }
  }

  // A 5x6 image (partial edge cells at factor 4): L - 50 per pixel, mean ab per cell.
  const int H = 5, W = 6;
  std::vector<uint8_t> image(3 * H * W);
  for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<uint8_t>((i * 53) % 256);
  fastssl::colorization::Args args{H, W, 2, 2, false, 4, true, bins.data(), Q, 5, 1.0f / 50.0f};
  std::vector<float> l(H * W), ab_out(2 * 4), weight(5 * 4);
  std::vector<int64_t> index(5 * 4);
  fastssl::cpu::colorization_targets_rows(args, image.data(), l.data(), ab_out.data(), index.data(), weight.data(), 0, 2);
  const auto& table = fastssl::color::srgb_table();
  double sum_a = 0;
  for (int y = 4; y < 5; ++y)
    for (int x = 4; x < 6; ++x) {
      const int p = y * W + x;
      float L, A, B;
      fastssl::lab::linear_rgb_to_lab(table.v[image[p]], table.v[image[H * W + p]], table.v[image[2 * H * W + p]], L, A, B);
      CHECK(std::fabs(l[p] - (L - 50.0f)) < 1e-5, "L - 50 at %d", p);
      sum_a += A;
    }
  CHECK(std::fabs(ab_out[3] - sum_a / 2) < 1e-4, "mean a of the corner cell %g vs %g", ab_out[3], sum_a / 2);
  return finish("test_colorization");
}
