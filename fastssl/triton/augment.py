"""The fused per-sample augmentation in Triton: one launch per pass for the whole ragged batch.

Specification: :mod:`fastssl.reference.augment`; design: the fused CPU kernel (kernels/cpu/augment.cpp),
per-pixel maths: kernels/common/augment.h. Every program works on one output tile (``BY`` x ``BX``
pixels) of one sample; the sample's scalars (image offset, size, crop, tap counts, factors, op order,
flags) are loaded inside the kernel, so a batch of differently sized images is one launch.

Passes (grid: tiles x samples each):

1. ``_augment_kernel``: crop + separable resize (antialiased, flip folded into the x weights) + the color
   ops in the sample's order + grayscale; then, for a sample without blur, solarize + normalize + cast +
   store; for a sample with blur, float32 planes to ``scratch`` (B, 3, h, w). A sample whose contrast
   factor is not 1 stops before contrast (which needs the mean gray of the whole image as it is then):
   its tile writes that image's float32 planes to ``scratch`` and their sum of gray to ``partials``
   (B, MAX_TILES).
2. ``_contrast_kernel``, when any sample has contrast: over the small output, never the source, for those
   samples only: the planes back from scratch, contrast toward sum(partials[b]) / (h w) (the tiles added in
   a fixed order: the mean depends on the sample alone), the ops after it, then as pass 1 (a blurring
   sample's planes go back where they were read).
3. ``_blur_kernel`` twice when any sample blurs: rows (scratch -> rows, float32), then columns
   (rows -> output) + solarize + normalize + cast, in the reference's order (blur, then solarize).

The separable resize. A tile of BY x BX outputs reads the crop rows between its first row's first tap and
its last row's last tap (about (BY - 1) s + taps_y rows at a scale s = crop / output), RY (16) rows at a
time: the horizontal pass resizes the RY rows to the tile's BX columns in registers (taps_x gathers of
3 bytes per row and column), then the vertical pass adds wy (BY x RY) @ rows into the tile, a ``tl.dot``
in full float32 (``input_precision="ieee"``) whose operands Triton stages through shared memory; wy
holds each output row's vertical weights at its own taps and 0 elsewhere. So each crop pixel comes from
global memory once per tile (1.2x the crop, counting the rows tiles share), and the taps cost
(rows read / BY) x taps_x + taps_y per output instead of taps_y x taps_x. Why this design: the
intermediate rows never leave the chip (no scratch traffic, no extra launch), a tile needs no halo of
intermediate rows from its neighbors, and Triton has no indexable shared memory, for which the dot is
the way to combine rows. Measured counts at 1000 -> 224 (BY 16, BX 32, RY 16): bilinear 135 source loads
per output pixel instead of 243, bicubic 316 instead of 972; the contrast mean costs 3 float32 stores and
loads per pixel instead of a second resize.

Resize weights come from :func:`fastssl.ops.augment_weights.axis_weights` (computed on the device):
per sample, output row ``y`` reads crop rows ``y_start[b, y] + [0, taps[b, 0])`` with weights
``y_weights[b, y, :taps[b, 0]]``, likewise for columns; the tap loops run to the sample's own count
(a runtime bound), so a sample's view does not depend on the batch it is in.

Under the interpreter (``TRITON_INTERPRET=1``, CPU tensors) bfloat16 outputs are written as float32 and
cast after: the interpreter has no bfloat16.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .. import _validation, backends
from ..backends import triton_interpreter
from ._common import device_guard, kernel_output_dtype

GRAY_R = tl.constexpr(0.299)
GRAY_G = tl.constexpr(0.587)
GRAY_B = tl.constexpr(0.114)
TILE_PIXELS = 512  #: output pixels per program on the GPU (BY x BX)
TILE_PIXELS_INTERPRETER = 4096  #: the interpreter pays per program: bigger tiles, fewer programs
NUM_WARPS = 4
MIN_TILE_SIDE = 16  #: tl.dot's smallest block side
ROWS_PER_CHUNK = 16  #: crop rows per step of the separable resize on the GPU (RY)
ROWS_PER_CHUNK_INTERPRETER = 64
MAX_BATCH = 65535  #: samples per launch (larger batches take several): the grid is (tiles, samples), CUDA caps axis 1
FLAG_GRAY = tl.constexpr(0)  #: columns of the (B, 3) int32 flags: grayscale, solarize, blur (sigma > 0)
FLAG_SOLARIZE = tl.constexpr(1)
FLAG_BLUR = tl.constexpr(2)


# --- per-pixel maths (kernels/common/augment.h) -------------------------------------------------------


@triton.jit
def _clamp01(x):
    return tl.minimum(tl.maximum(x, 0.0), 1.0)


@triton.jit
def _gray(r, g, b):
    return GRAY_R * r + GRAY_G * g + GRAY_B * b


@triton.jit
def _blend(x, f, m):
    """f x + (1 - f) m, clamped: contrast (m the image's mean gray) and saturation (m the pixel's gray)."""
    return _clamp01(f * x + (1.0 - f) * m)


# RGB -> HSV -> RGB with H shifted by `shift` turns, as the reference (and augment.h::hue_shift):
# v = max, delta = max - min, s = delta / v (0 when v = 0); rc = (v - r) / delta (likewise gc, bc);
# 6 H = bc - gc when v == r, else 2 + rc - bc when v == g, else 4 + gc - rc; H = (6 H / 6) mod 1
# (0 when delta = 0), then H <- (H + shift) mod 1. Back: sector i = floor(6 H) (6 -> 0 when H rounds
# to 1), f = 6 H - floor(6 H), p = v (1 - s), q = v (1 - s f), t = v (1 - s (1 - f));
# (r, g, b) = (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q) for sectors 0..5, clamped.
@triton.jit
def _hue_shift(r, g, b, shift):
    v = tl.maximum(r, tl.maximum(g, b))
    delta = v - tl.minimum(r, tl.minimum(g, b))
    safe = tl.where(delta > 0.0, delta, 1.0)
    s = tl.where(v > 0.0, delta / tl.where(v > 0.0, v, 1.0), 0.0)
    rc = (v - r) / safe
    gc = (v - g) / safe
    bc = (v - b) / safe
    h6 = tl.where(v == r, bc - gc, tl.where(v == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = h6 / 6.0
    h = tl.where(delta > 0.0, h - tl.floor(h), 0.0)
    h = h + shift
    h = h - tl.floor(h)
    x6 = h * 6.0
    fl = tl.floor(x6)
    f = x6 - fl
    i = tl.where(fl >= 6.0, fl - 6.0, fl)
    p = v * (1.0 - s)
    q = v * (1.0 - s * f)
    t = v * (1.0 - s * (1.0 - f))
    nr = tl.where((i == 0.0) | (i == 5.0), v, tl.where(i == 1.0, q, tl.where(i == 4.0, t, p)))
    ng = tl.where((i == 1.0) | (i == 2.0), v, tl.where(i == 0.0, t, tl.where(i == 3.0, q, p)))
    nb = tl.where((i == 3.0) | (i == 4.0), v, tl.where(i == 2.0, t, tl.where(i == 5.0, q, p)))
    return _clamp01(nr), _clamp01(ng), _clamp01(nb)


@triton.jit
def _blur_source(p, n, half):
    """The pixel that padded position p (in [-half, n + half)) reads: reflect by r = min(half, n - 1)
    (edge not repeated), then replicate the outermost reflected pixel (augment.h::blur_source_index)."""
    r = tl.minimum(half, n - 1)
    q = tl.abs(p)
    q = tl.minimum(q, 2 * (n - 1) - q)
    q = tl.where(p < -r, r, q)
    q = tl.where(p > n - 1 + r, n - 1 - r, q)
    return q


# --- tile helpers -------------------------------------------------------------------------------------


@triton.jit
def _tile(tile, tiles_x, out_h, out_w, BY: tl.constexpr, BX: tl.constexpr):
    """The first output row of tile ``tile`` (row-major over the tiles), its rows (BY, 1) and columns (1, BX),
    and their masks."""
    y0 = (tile // tiles_x) * BY
    oy = y0 + tl.arange(0, BY)[:, None]
    ox = (tile % tiles_x) * BX + tl.arange(0, BX)[None, :]
    return y0, oy, ox, oy < out_h, ox < out_w


# Resize of one tile, separably. Output (y, x), channel c, of sample b:
#   sum_i y_weights[b, y, i] * sum_j x_weights[b, x, j] * src[top + y_start[b, y] + i, left + x_start[b, x] + j, c] / 255
# i < taps[b, 0], j < taps[b, 1]. The tile's outputs read the crop rows [y_start[b, y0], y_start[b, y1] + taps_y)
# (y0, y1 its first and last valid rows; y_start rises with y). Those rows are taken RY at a time: the
# horizontal pass resizes the RY rows to the tile's BX columns (RY x BX per channel, in registers), then the
# vertical pass adds wy (BY x RY) @ rows to the tile, wy[y, r] = y_weights[b, y, r - y_start[b, y]] inside the
# output row's run and 0 outside. The source is HWC uint8 at data + offsets[b]; every tap lies inside the
# crop (augment_weights), so only the tile's own bounds and the last chunk's rows are masked. Bicubic
# (negative lobes) is clamped to [0, 1] like the reference.
@triton.jit
def _resized_tile(data_ptr, offsets_ptr, sizes_ptr, crop_ptr, y_start_ptr, y_weights_ptr, x_start_ptr,
                  x_weights_ptr, taps_ptr, sample, y0, oy, ox, mask_y, mask_x, out_h, out_w, ky, kx,
                  CLAMP: tl.constexpr, BY: tl.constexpr, BX: tl.constexpr, RY: tl.constexpr):
    s64 = sample.to(tl.int64)
    base = data_ptr + tl.load(offsets_ptr + s64)
    width = tl.load(sizes_ptr + 2 * s64 + 1)
    top = tl.load(crop_ptr + 4 * s64)
    left = tl.load(crop_ptr + 4 * s64 + 1)
    taps_y = tl.load(taps_ptr + 2 * s64)
    taps_x = tl.load(taps_ptr + 2 * s64 + 1)
    y_starts = y_start_ptr + s64 * out_h
    first_row = tl.load(y_starts + y0)
    end_row = tl.load(y_starts + tl.minimum(y0 + BY, out_h) - 1) + taps_y
    ys = tl.load(y_starts + oy, mask=mask_y, other=0)  # (BY, 1)
    xs = tl.load(x_start_ptr + s64 * out_w + ox, mask=mask_x, other=0).to(tl.int64)  # (1, BX)
    y_row = y_weights_ptr + (s64 * out_h + oy) * ky
    x_row = x_weights_ptr + (s64 * out_w + ox) * kx
    column = (left + xs) * 3
    r, g, b = _zeros3(BY, BX)
    for row0 in range(first_row, end_row, RY):
        rows = row0 + tl.arange(0, RY)  # (RY,) crop rows of this chunk
        mask_rows = rows < end_row
        pixel = base + (top + rows[:, None]).to(tl.int64) * width * 3 + column  # (RY, BX)
        mask = mask_rows[:, None] & mask_x
        hr, hg, hb = _zeros3(RY, BX)
        for j in range(taps_x):
            wx = tl.load(x_row + j, mask=mask_x, other=0.0)
            p = pixel + 3 * j
            hr += wx * tl.load(p, mask=mask, other=0).to(tl.float32)
            hg += wx * tl.load(p + 1, mask=mask, other=0).to(tl.float32)
            hb += wx * tl.load(p + 2, mask=mask, other=0).to(tl.float32)
        tap = rows[None, :] - ys  # (BY, RY): which tap of output row y crop row r is
        wy = tl.load(y_row + tap, mask=mask_y & mask_rows[None, :] & (tap >= 0) & (tap < taps_y), other=0.0)
        r = tl.dot(wy, hr, r, input_precision="ieee")
        g = tl.dot(wy, hg, g, input_precision="ieee")
        b = tl.dot(wy, hb, b, input_precision="ieee")
    r = r * (1.0 / 255.0)
    g = g * (1.0 / 255.0)
    b = b * (1.0 / 255.0)
    if CLAMP:
        r = _clamp01(r)
        g = _clamp01(g)
        b = _clamp01(b)
    return r, g, b


# The color ops of the sample in its order (0 brightness, 1 contrast, 2 saturation, 3 hue), positions
# [first, last) of it: all four, or those before contrast and then the rest once the mean is known. An identity factor skips
# its op, as the CPU kernel does (the reference's op is then exact identity on [0, 1] for brightness,
# contrast and saturation, a ~1e-7 round trip for hue). `contrast_mean` is the image's mean gray as it
# is when contrast runs.
@triton.jit
def _color_ops(r, g, b, factors_ptr, order_ptr, sample, first, last, contrast_mean):
    s64 = sample.to(tl.int64)
    for k in range(first, last):
        op = tl.load(order_ptr + 4 * s64 + k)
        f = tl.load(factors_ptr + 4 * s64 + op)
        if op == 0:
            if f != 1.0:
                r = _clamp01(f * r)
                g = _clamp01(f * g)
                b = _clamp01(f * b)
        elif op == 1:
            if f != 1.0:
                r = _blend(r, f, contrast_mean)
                g = _blend(g, f, contrast_mean)
                b = _blend(b, f, contrast_mean)
        elif op == 2:
            if f != 1.0:
                m = _gray(r, g, b)
                r = _blend(r, f, m)
                g = _blend(g, f, m)
                b = _blend(b, f, m)
        else:
            if f != 0.0:
                r, g, b = _hue_shift(r, g, b, f)
    return r, g, b


@triton.jit
def _store_view(out_ptr, r, g, b, sample, oy, ox, mask, sb, sc, sy, sx, threshold, mean0, mean1, mean2, std0,
                std1, std2):
    """Solarize (x >= threshold -> 1 - x; threshold 2 = off), normalize (x - mean) / std, cast, store at
    out[sample, c, oy, ox] through the output's strides (NCHW or channels_last)."""
    out_type = out_ptr.dtype.element_ty
    at = out_ptr + sample.to(tl.int64) * sb + oy * sy + ox * sx
    r = tl.where(r >= threshold, 1.0 - r, r)
    g = tl.where(g >= threshold, 1.0 - g, g)
    b = tl.where(b >= threshold, 1.0 - b, b)
    tl.store(at, ((r - mean0) / std0).to(out_type), mask=mask)
    tl.store(at + sc, ((g - mean1) / std1).to(out_type), mask=mask)
    tl.store(at + 2 * sc, ((b - mean2) / std2).to(out_type), mask=mask)


