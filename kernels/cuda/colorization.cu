// CUDA kernel of the fused colorization targets (launcher declared in colorization.cuh). The
// semantics are those of kernels/cpu/colorization.cpp: per output cell the same pixel order, the
// same mean, the same kernels/common/colorization.h nearest-bin search.
#include "colorization.cuh"

#include <cuda_runtime.h>

#include "../common/color.h"
#include "../common/colorization.h"
#include "../common/lab.h"
#include "launch.cuh"

namespace fastssl {
namespace gpu {
namespace {

// Bin tables up to this size (Q <= 4096) are staged in shared memory; larger ones are read from
// global memory (through L1), which is slower but has no size limit.
constexpr size_t kMaxSharedBinBytes = 32 * 1024;

// Output addressing of one image: its first pixel / cell in each output tensor.
struct CellOutputs {
  float* l;        // (H, W)
  float* ab;       // (2, h, w)
  int64_t* index;  // (k, h, w)
  float* weight;   // (k, h, w)
};

// Lab of pixel `offset` (= y * W + x) of one uint8 image, linearised through the shared table.
__device__ __forceinline__ void pixel_lab(const uint8_t* __restrict__ image, int64_t plane, int64_t offset,
                                          bool channels_last, const float* lin, float& L, float& A, float& B) {
  const uint8_t* p = channels_last ? image + 3 * offset : image + offset;
  const int64_t step = channels_last ? 1 : plane;
  lab::linear_rgb_to_lab(lin[p[0]], lin[p[step]], lin[p[2 * step]], L, A, B);
}

// Cell (i, j) covers rows [i f, min(i f + f, H)) and columns [j f, min(j f + f, W)); edge cells are
// partial. Every pixel's L - 50 is written; the cell's ab is the mean over its pixels (summed row
// by row, as the CPU loop does) or, without mean_pool, its top-left pixel's.
__device__ __forceinline__ void colorization_cell(const colorization::Args& a, const uint8_t* __restrict__ image,
                                                  const CellOutputs& out, int64_t i, int64_t j, const float* lin,
                                                  const float* bins) {
  const int64_t H = a.height, W = a.width, cells = a.out_height * a.out_width;
  const int64_t y0 = i * a.factor, y1 = min(y0 + a.factor, H);
  const int64_t x0 = j * a.factor, x1 = min(x0 + a.factor, W);
  float sum_a = 0.0f, sum_b = 0.0f;
  for (int64_t y = y0; y < y1; ++y) {
    for (int64_t x = x0; x < x1; ++x) {
      float L, A, B;
      pixel_lab(image, H * W, y * W + x, a.channels_last, lin, L, A, B);
      out.l[y * W + x] = L - 50.0f;
      if (a.mean_pool) {
        sum_a += A;
        sum_b += B;
      } else if (y == y0 && x == x0) {
        sum_a = A;
        sum_b = B;
      }
    }
  }
  if (a.mean_pool) {
    const float inv_count = 1.0f / static_cast<float>((y1 - y0) * (x1 - x0));
    sum_a *= inv_count;
    sum_b *= inv_count;
  }
  const int64_t cell = i * a.out_width + j;
  out.ab[cell] = sum_a;
  out.ab[cells + cell] = sum_b;
  int64_t index[colorization::kMaxK];
  float weight[colorization::kMaxK];
  colorization::nearest_bins(sum_a, sum_b, bins, a.num_bins, a.k, a.inv_two_sigma2, index, weight);
#pragma unroll
  for (int t = 0; t < colorization::kMaxK; ++t) {
    if (t < a.k) {
      out.index[t * cells + cell] = index[t];
      out.weight[t * cells + cell] = weight[t];
    }
  }
}

// One thread per output cell: cell c of the grid-stride sequence is image c / (h w), cell row
// (c mod h w) / w, cell column c mod w, so consecutive threads take neighbouring cells of one row
// and their ab / index / weight stores are contiguous. Each block first stages the sRGB table
// (kernel parameter) and, when bins_in_shared, the bins (dynamic shared memory): every thread scans
// all Q bins in the same order, so the bin reads are shared-memory broadcasts.
__global__ void __launch_bounds__(kThreads)
    colorization_kernel(colorization::Args a, int64_t batch, const uint8_t* __restrict__ images,
                        float* __restrict__ l, float* __restrict__ ab, int64_t* __restrict__ index,
                        float* __restrict__ weight, bool bins_in_shared, color::SrgbTable table) {
  __shared__ float lin[256];
  extern __shared__ float shared_bins[];
  for (int t = threadIdx.x; t < 256; t += blockDim.x) lin[t] = table.v[t];
  if (bins_in_shared) {
    for (int t = threadIdx.x; t < 2 * a.num_bins; t += blockDim.x) shared_bins[t] = a.bins[t];
  }
  __syncthreads();
  const float* bins = bins_in_shared ? shared_bins : a.bins;

  const int64_t cells = a.out_height * a.out_width, pixels = a.height * a.width;
  const int64_t total = batch * cells;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < total; c += stride) {
    const int64_t n = c / cells, cell = c - n * cells;
    const int64_t i = cell / a.out_width, j = cell - i * a.out_width;
    const CellOutputs out{l + n * pixels, ab + n * 2 * cells, index + n * a.k * cells, weight + n * a.k * cells};
    colorization_cell(a, images + n * 3 * pixels, out, i, j, lin, bins);
  }
}

}  // namespace

cudaError_t colorization_targets(const colorization::Args& args, int64_t batch, const uint8_t* images, float* l,
                                 float* ab, int64_t* index, float* weight, cudaStream_t stream) {
  const int64_t total = batch * args.out_height * args.out_width;
  if (total == 0) return cudaSuccess;
  const size_t bin_bytes = 2 * sizeof(float) * static_cast<size_t>(args.num_bins);
  const bool bins_in_shared = bin_bytes <= kMaxSharedBinBytes;
  colorization_kernel<<<block_count(total), kThreads, bins_in_shared ? bin_bytes : 0, stream>>>(
      args, batch, images, l, ab, index, weight, bins_in_shared, color::srgb_table());
  return cudaGetLastError();
}

}  // namespace gpu
}  // namespace fastssl
