#include "augment.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "../common/augment.h"
#include "../common/color.h"
#include "simd.h"

namespace fastssl {
namespace cpu {

// The vertical resize pass's sum over rows of uint8 values (declared in augment.h): it reads the source
// rows in place, each tap widening its 8 bytes to floats on the way into its FMA. (Converting each source
// row to a float copy first, once, cost more: a store and a reload per value, and 17% more resize time,
// measured.) gcc lowers a uint8 -> float vector conversion element by element, so the AVX2 body is written
// with intrinsics and picked at run time; elsewhere the portable body, a loop over x per tap, which
// compilers vectorise.
#if defined(__x86_64__)
namespace {
__attribute__((target("avx2,fma"))) void weighted_rows_u8_avx2(const uint8_t* const* rows, const float* __restrict k,
                                                                int64_t taps, int64_t n, float* __restrict dst) {
  const auto widen = [](const uint8_t* p) __attribute__((always_inline, target("avx2"))) {  // 8 bytes -> 8 floats
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  };
  int64_t x = 0;
  for (; x + 32 <= n; x += 32) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t t = 0; t < taps; ++t) {
      const __m256 kt = _mm256_set1_ps(k[t]);
      const uint8_t* s = rows[t] + x;
      a0 = _mm256_fmadd_ps(kt, widen(s), a0);
      a1 = _mm256_fmadd_ps(kt, widen(s + 8), a1);
      a2 = _mm256_fmadd_ps(kt, widen(s + 16), a2);
      a3 = _mm256_fmadd_ps(kt, widen(s + 24), a3);
    }
    _mm256_storeu_ps(dst + x, a0);
    _mm256_storeu_ps(dst + x + 8, a1);
    _mm256_storeu_ps(dst + x + 16, a2);
    _mm256_storeu_ps(dst + x + 24, a3);
  }
  for (; x < n; ++x) {
    float a = 0.0f;
    for (int64_t t = 0; t < taps; ++t) a = std::fma(k[t], static_cast<float>(rows[t][x]), a);
    dst[x] = a;
  }
}
}  // namespace
#endif

void weighted_rows_u8_portable(const uint8_t* const* rows, const float* __restrict k, int64_t taps, int64_t n,
                               float* __restrict dst) {
  std::fill(dst, dst + n, 0.0f);
  for (int64_t t = 0; t < taps; ++t) {
    const float kt = k[t];
    const uint8_t* __restrict s = rows[t];
#pragma omp simd
    for (int64_t x = 0; x < n; ++x) dst[x] += kt * static_cast<float>(s[x]);
  }
}

void weighted_rows_u8(const uint8_t* const* rows, const float* k, int64_t taps, int64_t n, float* dst) {
#if defined(__x86_64__)
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2) return weighted_rows_u8_avx2(rows, k, taps, n, dst);
#endif
  weighted_rows_u8_portable(rows, k, taps, n, dst);
}

