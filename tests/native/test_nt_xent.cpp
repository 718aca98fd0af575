// The InfoNCE kernel (lse and gradient) against a double-precision evaluation of its formulas, with
// a plain-loop matrix product: small problems with excluded columns and non-trivial scales, and one
// wide enough (2^21 keys) that the 32 MiB row chunks split its rows in three.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "../../kernels/cpu/nt_xent.h"
#include "check.h"

namespace {

namespace info_nce = fastssl::cpu::info_nce;

void plain_gemm(const info_nce::Product& p) {
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.n; ++j) {
      double acc = 0.0;
      for (int64_t t = 0; t < p.k; ++t) {
        const float a = p.trans_a ? p.a[t * p.lda + i] : p.a[i * p.lda + t];
        const float b = p.trans_b ? p.b[j * p.ldb + t] : p.b[t * p.ldb + j];
        acc += static_cast<double>(a) * b;
      }
      float& c = p.c[i * p.ldc + j];
      c = static_cast<float>(acc + (p.beta == 0.0f ? 0.0 : p.beta * static_cast<double>(c)));
    }
  }
}

const info_nce::Compute kSerial{plain_gemm, [](int64_t n, int64_t, const std::function<void(int64_t, int64_t)>& body) {
                                  body(0, n);
                                }};

struct Case {
  int64_t m, keys, d;
  float inv_tau;
};

void check_case(const Case& c, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> scale(0.5f, 1.5f), grad(-1.0f, 1.0f);
  std::vector<float> q(c.m * c.d), k(c.keys * c.d), rq(c.m), rk(c.keys), g(c.m);
  std::vector<int64_t> exclude(c.m);
  for (auto& v : q) v = normal(rng);
  for (auto& v : k) v = normal(rng);
  for (auto& v : rq) v = scale(rng);
  for (auto& v : rk) v = scale(rng);
  for (auto& v : g) v = grad(rng);
  // Every third row excludes nothing; a row keeps one column at least (the positive of the loss).
  for (int64_t i = 0; i < c.m; ++i) exclude[i] = i % 3 == 2 || c.keys == 1 ? -1 : (i * 7) % c.keys;
  const info_nce::Problem p{q.data(), k.data(), rq.data(), rk.data(), exclude.data(), c.m, c.keys, c.d, c.inv_tau};

  std::vector<float> lse(c.m), gq(c.m * c.d, NAN), gk(c.keys * c.d, NAN);
  std::vector<float> work(info_nce::grad_workspace(p));
  info_nce::lse(p, kSerial, work.data(), lse.data());
  info_nce::grad(p, lse.data(), g.data(), kSerial, work.data(), gq.data(), gk.data());

  std::vector<double> row(c.keys), want_gq(c.m * c.d, 0.0), want_gk(c.keys * c.d, 0.0);
  for (int64_t i = 0; i < c.m; ++i) {
    double top = -INFINITY;
    for (int64_t j = 0; j < c.keys; ++j) {
      double dot = 0.0;
      for (int64_t t = 0; t < c.d; ++t) dot += static_cast<double>(q[i * c.d + t]) * k[j * c.d + t];
      row[j] = j == exclude[i] ? -INFINITY : dot * rq[i] * rk[j] * c.inv_tau;
      top = std::fmax(top, row[j]);
    }
    double sum = 0.0;
    for (int64_t j = 0; j < c.keys; ++j) sum += std::exp(row[j] - top);
    const double want = top + std::log(sum);
    CHECK(std::fabs(lse[i] - want) <= 1e-5 * (1.0 + std::fabs(want)), "m %lld keys %lld row %lld: lse %g vs %g",
          (long long)c.m, (long long)c.keys, (long long)i, lse[i], want);
    for (int64_t j = 0; j < c.keys; ++j) {
      const double w = g[i] * c.inv_tau * std::exp(row[j] - want);
      for (int64_t t = 0; t < c.d; ++t) {
        want_gq[i * c.d + t] += w * rk[j] * k[j * c.d + t];
        want_gk[j * c.d + t] += w * rq[i] * q[i * c.d + t];
      }
    }
  }
  double worst = 0.0, largest = 0.0;
  for (int64_t x = 0; x < c.m * c.d; ++x) {
    worst = std::fmax(worst, std::fabs(gq[x] - want_gq[x]));
    largest = std::fmax(largest, std::fabs(want_gq[x]));
  }
  for (int64_t x = 0; x < c.keys * c.d; ++x) {
    worst = std::fmax(worst, std::fabs(gk[x] - want_gk[x]));
    largest = std::fmax(largest, std::fabs(want_gk[x]));
  }
  CHECK(worst <= 2e-5 * largest, "m %lld keys %lld d %lld: gradient off by %g (largest %g)", (long long)c.m,
        (long long)c.keys, (long long)c.d, worst, largest);
}

}  // namespace

int main() {
  std::mt19937 rng(11);
  for (const Case& c : {Case{1, 1, 1, 1.0f}, Case{2, 2, 1, 1.0f}, Case{7, 5, 3, 10.0f}, Case{16, 16, 8, 5.0f},
                        Case{9, 33, 4, 2.0f}}) {
    check_case(c, rng);
  }
  const int64_t wide = int64_t{1} << 21;
  CHECK(info_nce::chunk_rows(wide) == 4, "chunk rows for 2^21 keys: %lld", (long long)info_nce::chunk_rows(wide));
  check_case(Case{10, wide, 1, 1.0f}, rng);

  // The worked example of nt_xent.h, and NaN in: NaN out.
  const float q[2] = {1.0f, 2.0f}, ones[2] = {1.0f, 1.0f}, with_nan[2] = {1.0f, NAN};
  const int64_t exclude[2] = {0, 1};
  float lse[2], work[4];
  info_nce::lse({q, q, ones, ones, exclude, 2, 2, 1, 1.0f}, kSerial, work, lse);
  CHECK(std::fabs(lse[0] - 2.0f) < 1e-6f && std::fabs(lse[1] - 2.0f) < 1e-6f, "example: %g %g", lse[0], lse[1]);
  info_nce::lse({with_nan, q, ones, ones, exclude, 2, 2, 1, 1.0f}, kSerial, work, lse);
  CHECK(!std::isnan(lse[0]) && std::isnan(lse[1]), "NaN query row 1: %g %g", lse[0], lse[1]);
  return finish("test_nt_xent");
}
