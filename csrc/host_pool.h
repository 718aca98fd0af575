// Large CPU output tensors carved from a cache of reused host blocks.
//
// A fresh large allocation costs one page fault per 4 KiB page on its first touch: glibc maps every
// block above its mmap threshold (32 MiB at most) anew and unmaps it on free. At SSL batch sizes
// those faults cost as much as the kernels themselves — on the 2-core CI machine, first writing a
// (64, 3, 224, 224) float32 output takes 20 ms, writing it again 0.4 ms. Blocks freed by their
// tensors go back to this cache and are handed to the next output of a similar size, already mapped.
//
// Only CPU tensors of at least kMinPooledBytes are pooled (smaller ones come from malloc's heap
// already mapped). The cache keeps at most FASTSSL_HOST_POOL_MB MiB of free blocks (default 1024;
// 0 turns pooling off); a block freed beyond that goes back to the system.
#pragma once

#include <torch/types.h>

namespace fastssl {

constexpr size_t kMinPooledBytes = size_t{1} << 20;

// Like at::empty(sizes, options, format), from the pool when the tensor is on the CPU and large.
at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options,
                        at::MemoryFormat format = at::MemoryFormat::Contiguous);

// Free bytes the cache holds now (for tests).
size_t pooled_free_bytes();

}  // namespace fastssl
