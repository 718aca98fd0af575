// The hash behind every random draw of the kernels: murmur3's 32-bit finaliser, the same function
// as fastssl.random's, so that a kernel and the Python reference derive the same values from the
// same key. A key's stream is fmix32(key ^ n), n = 0, 1, 2, ...
//
// Example: hash::fmix32(0) is 0; hash::fmix32(1) is 0x514E28B7.
#pragma once

#include "macros.h"

namespace fastssl {
namespace hash {

FASTSSL_HD uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  return h ^ (h >> 16);
}

}  // namespace hash
}  // namespace fastssl