@triton.jit
def _store_planes(at, plane, r, g, b, mask):
    """float32 r, g, b to at, at + plane, at + 2 plane (the planar blur scratch)."""
    tl.store(at, r, mask=mask)
    tl.store(at + plane, g, mask=mask)
    tl.store(at + 2 * plane, b, mask=mask)


@triton.jit
def _zeros3(BY: tl.constexpr, BX: tl.constexpr):
    return (tl.zeros((BY, BX), dtype=tl.float32), tl.zeros((BY, BX), dtype=tl.float32),
            tl.zeros((BY, BX), dtype=tl.float32))


@triton.jit
def _solarize_threshold(flags_ptr, sample):
    return tl.where(tl.load(flags_ptr + 3 * sample.to(tl.int64) + FLAG_SOLARIZE) != 0, 0.5, 2.0)


# --- kernels ------------------------------------------------------------------------------------------


@triton.jit
def _contrast_position(order_ptr, sample):
    """Where contrast is in the sample's order: the number of color ops that run before it."""
    k = tl.arange(0, 4)
    return tl.sum(tl.where(tl.load(order_ptr + 4 * sample.to(tl.int64) + k) == 1, k, 0))


@triton.jit
def _finish_tile(r, g, b, flags_ptr, out_ptr, scratch_ptr, sample, oy, ox, mask, out_h, out_w, sb, sc, sy, sx,
                 mean0, mean1, mean2, std0, std1, std2, BLUR: tl.constexpr):
    """Grayscale; then the view stored (solarize, normalize, cast), or, for a sample that blurs, the float32
    planes written to ``scratch`` (B, 3, h, w) for the blur passes."""
    s64 = sample.to(tl.int64)
    if tl.load(flags_ptr + 3 * s64 + FLAG_GRAY) != 0:
        r = _gray(r, g, b)
        g = r
        b = r
    blurred = False
    if BLUR:
        blurred = tl.load(flags_ptr + 3 * s64 + FLAG_BLUR) != 0
    if blurred:
        _store_planes(scratch_ptr + (s64 * 3 * out_h + oy) * out_w + ox, out_h * out_w, r, g, b, mask)
    else:
        _store_view(out_ptr, r, g, b, sample, oy, ox, mask, sb, sc, sy, sx, _solarize_threshold(flags_ptr, sample),
                    mean0, mean1, mean2, std0, std1, std2)


