// Log-power and log-mel spectrograms of padded audio windows (specification: fastssl.reference.spectrogram).
// Torch-free: csrc/spectrogram.cpp builds the plan once per call and splits the (sample, frame) pairs over
// threads.
//
// Per sample b, frame t, tap j < win_length, bin k <= n_fft / 2:
//   i = shift + t hop + j,   x_j = gain audio[i] (0 unless 0 <= i < length),
//   X_k = sum_j window_j x_j exp(-2 pi i j k / n_fft),   P_k = |X_k|^2,
//   out = log(max(sum_k filters[m, k] P_k, floor))   (no filters: log(max(P_k, floor)))
//
// The transform: for n_fft a power of two >= 4, a complex radix-2 FFT of n_fft / 2 points (the even taps
// as real parts, the odd ones as imaginary parts; two stages per pass over the points) split into the real
// input's spectrum, on 8 consecutive frames at once (each butterfly one 8-lane vector operation, the frames
// in the lanes; the taps of 8 frames transposed in registers where all of them lie inside the audio); for any other
// n_fft, a direct DFT against a (bins, win_length) cos / sin table, one frame at a time. Everything in
// float32 (the tables are computed in double and rounded once); the log is fast_log2 times ln 2 (a few ulp)
// for a log_floor of at least FLT_MIN, libm's below. A filter row is applied over its nonzero bins only.
#pragma once

#include <cstdint>
#include <vector>

namespace fastssl {
namespace cpu {

struct SpectrogramPlan {
  int64_t n_fft, win_length, hop_length, frames;
  int64_t bins;  // n_fft / 2 + 1
  int64_t mels;  // rows of `filters`; 0: no filters
  float log_floor;
  const float* window;   // (win_length,)
  const float* filters;  // (mels, bins) row-major, or nullptr
  std::vector<int64_t> filter_begin, filter_end;  // [begin, end): the nonzero bins of each filter row
  bool fft;                                       // n_fft a power of two >= 4
  static constexpr int64_t kLanes = 8;            // fft: frames transformed together
  // fft: where tap j < n_fft of lane 0 goes in a group's points (point n's real lanes at 16 n, imaginary at
  // 16 n + 8; tap 2n to point bitreverse(n)'s real part, tap 2n + 1 to its imaginary part), the butterflies'
  // twiddles (stage of half-width h at [h - 1, 2h - 1)) and exp(-2 pi i k / n_fft) for k <= n_fft / 2 (the
  // split into the real spectrum).
  std::vector<int32_t> tap_slot;
  std::vector<float> stage_re, stage_im, split_re, split_im;
  // direct DFT: cos / sin (2 pi j k / n_fft) at [k win_length + j].
  std::vector<float> dft_cos, dft_sin;

  // window: (win_length,), 1 <= win_length <= n_fft; filters: (mels, n_fft / 2 + 1) or nullptr (mels 0).
  // The pointers must outlive the plan.
  SpectrogramPlan(int64_t n_fft, int64_t win_length, int64_t hop_length, int64_t frames, const float* window,
                  const float* filters, int64_t mels, float log_floor);
  int64_t rows() const { return mels > 0 ? mels : bins; }  // output rows per frame
  int64_t scratch_size() const;                            // floats per thread
};

// Frames [t0, t1) of one sample: `audio` its samples (`samples` of them, contiguous), of which the first
// `length` (clamped to [0, samples]) are read; out: the sample's (rows, frames) output, row-major (frame
// t of row r at r frames + t). `scratch`: plan.scratch_size() floats.
void spectrogram_frames(const SpectrogramPlan& plan, const float* audio, int64_t samples, int64_t length,
                        int64_t shift, float gain, int64_t t0, int64_t t1, float* scratch, float* out);

}  // namespace cpu
}  // namespace fastssl
