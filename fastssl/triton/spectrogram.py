"""Log spectrograms and log-mel spectrograms in Triton: the DFT of a tile of frames as matrix products.

Specification: fastssl.reference.spectrogram. One program owns BLOCK_T frames of one sample (and, with
filters, BLOCK_M mel rows). For each tile of BLOCK_F frequency bins it accumulates

    re = frames @ cos,   im = frames @ sin       ([BLOCK_T, n_fft] x [n_fft, BLOCK_F], in chunks of BLOCK_K taps)

where a frame chunk [BLOCK_T, BLOCK_K] is read straight from the audio (tap j of frame t reads sample
shift + t hop + j when it lies in [0, length), else 0; taps j >= win_length are 0) and multiplied by the
gain and the window, and the basis chunks cos / sin (2 pi j k / n_fft) come from a table built on the host
once per (n_fft, tile sizes, device) (angles reduced exactly, j k mod n_fft in integers, in float64, then
rounded to float32), its frequency columns padded with zeros to a multiple of BLOCK_F. The power
re^2 + im^2 of the tile is then either written as log(max(power, log_floor)) (no filters), or multiplied
into the mel accumulator, mel += power @ filters^T [BLOCK_F, BLOCK_M] (rows of bins past n_fft // 2 and
columns past the filter count read as 0), written as log(max(mel, log_floor)) after the last tile. Nothing
but the output is written: no frames, no spectrum in memory. The frame loop of the taps stops at
win_length (a 480-tap window of a 512-point DFT reads 480 rows of the basis).

Precision: the products run with ``input_precision="ieee"`` (float32 FMAs, as the C++ kernel), not TF32.
The spectrum of a frame spans many orders of magnitude, and the log of a quiet bin amplifies every error
relative to the loud ones; TF32's 10-bit mantissa would put errors of ~1e-3 on the log of the loud bins
alone. fastssl.triton.nt_xent takes three TF32 products (tf32x3, close to float32) for its float32 logits;
here tf32x3 needs every register of a thread and spills (see GPU_TILES), while the float32 products keep the
results within float32 rounding of the reference's, as the C++ kernel's.

Example (on a CUDA device, or on the CPU under TRITON_INTERPRET=1)::

    import torch
    from fastssl.reference.spectrogram import hann_window
    from fastssl.triton.spectrogram import spectrogram

    audio = torch.randn(2, 48000, device="cuda")
    per_sample = torch.zeros(2, dtype=torch.int64, device="cuda")
    out = spectrogram(audio, per_sample + 48000, per_sample, torch.ones(2, device="cuda"),
                      hann_window(480).cuda(), None, 512, 240, 199, 1e-10)  # (2, 257, 199)
"""

from __future__ import annotations

import functools
import math

import torch
import triton
import triton.language as tl

from ..backends import triton_interpreter
from ._common import device_guard

#: Tile sizes on a GPU: 32 frames x 32 bins (x up to 64 mel rows), the taps in chunks of 32. Compiled for sm_80
#: and sm_90 (Triton 3.8): 96-106 registers per thread without filters, 156-168 with 64 mels, no spills, 16 KiB
#: of shared memory. Small tiles also pad little: 199 frames take 224 rows, 257 bins 288 columns. 64-wide
#: tiles (or 8 warps and more stages with 64 x 64) spill; tf32x3 products need 255 registers and spill too.
GPU_TILES = dict(BLOCK_T=32, BLOCK_K=32, BLOCK_F=32, num_warps=4, num_stages=2)
#: Under the interpreter: the smallest tiles tl.dot takes, so that tests cover several tiles of every kind.
INTERPRETER_TILES = dict(BLOCK_T=16, BLOCK_K=16, BLOCK_F=16, num_warps=1, num_stages=1)
#: Mel rows one program accumulates on a GPU: 16 for up to 16 filters, else 64; more than 64 filters take more
#: programs per frame tile (each computes its own DFT).
GPU_BLOCK_M = (16, 64)
PRECISION = "ieee"


@triton.jit(do_not_specialize=["S", "stride_b", "win_length", "hop", "frames", "bins", "mels", "reach", "t_blocks",
                               "stride_fm"])