namespace {

// A buffer of at least n floats starting on a 64-byte boundary. The alignment is fixed so that the
// vectorised loops split their work the same way (peeled iterations, contracted FMAs) for a sample
// whatever buffer it lands in: a view does not depend on the batch or the thread that computes it.
float* grow(std::vector<float>& v, size_t n) {
  constexpr size_t kAlign = 64 / sizeof(float);
  if (v.size() < n + kAlign) v.resize(n + kAlign);
  const auto address = reinterpret_cast<uintptr_t>(v.data());
  return v.data() + ((kAlign - (address / sizeof(float)) % kAlign) % kAlign);
}

// ------------------------------------------------------------------------ weighted sum of rows
//
// dst[x] = sum_t k[t] rows[t][x], x < n, summed in the order t = 0, 1, ... for every x: both blur passes
// (float rows; the vertical resize pass's uint8 rows go through weighted_rows_u8, above). Register-blocked: 32
// outputs (four 8-float accumulators, enough independent FMAs to cover their latency) stay in registers
// across all the taps, so a tap costs one load and one FMA per 8 outputs and no store.

// (k[t] * vector: gcc broadcasts the scalar with one vbroadcastss; an always-inline helper building the
// vector would be lowered for the default target before inlining, element by element.)
FASTSSL_CPU_CLONES
void weighted_rows(const float* const* rows, const float* __restrict k, int64_t taps, int64_t n,
                   float* __restrict dst) {
  int64_t x = 0;
  for (; x + 32 <= n; x += 32) {
    v8f a0{}, a1{}, a2{}, a3{};
    for (int64_t t = 0; t < taps; ++t) {
      const float kt = k[t];
      const float* s = rows[t] + x;
      a0 += kt * load<v8f>(s);
      a1 += kt * load<v8f>(s + 8);
      a2 += kt * load<v8f>(s + 16);
      a3 += kt * load<v8f>(s + 24);
    }
    store(dst + x, a0);
    store(dst + x + 8, a1);
    store(dst + x + 16, a2);
    store(dst + x + 24, a3);
  }
  for (; x + 8 <= n; x += 8) {
    v8f a{};
    for (int64_t t = 0; t < taps; ++t) a += k[t] * load<v8f>(rows[t] + x);
    store(dst + x, a);
  }
  for (; x < n; ++x) {
    float a = 0.0f;
    for (int64_t t = 0; t < taps; ++t) a += k[t] * rows[t][x];
    dst[x] = a;
  }
}

// ------------------------------------------------------------------------------------------ resize
//
// Output pixel (y, x) = sum_i sum_j wy[y][i] wx[x][j] crop[ys + i][xs + j] / 255. The sum is
// separable; the vertical pass comes first because it runs over whole interleaved rows of the
// uint8 source (contiguous, vectorised over the crop width x 3 channels), so the strided horizontal
// pass only sees out_h rows instead of the crop's height. The reference (PyTorch) runs the
// horizontal pass first: the two orders agree up to float32 rounding (~1e-7).

// One output row: plane_c[x] = scale * sum_j w[x][j] row[3 (start[x] + j) + c], clamped when asked.
// The run of each output starts at its own column, so this pass gathers. One 4-float load at
// row + 3 (start[x] + j) holds that pixel's r, g, b (and the next pixel's r, weighed into a lane that
// is dropped): one vector FMA per tap does the three channels. The even and the odd taps are summed
// apart (each in order) and then added: two dependency chains of FMAs instead of one, as the pass waits
// on their latency (measured: the resize 3% faster).
// `row` must be readable one float past its 3 * crop_width values. Taps is a template argument up to
// kUnrolledTaps (the common case: <= 2 x the downscale + 1), so the tap loop unrolls without branches.
constexpr int kUnrolledTaps = 8;

template <int kTaps>
FASTSSL_HD v4f resized_pixel(const float* __restrict row, const int32_t* __restrict start, const float* __restrict w,
                             int64_t stride_w, int64_t taps, int64_t x) {  // (r, g, b, dropped), unscaled
  if (kTaps > 0) taps = kTaps;
  const float* __restrict p = row + 3 * static_cast<int64_t>(start[x]);
  const float* __restrict wx = w + x * stride_w;
  v4f even{}, odd{};
  int64_t j = 0;
  for (; j + 2 <= taps; j += 2) {
    even += wx[j] * load<v4f>(p + 3 * j);
    odd += wx[j + 1] * load<v4f>(p + 3 * j + 3);
  }
  if (j < taps) even += wx[j] * load<v4f>(p + 3 * j);
  return even + odd;
}

FASTSSL_HD v4f scale_clamp01(v4f v, float scale, bool clamp) {
  const v4f zero{}, one = zero + 1.0f;
  v *= scale;
  return clamp ? (v < 0.0f ? zero : (v > 1.0f ? one : v)) : v;
}

// Four pixels at a time: their (r, g, b, _) vectors are transposed in registers into four r, four g and
// four b values, stored with one 4-float store each. Storing each pixel lane by lane costs three stores
// per pixel, the pass's bound when the taps are few (measured: 2 taps 29% slower, 4 taps 5%).
template <int kTaps>
FASTSSL_HD void horizontal_pass_body(const float* __restrict row, const int32_t* __restrict start,
                                     const float* __restrict w, int64_t stride_w, int64_t taps, int64_t out_w,
                                     float scale, bool clamp, float* __restrict r, float* __restrict g,
                                     float* __restrict b) {
  int64_t x = 0;
  for (; x + 4 <= out_w; x += 4) {
    const v4f p0 = resized_pixel<kTaps>(row, start, w, stride_w, taps, x);
    const v4f p1 = resized_pixel<kTaps>(row, start, w, stride_w, taps, x + 1);
    const v4f p2 = resized_pixel<kTaps>(row, start, w, stride_w, taps, x + 2);
    const v4f p3 = resized_pixel<kTaps>(row, start, w, stride_w, taps, x + 3);
    const v4f rg01 = shuffle<0, 4, 1, 5>(p0, p1), rg23 = shuffle<0, 4, 1, 5>(p2, p3);  // r0 r1 g0 g1, r2 r3 g2 g3
    const v4f b01 = shuffle<2, 6, 3, 7>(p0, p1), b23 = shuffle<2, 6, 3, 7>(p2, p3);    // b0 b1 _ _, b2 b3 _ _
    store(r + x, scale_clamp01(shuffle<0, 1, 4, 5>(rg01, rg23), scale, clamp));
    store(g + x, scale_clamp01(shuffle<2, 3, 6, 7>(rg01, rg23), scale, clamp));
    store(b + x, scale_clamp01(shuffle<0, 1, 4, 5>(b01, b23), scale, clamp));
  }
  for (; x < out_w; ++x) {
    const v4f v = scale_clamp01(resized_pixel<kTaps>(row, start, w, stride_w, taps, x), scale, clamp);
    r[x] = v[0];
    g[x] = v[1];
    b[x] = v[2];
  }
}

FASTSSL_CPU_CLONES
void horizontal_pass(const float* row, const int32_t* start, const float* w, int64_t stride_w, int64_t taps,
                     int64_t out_w, float scale, bool clamp, float* r, float* g, float* b) {
  switch (taps) {
#define FASTSSL_TAPS_CASE(T) \
  case T:                    \
    return horizontal_pass_body<T>(row, start, w, stride_w, taps, out_w, scale, clamp, r, g, b);
    FASTSSL_TAPS_CASE(1)
    FASTSSL_TAPS_CASE(2)
    FASTSSL_TAPS_CASE(3)
    FASTSSL_TAPS_CASE(4)
    FASTSSL_TAPS_CASE(5)
    FASTSSL_TAPS_CASE(6)
    FASTSSL_TAPS_CASE(7)
    FASTSSL_TAPS_CASE(kUnrolledTaps)
#undef FASTSSL_TAPS_CASE
    default:
      return horizontal_pass_body<0>(row, start, w, stride_w, taps, out_w, scale, clamp, r, g, b);
  }
}

void resize_crop(const AugmentArgs& a, int64_t b, AugmentScratch& s, float* planes) {
  const int64_t W = a.sizes[2 * b + 1];
  const int64_t* box = a.crop + 4 * b;
  const int64_t crop_h = box[2], crop_w = box[3];
  const uint8_t* base = a.data + a.offsets[b] + (box[0] * W + box[1]) * 3;
  const int64_t stride = W * 3;
  const int64_t y_taps = a.taps[2 * b], x_taps = a.taps[2 * b + 1];  // <= crop_h, crop_w (checked)
  const int64_t n = a.out_h * a.out_w;
  float* row = grow(s.row, static_cast<size_t>(crop_w * 3 + 1));
  row[crop_w * 3] = 0.0f;  // read (and dropped) by horizontal_pass's 4-float loads
  const int32_t* x_start = a.x_start + b * a.out_w;
  const float* x_weights = a.x_weights + b * a.out_w * a.x_stride;
  const int64_t width = crop_w * 3;
  s.source_rows.resize(static_cast<size_t>(y_taps));
  s.row_weights.resize(static_cast<size_t>(y_taps));
  int64_t prefetched = -1;
  for (int64_t y = 0; y < a.out_h; ++y) {
    const int64_t k = b * a.out_h + y;
    const float* w = a.y_weights + k * a.y_stride;
    int64_t used = 0;
    for (int64_t j = 0; j < y_taps; ++j) {
      if (w[j] == 0.0f) continue;  // outside the filter's run: adds nothing
      const int64_t source = a.y_start[k] + j;
      s.source_rows[used] = base + source * stride;
      s.row_weights[used++] = w[j];
      // The next source row is a new stream for the hardware prefetchers (rows are a whole image row
      // apart); asking for it now overlaps its cache misses with this row's work.
      if (source + 1 < crop_h && source + 1 > prefetched) {
        prefetched = source + 1;
        for (int64_t i = 0; i < width; i += 64) __builtin_prefetch(base + prefetched * stride + i);
      }
    }
    weighted_rows_u8(s.source_rows.data(), s.row_weights.data(), used, width, row);
    float* out = planes + y * a.out_w;
    horizontal_pass(row, x_start, x_weights, a.x_stride, x_taps, a.out_w, 1.0f / 255.0f, a.clamp, out, out + n,
                    out + 2 * n);
  }
}

// ------------------------------------------------------------------------------------ colour ops
//
// The colour ops only ever see finite values in [0, 1] (uint8 sources; the public op rejects non-finite
// factors). Compiled without NaNs or signed zeros to preserve, the clamps' and HSV's selects become
// vminps / vmaxps instead of compare-and-blend pairs: the hue pass runs 2x faster.
#define FASTSSL_FINITE_COLOUR __attribute__((optimize("finite-math-only", "no-signed-zeros")))

FASTSSL_CPU_CLONES FASTSSL_FINITE_COLOUR
void scale_clamp(float* __restrict x, int64_t n, float f) {  // brightness, on all three planes at once
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] = augment::clamp01(f * x[i]);
}

