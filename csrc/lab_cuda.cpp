// CUDA implementations of fastssl_C::rgb_to_lab / fastssl_C::lab_to_rgb (schemas in csrc/lab.cpp).
// The kernels read every input dtype natively and write the requested dtype directly.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../kernels/cuda/lab.cuh"
#include "checks.h"

namespace fastssl {
namespace {

gpu::Dtype kernel_dtype(at::ScalarType s) {
  switch (s) {
    case at::kByte:
      return gpu::Dtype::kUInt8;
    case at::kFloat:
      return gpu::Dtype::kFloat32;
    case at::kHalf:
      return gpu::Dtype::kFloat16;
    case at::kBFloat16:
      return gpu::Dtype::kBFloat16;
    default:
      TORCH_CHECK(false, "no CUDA Lab kernel for dtype ", s);
  }
}

gpu::ImageGeometry kernel_geometry(const at::Tensor& t, bool channels_last) {
  const RgbGeometry g = rgb_geometry(t, channels_last);
  return {g.images, g.pixels, channels_last};
}

at::Tensor rgb_to_lab_cuda(const at::Tensor& images, bool channels_last, at::ScalarType dtype) {
  check_rgb_layout(images, "images", channels_last);
  TORCH_CHECK(images.scalar_type() == at::kByte || is_float_type(images.scalar_type()),
              "images must be uint8 or float32/float16/bfloat16, got ", images.scalar_type());
  TORCH_CHECK(is_float_type(dtype), "dtype must be float32, float16 or bfloat16, got ", dtype);
  const c10::cuda::CUDAGuard guard(images.device());
  const at::Tensor in = images.contiguous();
  at::Tensor out = at::empty(in.sizes(), in.options().dtype(dtype));
  C10_CUDA_CHECK(gpu::rgb_to_lab(in.const_data_ptr(), kernel_dtype(in.scalar_type()), out.mutable_data_ptr(),
                                 kernel_dtype(dtype), kernel_geometry(in, channels_last),
                                 at::cuda::getCurrentCUDAStream()));
  return out;
}

at::Tensor lab_to_rgb_cuda(const at::Tensor& lab, bool channels_last, bool clip, at::ScalarType dtype) {
  check_rgb_layout(lab, "lab", channels_last);
  TORCH_CHECK(is_float_type(lab.scalar_type()), "lab must be float32/float16/bfloat16, got ", lab.scalar_type());
  TORCH_CHECK(is_float_type(dtype), "dtype must be float32, float16 or bfloat16, got ", dtype);
  const c10::cuda::CUDAGuard guard(lab.device());
  const at::Tensor in = lab.contiguous();
  at::Tensor out = at::empty(in.sizes(), in.options().dtype(dtype));
  C10_CUDA_CHECK(gpu::lab_to_rgb(in.const_data_ptr(), kernel_dtype(in.scalar_type()), out.mutable_data_ptr(),
                                 kernel_dtype(dtype), kernel_geometry(in, channels_last), clip,
                                 at::cuda::getCurrentCUDAStream()));
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastssl_C, CUDA, m) {
  m.impl("rgb_to_lab", &rgb_to_lab_cuda);
  m.impl("lab_to_rgb", &lab_to_rgb_cuda);
}

}  // namespace fastssl
