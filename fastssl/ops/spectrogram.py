"""Log spectrograms and log-mel spectrograms of batches of audio windows, in one fused pass per frame.

:func:`log_spectrogram` and :func:`log_mel_spectrogram` read each frame of each window once (with its
per-sample ``shift`` and ``gain`` augmentations and ragged ``lengths``), window it, take its power
spectrum, apply the mel filters and the log, and write only the result. The maths is specified in
:mod:`fastssl.reference.spectrogram`: with the default periodic Hann window of ``win_length`` samples it
equals ``librosa.stft(center=False)`` (log-mel: ``librosa.feature.melspectrogram(center=False)``) of the
audio with (n_fft - win_length) // 2 zeros prepended, frame for frame.

Both are registered as the torch.library op ``fastssl::spectrogram`` with a fake implementation
(torch.compile traces it) and autograd: gradients with respect to ``audio`` and ``gain`` (0 where the
value was clamped to ``log_floor``), computed with torch ops from a recomputed spectrum.

Backends: ``reference`` (torch ops, any device), ``cpp`` (fastssl._C, CPU), ``triton`` (CUDA; CPU under
TRITON_INTERPRET=1). The kernels compute in float32: float16, bfloat16 and float64 audio is converted to
float32 first, and the result is float32 whatever the audio's dtype.
"""

from __future__ import annotations

import functools

import torch

from .. import _validation as v
from ..backends import OpBackends, lazy, native
from ..reference import spectrogram as reference
from ..reference.spectrogram import mel_filters

AUDIO_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
COMPUTE_DTYPE = torch.float32


def _float32_kernel(fn):
    """``fn``, a kernel that reads and writes float32 only, made to take float64 arguments too (the result is
    cast back to the audio's dtype)."""

    def call(audio, lengths, shift, gain, window, filters, *options):
        if audio.dtype == COMPUTE_DTYPE:
            return fn(audio, lengths, shift, gain, window, filters, *options)
        as_float = [None if t is None else t.to(COMPUTE_DTYPE) for t in (audio, gain, window, filters)]
        audio32, gain32, window32, filters32 = as_float
        return fn(audio32, lengths, shift, gain32, window32, filters32, *options).to(audio.dtype)

    return call


SPECTROGRAM = OpBackends(
    "spectrogram",
    {
        "reference": reference.spectrogram,
        "cpp": _float32_kernel(native("spectrogram")),
        "triton": _float32_kernel(lazy("fastssl.triton.spectrogram", "spectrogram")),
    },
    auto_order={"cpu": ("cpp", "reference"), "cuda": ("triton", "reference")},
)


@torch.library.custom_op("fastssl::spectrogram", mutates_args=())
def _spectrogram(audio: torch.Tensor, lengths: torch.Tensor, shift: torch.Tensor, gain: torch.Tensor,
                 window: torch.Tensor, filters: torch.Tensor | None, n_fft: int, hop_length: int, frames: int,
                 log_floor: float, backend: str) -> torch.Tensor:
    return SPECTROGRAM(backend, audio, lengths, shift, gain, window, filters, n_fft, hop_length, frames, log_floor)


@_spectrogram.register_fake
def _(audio, lengths, shift, gain, window, filters, n_fft, hop_length, frames, log_floor, backend):
    rows = n_fft // 2 + 1 if filters is None else filters.shape[0]
    return audio.new_empty(audio.shape[0], rows, frames)