FASTSSL_CPU_CLONES FASTSSL_FINITE_COLOUR
void blend_constant(float* __restrict x, int64_t n, float f, float m) {  // contrast toward the mean gray m
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] = augment::blend(x[i], f, m);
}

// Mean of gray over n pixels: eight float lanes per block of 1024 pixels, the lanes and blocks added in
// a fixed order. The result depends on the values only — not on the buffer's alignment, which would
// move a compiler's peeled iterations and change the rounding — so a sample gets the same view
// whatever batch or thread it is processed in.
FASTSSL_CPU_CLONES
double mean_gray(const float* __restrict r, const float* __restrict g, const float* __restrict b, int64_t n) {
  double total = 0.0;
  for (int64_t first = 0; first < n; first += 1024) {
    const int64_t last = std::min(n, first + 1024);
    v8f lanes{};
    int64_t i = first;
    for (; i + 8 <= last; i += 8) {
      lanes += color::kGrayR * load<v8f>(r + i) + color::kGrayG * load<v8f>(g + i) +
               color::kGrayB * load<v8f>(b + i);
    }
    float partial = 0.0f;
    for (int k = 0; k < 8; ++k) partial += lanes[k];
    for (; i < last; ++i) partial += color::gray(r[i], g[i], b[i]);
    total += partial;
  }
  return total / static_cast<double>(n);
}