# The main pass. A sample whose contrast factor is 1 is finished here. A sample with contrast needs the mean
# gray of its whole image as it is when contrast runs: the tile stops before contrast, writes its sum of
# gray to partials[b, tile] and its float32 planes to scratch, and _contrast_kernel finishes it.
@triton.jit
def _augment_kernel(data_ptr, offsets_ptr, sizes_ptr, crop_ptr, y_start_ptr, y_weights_ptr, x_start_ptr,
                    x_weights_ptr, taps_ptr, factors_ptr, order_ptr, flags_ptr, partials_ptr, out_ptr, scratch_ptr,
                    out_h, out_w, ky, kx, tiles_x, sb, sc, sy, sx, mean0, mean1, mean2, std0, std1, std2,
                    CLAMP: tl.constexpr, BLUR: tl.constexpr, MAX_TILES: tl.constexpr, BY: tl.constexpr,
                    BX: tl.constexpr, RY: tl.constexpr):
    tile = tl.program_id(0)
    sample = tl.program_id(1)
    s64 = sample.to(tl.int64)
    y0, oy, ox, mask_y, mask_x = _tile(tile, tiles_x, out_h, out_w, BY, BX)
    mask = mask_y & mask_x
    r, g, b = _resized_tile(data_ptr, offsets_ptr, sizes_ptr, crop_ptr, y_start_ptr, y_weights_ptr, x_start_ptr,
                            x_weights_ptr, taps_ptr, sample, y0, oy, ox, mask_y, mask_x, out_h, out_w, ky, kx, CLAMP,
                            BY, BX, RY)
    if tl.load(factors_ptr + 4 * s64 + 1) != 1.0:
        before = _contrast_position(order_ptr, sample)
        r, g, b = _color_ops(r, g, b, factors_ptr, order_ptr, sample, 0, before, 0.0)
        gray = tl.where(mask, _gray(r, g, b), 0.0)
        tl.store(partials_ptr + s64 * MAX_TILES + tile, tl.sum(tl.sum(gray, 1), 0))
        _store_planes(scratch_ptr + (s64 * 3 * out_h + oy) * out_w + ox, out_h * out_w, r, g, b, mask)
    else:
        r, g, b = _color_ops(r, g, b, factors_ptr, order_ptr, sample, 0, 4, 0.0)
        _finish_tile(r, g, b, flags_ptr, out_ptr, scratch_ptr, sample, oy, ox, mask, out_h, out_w, sb, sc, sy, sx,
                     mean0, mean1, mean2, std0, std1, std2, BLUR)


