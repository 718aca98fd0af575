// Torch bindings of the Lab conversion: schemas of the native ops fastssl_C::rgb_to_lab /
// fastssl_C::lab_to_rgb, and their CPU implementations (threads over images x pixel chunks).
// The CUDA implementations are registered in csrc/lab_cuda.cpp.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../kernels/cpu/lab.h"
#include "checks.h"
#include "host_pool.h"

namespace fastssl {
namespace {

constexpr int64_t kChunk = 4096;  // pixels per task: a few L1-sized runs of each plane

// Runs fn(image, first_pixel, count) over every (image, chunk) on the ATen thread pool.
template <typename Fn>
void for_each_chunk(const RgbGeometry& g, Fn fn) {
  const int64_t chunks = (g.pixels + kChunk - 1) / kChunk;
  at::parallel_for(0, g.images * chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t image = task / chunks, first = (task % chunks) * kChunk;
      fn(image, first, std::min(kChunk, g.pixels - first));
    }
  });
}

template <typename In>
void rgb_to_lab_loop(const In* in, float* out, const RgbGeometry& g, bool channels_last) {
  for_each_chunk(g, [&](int64_t image, int64_t first, int64_t n) {
    const int64_t base = image * 3 * g.pixels;
    if (channels_last) {
      cpu::rgb_to_lab_interleaved(in + base + 3 * first, out + base + 3 * first, n);
    } else {
      const In* src = in + base + first;
      float* dst = out + base + first;
      cpu::rgb_to_lab_planar(src, src + g.pixels, src + 2 * g.pixels, dst, dst + g.pixels, dst + 2 * g.pixels, n);
    }
  });
}

at::Tensor rgb_to_lab_cpu(const at::Tensor& images, bool channels_last, at::ScalarType dtype) {
  check_rgb_layout(images, "images", channels_last);
  TORCH_CHECK(images.scalar_type() == at::kByte || is_float_type(images.scalar_type()),
              "images must be uint8 or float32/float16/bfloat16, got ", images.scalar_type());
  TORCH_CHECK(is_float_type(dtype), "dtype must be float32, float16 or bfloat16, got ", dtype);
  // Half-precision input is widened once: the CPU kernels compute and store float32.
  const at::Tensor in = images.scalar_type() == at::kByte ? images.contiguous() : images.to(at::kFloat).contiguous();
  at::Tensor out = pooled_empty(in.sizes(), in.options().dtype(at::kFloat));
  const RgbGeometry g = rgb_geometry(in, channels_last);
  if (in.scalar_type() == at::kByte) {
    rgb_to_lab_loop(in.data_ptr<uint8_t>(), out.data_ptr<float>(), g, channels_last);
  } else {
    rgb_to_lab_loop(in.data_ptr<float>(), out.data_ptr<float>(), g, channels_last);
  }
  return dtype == at::kFloat ? out : out.to(dtype);
}

at::Tensor lab_to_rgb_cpu(const at::Tensor& lab, bool channels_last, bool clip, at::ScalarType dtype) {
  check_rgb_layout(lab, "lab", channels_last);
  TORCH_CHECK(is_float_type(lab.scalar_type()), "lab must be float32/float16/bfloat16, got ", lab.scalar_type());
  TORCH_CHECK(is_float_type(dtype), "dtype must be float32, float16 or bfloat16, got ", dtype);
  const at::Tensor in = lab.to(at::kFloat).contiguous();
  at::Tensor out = pooled_empty(in.sizes(), in.options());
  const RgbGeometry g = rgb_geometry(in, channels_last);
  const float* src = in.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  for_each_chunk(g, [&](int64_t image, int64_t first, int64_t n) {
    const int64_t base = image * 3 * g.pixels;
    if (channels_last) {
      cpu::lab_to_rgb_interleaved(src + base + 3 * first, dst + base + 3 * first, n, clip);
    } else {
      const float* s = src + base + first;
      float* d = dst + base + first;
      cpu::lab_to_rgb_planar(s, s + g.pixels, s + 2 * g.pixels, d, d + g.pixels, d + 2 * g.pixels, n, clip);
    }
  });
  return dtype == at::kFloat ? out : out.to(dtype);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) {
  m.def("rgb_to_lab(Tensor images, bool channels_last, ScalarType dtype) -> Tensor");
  m.def("lab_to_rgb(Tensor lab, bool channels_last, bool clip, ScalarType dtype) -> Tensor");
}

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) {
  m.impl("rgb_to_lab", &rgb_to_lab_cpu);
  m.impl("lab_to_rgb", &lab_to_rgb_cpu);
}

}  // namespace fastssl
