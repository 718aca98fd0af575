"""MAE masking in Triton: the argsort of the noise stays in PyTorch (a (B, L) sort is cheap), then ONE
kernel reads every patch once straight from the pixels and writes it once — as a visible patch, or as
the (normalized) target of a masked patch — together with ids_restore and the mask. No patchified copy
of the images is ever materialized.

Specification: :mod:`fastssl.reference.mae`. Program (image b, slot s) gathers patch order[b, s], where
order = (ids_keep, ids_masked ascending): slots [0, len_keep) are visible, the others targets. It also
inverts the shuffle at rank s: ids_restore[b, ids_shuffle[b, s]] = s, mask there = s >= len_keep.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..backends import triton_interpreter
from ..reference import mae as reference
from ._common import device_guard


@triton.jit
def _mae_masking_kernel(x_ptr, shuffle_ptr, order_ptr, visible_ptr, targets_ptr, restore_ptr, mask_ptr,
                        stride_b, stride_c, stride_h, stride_w, num_patches, len_keep, grid_width, eps,
                        PATCH: tl.constexpr, BLOCK: tl.constexpr, NORM: tl.constexpr, F64: tl.constexpr):
    pid = tl.program_id(0)
    b = pid // num_patches
    slot = pid % num_patches
    ranked = tl.load(shuffle_ptr + pid)  # int64
    tl.store(restore_ptr + b * num_patches + ranked, slot.to(tl.int64))
    tl.store(mask_ptr + b * num_patches + ranked, tl.where(slot >= len_keep, 1.0, 0.0))
    patch = tl.load(order_ptr + pid)

    # The patch as a (pixel k = i * p + j, channel c) tile; channel 3 is padding. Its flat position in
    # the output, 3 k + c, is MAE's (p, q, c) order, so the store is one contiguous run.
    k = tl.arange(0, BLOCK)
    c = tl.arange(0, 4)
    row = (patch // grid_width) * PATCH + k // PATCH
    col = (patch % grid_width) * PATCH + k % PATCH
    offsets = b.to(tl.int64) * stride_b + row * stride_h + col * stride_w
    valid = (k < PATCH * PATCH)[:, None] & (c < 3)[None, :]
    values = tl.load(x_ptr + offsets[:, None] + c[None, :] * stride_c, mask=valid, other=0)
    out = k[:, None] * 3 + c[None, :]
    n: tl.constexpr = 3 * PATCH * PATCH
    if slot < len_keep:
        tl.store(visible_ptr + (b * len_keep + slot).to(tl.int64) * n + out, values, mask=valid)
    else:
        v = values.to(tl.float64) if F64 else values.to(tl.float32)
        if NORM:
            mean = tl.sum(tl.sum(v, axis=1), axis=0) / n
            centered = tl.where(valid, v - mean, 0.0)
            var = tl.sum(tl.sum(centered * centered, axis=1), axis=0) / (n - 1)  # unbiased, as torch.var
            v = centered / tl.sqrt(var + eps)
        target = (b * (num_patches - len_keep) + slot - len_keep).to(tl.int64) * n + out
        tl.store(targets_ptr + target, v.to(targets_ptr.dtype.element_ty), mask=valid)


def _order(noise: torch.Tensor, len_keep: int) -> tuple[torch.Tensor, ...]:
    """(ids_shuffle, ids_keep, ids_masked ascending, order = ids_keep and ids_masked side by side), from a
    stable argsort of the noise."""
    ids_shuffle = torch.argsort(noise, dim=1, stable=True)
    ids_keep = ids_shuffle[:, :len_keep].contiguous()
    ids_masked = ids_shuffle[:, len_keep:].sort(dim=1).values
    return ids_shuffle, ids_keep, ids_masked, torch.cat([ids_keep, ids_masked], dim=1)


def mae_masking(images: torch.Tensor, noise: torch.Tensor, patch_size: int, len_keep: int, norm_pix: bool):
    """(visible, mask, ids_keep, ids_restore, ids_masked, targets) of :func:`fastssl.reference.mae.mae_masking`.

    images (B, 3, H, W) uint8/float on the GPU (CPU under TRITON_INTERPRET=1), any strides; noise (B, L).
    """
    dtype = images.dtype
    x = images.float() if dtype == torch.bfloat16 and triton_interpreter() else images  # the interpreter has no bf16
    B, _, H, W = x.shape
    p = patch_size
    L, n = (H // p) * (W // p), 3 * p * p
    ids_shuffle, ids_keep, ids_masked, order = _order(noise, len_keep)
    visible = torch.empty(B, len_keep, n, dtype=x.dtype, device=x.device)
    targets = torch.empty(B, L - len_keep, n, dtype=reference.target_dtype(x.dtype), device=x.device)
    ids_restore = torch.empty(B, L, dtype=torch.int64, device=x.device)
    mask = torch.empty(B, L, dtype=torch.float32, device=x.device)
    if B * L:
        block = triton.next_power_of_2(p * p)
        with device_guard(x):
            _mae_masking_kernel[(B * L,)](x, ids_shuffle, order, visible, targets, ids_restore, mask, *x.stride(), L, len_keep,
                                          W // p, reference.NORM_PIX_EPS, PATCH=p, BLOCK=block, NORM=norm_pix,
                                          F64=x.dtype == torch.float64, num_warps=4 if block * 4 >= 1024 else 2)
    return visible.to(dtype), mask, ids_keep, ids_restore, ids_masked, targets.to(reference.target_dtype(dtype))
