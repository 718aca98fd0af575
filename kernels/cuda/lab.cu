// CUDA kernels of the sRGB <-> CIE Lab conversion (launchers declared in lab.cuh).
//
// Work unit: a group of 4 consecutive pixels per thread, so that each thread issues one vector
// load/store of 4 elements per channel plane (planar) or three of 4 elements (interleaved: 4 pixels
// are 12 consecutive elements). Consecutive threads take consecutive groups, so a warp reads and
// writes contiguous memory. Buffers whose addresses (or, planar, whose plane length) do not allow
// the vector accesses take the same path with element accesses.
//
// Instantiations: rgb_to_lab 4 input x 3 output types, lab_to_rgb 3 x 3; the layout and clip are
// runtime arguments (uniform branches), not template parameters.
#include "lab.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../common/color.h"
#include "../common/lab.h"
#include "launch.cuh"

namespace fastssl {
namespace gpu {
namespace {

constexpr int kGroup = 4;  // pixels per thread

// ---- element conversions: compute in float32, round once on store ----

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

__device__ __forceinline__ void assign(float& dst, float v) { dst = v; }
__device__ __forceinline__ void assign(__half& dst, float v) { dst = __float2half_rn(v); }
__device__ __forceinline__ void assign(__nv_bfloat16& dst, float v) { dst = __float2bfloat16_rn(v); }

struct CastDecode {
  template <typename T>
  __device__ float operator()(T v) const {
    return to_float(v);
  }
};

// uint8 levels are linearised by table lookup (the table lives in shared memory).
struct TableDecode {
  const float* lin;
  __device__ float operator()(uint8_t v) const { return lin[v]; }
};

// ---- per-pixel operations ----

struct RgbToLab {
  __device__ void operator()(float r, float g, float b, float& L, float& A, float& B) const {
    lab::rgb_to_lab(r, g, b, L, A, B);
  }
};

struct LinearRgbToLab {
  __device__ void operator()(float r, float g, float b, float& L, float& A, float& B) const {
    lab::linear_rgb_to_lab(r, g, b, L, A, B);
  }
};

struct LabToRgb {
  bool clip;
  __device__ void operator()(float L, float A, float B, float& r, float& g, float& b) const {
    lab::lab_to_rgb(L, A, B, clip, r, g, b);
  }
};

// ---- 4-element runs: one aligned vector access, or up to 4 element accesses ----

template <typename T>
struct alignas(4 * sizeof(T)) Run4 {
  T v[4];
};

// Reads the first `count` of 4 elements at p (count may be <= 0); the rest read as 0.
// vec: p is aligned to 4 elements and count == 4.
template <typename T, typename Decode>
__device__ __forceinline__ void load4(const T* __restrict__ p, int count, bool vec, Decode decode, float* v) {
  if (vec) {
    const Run4<T> run = *reinterpret_cast<const Run4<T>*>(p);
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = decode(run.v[j]);
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = j < count ? decode(p[j]) : 0.0f;
  }
}

template <typename T>
__device__ __forceinline__ void store4(T* __restrict__ p, int count, bool vec, const float* v) {
  if (vec) {
    Run4<T> run;
#pragma unroll
    for (int j = 0; j < 4; ++j) assign(run.v[j], v[j]);
    *reinterpret_cast<Run4<T>*>(p) = run;
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (j < count) assign(p[j], v[j]);
  }
}

// ---- one group of 4 pixels ----

// Where a group's elements lie. Planar: groups never straddle two images; group g of an image
// covers pixels [4g, 4g + 4) of each of its three planes, and the last group of an image is partial
// when pixels % 4 != 0. Interleaved: the images are one run of images * pixels pixels; group g
// covers elements [12g, 12g + 12), its pixel j at elements 12g + 3j + {0, 1, 2}.
struct GroupSpan {
  int64_t base;  // first element (planar: in the first plane)
  int count;     // pixels, 1..4
  bool vec;      // vector accesses allowed
};

__device__ __forceinline__ int clamp_count(int64_t remaining) {
  return remaining < kGroup ? static_cast<int>(remaining) : kGroup;
}

__device__ __forceinline__ GroupSpan locate_group(const ImageGeometry& g, int64_t group, bool aligned) {
  if (g.channels_last) {
    const int64_t first = group * kGroup;
    const int count = clamp_count(g.images * g.pixels - first);
    return {3 * first, count, aligned && count == kGroup};
  }
  const int64_t per_image = (g.pixels + kGroup - 1) / kGroup;
  const int64_t image = group / per_image;
  const int64_t first = (group - image * per_image) * kGroup;
  return {image * 3 * g.pixels + first, clamp_count(g.pixels - first), aligned};
}

// Channel c of pixel j goes to / comes from x[c][j] in both layouts.
template <typename In, typename Decode>
__device__ __forceinline__ void load_group(const In* __restrict__ in, const ImageGeometry& g, const GroupSpan& s,
                                           Decode decode, float (&x)[3][4]) {
  if (g.channels_last) {
    float e[12];
#pragma unroll
    for (int r = 0; r < 3; ++r) load4(in + s.base + 4 * r, 3 * s.count - 4 * r, s.vec, decode, e + 4 * r);
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int c = 0; c < 3; ++c) x[c][j] = e[3 * j + c];
  } else {
#pragma unroll
    for (int c = 0; c < 3; ++c) load4(in + s.base + c * g.pixels, s.count, s.vec, decode, x[c]);
  }
}

template <typename Out>
__device__ __forceinline__ void store_group(Out* __restrict__ out, const ImageGeometry& g, const GroupSpan& s,
                                            const float (&y)[3][4]) {
  if (g.channels_last) {
    float e[12];
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int c = 0; c < 3; ++c) e[3 * j + c] = y[c][j];
#pragma unroll
    for (int r = 0; r < 3; ++r) store4(out + s.base + 4 * r, 3 * s.count - 4 * r, s.vec, e + 4 * r);
  } else {
#pragma unroll
    for (int c = 0; c < 3; ++c) store4(out + s.base + c * g.pixels, s.count, s.vec, y[c]);
  }
}

template <typename In, typename Out, typename Decode, typename Op>
__device__ __forceinline__ void convert_groups(const In* __restrict__ in, Out* __restrict__ out,
                                               const ImageGeometry& g, int64_t groups, bool aligned, Decode decode,
                                               Op op) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t group = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; group < groups;
       group += stride) {
    const GroupSpan s = locate_group(g, group, aligned);
    float x[3][4], y[3][4];
    load_group(in, g, s, decode, x);
#pragma unroll
    for (int j = 0; j < 4; ++j) op(x[0][j], x[1][j], x[2][j], y[0][j], y[1][j], y[2][j]);
    store_group(out, g, s, y);
  }
}

