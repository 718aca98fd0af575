// Launch geometry shared by the CUDA kernels: 1-D grids of kThreads threads per block and at most
// kMaxBlocks blocks, beyond which each kernel's grid-stride loop takes over.
// Example: kernel<<<block_count(items), kThreads, 0, stream>>>(...) for `items` work items.
#pragma once

#include <cstdint>

namespace fastssl {
namespace gpu {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 20;

inline unsigned block_count(int64_t items) {
  const int64_t blocks = (items + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

}  // namespace gpu
}  // namespace fastssl
