#include "spectrogram.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "../common/fast_math.h"
#include "../common/macros.h"
#include "simd.h"

namespace fastssl {
namespace cpu {

namespace {

constexpr double kTwoPi = 6.283185307179586476925286766559;
constexpr int64_t kLanes = SpectrogramPlan::kLanes;
static_assert(kLanes == 8, "the FFT's lanes are one v8f");

bool is_power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

// The run [lo, hi) of taps j < win_length whose sample start + j lies inside [0, length).
__attribute__((always_inline)) inline void read_taps(int64_t win, int64_t length, int64_t start, int64_t& lo,
                                                     int64_t& hi) {
  lo = std::clamp<int64_t>(-start, 0, win);
  hi = std::clamp<int64_t>(length - start, lo, win);
}

__attribute__((always_inline)) inline v8f broadcast(float v) { return v8f{v, v, v, v, v, v, v, v}; }

// log(max(v, floor)) over n values in place. A floor of at least FLT_MIN keeps every argument a normal float,
// where fast_log2 holds to a few ulp; NaN stays NaN (as torch's clamp_min) and +inf stays +inf.
__attribute__((always_inline)) inline void clamped_log(float* __restrict v, int64_t n, float floor) {
  if (floor >= FLT_MIN) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float x = v[i] < floor ? floor : v[i];
      const float y = fast_log2(x) * 0.693147180559945309f;
      v[i] = x <= FLT_MAX ? y : x;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) v[i] = std::log(v[i] < floor ? floor : v[i]);
  }
}

// r[i][g] <- r[g][i], i, g < 8.
__attribute__((always_inline)) inline void transpose8(v8f* r) {
  v8f t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
    u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
    u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    r[i + 4] = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

// z: the group's n_fft / 2 points, point n at [16 n, 16 n + 16): its real parts in the 8 lanes, then its imaginary
// parts. Lane g gets frame g's taps gain audio[start_g + j] window[j] (0 outside [0, length) and for g >= count),
// tap j at plan.tap_slot[j] + g: the even taps as real parts, the odd ones as imaginary parts, bit-reversed.
__attribute__((always_inline)) inline void gather_group(const SpectrogramPlan& plan, const float* __restrict audio,
                                                        int64_t length, int64_t start, int64_t count, float gain,
                                                        float* __restrict z) {
  const int32_t* __restrict slot = plan.tap_slot.data();
  const float* __restrict w = plan.window;
  const int64_t win = plan.win_length, hop = plan.hop_length;
  if (count == kLanes && start >= 0 && start + (kLanes - 1) * hop + win <= length) {
    // Every lane reads all its taps: 8 taps of the 8 frames at a time, transposed in registers.
    const v8f scale = broadcast(gain);
    int64_t j = 0;
    for (; j + kLanes <= win; j += kLanes) {
      const v8f wj = scale * load<v8f>(w + j);
      v8f r[kLanes];
      for (int64_t g = 0; g < kLanes; ++g) r[g] = wj * load<v8f>(audio + start + g * hop + j);
      transpose8(r);
      for (int64_t i = 0; i < kLanes; ++i) store(z + slot[j + i], r[i]);
    }
    for (; j < win; ++j)
      for (int64_t g = 0; g < kLanes; ++g) z[slot[j] + g] = gain * audio[start + g * hop + j] * w[j];
    for (; j < plan.n_fft; ++j) store(z + slot[j], broadcast(0.0f));
    return;
  }
  for (int64_t g = 0; g < kLanes; ++g, start += hop) {
    int64_t lo = 0, hi = 0;
    if (g < count) read_taps(plan.win_length, length, start, lo, hi);
    const float* __restrict x = audio + start;
    for (int64_t j = 0; j < lo; ++j) z[slot[j] + g] = 0.0f;
    for (int64_t j = lo; j < hi; ++j) z[slot[j] + g] = gain * x[j] * w[j];
    for (int64_t j = hi; j < plan.n_fft; ++j) z[slot[j] + g] = 0.0f;
  }
}

// power[8 k + g] = |X_k|^2, k <= n_fft / 2, of lane g's frame by the half-size complex FFT of z (gather_group's
// layout, overwritten).
__attribute__((always_inline)) inline void fft_power_group(const SpectrogramPlan& plan, float* __restrict z,
                                                           float* __restrict power) {
  const int64_t half = plan.n_fft / 2;
  int64_t h = 1;
  if (half >= 4) {  // the stages of half-width 1 and 2 (twiddles 1 and -i) in registers, 4 points at a time
    for (float* p = z; p < z + 16 * half; p += 64) {
      const v8f r0 = load<v8f>(p), i0 = load<v8f>(p + 8), r1 = load<v8f>(p + 16), i1 = load<v8f>(p + 24);
      const v8f r2 = load<v8f>(p + 32), i2 = load<v8f>(p + 40), r3 = load<v8f>(p + 48), i3 = load<v8f>(p + 56);
      const v8f sr0 = r0 + r1, si0 = i0 + i1, sr1 = r0 - r1, si1 = i0 - i1;
      const v8f sr2 = r2 + r3, si2 = i2 + i3, sr3 = r2 - r3, si3 = i2 - i3;
      store(p, sr0 + sr2);
      store(p + 8, si0 + si2);
      store(p + 32, sr0 - sr2);
      store(p + 40, si0 - si2);
      store(p + 16, sr1 + si3);  // -i (sr3 + i si3) = si3 - i sr3
      store(p + 24, si1 - sr3);
      store(p + 48, sr1 - si3);
      store(p + 56, si1 + sr3);
    }
    h = 4;
  }
  // Two stages (half-widths h and 2h) per pass over the points: the butterflies of both stages on the 4 points
  // j, j + h, j + 2h, j + 3h of each block of 4h, in registers, with the same twiddles.
  for (; 4 * h <= half; h *= 4) {
    for (int64_t j = 0; j < h; ++j) {
      const v8f wr = broadcast(plan.stage_re[h - 1 + j]), wi = broadcast(plan.stage_im[h - 1 + j]);
      const v8f ur = broadcast(plan.stage_re[2 * h - 1 + j]), ui = broadcast(plan.stage_im[2 * h - 1 + j]);
      const v8f vr = broadcast(plan.stage_re[3 * h - 1 + j]), vi = broadcast(plan.stage_im[3 * h - 1 + j]);
      for (int64_t base = j; base < half; base += 4 * h) {
        float* a = z + 16 * base;
        float* b = a + 16 * h;
        float* c = b + 16 * h;
        float* d = c + 16 * h;
        const v8f ar = load<v8f>(a), ai = load<v8f>(a + 8), br = load<v8f>(b), bi = load<v8f>(b + 8);
        const v8f cr = load<v8f>(c), ci = load<v8f>(c + 8), dr = load<v8f>(d), di = load<v8f>(d + 8);
        const v8f tr = wr * br - wi * bi, ti = wr * bi + wi * br;
        const v8f sr = wr * dr - wi * di, si = wr * di + wi * dr;
        const v8f a1r = ar + tr, a1i = ai + ti, b1r = ar - tr, b1i = ai - ti;
        const v8f c1r = cr + sr, c1i = ci + si, d1r = cr - sr, d1i = ci - si;
        const v8f pr = ur * c1r - ui * c1i, pi = ur * c1i + ui * c1r;
        const v8f qr = vr * d1r - vi * d1i, qi = vr * d1i + vi * d1r;
        store(a, a1r + pr);
        store(a + 8, a1i + pi);
        store(c, a1r - pr);
        store(c + 8, a1i - pi);
        store(b, b1r + qr);
        store(b + 8, b1i + qi);
        store(d, b1r - qr);
        store(d + 8, b1i - qi);
      }
    }
  }
  for (; h < half; h *= 2) {
    for (int64_t j = 0; j < h; ++j) {
      const v8f wr = broadcast(plan.stage_re[h - 1 + j]), wi = broadcast(plan.stage_im[h - 1 + j]);
      for (int64_t base = j; base < half; base += 2 * h) {
        float* a = z + 16 * base;
        float* b = z + 16 * (base + h);
        const v8f ar = load<v8f>(a), ai = load<v8f>(a + 8), br = load<v8f>(b), bi = load<v8f>(b + 8);
        const v8f tr = wr * br - wi * bi, ti = wr * bi + wi * br;
        store(a, ar + tr);
        store(a + 8, ai + ti);
        store(b, ar - tr);
        store(b + 8, ai - ti);
      }
    }
  }
  // Z = FFT(even taps + i odd taps): X_k = E_k + W^k O_k with E_k = (Z_k + conj Z_{H-k}) / 2 and
  // O_k = (Z_k - conj Z_{H-k}) / 2i, W = exp(-2 pi i / n_fft), indices mod H = n_fft / 2.
  {
    const v8f a = load<v8f>(z), b = load<v8f>(z + 8);
    store(power, (a + b) * (a + b));
    store(power + 8 * half, (a - b) * (a - b));
  }
  const v8f one_half = broadcast(0.5f);
  for (int64_t k = 1; k < half; ++k) {
    const v8f a = load<v8f>(z + 16 * k), b = load<v8f>(z + 16 * k + 8);
    const v8f c = load<v8f>(z + 16 * (half - k)), d = load<v8f>(z + 16 * (half - k) + 8);
    const v8f er = one_half * (a + c), ei = one_half * (b - d);
    const v8f orr = one_half * (b + d), oi = one_half * (c - a);
    const v8f wr = broadcast(plan.split_re[k]), wi = broadcast(plan.split_im[k]);
    const v8f xr = er + wr * orr - wi * oi;
    const v8f xi = ei + wr * oi + wi * orr;
    store(power + 8 * k, xr * xr + xi * xi);
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

// rows[8 m + g] = sum_k filters[m, k] power[8 k + g] over the nonzero bins of each filter row.
__attribute__((always_inline)) inline void mel_group(const SpectrogramPlan& plan, const float* __restrict power,
                                                     float* __restrict rows) {
  for (int64_t m = 0; m < plan.mels; ++m) {
    const float* __restrict f = plan.filters + m * plan.bins;
    v8f sum = broadcast(0.0f);
    for (int64_t k = plan.filter_begin[m]; k < plan.filter_end[m]; ++k)
      sum += broadcast(f[k]) * load<v8f>(power + 8 * k);
    store(rows + 8 * m, sum);
  }
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
    tap_slot.resize(n_fft);
    for (int64_t n = 0; n < half; ++n) {
      int64_t r = 0;
      for (int b = 0; b < bits; ++b) r |= ((n >> b) & 1) << (bits - 1 - b);
      tap_slot[2 * n] = static_cast<int32_t>(2 * kLanes * r);
      tap_slot[2 * n + 1] = static_cast<int32_t>(2 * kLanes * r + kLanes);
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

// FFT: a group's points, power and rows; direct DFT: one frame, its power and rows.
int64_t SpectrogramPlan::scratch_size() const { return kLanes * (n_fft + bins + mels); }

FASTSSL_CPU_CLONES
void spectrogram_frames(const SpectrogramPlan& plan, const float* audio, int64_t samples, int64_t length,
                        int64_t shift, float gain, int64_t t0, int64_t t1, float* scratch, float* out) {
  const int64_t n_fft = plan.n_fft, T = plan.frames, hop = plan.hop_length, rows = plan.rows();
  length = std::clamp<int64_t>(length, 0, samples);
  // A shift beyond these bounds reads no sample in any frame either: clamping keeps t hop + shift in range.
  shift = std::clamp<int64_t>(shift, -((T - 1) * hop + plan.win_length), length);
  if (plan.fft) {
    float* z = scratch;
    float* power = z + kLanes * n_fft;
    float* mel = power + kLanes * plan.bins;
    float* values = plan.mels > 0 ? mel : power;  // (rows, 8)
    for (int64_t t = t0; t < t1; t += kLanes) {
      const int64_t count = std::min(kLanes, t1 - t);
      gather_group(plan, audio, length, shift + t * hop, count, gain, z);
      fft_power_group(plan, z, power);
      if (plan.mels > 0) mel_group(plan, power, mel);
      clamped_log(values, kLanes * rows, plan.log_floor);
      if (count == kLanes) {
        for (int64_t r = 0; r < rows; ++r) store(out + r * T + t, load<v8f>(values + kLanes * r));
      } else {
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t g = 0; g < count; ++g) out[r * T + t + g] = values[kLanes * r + g];
      }
    }
    return;
  }
  float* frame = scratch;
  float* power = scratch + n_fft;
  float* mel = power + plan.bins;
  float* values = plan.mels > 0 ? mel : power;  // (rows,)
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t start = shift + t * hop;
    int64_t lo, hi;
    read_taps(plan.win_length, length, start, lo, hi);
    for (int64_t j = lo; j < hi; ++j) frame[j] = gain * audio[start + j] * plan.window[j];
    dft_power(plan, frame, lo, hi, power);
    for (int64_t m = 0; m < plan.mels; ++m) {
      const float* __restrict f = plan.filters + m * plan.bins;
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t k = plan.filter_begin[m]; k < plan.filter_end[m]; ++k) sum += f[k] * power[k];
      mel[m] = sum;
    }
    clamped_log(values, rows, plan.log_floor);
    for (int64_t r = 0; r < rows; ++r) out[r * T + t] = values[r];
  }
}

}  // namespace cpu
}  // namespace fastssl