def spectrogram_grads(grad, audio, lengths, shift, gain, window, filters, n_fft: int, hop_length: int,
                      frames: int, log_floor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradients of the loss with respect to ``audio`` (B, S) and ``gain`` (B,), given its gradient ``grad``
    (B, M, T) with respect to :func:`fastssl.reference.spectrogram.spectrogram`'s output, in audio's dtype.

    Chain rule through the definition, from the recomputed spectrum X of each frame: dlog(M)/dM = 1 / M where
    M > log_floor (0 where it was clamped), dM/dP = filters, and dP[k]/dy[j] = 2 Re(X[k] exp(2 pi 1j j k / n_fft))
    for the windowed frame y, summed over k by one inverse rfft (whose Hermitian sum counts each bin but DC
    and Nyquist twice). The frame gradients are then added back onto the samples they read (overlap-add).
    """
    B, S = audio.shape
    win_length = window.numel()
    samples, index, valid = reference.frame_samples(audio, lengths, shift, win_length, hop_length, frames)
    spectrum = torch.fft.rfft(samples * gain[:, None, None] * window, n=n_fft, dim=-1)
    power = spectrum.real.square() + spectrum.imag.square()
    values = power if filters is None else power @ filters.T
    zero = torch.zeros((), dtype=values.dtype, device=values.device)
    grad_values = torch.where(values > log_floor, grad.transpose(1, 2) / values, zero)
    grad_power = grad_values if filters is None else grad_values @ filters
    weighted = grad_power * spectrum
    bins = torch.arange(weighted.shape[-1], device=audio.device)
    counted_once = (bins == 0) | (bins * 2 == n_fft)  # DC and Nyquist: real in the Hermitian sum
    weighted = torch.where(counted_once, (2 * weighted.real).to(weighted.dtype), weighted)
    grad_windowed = torch.fft.irfft(weighted, n=n_fft, dim=-1)[..., :win_length] * n_fft
    grad_scaled = grad_windowed * window  # with respect to gain * sample
    grad_gain = (grad_scaled * samples).sum((1, 2))
    grad_samples = torch.where(valid, grad_scaled * gain[:, None, None], zero)
    grad_audio = torch.zeros(B, S, dtype=audio.dtype, device=audio.device)
    grad_audio.scatter_add_(1, index.clamp(0, S - 1).reshape(B, -1), grad_samples.reshape(B, -1))
    return grad_audio, grad_gain


def _save_inputs(ctx, inputs, output):
    audio, lengths, shift, gain, window, filters = inputs[:6]
    ctx.save_for_backward(audio, lengths, shift, gain, window, filters)
    ctx.options = inputs[6:10]  # n_fft, hop_length, frames, log_floor


def _spectrogram_grad(ctx, grad):
    audio, lengths, shift, gain, window, filters = ctx.saved_tensors
    grad_audio, grad_gain = spectrogram_grads(grad, audio, lengths, shift, gain, window, filters, *ctx.options)
    needs = ctx.needs_input_grad
    return (grad_audio if needs[0] else None, None, None, grad_gain if needs[3] else None) + (None,) * 7


_spectrogram.register_autograd(_spectrogram_grad, setup_context=_save_inputs)


@functools.lru_cache(maxsize=16)
def _window(win_length: int, device: torch.device) -> torch.Tensor:
    return reference.hann_window(win_length, COMPUTE_DTYPE).to(device)


@functools.lru_cache(maxsize=16)
def _mel_filters(sample_rate: float, n_fft: int, n_mels: int, f_min: float, f_max: float,
                 device: torch.device) -> torch.Tensor:
    return mel_filters(sample_rate, n_fft, n_mels, f_min, f_max, COMPUTE_DTYPE).to(device)


def _cached(make, *key) -> torch.Tensor:
    """``make(*key)`` from its cache; built afresh while torch.compile traces (the tensor then enters the graph)."""
    return make.__wrapped__(*key) if torch.compiler.is_compiling() else make(*key)


def _check_audio(audio) -> None:
    v.check_tensor(audio, "audio")
    if audio.dim() != 2:
        raise ValueError(f"audio must have shape (B, S), got {tuple(audio.shape)}")
    if audio.numel() == 0:
        raise ValueError(f"audio is empty (shape {tuple(audio.shape)})")
    if audio.dtype not in AUDIO_DTYPES:
        raise ValueError(f"audio must have dtype float32, float64, float16 or bfloat16, got "
                         f"{str(audio.dtype).replace('torch.', '')}")


def _frame_count(S: int, win_length: int, hop_length: int, frames) -> int:
    if frames is None:
        if S < win_length:
            raise ValueError(f"audio has {S} samples, fewer than win_length = {win_length}: pass frames to read "
                             f"zeros past the end, or longer windows")
        return 1 + (S - win_length) // hop_length
    return v.check_int(frames, "frames", 1)


def _per_sample(audio: torch.Tensor, lengths, shift, gain):
    """lengths and shift as (B,) int64 and gain as (B,) float32, on the audio's device (defaults: S, 0, 1)."""
    B, S = audio.shape
    device = audio.device
    if lengths is None:
        lengths = torch.full((B,), S, dtype=torch.int64, device=device)
    else:
        lengths = v.check_integer_tensor(lengths, "lengths", ((B,),), device)
        v.check_range(lengths, "lengths", 0, S)
    if shift is None:
        shift = torch.zeros(B, dtype=torch.int64, device=device)
    else:
        shift = v.check_integer_tensor(shift, "shift", ((B,),), device)
    if gain is None:
        gain = torch.ones(B, dtype=COMPUTE_DTYPE, device=device)
    else:
        v.check_tensor(gain, "gain")
        if tuple(gain.shape) != (B,):
            raise ValueError(f"gain must have shape ({B},) (one per window), got {tuple(gain.shape)}")
        if not gain.is_floating_point():
            raise ValueError(f"gain must be a float tensor, got {str(gain.dtype).replace('torch.', '')}")
        v.check_finite(gain, "gain")
        gain = gain.to(device=device, dtype=COMPUTE_DTYPE)
    return lengths, shift, gain


def _run(audio, filters, n_fft, win_length, hop_length, frames, lengths, shift, gain, log_floor, backend):
    """The checks both public functions share, then the op (``filters``: the arguments of the mel filters, or None)."""
    _check_audio(audio)
    v.check_int(n_fft, "n_fft", 1)
    v.check_int(win_length, "win_length", 1)
    if win_length > n_fft:
        raise ValueError(f"win_length must be <= n_fft = {n_fft}, got {win_length}")
    v.check_int(hop_length, "hop_length", 1)
    frames = _frame_count(audio.shape[1], win_length, hop_length, frames)
    log_floor = v.check_number(log_floor, "log_floor", 0.0, float("inf"), open_low=True)
    if log_floor == float("inf"):
        raise ValueError(f"log_floor must be finite, got {log_floor!r}")
    lengths, shift, gain = _per_sample(audio, lengths, shift, gain)
    chosen = SPECTROGRAM.resolve(backend, audio.device)
    window = _cached(_window, win_length, audio.device)
    filters = None if filters is None else _cached(_mel_filters, *filters, audio.device)
    return _spectrogram(audio.to(COMPUTE_DTYPE), lengths, shift, gain, window, filters, n_fft, hop_length, frames,
                        log_floor, chosen)


def log_spectrogram(audio: torch.Tensor, *, n_fft: int = 512, win_length: int = 480, hop_length: int = 240,
                    frames: int | None = None, lengths: torch.Tensor | None = None,
                    shift: torch.Tensor | None = None, gain: torch.Tensor | None = None, log_floor: float = 1e-10,
                    backend: str = "auto") -> torch.Tensor:
    """log(max(|STFT|^2, log_floor)) of each audio window (natural log), with per-window shift and gain.

    Frame t of window b reads the samples shift[b] + t * hop_length + j, j in [0, win_length), scaled by
    gain[b] (samples outside [0, lengths[b]) read as 0), weighs them by a periodic Hann window, zero-pads
    them to n_fft and takes the power of their rfft. The defaults are L3-Net's input: 1 s at 48 kHz, 10 ms
    windows, half overlap -> 257 x 199. NaN in the audio propagates to the frames that read it.

    Args:
        audio: (B, S) float32/float64/float16/bfloat16, S >= 1, any strides (read as float32).
        n_fft: FFT size, >= win_length; n_fft // 2 + 1 bins.
        win_length: samples per frame (the Hann window's length), >= 1.
        hop_length: samples between frame starts, >= 1.
        frames: frames per window T, >= 1 (default 1 + (S - win_length) // hop_length, which needs S >= win_length).
        lengths: (B,) integer tensor in [0, S]: valid samples per window (default S).
        shift: (B,) integer tensor, any sign: window b is read from sample shift[b] on (default 0).
        gain: (B,) finite float tensor: linear gain per window (default 1); differentiable.
        log_floor: > 0, the smallest power before the log.
        backend: "auto" | "reference" | "cpp" | "triton" (see :mod:`fastssl.backends`).

    Returns:
        (B, n_fft // 2 + 1, T) float32, >= log(log_floor); differentiable with respect to audio and gain.

    Example:
        >>> import math, torch, fastssl
        >>> t = torch.arange(48000) / 48000
        >>> tone = torch.sin(2 * math.pi * 3000 * t)[None]  # 1 s of 3 kHz at 48 kHz: bin 3000 / 93.75 = 32
        >>> out = fastssl.ops.log_spectrogram(tone)
        >>> tuple(out.shape), out[0, :, 0].argmax().item()
        ((1, 257, 199), 32)
        >>> fastssl.ops.log_spectrogram(torch.zeros(1, 480)).flatten()[:3]  # silence: log(1e-10)
        tensor([-23.0259, -23.0259, -23.0259])
    """
    return _run(audio, None, n_fft, win_length, hop_length, frames, lengths, shift, gain, log_floor, backend)


def log_mel_spectrogram(audio: torch.Tensor, *, sample_rate: float = 48000, n_fft: int = 512, win_length: int = 480,
                        hop_length: int = 240, n_mels: int = 64, f_min: float = 0.0, f_max: float | None = None,
                        frames: int | None = None, lengths: torch.Tensor | None = None,
                        shift: torch.Tensor | None = None, gain: torch.Tensor | None = None,
                        log_floor: float = 1e-10, backend: str = "auto") -> torch.Tensor:
    """log(max(mel_filters @ |STFT|^2, log_floor)) of each audio window (natural log), with per-window shift and gain.

    :func:`log_spectrogram`'s power spectrum of each frame, summed by :func:`mel_filters` (Slaney's mel scale
    and area normalisation, librosa.filters.mel's defaults) before the log:
    ``librosa.feature.melspectrogram(center=False)`` of the audio with (n_fft - win_length) // 2 zeros prepended.

    Args:
        audio: (B, S) float32/float64/float16/bfloat16, S >= 1, any strides (read as float32).
        sample_rate: samples per second of the audio, > 0.
        n_fft, win_length, hop_length, frames, lengths, shift, gain, log_floor, backend: as in :func:`log_spectrogram`.
        n_mels: mel bands, >= 1.
        f_min: lowest band edge in Hz, in [0, f_max).
        f_max: highest band edge in Hz, in (f_min, sample_rate / 2] (default sample_rate / 2).

    Returns:
        (B, n_mels, T) float32, >= log(log_floor); differentiable with respect to audio and gain.

    Example:
        >>> import torch, fastssl
        >>> audio = torch.randn(2, 48000, generator=torch.Generator().manual_seed(0))
        >>> fastssl.ops.log_mel_spectrogram(audio).shape  # 1 s at 48 kHz, 64 mel bands
        torch.Size([2, 64, 199])
        >>> shifted = fastssl.ops.log_mel_spectrogram(audio, shift=torch.tensor([240, 0]), frames=198)
        >>> torch.allclose(shifted[0], fastssl.ops.log_mel_spectrogram(audio)[0, :, 1:], atol=1e-4)
        True
    """
    v.check_number(sample_rate, "sample_rate", 0.0, open_low=True)
    v.check_int(n_mels, "n_mels", 1)
    nyquist = sample_rate / 2
    f_max = nyquist if f_max is None else f_max
    v.check_number(f_max, "f_max", 0.0, nyquist, open_low=True)
    v.check_number(f_min, "f_min", 0.0, f_max)
    if f_min == f_max:
        raise ValueError(f"f_min must be < f_max = {f_max}, got {f_min!r}")
    filters = (float(sample_rate), n_fft, n_mels, float(f_min), float(f_max))
    return _run(audio, filters, n_fft, win_length, hop_length, frames, lengths, shift, gain, log_floor, backend)

