// InfoNCE / NT-Xent on the CPU without the (M, K) logit matrix: ATen matmuls over row chunks.
//
// fastssl_C::info_nce_lse(q, k, rq, rk, exclude, inv_tau) -> lse (M,) float32
//   lse_i = log sum_{j != exclude_i} exp(a_ij),  a_ij = (q_i . k_j) rq_i rk_j inv_tau
// fastssl_C::info_nce_grad(q, k, rq, rk, exclude, lse, g, inv_tau) -> (gq (M, D), gk (K, D)) float32
//   with w_ij = g_i exp(a_ij - lse_i) inv_tau (0 at the excluded column):
//   gq_i = sum_j w_ij rk_j k_j,   gk_j = sum_i w_ij rq_i q_i
//   i.e. the gradients of sum_i g_i lse_i with respect to the scaled rows rq_i q_i and rk_j k_j.
//
// rq / rk are per-row scales (inverse norms when the loss normalises, ones otherwise). The positive
// term of the loss and the normalisation's Jacobian are O(N D) and applied by fastssl/ops/nt_xent.py.
// Rows are processed in chunks of at most kChunkBytes of logits, so the extra memory is
// O((M + K) D + chunk) whatever M and K are. The log-sum-exp of a chunk spans all K columns at once
// (at::logsumexp takes the row maximum first), so no online rescaling is needed here.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>

namespace fastssl {
namespace {

constexpr int64_t kChunkBytes = int64_t(32) << 20;  // float32 logits per row chunk: 32 MiB

void check_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& rq, const at::Tensor& rk,
                  const at::Tensor& exclude) {
  TORCH_CHECK(q.dim() == 2 && k.dim() == 2, "queries and keys must be 2-D (rows, D), got ", q.sizes(), " and ",
              k.sizes());
  TORCH_CHECK(q.size(1) == k.size(1), "queries and keys must have the same D, got ", q.size(1), " and ", k.size(1));
  TORCH_CHECK(k.size(0) > 0, "keys must have at least one row");
  TORCH_CHECK(rq.dim() == 1 && rq.size(0) == q.size(0), "rq must have shape (M,) = (", q.size(0), "), got ",
              rq.sizes());
  TORCH_CHECK(rk.dim() == 1 && rk.size(0) == k.size(0), "rk must have shape (K,) = (", k.size(0), "), got ",
              rk.sizes());
  TORCH_CHECK(exclude.dim() == 1 && exclude.size(0) == q.size(0) && exclude.scalar_type() == at::kLong,
              "exclude must be int64 of shape (M,), got ", exclude.scalar_type(), " ", exclude.sizes());
}

int64_t chunk_rows(int64_t k_rows) {
  return std::max<int64_t>(1, kChunkBytes / (4 * std::max<int64_t>(k_rows, 1)));
}

// Logits of rows [r0, r1) in float32, with -inf at each row's excluded column.
at::Tensor chunk_logits(const at::Tensor& q, const at::Tensor& kt, const at::Tensor& rq_tau, const at::Tensor& rk,
                        const at::Tensor& exclude, int64_t r0, int64_t r1) {
  at::Tensor a = at::mm(q.slice(0, r0, r1), kt);  // (R, K)
  a.mul_(rq_tau.slice(0, r0, r1).unsqueeze(1)).mul_(rk.unsqueeze(0));
  const at::Tensor ex = exclude.slice(0, r0, r1);
  const at::Tensor rows = at::nonzero(ex >= 0).flatten();
  if (rows.numel() > 0) {
    a.index_put_({rows, ex.index_select(0, rows)}, -std::numeric_limits<float>::infinity());
  }
  return a;
}

at::Tensor info_nce_lse_cpu(const at::Tensor& queries, const at::Tensor& keys, const at::Tensor& rq,
                            const at::Tensor& rk, const at::Tensor& exclude, double inv_tau) {
  check_inputs(queries, keys, rq, rk, exclude);
  const at::Tensor q = queries.to(at::kFloat).contiguous();
  const at::Tensor kt = keys.to(at::kFloat).t().contiguous();  // (D, K)
  const at::Tensor rq_tau = rq.to(at::kFloat) * inv_tau;
  const at::Tensor rkf = rk.to(at::kFloat).contiguous();
  const int64_t m = q.size(0), step = chunk_rows(keys.size(0));
  at::Tensor lse = at::empty({m}, q.options());
  for (int64_t r0 = 0; r0 < m; r0 += step) {
    const int64_t r1 = std::min(m, r0 + step);
    lse.slice(0, r0, r1).copy_(at::logsumexp(chunk_logits(q, kt, rq_tau, rkf, exclude, r0, r1), {1}));
  }
  return lse;
}

std::tuple<at::Tensor, at::Tensor> info_nce_grad_cpu(const at::Tensor& queries, const at::Tensor& keys,
                                                     const at::Tensor& rq, const at::Tensor& rk,
                                                     const at::Tensor& exclude, const at::Tensor& lse,
                                                     const at::Tensor& g, double inv_tau) {
  check_inputs(queries, keys, rq, rk, exclude);
  const int64_t m = queries.size(0), step = chunk_rows(keys.size(0));
  TORCH_CHECK(lse.dim() == 1 && lse.size(0) == m && g.dim() == 1 && g.size(0) == m, "lse and g must have shape (M,)");
  const at::Tensor q = queries.to(at::kFloat).contiguous();
  const at::Tensor k = keys.to(at::kFloat).contiguous();
  const at::Tensor kt = k.t().contiguous();
  const at::Tensor rq_tau = rq.to(at::kFloat) * inv_tau;
  const at::Tensor rkf = rk.to(at::kFloat).contiguous();
  const at::Tensor ks = k * rkf.unsqueeze(1);                     // rk_j k_j
  const at::Tensor qs = q * rq.to(at::kFloat).unsqueeze(1);       // rq_i q_i
  const at::Tensor lsef = lse.to(at::kFloat), gf = g.to(at::kFloat) * inv_tau;
  at::Tensor gq = at::empty_like(q);
  at::Tensor gk = at::zeros_like(k);
  for (int64_t r0 = 0; r0 < m; r0 += step) {
    const int64_t r1 = std::min(m, r0 + step);
    at::Tensor w = chunk_logits(q, kt, rq_tau, rkf, exclude, r0, r1);
    w.sub_(lsef.slice(0, r0, r1).unsqueeze(1)).exp_().mul_(gf.slice(0, r0, r1).unsqueeze(1));  // exp(-inf) = 0
    gq.slice(0, r0, r1).copy_(at::mm(w, ks));
    gk.addmm_(w.t(), qs.slice(0, r0, r1));
  }
  return {gq, gk};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) {
  m.def("info_nce_lse(Tensor q, Tensor k, Tensor rq, Tensor rk, Tensor exclude, float inv_tau) -> Tensor");
  m.def("info_nce_grad(Tensor q, Tensor k, Tensor rq, Tensor rk, Tensor exclude, Tensor lse, Tensor g, "
        "float inv_tau) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) {
  m.impl("info_nce_lse", &info_nce_lse_cpu);
  m.impl("info_nce_grad", &info_nce_grad_cpu);
}

}  // namespace fastssl