// ---- kernels ----

// Floating-point input (sRGB or Lab). With T = gridDim * blockDim threads, thread t converts groups
// t, t + T, t + 2T, ... of 4 pixels (locate_group: 3 planar runs of 4 elements, or one interleaved
// run of 12); consecutive threads hold consecutive groups, so each warp-wide access is contiguous.
// Elements widen to float32 on load and are rounded once to Out on store.
template <typename In, typename Out, typename Op>
__global__ void __launch_bounds__(kThreads)
    convert_kernel(const In* __restrict__ in, Out* __restrict__ out, ImageGeometry g, int64_t groups, bool aligned,
                   Op op) {
  convert_groups(in, out, g, groups, aligned, CastDecode{}, op);
}

// uint8 sRGB: as convert_kernel, after each block copies the 256-entry linearisation table from its
// parameter into shared memory. Lookups then are shared-memory loads with data-dependent indices,
// which the constant bank holding kernel parameters would serialise across a warp.
template <typename Out>
__global__ void __launch_bounds__(kThreads)
    u8_to_lab_kernel(const uint8_t* __restrict__ in, Out* __restrict__ out, ImageGeometry g, int64_t groups,
                     bool aligned, color::SrgbTable table) {
  __shared__ float lin[256];
  for (int i = threadIdx.x; i < 256; i += blockDim.x) lin[i] = table.v[i];
  __syncthreads();
  convert_groups(in, out, g, groups, aligned, TableDecode{lin}, LinearRgbToLab{});
}

