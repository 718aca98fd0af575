"""Log spectrograms and log-mel spectrograms of padded audio windows, with per-sample shift and gain.

Audio is (B, S): row b holds a window of ``lengths[b]`` samples (samples at index >= lengths[b] read as 0),
shifted by ``shift[b]`` samples and scaled by ``gain[b]`` (augmentations applied while the frames are
read). Per sample b, frame t in [0, T), tap j in [0, W) (W = the window's length), bin k in [0, n_fft // 2]:

    i     = shift[b] + t * hop_length + j
    x     = gain[b] * audio[b, i]   if 0 <= i < lengths[b] else 0
    X[k]  = sum_j window[j] * x * exp(-2 pi 1j * j * k / n_fft)   (the windowed frame, zero-padded to n_fft)
    P[k]  = |X[k]|^2
    M[m]  = sum_k filters[m, k] * P[k]                            (no filters: M = P)
    out   = log(max(M, log_floor))                                (natural log)

|X[k]| does not depend on where the zero padding sits, so this is ``librosa.stft(center=False)`` of the
audio with (n_fft - W) // 2 zeros prepended, frame for frame. :func:`mel_filters` are librosa's default
mel filters (Slaney's mel scale and area normalisation); :func:`hann_window` is the periodic Hann window.

Everything is computed in the audio's dtype (float32 or float64) with torch ops and is differentiable
(with respect to ``audio`` and ``gain``).

Example:
    >>> import torch
    >>> audio = torch.zeros(1, 8, dtype=torch.float64)
    >>> audio[0, 1] = 1.0  # an impulse: a flat spectrum of height window[1] ** 2
    >>> ones = torch.ones(1, dtype=torch.int64)
    >>> out = spectrogram(audio, 8 * ones, 0 * ones, ones.double(), hann_window(4, torch.float64), None,
    ...                   n_fft=4, hop_length=4, frames=1, log_floor=1e-10)
    >>> [round(p, 9) for p in out.exp().flatten().tolist()]  # window[1] = 0.5
    [0.25, 0.25, 0.25]
"""

from __future__ import annotations

import math

import torch

#: Slaney's mel scale: linear below 1 kHz (3 / 200 mel per Hz), logarithmic above (27 mel per factor 6.4).
LINEAR_MEL_PER_HZ = 3 / 200
BREAK_HZ = 1000.0
BREAK_MEL = BREAK_HZ * LINEAR_MEL_PER_HZ
LOG_STEP = math.log(6.4) / 27