FASTSSL_CPU_CLONES FASTSSL_FINITE_COLOUR
void saturate(float* __restrict r, float* __restrict g, float* __restrict b, int64_t n, float f) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float m = color::gray(r[i], g[i], b[i]);
    r[i] = augment::blend(r[i], f, m);
    g[i] = augment::blend(g[i], f, m);
    b[i] = augment::blend(b[i], f, m);
  }
}

FASTSSL_CPU_CLONES FASTSSL_FINITE_COLOUR
void rotate_hue(float* __restrict r, float* __restrict g, float* __restrict b, int64_t n, float shift) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) augment::hue_shift(r[i], g[i], b[i], shift);
}

FASTSSL_CPU_CLONES FASTSSL_FINITE_COLOUR
void to_gray(float* __restrict r, const float* __restrict g, const float* __restrict b, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) r[i] = color::gray(r[i], g[i], b[i]);
}

// The colour ops in the sample's order; an identity factor skips its pass (the reference's pass is
// then exact identity on [0, 1] for brightness, contrast and saturation, a ~1e-7 round trip for hue).
void colour_ops(const AugmentArgs& a, int64_t b, float* planes, int64_t n) {
  float* r = planes;
  float* g = planes + n;
  float* bl = planes + 2 * n;
  const float* f = a.factors + 4 * b;
  for (int k = 0; k < 4; ++k) {
    const int64_t op = a.order[4 * b + k];
    const float factor = f[op];
    if (op == 0 && factor != 1.0f) {
      scale_clamp(planes, 3 * n, factor);
    } else if (op == 1 && factor != 1.0f) {
      // The "pre-pass": contrast pulls toward the mean gray of the image as it is right now.
      blend_constant(planes, 3 * n, factor, static_cast<float>(mean_gray(r, g, bl, n)));
    } else if (op == 2 && factor != 1.0f) {
      saturate(r, g, bl, n, factor);
    } else if (op == 3 && factor != 0.0f) {
      rotate_hue(r, g, bl, n, factor);
    }
  }
}

