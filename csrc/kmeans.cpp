// Torch bindings of k-means on the CPU: schemas of fastssl_C::kmeans_assign and fastssl_C::kmeans_update,
// their checks, and ATen's matrix product and thread pool for the kernel (kernels/cpu/kmeans.h, which has
// the formulas).
//
// fastssl_C::kmeans_assign(x (N, D), centroids (K, D)) -> (assignment (N,) int64, distance (N,) float32)
// fastssl_C::kmeans_update(x (N, D), assignment (N,) int64, k) -> (sums (K, D) float32, counts (K,) int64)
//
// x and the centroids are read as float32 (other float dtypes are converted first: an (N, D) float32 copy).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <tuple>

#include "../kernels/cpu/kmeans.h"
#include "checks.h"

namespace fastssl {
namespace {

namespace kernel = cpu::kmeans;

at::Tensor rows_view(const float* data, int64_t rows, int64_t cols, int64_t ld) {
  return at::from_blob(const_cast<float*>(data), {rows, cols}, {ld, 1}, at::TensorOptions().dtype(at::kFloat));
}

// c = a b^T on the calling thread: inside at::parallel_for, ATen's own matrix product does not spawn threads.
void aten_gemm_nt(int64_t m, int64_t n, int64_t d, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                  int64_t ldc) {
  at::Tensor out = rows_view(c, m, n, ldc);
  at::mm_out(out, rows_view(a, m, d, lda), rows_view(b, n, d, ldb).t());
}

const kernel::Compute& aten_compute() {
  static const kernel::Compute compute{
      aten_gemm_nt, [](int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
        at::parallel_for(0, n, grain, body);
      }};
  return compute;
}

at::Tensor float_rows(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 2, name, " must be 2-D (rows, D), got shape ", t.sizes());
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), name, " must be a float tensor, got ", t.scalar_type());
  return check_tensor(t, name, std::nullopt, {-1, -1}).to(at::kFloat).contiguous();
}

std::tuple<at::Tensor, at::Tensor> kmeans_assign_cpu(const at::Tensor& x_in, const at::Tensor& centroids_in) {
  const at::Tensor x = float_rows(x_in, "x");
  const at::Tensor c = float_rows(centroids_in, "centroids");
  TORCH_CHECK(x.size(1) == c.size(1), "x and centroids must have the same D, got ", x.sizes(), " and ", c.sizes());
  TORCH_CHECK(c.size(0) > 0, "centroids must have at least one row");
  const int64_t n = x.size(0);
  at::Tensor assignment = at::empty({n}, x.options().dtype(at::kLong));
  at::Tensor distance = at::empty({n}, x.options());
  kernel::assign(x.const_data_ptr<float>(), c.const_data_ptr<float>(), n, c.size(0), x.size(1), aten_compute(),
                 assignment.data_ptr<int64_t>(), distance.data_ptr<float>());
  return {assignment, distance};
}

std::tuple<at::Tensor, at::Tensor> kmeans_update_cpu(const at::Tensor& x_in, const at::Tensor& assignment_in,
                                                     int64_t k) {
  const at::Tensor x = float_rows(x_in, "x");
  const at::Tensor assignment = check_tensor(assignment_in, "assignment", at::kLong, {x.size(0)});
  TORCH_CHECK(k >= 1, "k must be >= 1, got ", k);
  at::Tensor sums = at::empty({k, x.size(1)}, x.options());
  at::Tensor counts = at::empty({k}, x.options().dtype(at::kLong));
  kernel::update(x.const_data_ptr<float>(), assignment.const_data_ptr<int64_t>(), x.size(0), k, x.size(1),
                 aten_compute(), sums.data_ptr<float>(), counts.data_ptr<int64_t>());
  return {sums, counts};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) {
  m.def("kmeans_assign(Tensor x, Tensor centroids) -> (Tensor, Tensor)");
  m.def("kmeans_update(Tensor x, Tensor assignment, int k) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) {
  m.impl("kmeans_assign", &kmeans_assign_cpu);
  m.impl("kmeans_update", &kmeans_update_cpu);
}

}  // namespace fastssl