def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale (librosa's ``hz_to_mel(htk=False)``): linear below 1 kHz, logarithmic above."""
    linear = hz * LINEAR_MEL_PER_HZ
    logarithmic = BREAK_MEL + torch.log(hz.clamp_min(BREAK_HZ) / BREAK_HZ) / LOG_STEP
    return torch.where(hz >= BREAK_HZ, logarithmic, linear)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`hz_to_mel`."""
    linear = mel / LINEAR_MEL_PER_HZ
    logarithmic = BREAK_HZ * torch.exp(LOG_STEP * (mel.clamp_min(BREAK_MEL) - BREAK_MEL))
    return torch.where(mel >= BREAK_MEL, logarithmic, linear)


def mel_filters(sample_rate: float, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangular mel filters over the rfft bins (librosa.filters.mel's defaults).

    The n_mels + 2 edges are equally spaced on Slaney's mel scale from f_min to f_max (default
    sample_rate / 2); filter m rises linearly (in Hz) from edge m to edge m + 1 and falls to edge m + 2,
    then is divided by half its width in Hz (Slaney's area normalisation: every filter has area 1 in Hz).
    Bin k sits at k * sample_rate / n_fft Hz. Computed in float64, returned in ``dtype``. A filter narrower
    than the bin spacing may hold no bin (its row is then all zero).
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    bins = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * (sample_rate / n_fft)
    mels = torch.linspace(float(hz_to_mel(torch.tensor(float(f_min), dtype=torch.float64))),
                          float(hz_to_mel(torch.tensor(float(f_max), dtype=torch.float64))), n_mels + 2,
                          dtype=torch.float64)
    edges = mel_to_hz(mels)
    widths = edges.diff()
    ramps = edges[:, None] - bins[None, :]  # (n_mels + 2, bins): how far each edge lies above each bin
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = torch.minimum(rising, falling).clamp_min(0)
    return (weights * (2 / (edges[2:] - edges[:-2]))[:, None]).to(dtype)


def hann_window(win_length: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(win_length,) periodic Hann window 0.5 - 0.5 cos(2 pi j / win_length) (= torch.hann_window(periodic=True)
    and scipy's, which make the window of one tap [1.0])."""
    if win_length == 1:
        return torch.ones(1, dtype=dtype)
    j = torch.arange(win_length, dtype=torch.float64)
    return (0.5 - 0.5 * torch.cos(2 * math.pi * j / win_length)).to(dtype)


def frame_indices(lengths: torch.Tensor, shift: torch.Tensor, win_length: int, hop_length: int,
                  frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, W) sample index i = shift[b] + t * hop_length + j of every tap, and whether it is read
    (0 <= i < lengths[b])."""
    t = torch.arange(frames, device=shift.device, dtype=torch.int64) * hop_length
    j = torch.arange(win_length, device=shift.device, dtype=torch.int64)
    index = shift[:, None, None] + t[None, :, None] + j[None, None, :]
    return index, (index >= 0) & (index < lengths[:, None, None])


def frame_samples(audio: torch.Tensor, lengths: torch.Tensor, shift: torch.Tensor, win_length: int,
                  hop_length: int, frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, T, W) samples audio[b, i] of every frame (0 where i is outside [0, lengths[b])), and the
    (B, T, W) index and mask of :func:`frame_indices`."""
    B, S = audio.shape
    index, valid = frame_indices(lengths, shift, win_length, hop_length, frames)
    gathered = torch.gather(audio, 1, index.clamp(0, S - 1).reshape(B, -1)).view(index.shape)
    return torch.where(valid, gathered, torch.zeros((), dtype=audio.dtype, device=audio.device)), index, valid


def power_spectrum(audio, lengths, shift, gain, window, n_fft: int, hop_length: int, frames: int):
    """(B, T, n_fft // 2 + 1) complex spectrum X of every windowed frame and its power |X|^2."""
    samples, _, _ = frame_samples(audio, lengths, shift, window.numel(), hop_length, frames)
    spectrum = torch.fft.rfft(samples * gain[:, None, None] * window, n=n_fft, dim=-1)
    return spectrum, spectrum.real.square() + spectrum.imag.square()


def spectrogram(audio: torch.Tensor, lengths: torch.Tensor, shift: torch.Tensor, gain: torch.Tensor,
                window: torch.Tensor, filters: torch.Tensor | None, n_fft: int, hop_length: int, frames: int,
                log_floor: float) -> torch.Tensor:
    """(B, M, T) log(max(filters @ |rfft(window * frame)|^2, log_floor)) of every frame (see the module docstring).

    Args:
        audio: (B, S) float32 or float64, any strides.
        lengths: (B,) int64 in [0, S]; shift: (B,) int64, any sign.
        gain: (B,) in audio's dtype.
        window: (W,) in audio's dtype, W <= n_fft.
        filters: (M, n_fft // 2 + 1) in audio's dtype, or None (M = n_fft // 2 + 1, no filtering).
        n_fft, hop_length, frames: >= 1. log_floor: > 0.

    Returns:
        (B, M, frames) in audio's dtype, >= log(log_floor).
    """
    _, power = power_spectrum(audio, lengths, shift, gain, window, n_fft, hop_length, frames)
    values = power if filters is None else power @ filters.T
    return torch.log(values.clamp_min(log_floor)).transpose(1, 2).contiguous()
