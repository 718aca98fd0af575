// Torch bindings of InfoNCE / NT-Xent on the CPU: schemas of fastssl_C::info_nce_lse,
// fastssl_C::info_nce_grad and fastssl_C::info_nce_grad_queries, their checks, and ATen's matrix
// product and thread pool for the kernel (kernels/cpu/nt_xent.h, which has the formulas).
//
// fastssl_C::info_nce_lse(q, k, rq, rk, exclude, inv_tau) -> lse (M,) float32
// fastssl_C::info_nce_grad(q, k, rq, rk, exclude, lse, g, inv_tau) -> (gq (M, D), gk (K, D)) float32
// fastssl_C::info_nce_grad_queries(q, k, rq, rk, exclude, lse, g, inv_tau) -> gq (M, D) float32
//   (the queue form, whose keys, MoCo's queue of negatives, get no gradient)
//
// The positive term of the loss and the normalisation's Jacobian are O(N D) and applied by
// fastssl/ops/nt_xent.py.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <tuple>

#include "../kernels/cpu/nt_xent.h"
#include "checks.h"

namespace fastssl {
namespace {

namespace kernel = cpu::info_nce;

// The float32 inputs, contiguous, which `problem` points into: keep it alive while the kernel runs.
struct Inputs {
  at::Tensor q, k, rq, rk, exclude;
  kernel::Problem problem;
};

Inputs prepare(const at::Tensor& queries, const at::Tensor& keys, const at::Tensor& rq, const at::Tensor& rk,
               const at::Tensor& exclude, double inv_tau) {
  TORCH_CHECK(queries.dim() == 2 && keys.dim() == 2, "queries and keys must be 2-D (rows, D), got ", queries.sizes(),
              " and ", keys.sizes());
  TORCH_CHECK(queries.size(1) == keys.size(1), "queries and keys must have the same D, got ", queries.size(1), " and ",
              keys.size(1));
  TORCH_CHECK(keys.size(0) > 0, "keys must have at least one row");
  const int64_t m = queries.size(0), n = keys.size(0);
  Inputs in;
  in.q = check_tensor(queries, "queries", std::nullopt, {m, -1}).to(at::kFloat);
  in.k = check_tensor(keys, "keys", std::nullopt, {n, -1}).to(at::kFloat);
  in.rq = check_tensor(rq, "rq", std::nullopt, {m}).to(at::kFloat);
  in.rk = check_tensor(rk, "rk", std::nullopt, {n}).to(at::kFloat);
  in.exclude = check_tensor(exclude, "exclude", at::kLong, {m});
  in.problem = {in.q.const_data_ptr<float>(), in.k.const_data_ptr<float>(), in.rq.const_data_ptr<float>(),
                in.rk.const_data_ptr<float>(), in.exclude.const_data_ptr<int64_t>(), m, n, queries.size(1),
                static_cast<float>(inv_tau)};
  return in;
}

at::Tensor float_view(const float* data, int64_t rows, int64_t cols, int64_t ld, bool transposed) {
  const at::Tensor t = at::from_blob(const_cast<float*>(data), {transposed ? cols : rows, transposed ? rows : cols},
                                     {ld, 1}, at::TensorOptions().dtype(at::kFloat));
  return transposed ? t.t() : t;
}

void aten_gemm(const kernel::Product& p) {
  const at::Tensor a = float_view(p.a, p.m, p.k, p.lda, p.trans_a);
  const at::Tensor b = float_view(p.b, p.k, p.n, p.ldb, p.trans_b);
  at::Tensor c = float_view(p.c, p.m, p.n, p.ldc, false);
  if (p.beta == 0.0f) {
    at::mm_out(c, a, b);
  } else {
    c.addmm_(a, b, p.beta, 1.0);
  }
}

const kernel::Compute& aten_compute() {
  static const kernel::Compute compute{
      aten_gemm, [](int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
        at::parallel_for(0, n, grain, body);
      }};
  return compute;
}

// Workspace as a tensor, so that it comes from (and is counted by) torch's allocator.
at::Tensor workspace(int64_t floats) { return at::empty({floats}, at::TensorOptions().dtype(at::kFloat)); }

at::Tensor info_nce_lse_cpu(const at::Tensor& queries, const at::Tensor& keys, const at::Tensor& rq,
                            const at::Tensor& rk, const at::Tensor& exclude, double inv_tau) {
  const Inputs in = prepare(queries, keys, rq, rk, exclude, inv_tau);
  at::Tensor lse = at::empty({in.problem.m}, in.q.options());
  at::Tensor scratch = workspace(kernel::lse_workspace(in.problem));
  kernel::lse(in.problem, aten_compute(), scratch.data_ptr<float>(), lse.data_ptr<float>());
  return lse;
}

// gq, and gk unless it is null: the kernel's gradient.
void compute_grad(const at::Tensor& queries, const at::Tensor& keys, const at::Tensor& rq, const at::Tensor& rk,
                  const at::Tensor& exclude, const at::Tensor& lse, const at::Tensor& g, double inv_tau, at::Tensor& gq,
                  at::Tensor* gk) {
  const Inputs in = prepare(queries, keys, rq, rk, exclude, inv_tau);
  const at::Tensor lsef = check_tensor(lse, "lse", std::nullopt, {in.problem.m}).to(at::kFloat);
  const at::Tensor gf = check_tensor(g, "g", std::nullopt, {in.problem.m}).to(at::kFloat);
  gq = at::empty_like(in.q);
  if (gk != nullptr) *gk = at::empty_like(in.k);
  at::Tensor scratch = workspace(kernel::grad_workspace(in.problem));
  kernel::grad(in.problem, lsef.const_data_ptr<float>(), gf.const_data_ptr<float>(), aten_compute(),
               scratch.data_ptr<float>(), gq.data_ptr<float>(), gk != nullptr ? gk->data_ptr<float>() : nullptr);
}

std::tuple<at::Tensor, at::Tensor> info_nce_grad_cpu(const at::Tensor& queries, const at::Tensor& keys,
                                                     const at::Tensor& rq, const at::Tensor& rk,
                                                     const at::Tensor& exclude, const at::Tensor& lse,
                                                     const at::Tensor& g, double inv_tau) {
  at::Tensor gq, gk;
  compute_grad(queries, keys, rq, rk, exclude, lse, g, inv_tau, gq, &gk);
  return {gq, gk};
}

at::Tensor info_nce_grad_queries_cpu(const at::Tensor& queries, const at::Tensor& keys, const at::Tensor& rq,
                                     const at::Tensor& rk, const at::Tensor& exclude, const at::Tensor& lse,
                                     const at::Tensor& g, double inv_tau) {
  at::Tensor gq;
  compute_grad(queries, keys, rq, rk, exclude, lse, g, inv_tau, gq, nullptr);
  return gq;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) {
  m.def("info_nce_lse(Tensor q, Tensor k, Tensor rq, Tensor rk, Tensor exclude, float inv_tau) -> Tensor");
  m.def("info_nce_grad(Tensor q, Tensor k, Tensor rq, Tensor rk, Tensor exclude, Tensor lse, Tensor g, "
        "float inv_tau) -> (Tensor, Tensor)");
  m.def("info_nce_grad_queries(Tensor q, Tensor k, Tensor rq, Tensor rk, Tensor exclude, Tensor lse, Tensor g, "
        "float inv_tau) -> Tensor");
}

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) {
  m.impl("info_nce_lse", &info_nce_lse_cpu);
  m.impl("info_nce_grad", &info_nce_grad_cpu);
  m.impl("info_nce_grad_queries", &info_nce_grad_queries_cpu);
}

}  // namespace fastssl