# The samples with contrast, over the small output: the tile's planes back from scratch, contrast toward
# sum(partials[b]) / (h w) (the tiles added in a fixed order: the mean depends on the sample alone), the
# ops after it, then as the main pass (a blurring sample's planes go back to the same place in scratch).
@triton.jit
def _contrast_kernel(factors_ptr, order_ptr, flags_ptr, partials_ptr, out_ptr, scratch_ptr, out_h, out_w, tiles_x,
                     n_tiles, sb, sc, sy, sx, mean0, mean1, mean2, std0, std1, std2, BLUR: tl.constexpr,
                     MAX_TILES: tl.constexpr, BY: tl.constexpr, BX: tl.constexpr):
    tile = tl.program_id(0)
    sample = tl.program_id(1)
    s64 = sample.to(tl.int64)
    if tl.load(factors_ptr + 4 * s64 + 1) != 1.0:
        _, oy, ox, mask_y, mask_x = _tile(tile, tiles_x, out_h, out_w, BY, BX)
        mask = mask_y & mask_x
        plane = out_h * out_w
        at = scratch_ptr + (s64 * 3 * out_h + oy) * out_w + ox
        r = tl.load(at, mask=mask, other=0.0)
        g = tl.load(at + plane, mask=mask, other=0.0)
        b = tl.load(at + 2 * plane, mask=mask, other=0.0)
        t = tl.arange(0, MAX_TILES)
        partial = tl.load(partials_ptr + s64 * MAX_TILES + t, mask=t < n_tiles, other=0.0)
        contrast_mean = tl.sum(partial, 0) / (out_h * out_w)
        r, g, b = _color_ops(r, g, b, factors_ptr, order_ptr, sample, _contrast_position(order_ptr, sample), 4,
                              contrast_mean)
        _finish_tile(r, g, b, flags_ptr, out_ptr, scratch_ptr, sample, oy, ox, mask, out_h, out_w, sb, sc, sy, sx,
                     mean0, mean1, mean2, std0, std1, std2, BLUR)


