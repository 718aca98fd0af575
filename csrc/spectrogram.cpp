// Torch binding of the (log-mel) spectrogram: the schema of fastssl_C::spectrogram and its CPU
// implementation (kernels/cpu/spectrogram.cpp), threads over the (sample, frame) pairs, each thread
// taking a contiguous run of frames. `filters` is optional (None: the log-power spectrogram).
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "../kernels/cpu/spectrogram.h"
#include "checks.h"
#include "host_pool.h"

namespace fastssl {
namespace {

// The direct DFT (n_fft not a power of two) holds a (bins, win_length) cos and sin table.
constexpr int64_t kMaxDftTable = int64_t{1} << 25;

bool is_power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

// audio (B, S) float32, lengths (B,) int64, shift (B,) int64, gain (B,) float32, window (win_length,) float32,
// filters (M, n_fft / 2 + 1) float32 or None -> (B, M or n_fft / 2 + 1, frames) float32.
at::Tensor spectrogram_cpu(const at::Tensor& audio_, const at::Tensor& lengths_, const at::Tensor& shift_,
                           const at::Tensor& gain_, const at::Tensor& window_,
                           const std::optional<at::Tensor>& filters_, int64_t n_fft, int64_t hop_length, int64_t frames,
                           double log_floor) {
  const at::Tensor audio = check_tensor(audio_, "audio", at::kFloat, {-1, -1});
  const int64_t B = audio.size(0), S = audio.size(1);
  TORCH_CHECK(S >= 1, "audio must have at least one sample per row, got shape ", audio.sizes());
  const at::Tensor lengths = check_tensor(lengths_, "lengths", at::kLong, {B});
  const at::Tensor shift = check_tensor(shift_, "shift", at::kLong, {B});
  const at::Tensor gain = check_tensor(gain_, "gain", at::kFloat, {B});
  const at::Tensor window = check_tensor(window_, "window", at::kFloat, {-1});
  const int64_t win_length = window.size(0), bins = n_fft / 2 + 1;
  TORCH_CHECK(n_fft >= 1, "n_fft must be >= 1, got ", n_fft);
  TORCH_CHECK(win_length >= 1 && win_length <= n_fft, "window must have 1 to n_fft = ", n_fft, " taps, got ",
              win_length);
  TORCH_CHECK(hop_length >= 1, "hop_length must be >= 1, got ", hop_length);
  TORCH_CHECK(frames >= 0, "frames must be >= 0, got ", frames);
  // t hop + j + S must not overflow int64 for any frame t and tap j.
  TORCH_CHECK(frames <= 1 || hop_length <= (std::numeric_limits<int64_t>::max() / 4 - n_fft) / frames,
              "hop_length x frames is too large: ", hop_length, " x ", frames);
  TORCH_CHECK(is_power_of_two(n_fft) || bins * win_length <= kMaxDftTable, "n_fft = ", n_fft,
              " is not a power of two and too large for the direct DFT (bins x win_length must be <= ", kMaxDftTable,
              "): use a power-of-two n_fft");
  at::Tensor filters;
  if (filters_.has_value()) {
    filters = check_tensor(*filters_, "filters", at::kFloat, {-1, bins});
    TORCH_CHECK(filters.size(0) >= 1, "filters must have at least one row, got shape ", filters.sizes());
  }
  const cpu::SpectrogramPlan plan(n_fft, win_length, hop_length, frames, window.const_data_ptr<float>(),
                                  filters.defined() ? filters.const_data_ptr<float>() : nullptr,
                                  filters.defined() ? filters.size(0) : 0, static_cast<float>(log_floor));
  at::Tensor out = pooled_empty({B, plan.rows(), frames}, audio.options());
  if (B == 0 || frames == 0) return out;
  const float* x = audio.const_data_ptr<float>();
  const int64_t* L = lengths.const_data_ptr<int64_t>();
  const int64_t* shifts = shift.const_data_ptr<int64_t>();
  const float* gains = gain.const_data_ptr<float>();
  float* o = out.data_ptr<float>();
  const int64_t out_stride = plan.rows() * frames;
  at::parallel_for(0, B * frames, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(plan.scratch_size());
    for (int64_t p = begin; p < end;) {  // the run [begin, end) may span several samples
      const int64_t b = p / frames, t0 = p % frames, t1 = std::min(frames, t0 + end - p);
      cpu::spectrogram_frames(plan, x + b * S, S, L[b], shifts[b], gains[b], t0, t1, scratch.data(),
                              o + b * out_stride);
      p += t1 - t0;
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) {
  m.def("spectrogram(Tensor audio, Tensor lengths, Tensor shift, Tensor gain, Tensor window, Tensor? filters, "
        "int n_fft, int hop_length, int frames, float log_floor) -> Tensor");
}

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) { m.impl("spectrogram", &spectrogram_cpu); }

}  // namespace fastssl