// ------------------------------------------------------------------------------------------- blur
//
// The reference's kernel: taps exp(-t^2 / (2 sigma^2)), t = -half..half, normalised in float64, used
// in float32. Taps whose weight is negligible are dropped from both ends while their total stays
// below kBlurTail: the result moves by less than kBlurTail (the image is in [0, 1]), and small sigmas
// (a 23-tap kernel at sigma 0.1 has one tap above 1e-21) cost only the taps that matter.
constexpr double kBlurTail = 1e-6;

struct BlurKernel {
  std::vector<float> taps;  // 2 radius + 1 weights, centred
  int64_t radius = 0;
};

BlurKernel gaussian_kernel(float sigma, int64_t size) {
  const int64_t half = size / 2;
  std::vector<double> k(static_cast<size_t>(size));
  double total = 0.0;
  const double s = static_cast<double>(sigma);
  for (int64_t t = 0; t < size; ++t) {
    const double d = static_cast<double>(t) - 0.5 * static_cast<double>(size - 1);
    k[t] = std::exp(-d * d / (2.0 * s * s));
    total += k[t];
  }
  for (double& v : k) v /= total;
  int64_t radius = half;
  double dropped = 0.0;
  while (radius > 0 && dropped + 2.0 * k[half + radius] < kBlurTail) {
    dropped += 2.0 * k[half + radius];
    --radius;
  }
  BlurKernel out;
  out.radius = radius;
  for (int64_t t = half - radius; t <= half + radius; ++t) out.taps.push_back(static_cast<float>(k[t]));
  return out;
}

// Blurs one (h, w) plane in place: rows through a padded copy, then columns through row pointers.
void blur_plane(float* plane, int64_t h, int64_t w, const BlurKernel& k, int64_t half, AugmentScratch& s) {
  const int64_t taps = 2 * k.radius + 1, r = k.radius;
  float* temp = grow(s.temp, static_cast<size_t>(h * w));
  float* padded = grow(s.padded, static_cast<size_t>(w + 2 * r));
  s.rows.resize(static_cast<size_t>(taps));
  const float** rows = s.rows.data();
  for (int64_t t = 0; t < taps; ++t) rows[t] = padded + t;
  for (int64_t y = 0; y < h; ++y) {
    const float* src = plane + y * w;
    std::copy(src, src + w, padded + r);
    for (int64_t p = -r; p < 0; ++p) padded[p + r] = src[augment::blur_source_index(p, w, half)];
    for (int64_t p = w; p < w + r; ++p) padded[p + r] = src[augment::blur_source_index(p, w, half)];
    weighted_rows(rows, k.taps.data(), taps, w, temp + y * w);
  }
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t t = 0; t < taps; ++t) rows[t] = temp + augment::blur_source_index(y + t - r, h, half) * w;
    weighted_rows(rows, k.taps.data(), taps, w, plane + y * w);
  }
}