# One direction of the separable Gaussian blur of the samples whose flag is set, on planar float32
# (B, 3, h, w): dst(p) = sum_t k[b, t] src(p + t - half along the axis), t < taps, the source position
# reflected / replicated by _blur_source exactly as the reference pads. The rows pass (VERTICAL False)
# writes float32 to dst; the columns pass then solarizes, normalizes, casts and writes the view.
@triton.jit
def _blur_kernel(src_ptr, dst_ptr, out_ptr, kernel_ptr, flags_ptr, out_h, out_w, taps, tiles_x, sb, sc, sy, sx,
                 mean0, mean1, mean2, std0, std1, std2, VERTICAL: tl.constexpr, BY: tl.constexpr,
                 BX: tl.constexpr):
    tile = tl.program_id(0)
    sample = tl.program_id(1)
    s64 = sample.to(tl.int64)
    if tl.load(flags_ptr + 3 * s64 + FLAG_BLUR) != 0:
        _, oy, ox, mask_y, mask_x = _tile(tile, tiles_x, out_h, out_w, BY, BX)
        mask = mask_y & mask_x
        half = taps // 2
        plane = out_h * out_w
        src = src_ptr + s64 * 3 * plane
        r, g, b = _zeros3(BY, BX)
        for t in range(taps):
            w = tl.load(kernel_ptr + s64 * taps + t)
            if VERTICAL:
                at = src + _blur_source(oy + t - half, out_h, half) * out_w + ox
            else:
                at = src + oy * out_w + _blur_source(ox + t - half, out_w, half)
            r += w * tl.load(at, mask=mask, other=0.0)
            g += w * tl.load(at + plane, mask=mask, other=0.0)
            b += w * tl.load(at + 2 * plane, mask=mask, other=0.0)
        if VERTICAL:
            _store_view(out_ptr, r, g, b, sample, oy, ox, mask, sb, sc, sy, sx,
                        _solarize_threshold(flags_ptr, sample), mean0, mean1, mean2, std0, std1, std2)
        else:
            _store_planes(dst_ptr + (s64 * 3 * out_h + oy) * out_w + ox, plane, r, g, b, mask)


