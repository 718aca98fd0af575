// Portability macros shared by the CPU and CUDA kernel bodies. No torch headers anywhere under
// kernels/: these files are compiled by the torch extension and by the torch-free native tests.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define FASTSSL_HD __host__ __device__ __forceinline__
#define FASTSSL_UNROLL _Pragma("unroll")
#else
#define FASTSSL_HD inline __attribute__((always_inline))
#define FASTSSL_UNROLL _Pragma("GCC unroll 8")
#endif

// CPU loops: one build for every x86-64 machine; the loader picks the AVX2+FMA clone where the CPU
// has it (gcc's function multi-versioning).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define FASTSSL_CPU_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define FASTSSL_CPU_CLONES
#endif

// X(T) for T the unsigned integer of each element size, 1, 2, 4 and 8 bytes: instantiates a kernel that
// moves values without computing on them, once per size (the bindings pick T with dispatch_element_size).
// Example: FASTSSL_FOR_EACH_ELEMENT_SIZE(FASTSSL_INSTANTIATE) after #define FASTSSL_INSTANTIATE(T) ...
#define FASTSSL_FOR_EACH_ELEMENT_SIZE(X) X(uint8_t) X(uint16_t) X(uint32_t) X(uint64_t)

namespace fastssl {

FASTSSL_HD uint32_t float_as_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
#endif
}

FASTSSL_HD float bits_as_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof(x));
  return x;
#endif
}

FASTSSL_HD float select(bool c, float a, float b) { return c ? a : b; }
FASTSSL_HD float min_f(float a, float b) { return a < b ? a : b; }
FASTSSL_HD float max_f(float a, float b) { return a > b ? a : b; }
FASTSSL_HD float clamp_f(float x, float lo, float hi) { return min_f(max_f(x, lo), hi); }

}  // namespace fastssl
