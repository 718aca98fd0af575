// Lab per-pixel maths and CPU loops: golden values written out in double precision from the published
// constants, the uint8 table, the round trip, NaN propagation and finiteness at the thresholds.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "../../kernels/common/color.h"
#include "../../kernels/common/lab.h"
#include "../../kernels/cpu/lab.h"
#include "check.h"

namespace {

double lin(double c) { return c > 0.04045 ? std::pow((c + 0.055) / 1.055, 2.4) : c / 12.92; }
double f(double t) { return t > 0.008856 ? std::cbrt(t) : 7.787 * t + 16.0 / 116.0; }

void golden(double r, double g, double b, double out[3]) {
  r = lin(r), g = lin(g), b = lin(b);
  const double x = (0.412453 * r + 0.357580 * g + 0.180423 * b) / 0.95047;
  const double y = 0.212671 * r + 0.715160 * g + 0.072169 * b;
  const double z = (0.019334 * r + 0.119193 * g + 0.950227 * b) / 1.08883;
  out[0] = 116 * f(y) - 16, out[1] = 500 * (f(x) - f(y)), out[2] = 200 * (f(y) - f(z));
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  double worst = 0, worst_round_trip = 0;
  for (int i = 0; i < 100000; ++i) {
    const float r = unit(rng), g = unit(rng), b = unit(rng);
    float L, A, B, r2, g2, b2;
    fastssl::lab::rgb_to_lab(r, g, b, L, A, B);
    double expected[3];
    golden(r, g, b, expected);
    worst = std::fmax(worst, std::fmax(std::fabs(L - expected[0]),
                                       std::fmax(std::fabs(A - expected[1]), std::fabs(B - expected[2]))));
    fastssl::lab::lab_to_rgb(L, A, B, true, r2, g2, b2);
    worst_round_trip = std::fmax(worst_round_trip,
                                 std::fmax(std::fabs(r2 - r), std::fmax(std::fabs(g2 - g), std::fabs(b2 - b))));
  }
  CHECK(worst < 5e-4, "rgb_to_lab max abs error vs double %g", worst);
  CHECK(worst_round_trip < 1e-4, "round trip max abs error %g", worst_round_trip);

  // The uint8 table is the double-precision linearisation rounded once; the uint8 and float loops agree.
  const auto& table = fastssl::color::srgb_table();
  for (int v = 0; v < 256; ++v) CHECK(table.v[v] == static_cast<float>(lin(v / 255.0)), "table[%d]", v);
  std::vector<uint8_t> u8(3 * 257);
  std::vector<float> f32(3 * 257), lab_u8(3 * 257), lab_f32(3 * 257);
  for (int i = 0; i < 3 * 257; ++i) {
    u8[i] = static_cast<uint8_t>((i * 37) % 256);
    f32[i] = u8[i] / 255.0f;
  }
  fastssl::cpu::rgb_to_lab_interleaved(u8.data(), lab_u8.data(), 257);
  fastssl::cpu::rgb_to_lab_interleaved(f32.data(), lab_f32.data(), 257);
  for (int i = 0; i < 3 * 257; ++i) CHECK(std::fabs(lab_u8[i] - lab_f32[i]) < 2e-3, "uint8 vs float at %d", i);

  // Planar and interleaved loops compute the same function.
  std::vector<float> planar_in(3 * 257), planar_out(3 * 257);
  for (int p = 0; p < 257; ++p)
    for (int c = 0; c < 3; ++c) planar_in[c * 257 + p] = f32[3 * p + c];
  fastssl::cpu::rgb_to_lab_planar(planar_in.data(), planar_in.data() + 257, planar_in.data() + 514,
                                  planar_out.data(), planar_out.data() + 257, planar_out.data() + 514, 257);
  for (int p = 0; p < 257; ++p)
    for (int c = 0; c < 3; ++c) CHECK(planar_out[c * 257 + p] == lab_f32[3 * p + c], "planar vs interleaved %d", p);

  // NaN in one channel poisons the pixel; zero, thresholds and out-of-range values stay finite.
  float L, A, B;
  fastssl::lab::rgb_to_lab(NAN, 0.5f, 0.5f, L, A, B);
  CHECK(std::isnan(L) && std::isnan(A) && std::isnan(B), "NaN propagates");
  for (float v : {0.0f, 0.04045f, 1.0f, -0.5f, 3.0f}) {
    fastssl::lab::rgb_to_lab(v, v, v, L, A, B);
    CHECK(std::isfinite(L) && std::isfinite(A) && std::isfinite(B), "finite at %g", v);
  }
  std::printf("max abs error vs double %.3g, round trip %.3g\n", worst, worst_round_trip);
  return finish("test_lab");
}