// ------------------------------------------------------------------------------------------ store
//
// Solarize (threshold 0.5, or 2 = never when off), normalise, convert, write NCHW or NHWC.

struct ToFloat {
  using type = float;
  static FASTSSL_HD float convert(float x) { return x; }
};
struct ToBFloat16 {
  using type = uint16_t;
  static FASTSSL_HD uint16_t convert(float x) { return augment::float_to_bf16_bits(x); }
};
struct ToHalf {
  using type = uint16_t;
  static FASTSSL_HD uint16_t convert(float x) { return augment::float_to_half_bits(x); }
};

FASTSSL_HD float finish(float x, float threshold, float mean, float inv_std) {
  return augment::normalise(select(x >= threshold, 1.0f - x, x), mean, inv_std);
}

// The loop bodies are inline templates; the target_clones entry points below are plain functions
// (gcc does not multiversion templates).
template <typename To>
FASTSSL_HD void store_plane_body(const float* __restrict src, int64_t n, float threshold, float mean,
                                 float inv_std, typename To::type* __restrict dst) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] = To::convert(finish(src[i], threshold, mean, inv_std));
}

template <typename To>
FASTSSL_HD void store_interleaved_body(const float* __restrict r, const float* __restrict g,
                                       const float* __restrict b, int64_t n, float threshold, const float* mean,
                                       const float* inv_std, typename To::type* __restrict dst) {
  const float m0 = mean[0], m1 = mean[1], m2 = mean[2], s0 = inv_std[0], s1 = inv_std[1], s2 = inv_std[2];
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    dst[3 * i] = To::convert(finish(r[i], threshold, m0, s0));
    dst[3 * i + 1] = To::convert(finish(g[i], threshold, m1, s1));
    dst[3 * i + 2] = To::convert(finish(b[i], threshold, m2, s2));
  }
}

// The views go out with non-temporal stores: a call writes tens of MB (77 MB for 128 views of 224^2 in
// float32), far more than the caches hold, and a plain store first reads each line it writes. Each pass
// writes a block into an L1-resident staging buffer, which is then streamed out 16 bytes at a time
// (SSE2, every x86-64); augment_sample ends with a store fence.
constexpr int64_t kStoreBlock = 1024;  // pixels per staging block

template <typename T>
void stream_out(const T* __restrict src, int64_t count, T* __restrict dst) {
#if defined(__SSE2__)
  constexpr int64_t kLanes = 16 / sizeof(T);
  int64_t i = 0;
  for (; i < count && (reinterpret_cast<uintptr_t>(dst + i) & 15) != 0; ++i) dst[i] = src[i];
  for (; i + kLanes <= count; i += kLanes)
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i), _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
  for (; i < count; ++i) dst[i] = src[i];
#else
  std::copy(src, src + count, dst);
#endif
}