# --- launcher -----------------------------------------------------------------------------------------


def tile_shape(out_h: int, out_w: int) -> tuple[int, int]:
    """(BY, BX): powers of two covering about TILE_PIXELS output pixels, no wider/taller than needed but at
    least MIN_TILE_SIDE (the vertical resize is a ``tl.dot``)."""
    pixels = TILE_PIXELS_INTERPRETER if triton_interpreter() else TILE_PIXELS
    bx = max(min(32 if not triton_interpreter() else 64, triton.next_power_of_2(out_w)), MIN_TILE_SIDE)
    by = max(min(pixels // bx, triton.next_power_of_2(out_h)), MIN_TILE_SIDE)
    return by, bx


def rows_per_chunk() -> int:
    """RY: crop rows resized horizontally at a time (the interpreter pays per loop step: more of them)."""
    return ROWS_PER_CHUNK_INTERPRETER if triton_interpreter() else ROWS_PER_CHUNK


def gaussian_kernels(sigma: torch.Tensor, taps: int) -> torch.Tensor:
    """(B,) float32 sigmas -> (B, taps) float32 normalized exp(-t^2 / (2 sigma^2)), t = -(taps-1)/2..(taps-1)/2,
    computed in float64 like the reference; rows of sigma 0 (no blur) are a unit impulse.

    Example:
        >>> [[round(w, 3) for w in row] for row in gaussian_kernels(torch.tensor([0.0, 1.0]), 3).tolist()]
        [[0.0, 1.0, 0.0], [0.274, 0.452, 0.274]]
    """
    t = torch.arange(taps, dtype=torch.float64, device=sigma.device) - (taps - 1) / 2
    s = sigma.to(torch.float64).unsqueeze(1)
    k = torch.exp(-t ** 2 / (2 * torch.where(s > 0, s, 1.0) ** 2))
    k = torch.where(s > 0, k, (t == 0).to(torch.float64))
    return (k / k.sum(1, keepdim=True)).to(torch.float32)


def _check(t: torch.Tensor, name: str, dtype: torch.dtype, shape: tuple[int, ...], device: torch.device):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
    if t.dtype != dtype:
        raise TypeError(f"{name} must be {dtype}, got {t.dtype}")
    if t.device != device:
        raise ValueError(f"{name} must be on {device} (where data is), got {t.device}")
    if t.dim() != len(shape) or any(s >= 0 and t.shape[i] != s for i, s in enumerate(shape)):
        raise ValueError(f"{name} must have shape {shape} (-1: any), got {tuple(t.shape)}")
    return t.contiguous()


def augment(data: torch.Tensor, offsets: torch.Tensor, sizes: torch.Tensor, crop: torch.Tensor,
            y_start: torch.Tensor, y_weights: torch.Tensor, taps: torch.Tensor, x_start: torch.Tensor,
            x_weights: torch.Tensor, factors: torch.Tensor, order: torch.Tensor, grayscale: torch.Tensor,
            blur_sigma: torch.Tensor, solarize: torch.Tensor, blur_kernel: int, mean, std, clamp: bool,
            dtype: torch.dtype, channels_last: bool, *, may_blur: bool = True,
            may_change_contrast: bool = True) -> torch.Tensor:
    """One augmented view of each image of a ragged batch; the arguments of ``fastssl_C::augment``.

    Args:
        data: (total,) uint8, images back to back in HWC order; offsets (B,) int64; sizes (B, 2) int64 (H, W).
        crop: (B, 4) int64 (top, left, height, width), inside each image.
        y_start, y_weights, x_start, x_weights: (B, h) int32, (B, h, KY) float32, (B, w) int32,
            (B, w, KX) float32 from :func:`fastssl.ops.augment_weights.axis_weights` (flip folded into x);
            taps: (B, 2) int32 taps of each sample along y and x (<= KY, KX).
        factors: (B, 4) float32 brightness, contrast, saturation (>= 0), hue (turns, [-0.5, 0.5]);
            order: (B, 4) int64 permutations of 0..3; grayscale, solarize: (B,) bool;
            blur_sigma: (B,) float32 >= 0 (0 = no blur); blur_kernel: odd taps of the blur.
        mean, std: 3 floats each (std > 0); clamp: clamp the resize to [0, 1] (bicubic).
        dtype: float32 | bfloat16 | float16; channels_last: the output's memory format.
        may_blur, may_change_contrast: False promises that no sample blurs / changes contrast (the parameters'
            settings of the same names, which the op checks): the pass is not launched.

    Returns:
        (B, 3, h, w) of ``dtype``, (x - mean) / std of the augmented view x in [0, 1].

    Checks: only the arguments' types, shapes and devices (metadata, nothing read). The values are checked
    once, by the public op (:meth:`fastssl.ops.augment_params.AugmentParams.validate`, :class:`fastssl.ragged.RaggedImages`),
    and the weights come from :func:`~fastssl.ops.augment_weights.axis_weights`: this launcher trusts them.

    Passes: on CPU tensors (the interpreter) the blur and contrast passes run only when a sample needs them
    (read from ``blur_sigma`` and ``factors``). On a GPU (and under
    :func:`fastssl._validation.asynchronous_checks`) nothing is read back: a pass is launched unless the
    parameters promise it is not needed (``may_blur`` / ``may_change_contrast``; a recipe without blur or contrast
    jitter promises it), and its programs return at once for a sample that does not blur / keeps contrast 1
    (the blur: 2 launches and a float32 scratch of (B, 3, h, w) twice; contrast: 1 launch and the scratch).
    """
    if not isinstance(data, torch.Tensor) or data.dim() != 1 or data.dtype != torch.uint8:
        raise TypeError(f"data must be a 1-D uint8 tensor, got {getattr(data, 'shape', type(data).__name__)} "
                        f"{getattr(data, 'dtype', '')}")
    device = data.device
    offsets = _check(offsets, "offsets", torch.int64, (-1,), device)
    B = offsets.shape[0]
    if B == 0:
        raise ValueError("offsets is empty: the batch has no image")
    sizes = _check(sizes, "sizes", torch.int64, (B, 2), device)
    crop = _check(crop, "crop", torch.int64, (B, 4), device)
    y_start = _check(y_start, "y_start", torch.int32, (B, -1), device)
    x_start = _check(x_start, "x_start", torch.int32, (B, -1), device)
    out_h, out_w = y_start.shape[1], x_start.shape[1]
    if out_h < 1 or out_w < 1:
        raise ValueError(f"the output size ({out_h}, {out_w}) must be positive")
    y_weights = _check(y_weights, "y_weights", torch.float32, (B, out_h, -1), device)
    x_weights = _check(x_weights, "x_weights", torch.float32, (B, out_w, -1), device)
    taps = _check(taps, "taps", torch.int32, (B, 2), device)
    factors = _check(factors, "factors", torch.float32, (B, 4), device)
    order = _check(order, "order", torch.int64, (B, 4), device)
    grayscale = _check(grayscale, "grayscale", torch.bool, (B,), device)
    blur_sigma = _check(blur_sigma, "blur_sigma", torch.float32, (B,), device)
    solarize = _check(solarize, "solarize", torch.bool, (B,), device)
    mean, std = [float(m) for m in mean], [float(s) for s in std]
    blur, contrast = _passes(blur_sigma, factors, may_blur, may_change_contrast)

    flags = torch.stack((grayscale, solarize, blur_sigma > 0), 1).to(torch.int32)
    order32 = order.to(torch.int32)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty((B, 3, out_h, out_w), dtype=kernel_output_dtype(dtype), device=device, memory_format=memory)
    by, bx = tile_shape(out_h, out_w)
    tiles_x = triton.cdiv(out_w, bx)
    n_tiles = triton.cdiv(out_h, by) * tiles_x
    max_tiles = triton.next_power_of_2(n_tiles)
    partials = torch.zeros((B, max_tiles), dtype=torch.float32, device=device)
    scratch = torch.empty((B, 3, out_h, out_w) if blur or contrast else (B, 1), dtype=torch.float32, device=device)
    strides = out.stride()
    norm = (*mean, *std)
    kernel = gaussian_kernels(blur_sigma, blur_kernel) if blur else scratch
    rows = torch.empty_like(scratch) if blur else scratch  # the blur's row pass
    with device_guard(data):
        for first in range(0, B, MAX_BATCH):  # the grid's second axis is capped: launch MAX_BATCH samples at a time
            part = slice(first, first + MAX_BATCH)
            grid = (n_tiles, min(B - first, MAX_BATCH))
            flags_, partials_, out_, scratch_, rows_ = flags[part], partials[part], out[part], scratch[part], rows[part]
            _augment_kernel[grid](data, offsets[part], sizes[part], crop[part], y_start[part], y_weights[part],
                                  x_start[part], x_weights[part], taps[part], factors[part], order32[part], flags_,
                                  partials_, out_, scratch_, out_h, out_w, y_weights.shape[2], x_weights.shape[2],
                                  tiles_x, *strides, *norm, CLAMP=clamp, BLUR=blur, MAX_TILES=max_tiles, BY=by, BX=bx,
                                  RY=rows_per_chunk(), num_warps=NUM_WARPS)
            if contrast:
                _contrast_kernel[grid](factors[part], order32[part], flags_, partials_, out_, scratch_, out_h, out_w,
                                       tiles_x, n_tiles, *strides, *norm, BLUR=blur, MAX_TILES=max_tiles, BY=by, BX=bx,
                                       num_warps=NUM_WARPS)
            if blur:
                _blur_kernel[grid](scratch_, rows_, out_, kernel[part], flags_, out_h, out_w, blur_kernel, tiles_x,
                                   *strides, *norm, VERTICAL=False, BY=by, BX=bx, num_warps=NUM_WARPS)
                _blur_kernel[grid](rows_, rows_, out_, kernel[part], flags_, out_h, out_w, blur_kernel, tiles_x,
                                   *strides, *norm, VERTICAL=True, BY=by, BX=bx, num_warps=NUM_WARPS)
    return out.to(dtype) if out.dtype != dtype else out


def _passes(blur_sigma: torch.Tensor, factors: torch.Tensor, may_blur: bool, may_change_contrast: bool
            ) -> tuple[bool, bool]:
    """Whether to launch the blur pass and the contrast pass: read on the CPU; on a GPU (see augment) and while
    capturing launches (what a GPU would run), those the parameters may need."""
    if backends.triton_launch_capture or _validation.checks_asynchronously(blur_sigma):
        return may_blur, may_change_contrast
    return may_blur and bool((blur_sigma > 0).any()), may_change_contrast and bool((factors[:, 1] != 1).any())
