// Fixed-width float vectors for the CPU loops that gcc cannot vectorise on its own (gathers, register-
// blocked convolutions). GCC/Clang vector extensions: one source, lowered to AVX2+FMA in the
// x86-64-v3 clone of a FASTSSL_CPU_CLONES function and to SSE pairs in the default clone.
//
// Only use these inside always-inline helpers or FASTSSL_CPU_CLONES functions (never across a call
// boundary): passing a 32-byte vector by value to a function built without AVX changes its ABI.
#pragma once

#include <cstdint>
#include <cstring>

// The helpers below are always inlined into their (AVX2 or SSE) caller, so the ABI note gcc gives for
// returning a 32-byte vector from a function built without AVX never applies.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace fastssl {
namespace cpu {

typedef float v4f __attribute__((vector_size(16)));
typedef float v8f __attribute__((vector_size(32)));

template <typename V>
inline __attribute__((always_inline)) V load(const float* p) {  // unaligned
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}

template <typename V>
inline __attribute__((always_inline)) void store(float* p, V v) {  // unaligned
  std::memcpy(p, &v, sizeof(V));
}

// Lanes of (x, y) picked by index (0-3 from x, 4-7 from y), as __builtin_shufflevector (gcc >= 12, clang).
template <int A, int B, int C, int D>
inline __attribute__((always_inline)) v4f shuffle(v4f x, v4f y) {
#if defined(__clang__) || __GNUC__ >= 12
  return __builtin_shufflevector(x, y, A, B, C, D);
#else
  typedef int32_t v4i __attribute__((vector_size(16)));
  return __builtin_shuffle(x, y, v4i{A, B, C, D});
#endif
}

}  // namespace cpu
}  // namespace fastssl