#define FASTSSL_AUGMENT_STORE(Name, To)                                                                          \
  FASTSSL_CPU_CLONES void store_plane_##Name(const float* src, int64_t n, float threshold, float mean,           \
                                             float inv_std, To::type* dst) {                                     \
    store_plane_body<To>(src, n, threshold, mean, inv_std, dst);                                                 \
  }                                                                                                              \
  FASTSSL_CPU_CLONES void store_interleaved_##Name(const float* r, const float* g, const float* b, int64_t n,     \
                                                   float threshold, const float* mean, const float* inv_std,     \
                                                   To::type* dst) {                                              \
    store_interleaved_body<To>(r, g, b, n, threshold, mean, inv_std, dst);                                       \
  }                                                                                                              \
  void store_##Name(const AugmentArgs& a, int64_t b, const float* const planes[3], float threshold) {             \
    const int64_t n = a.out_h * a.out_w;                                                                         \
    To::type* out = static_cast<To::type*>(a.out) + b * 3 * n;                                                   \
    const float inv_std[3] = {1.0f / a.std[0], 1.0f / a.std[1], 1.0f / a.std[2]};                                \
    alignas(64) To::type staging[3 * kStoreBlock];                                                               \
    for (int64_t i = 0; i < n; i += kStoreBlock) {                                                               \
      const int64_t count = std::min(kStoreBlock, n - i);                                                        \
      if (a.channels_last) {                                                                                     \
        store_interleaved_##Name(planes[0] + i, planes[1] + i, planes[2] + i, count, threshold, a.mean, inv_std, \
                                 staging);                                                                       \
        stream_out(staging, 3 * count, out + 3 * i);                                                             \
        continue;                                                                                                \
      }                                                                                                          \
      for (int c = 0; c < 3; ++c) {                                                                              \
        store_plane_##Name(planes[c] + i, count, threshold, a.mean[c], inv_std[c], staging);                     \
        stream_out(staging, count, out + c * n + i);                                                             \
      }                                                                                                          \
    }                                                                                                            \
  }

FASTSSL_AUGMENT_STORE(f32, ToFloat)
FASTSSL_AUGMENT_STORE(bf16, ToBFloat16)
FASTSSL_AUGMENT_STORE(f16, ToHalf)
#undef FASTSSL_AUGMENT_STORE

}  // namespace

void augment_sample(const AugmentArgs& a, int64_t b, AugmentScratch& s) {
  const int64_t n = a.out_h * a.out_w;
  float* image = grow(s.image, static_cast<size_t>(3 * n));
  resize_crop(a, b, s, image);
  colour_ops(a, b, image, n);
  const float* planes[3] = {image, image + n, image + 2 * n};
  const bool gray = a.grayscale[b];
  if (gray) {
    to_gray(image, image + n, image + 2 * n, n);
    planes[1] = planes[2] = image;  // one plane serves the three channels from here on
  }
  const float sigma = a.blur_sigma[b];
  if (sigma > 0.0f) {
    const BlurKernel kernel = gaussian_kernel(sigma, a.blur_kernel);
    for (int c = 0; c < (gray ? 1 : 3); ++c)
      blur_plane(image + c * n, a.out_h, a.out_w, kernel, a.blur_kernel / 2, s);
  }
  const float threshold = a.solarize[b] ? 0.5f : 2.0f;
  switch (a.dtype) {
    case OutDtype::kFloat32:
      store_f32(a, b, planes, threshold);
      break;
    case OutDtype::kBFloat16:
      store_bf16(a, b, planes, threshold);
      break;
    case OutDtype::kFloat16:
      store_f16(a, b, planes, threshold);
      break;
  }
#if defined(__SSE2__)
  _mm_sfence();  // the streamed stores are visible before the caller hands the output on
#endif
}

AugmentQueue::AugmentQueue(const AugmentArgs& args, int64_t batch) : args_(args), order_(static_cast<size_t>(batch)) {
  std::iota(order_.begin(), order_.end(), 0);
  const int64_t* offset = args.offsets;
  std::stable_sort(order_.begin(), order_.end(), [offset](int64_t i, int64_t j) { return offset[i] < offset[j]; });
}

void AugmentQueue::work() {
  AugmentScratch scratch;
  const auto batch = static_cast<int64_t>(order_.size());
  for (int64_t k = next_++; k < batch; k = next_++) augment_sample(args_, order_[static_cast<size_t>(k)], scratch);
}

}  // namespace cpu
}  // namespace fastssl
