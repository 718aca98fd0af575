#include "spectrogram.h"

#include <algorithm>
#include <cmath>

#include "../common/macros.h"

namespace fastssl {
namespace cpu {

namespace {

constexpr double kTwoPi = 6.283185307179586476925286766559;

bool is_power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

// frame[j] = gain audio[start + j] window[j] for the taps j < win_length that read inside [0, length);
// returns that run [lo, hi) of taps (the others are left as they are).
__attribute__((always_inline)) inline void gather_frame(const SpectrogramPlan& plan, const float* __restrict audio,
                                                        int64_t length, int64_t start, float gain,
                                                        float* __restrict frame, int64_t& lo, int64_t& hi) {
  const int64_t win = plan.win_length;
  lo = std::clamp<int64_t>(-start, 0, win);
  hi = std::clamp<int64_t>(length - start, lo, win);
  const float* __restrict x = audio + start;
  const float* __restrict w = plan.window;
  for (int64_t j = lo; j < hi; ++j) frame[j] = gain * x[j] * w[j];
}

// power[k] = |X_k|^2, k <= n_fft / 2, of frame[0, n_fft) by the half-size complex FFT.
__attribute__((always_inline)) inline void fft_power(const SpectrogramPlan& plan, const float* __restrict frame,
                                                     float* __restrict zr, float* __restrict zi,
                                                     float* __restrict power) {
  const int64_t half = plan.n_fft / 2;
  const int32_t* reversed = plan.reversed.data();
  for (int64_t n = 0; n < half; ++n) {
    zr[reversed[n]] = frame[2 * n];
    zi[reversed[n]] = frame[2 * n + 1];
  }
  for (int64_t a = 0; a < half; a += 2) {  // butterflies of half-width 1: twiddle 1
    const float r = zr[a + 1], i = zi[a + 1];
    zr[a + 1] = zr[a] - r;
    zi[a + 1] = zi[a] - i;
    zr[a] += r;
    zi[a] += i;
  }
  for (int64_t h = 2; h < half; h *= 2) {
    const float* __restrict wr = plan.stage_re.data() + h - 1;
    const float* __restrict wi = plan.stage_im.data() + h - 1;
    for (int64_t base = 0; base < half; base += 2 * h) {
      float* __restrict ar = zr + base;
      float* __restrict ai = zi + base;
      float* __restrict br = zr + base + h;
      float* __restrict bi = zi + base + h;
#pragma omp simd
      for (int64_t j = 0; j < h; ++j) {
        const float tr = wr[j] * br[j] - wi[j] * bi[j];
        const float ti = wr[j] * bi[j] + wi[j] * br[j];
        br[j] = ar[j] - tr;
        bi[j] = ai[j] - ti;
        ar[j] += tr;
        ai[j] += ti;
      }
    }
  }
  // Z = FFT(even taps + i odd taps): X_k = E_k + W^k O_k with E_k = (Z_k + conj Z_{H-k}) / 2 and
  // O_k = (Z_k - conj Z_{H-k}) / 2i, W = exp(-2 pi i / n_fft), indices mod H = n_fft / 2.
  power[0] = (zr[0] + zi[0]) * (zr[0] + zi[0]);
  power[half] = (zr[0] - zi[0]) * (zr[0] - zi[0]);
  const float* __restrict wr = plan.split_re.data();
  const float* __restrict wi = plan.split_im.data();
#pragma omp simd
  for (int64_t k = 1; k < half; ++k) {
    const float a = zr[k], b = zi[k], c = zr[half - k], d = zi[half - k];
    const float er = 0.5f * (a + c), ei = 0.5f * (b - d);
    const float orr = 0.5f * (b + d), oi = 0.5f * (c - a);
    const float xr = er + wr[k] * orr - wi[k] * oi;
    const float xi = ei + wr[k] * oi + wi[k] * orr;
    power[k] = xr * xr + xi * xi;
  }
}

// power[k] = |X_k|^2 of the taps [lo, hi) of frame (the others are 0) by the direct DFT.
__attribute__((always_inline)) inline void dft_power(const SpectrogramPlan& plan, const float* __restrict frame,
                                                     int64_t lo, int64_t hi, float* __restrict power) {
  const int64_t win = plan.win_length;
  for (int64_t k = 0; k < plan.bins; ++k) {
    const float* __restrict c = plan.dft_cos.data() + k * win;
    const float* __restrict s = plan.dft_sin.data() + k * win;
    float re = 0.0f, im = 0.0f;
#pragma omp simd reduction(+ : re, im)
    for (int64_t j = lo; j < hi; ++j) {
      re += frame[j] * c[j];
      im += frame[j] * s[j];
    }
    power[k] = re * re + im * im;
  }
}

__attribute__((always_inline)) inline float clamped_log(float v, float floor) {
  return std::log(v < floor ? floor : v);  // NaN stays NaN (as torch's clamp_min)
}

}  // namespace

SpectrogramPlan::SpectrogramPlan(int64_t n_fft, int64_t win_length, int64_t hop_length, int64_t frames,
                                 const float* window, const float* filters, int64_t mels, float log_floor)
    : n_fft(n_fft),
      win_length(win_length),
      hop_length(hop_length),
      frames(frames),
      bins(n_fft / 2 + 1),
      mels(filters != nullptr ? mels : 0),
      log_floor(log_floor),
      window(window),
      filters(filters),
      fft(n_fft >= 4 && is_power_of_two(n_fft)) {
  for (int64_t m = 0; m < this->mels; ++m) {
    const float* row = filters + m * bins;
    int64_t begin = 0, end = bins;
    while (begin < end && row[begin] == 0.0f) ++begin;
    while (end > begin && row[end - 1] == 0.0f) --end;
    filter_begin.push_back(begin);
    filter_end.push_back(end);
  }
  if (fft) {
    const int64_t half = n_fft / 2;
    int bits = 0;
    while ((int64_t{1} << bits) < half) ++bits;
    reversed.resize(half);
    for (int64_t n = 0; n < half; ++n) {
      int64_t r = 0;
      for (int b = 0; b < bits; ++b) r |= ((n >> b) & 1) << (bits - 1 - b);
      reversed[n] = static_cast<int32_t>(r);
    }
    stage_re.resize(std::max<int64_t>(half - 1, 1));
    stage_im.resize(stage_re.size());
    for (int64_t h = 1; h < half; h *= 2) {
      for (int64_t j = 0; j < h; ++j) {  // exp(-2 pi i j / 2h)
        const double angle = kTwoPi * static_cast<double>(j) / static_cast<double>(2 * h);
        stage_re[h - 1 + j] = static_cast<float>(std::cos(angle));
        stage_im[h - 1 + j] = static_cast<float>(-std::sin(angle));
      }
    }
    split_re.resize(half + 1);
    split_im.resize(half + 1);
    for (int64_t k = 0; k <= half; ++k) {
      const double angle = kTwoPi * static_cast<double>(k) / static_cast<double>(n_fft);
      split_re[k] = static_cast<float>(std::cos(angle));
      split_im[k] = static_cast<float>(-std::sin(angle));
    }
  } else {
    // Angles reduced exactly (j k mod n_fft in integers), then rounded once to float32.
    dft_cos.resize(bins * win_length);
    dft_sin.resize(bins * win_length);
    for (int64_t k = 0; k < bins; ++k) {
      for (int64_t j = 0; j < win_length; ++j) {
        const double angle = kTwoPi * static_cast<double>((j * k) % n_fft) / static_cast<double>(n_fft);
        dft_cos[k * win_length + j] = static_cast<float>(std::cos(angle));
        dft_sin[k * win_length + j] = static_cast<float>(std::sin(angle));
      }
    }
  }
}

int64_t SpectrogramPlan::scratch_size() const { return 2 * n_fft + bins; }  // frame, FFT points, power

FASTSSL_CPU_CLONES
void spectrogram_frames(const SpectrogramPlan& plan, const float* audio, int64_t samples, int64_t length,
                        int64_t shift, float gain, int64_t t0, int64_t t1, float* scratch, float* out) {
  const int64_t n_fft = plan.n_fft, T = plan.frames, hop = plan.hop_length;
  length = std::clamp<int64_t>(length, 0, samples);
  // A shift beyond these bounds reads no sample in any frame either: clamping keeps t hop + shift in range.
  shift = std::clamp<int64_t>(shift, -((T - 1) * hop + plan.win_length), length);
  float* frame = scratch;
  float* zr = scratch + n_fft;
  float* zi = zr + n_fft / 2;
  float* power = scratch + 2 * n_fft;
  for (int64_t t = t0; t < t1; ++t) {
    int64_t lo, hi;
    gather_frame(plan, audio, length, shift + t * hop, gain, frame, lo, hi);
    if (plan.fft) {
      std::fill(frame, frame + lo, 0.0f);
      std::fill(frame + hi, frame + n_fft, 0.0f);
      fft_power(plan, frame, zr, zi, power);
    } else {
      dft_power(plan, frame, lo, hi, power);
    }
    if (plan.mels == 0) {
      for (int64_t k = 0; k < plan.bins; ++k) out[k * T + t] = clamped_log(power[k], plan.log_floor);
      continue;
    }
    for (int64_t m = 0; m < plan.mels; ++m) {
      const float* __restrict f = plan.filters + m * plan.bins;
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t k = plan.filter_begin[m]; k < plan.filter_end[m]; ++k) sum += f[k] * power[k];
      out[m * T + t] = clamped_log(sum, plan.log_floor);
    }
  }
}

}  // namespace cpu
}  // namespace fastssl