def _spectrogram_kernel(audio_ptr, lengths_ptr, shift_ptr, gain_ptr, window_ptr, cos_ptr, sin_ptr, filters_ptr,
                        out_ptr, S, stride_b, stride_s, win_length, hop, frames, bins, mels, reach, t_blocks,
                        basis_cols, stride_fm, stride_fk, log_floor, HAS_FILTERS: tl.constexpr,
                        BLOCK_T: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_F: tl.constexpr, BLOCK_M: tl.constexpr,
                        PRECISION: tl.constexpr):
    pid = tl.program_id(0)
    b = pid // t_blocks
    t = (pid % t_blocks) * BLOCK_T + tl.arange(0, BLOCK_T)
    t_ok = t < frames
    length = tl.minimum(tl.maximum(tl.load(lengths_ptr + b), 0), S)
    # A shift beyond [-reach, length] reads no sample in any frame either: clamped, start cannot overflow.
    shift = tl.minimum(tl.maximum(tl.load(shift_ptr + b), -reach), length)
    gain = tl.load(gain_ptr + b)
    start = shift + t.to(tl.int64) * hop  # [BLOCK_T] int64
    row = audio_ptr + b.to(tl.int64) * stride_b
    rows_out = bins
    if HAS_FILTERS:
        rows_out = mels
        m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
        mel = tl.zeros((BLOCK_T, BLOCK_M), dtype=tl.float32)
    out = out_ptr + b.to(tl.int64) * rows_out * frames
    k_idx = tl.arange(0, BLOCK_K)
    for f0 in range(0, basis_cols, BLOCK_F):
        f = f0 + tl.arange(0, BLOCK_F)
        re = tl.zeros((BLOCK_T, BLOCK_F), dtype=tl.float32)
        im = tl.zeros((BLOCK_T, BLOCK_F), dtype=tl.float32)
        for j0 in range(0, win_length, BLOCK_K):
            j = j0 + k_idx
            j_ok = j < win_length
            i = start[:, None] + j[None, :]
            inside = t_ok[:, None] & j_ok[None, :] & (i >= 0) & (i < length)
            x = tl.load(row + i * stride_s, mask=inside, other=0.0)
            w = tl.load(window_ptr + j, mask=j_ok, other=0.0)
            frame = gain * x * w[None, :]
            basis = j[:, None] * basis_cols + f[None, :]  # rows up to the table's (a multiple of BLOCK_K >= n_fft)
            re = tl.dot(frame, tl.load(cos_ptr + basis), re, input_precision=PRECISION)
            im = tl.dot(frame, tl.load(sin_ptr + basis), im, input_precision=PRECISION)
        power = re * re + im * im  # 0 in the padded columns
        if HAS_FILTERS:
            ft = tl.load(filters_ptr + m[None, :] * stride_fm + f[:, None] * stride_fk,
                         mask=(f < bins)[:, None] & (m < mels)[None, :], other=0.0)
            mel = tl.dot(power, ft, mel, input_precision=PRECISION)
        else:
            value = tl.log(tl.where(power < log_floor, log_floor, power))  # NaN stays NaN (as clamp_min)
            tl.store(out + f[None, :].to(tl.int64) * frames + t[:, None], value,
                     mask=t_ok[:, None] & (f < bins)[None, :])
    if HAS_FILTERS:
        value = tl.log(tl.where(mel < log_floor, log_floor, mel))
        tl.store(out + m[None, :].to(tl.int64) * frames + t[:, None], value, mask=t_ok[:, None] & (m < mels)[None, :])


def tiles(mels: int | None) -> dict:
    """The launch's tile sizes and options (``mels``: filter rows, None without filters)."""
    if triton_interpreter():
        return dict(INTERPRETER_TILES, BLOCK_M=16)
    small, large = GPU_BLOCK_M
    return dict(GPU_TILES, BLOCK_M=small if (mels or 0) <= small else large)


@functools.lru_cache(maxsize=16)
def dft_basis(n_fft: int, block_k: int, block_f: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (2 pi j k / n_fft), (rows, columns) float32 on ``device``: j < n_fft rounded up to a multiple
    of ``block_k`` rows, k <= n_fft // 2 rounded up to a multiple of ``block_f`` columns, zeros past them."""
    rows = triton.cdiv(n_fft, block_k) * block_k
    bins = n_fft // 2 + 1
    cols = triton.cdiv(bins, block_f) * block_f
    j = torch.arange(n_fft, dtype=torch.int64)[:, None]
    k = torch.arange(bins, dtype=torch.int64)[None, :]
    angle = (j * k % n_fft).to(torch.float64) * (2 * math.pi / n_fft)
    cos = torch.zeros(rows, cols, dtype=torch.float32)
    sin = torch.zeros(rows, cols, dtype=torch.float32)
    cos[:n_fft, :bins] = torch.cos(angle)
    sin[:n_fft, :bins] = torch.sin(angle)
    return cos.to(device), sin.to(device)


def spectrogram(audio: torch.Tensor, lengths: torch.Tensor, shift: torch.Tensor, gain: torch.Tensor,
                window: torch.Tensor, filters: torch.Tensor | None, n_fft: int, hop_length: int, frames: int,
                log_floor: float) -> torch.Tensor:
    """audio (B, S) float32 (any strides), lengths (B,) int64, shift (B,) int64, gain (B,) float32, window
    (win_length,) float32 (win_length <= n_fft), filters (M, n_fft // 2 + 1) float32 or None
    -> (B, M or n_fft // 2 + 1, frames) float32: the log(-mel) power spectrogram of fastssl.reference.spectrogram."""
    B, S = audio.shape
    bins = n_fft // 2 + 1
    mels = None if filters is None else filters.shape[0]
    out = torch.empty(B, bins if mels is None else mels, frames, dtype=torch.float32, device=audio.device)
    if out.numel() == 0:
        return out
    config = tiles(mels)
    cos, sin = dft_basis(n_fft, config["BLOCK_K"], config["BLOCK_F"], audio.device)
    t_blocks = triton.cdiv(frames, config["BLOCK_T"])
    grid = (B * t_blocks, 1 if mels is None else triton.cdiv(mels, config["BLOCK_M"]))
    window = window.contiguous()
    reach = (frames - 1) * hop_length + window.numel()
    filters_arg = cos if filters is None else filters  # an unused pointer without filters
    with device_guard(audio):
        _spectrogram_kernel[grid](
            audio, lengths.contiguous(), shift.contiguous(), gain.contiguous(), window, cos, sin, filters_arg, out,
            S, audio.stride(0), audio.stride(1), window.numel(), hop_length, frames, bins, mels or 0, reach, t_blocks,
            cos.shape[1], filters_arg.stride(0), filters_arg.stride(1), float(log_floor), HAS_FILTERS=mels is not None,
            PRECISION=PRECISION, **config)
    return out