// ---- host side ----

int64_t group_count(const ImageGeometry& g) {
  const int64_t per_image = (g.pixels + kGroup - 1) / kGroup;
  return g.channels_last ? (g.images * g.pixels + kGroup - 1) / kGroup : g.images * per_image;
}

bool aligned_to(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// Vector accesses need 4-element alignment of both buffers and, planar, of every plane start.
template <typename In, typename Out>
bool vector_ok(const In* in, const Out* out, const ImageGeometry& g) {
  return aligned_to(in, 4 * sizeof(In)) && aligned_to(out, 4 * sizeof(Out)) &&
         (g.channels_last || g.pixels % kGroup == 0);
}

// Calls fn(T{}) with T the float type of t.
template <typename Fn>
cudaError_t with_float_type(Dtype t, Fn fn) {
  switch (t) {
    case Dtype::kFloat32:
      return fn(float{});
    case Dtype::kFloat16:
      return fn(__half{});
    case Dtype::kBFloat16:
      return fn(__nv_bfloat16{});
    default:
      return cudaErrorInvalidValue;
  }
}

template <typename In, typename Out, typename Op>
cudaError_t launch_convert(const void* in, void* out, const ImageGeometry& g, Op op, cudaStream_t stream) {
  const auto* src = static_cast<const In*>(in);
  auto* dst = static_cast<Out*>(out);
  const int64_t groups = group_count(g);
  if (groups == 0) return cudaSuccess;
  convert_kernel<In, Out, Op>
      <<<block_count(groups), kThreads, 0, stream>>>(src, dst, g, groups, vector_ok(src, dst, g), op);
  return cudaGetLastError();
}

template <typename Out>
cudaError_t launch_u8_to_lab(const void* in, void* out, const ImageGeometry& g, cudaStream_t stream) {
  const auto* src = static_cast<const uint8_t*>(in);
  auto* dst = static_cast<Out*>(out);
  const int64_t groups = group_count(g);
  if (groups == 0) return cudaSuccess;
  u8_to_lab_kernel<Out><<<block_count(groups), kThreads, 0, stream>>>(src, dst, g, groups, vector_ok(src, dst, g),
                                                                      color::srgb_table());
  return cudaGetLastError();
}

}  // namespace

cudaError_t rgb_to_lab(const void* in, Dtype in_type, void* out, Dtype out_type, const ImageGeometry& geometry,
                       cudaStream_t stream) {
  return with_float_type(out_type, [&](auto out_tag) {
    using Out = decltype(out_tag);
    if (in_type == Dtype::kUInt8) return launch_u8_to_lab<Out>(in, out, geometry, stream);
    return with_float_type(in_type, [&](auto in_tag) {
      using In = decltype(in_tag);
      return launch_convert<In, Out>(in, out, geometry, RgbToLab{}, stream);
    });
  });
}

cudaError_t lab_to_rgb(const void* in, Dtype in_type, void* out, Dtype out_type, const ImageGeometry& geometry,
                       bool clip, cudaStream_t stream) {
  return with_float_type(out_type, [&](auto out_tag) {
    using Out = decltype(out_tag);
    return with_float_type(in_type, [&](auto in_tag) {
      using In = decltype(in_tag);
      return launch_convert<In, Out>(in, out, geometry, LabToRgb{clip}, stream);
    });
  });
}

}  // namespace gpu
}  // namespace fastssl
