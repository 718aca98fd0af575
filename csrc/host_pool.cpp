#include "host_pool.h"

#include <torch/library.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fastssl {
namespace {

// A request of n bytes takes a free block of n .. n + n / 4 bytes (decoded batches vary in size).
constexpr size_t kSlackDivisor = 4;
constexpr size_t kAlignment = 4096;

// A fresh block (tens of MB, mapped anew by the allocator) costs more in first-touch page faults than
// in writes: one per 4 KiB, zeroed by the kernel, serialised between the threads. Transparent huge
// pages, where the system grants them on request, make them 512 times fewer. Advisory; reused blocks
// are already mapped.
void advise_huge_pages(void* block, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{1} << 21;
  const auto data = reinterpret_cast<uintptr_t>(block);
  const uintptr_t begin = (data + kHuge - 1) & ~(kHuge - 1), end = (data + bytes) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
}

class HostPool {
 public:
  HostPool() {
    const char* limit = std::getenv("FASTSSL_HOST_POOL_MB");
    limit_ = (limit != nullptr ? std::stoull(limit) : 1024) << 20;
  }

  // A block of at least `bytes`; `bytes` becomes the block's size (what release() is given back).
  void* acquire(size_t& bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.lower_bound(bytes);
      if (it != free_.end() && it->first <= bytes + bytes / kSlackDivisor) {
        void* block = it->second;
        bytes = it->first;
        free_bytes_ -= bytes;
        free_.erase(it);
        return block;
      }
    }
    void* block = nullptr;
    TORCH_CHECK(posix_memalign(&block, kAlignment, bytes) == 0, "out of host memory allocating ", bytes, " bytes");
    advise_huge_pages(block, bytes);
    return block;
  }

  void release(void* block, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (free_bytes_ + bytes <= limit_) {
        free_.emplace(bytes, block);
        free_bytes_ += bytes;
        return;
      }
    }
    std::free(block);
  }

  size_t free_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return free_bytes_;
  }

 private:
  std::mutex mutex_;
  std::multimap<size_t, void*> free_;  // block size -> block
  size_t free_bytes_ = 0;
  size_t limit_ = 0;
};

// Never destroyed: tensors that outlive static destruction still return their blocks to it.
HostPool& pool() {
  static HostPool* instance = new HostPool();
  return *instance;
}

// A block's size rides in the deleter's context: one heap cell per tensor, freed with it.
struct BlockContext {
  void* block;
  size_t bytes;
};

void release_block(void* context) {
  auto* c = static_cast<BlockContext*>(context);
  pool().release(c->block, c->bytes);
  delete c;
}

}  // namespace

at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat format) {
  const size_t bytes = static_cast<size_t>(c10::multiply_integers(sizes)) * options.dtype().itemsize();
  if (!options.device().is_cpu() || bytes < kMinPooledBytes) return at::empty(sizes, options, format);
  size_t block_bytes = bytes;
  void* block = pool().acquire(block_bytes);
  auto* context = new BlockContext{block, block_bytes};
  at::DataPtr data(block, context, &release_block, at::Device(at::kCPU));
  auto storage = c10::Storage(c10::Storage::use_byte_size_t(), bytes, std::move(data), /*allocator=*/nullptr,
                              /*resizable=*/false);
  at::Tensor out = at::empty({0}, options);
  if (format == at::MemoryFormat::ChannelsLast) {
    return out.set_(storage, 0, sizes, c10::get_channels_last_strides_2d(sizes));
  }
  return out.set_(storage, 0, sizes, c10::contiguous_strides(sizes));
}

size_t pooled_free_bytes() { return pool().free_bytes(); }

namespace {

at::Tensor host_empty(at::IntArrayRef sizes, at::ScalarType dtype) {
  for (int64_t s : sizes) TORCH_CHECK(s >= 0, "size must be >= 0 in every dimension, got ", sizes);
  return pooled_empty(sizes, at::TensorOptions().dtype(dtype));
}

int64_t host_pool_free_bytes() { return static_cast<int64_t>(pooled_free_bytes()); }

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) {
  m.def("host_empty(int[] size, ScalarType dtype) -> Tensor", &host_empty);
  m.def("host_pool_free_bytes() -> int", &host_pool_free_bytes);
}

}  // namespace fastssl
