"""MAE masking (He et al. 2022): patchify, random masking by argsort of noise, norm-pix targets.

Conventions (He et al. 2022, "Masked Autoencoders Are Scalable Vision Learners"):

* patchify: (B, 3, H, W) -> (B, L, p*p*3), L = (H/p)(W/p), patches in row-major order of the grid,
  each flattened as (p, q, c) — MAE's ``einsum('nchpwq->nhwpqc')``.
* ids_shuffle = argsort(noise) per row (the smallest noise is kept first); ids_restore =
  argsort(ids_shuffle); the first len_keep = int(L (1 - mask_ratio)) of ids_shuffle are kept;
  mask (B, L) is 1 where a patch is removed, 0 where kept.
* norm_pix target: per patch, (x - mean) / sqrt(var + 1e-6) with torch's default ``var``, which is
  the UNBIASED one (divides by p*p*3 - 1): MAE calls ``target.var(dim=-1, keepdim=True)``.

Ties in the noise: fastssl sorts stably (equal noise keeps the lower patch index first) on every
backend and device, so a mask never depends on the sort algorithm. ``torch.argsort``, which MAE
calls, is not stable by default; the two agree whenever the noise of a row has no ties.

The ``published_*`` functions are a transcription of MAE's own routine (``random_masking``,
``patchify`` and the norm-pix target of ``forward_loss``): the parity oracle of the tests and the
baseline of benchmarks/bench_mae.py. They are kept here, once.
"""

from __future__ import annotations

import torch

NORM_PIX_EPS = 1e-6


# --- MAE's published routine, transcribed ----------------------------------------------------------


def published_patchify(imgs: torch.Tensor, p: int) -> torch.Tensor:
    """MAE's ``patchify``: (N, 3, H, W) -> (N, L, p*p*3). MAE assumes H == W; W/p is used for the width here."""
    h, w = imgs.shape[2] // p, imgs.shape[3] // p
    x = imgs.reshape(shape=(imgs.shape[0], 3, h, p, w, p))
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(shape=(imgs.shape[0], h * w, p**2 * 3))


def published_random_masking(x: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None):
    """MAE's ``random_masking`` of tokens x (N, L, D); ``noise`` (N, L) replaces its ``torch.rand`` when given.

    Returns (x_masked (N, len_keep, D), mask (N, L) float32 with 1 = removed, ids_restore (N, L) int64).
    """
    N, L, D = x.shape
    len_keep = int(L * (1 - mask_ratio))
    if noise is None:
        noise = torch.rand(N, L, device=x.device)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))
    mask = torch.ones([N, L], device=x.device)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, dim=1, index=ids_restore)
    return x_masked, mask, ids_restore


def published_norm_pix_target(imgs: torch.Tensor, p: int) -> torch.Tensor:
    """The target of MAE's ``forward_loss`` with ``norm_pix_loss``: every patch, (N, L, p*p*3)."""
    target = published_patchify(imgs, p)
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    return (target - mean) / (var + 1.0e-6) ** 0.5


# --- the specification -----------------------------------------------------------------------------


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, L, p*p*C), L = (H/p)(W/p); each patch flattened as (p, q, c). A view when possible."""
    B, C, H, W = images.shape
    p = patch_size
    h, w = H // p, W // p
    x = images.reshape(B, C, h, p, w, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, h * w, p * p * C)


def unpatchify(patches: torch.Tensor, patch_size: int, height: int, width: int) -> torch.Tensor:
    """(B, L, p*p*C) -> (B, C, H, W): the inverse of :func:`patchify`."""
    B, L, P = patches.shape
    p = patch_size
    h, w = height // p, width // p
    C = P // (p * p)
    x = patches.reshape(B, h, w, p, p, C).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(B, C, h * p, w * p)


def keep_count(num_patches: int, mask_ratio: float) -> int:
    """len_keep = int(L (1 - mask_ratio)), MAE's rounding (towards zero)."""
    return int(num_patches * (1 - mask_ratio))


def shuffle(noise: torch.Tensor, len_keep: int):
    """Index bookkeeping of the masking from noise (B, L).

    Returns (ids_keep (B, len_keep), ids_restore (B, L), ids_masked (B, L - len_keep) ascending,
    mask (B, L) float32 with 1 = removed), all int64 but the mask.
    """
    ids_shuffle = torch.argsort(noise, dim=1, stable=True)
    ids_restore = torch.argsort(ids_shuffle, dim=1, stable=True)
    mask = (ids_restore >= len_keep).to(torch.float32)
    ids_masked = ids_shuffle[:, len_keep:].sort(dim=1).values
    return ids_shuffle[:, :len_keep].contiguous(), ids_restore, ids_masked.contiguous(), mask


def gather_tokens(tokens: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """tokens (B, L, D) at ids (B, K) -> (B, K, D)."""
    return torch.gather(tokens, 1, ids.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def normalize_patches(patches: torch.Tensor, eps: float = NORM_PIX_EPS) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) over the last dimension, var unbiased (MAE's norm_pix)."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps) ** 0.5


def target_dtype(dtype: torch.dtype) -> torch.dtype:
    """Targets are float32 for uint8 images, the images' dtype otherwise."""
    return torch.float32 if dtype == torch.uint8 else dtype


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; everything else is normalized in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def mae_masking(images: torch.Tensor, noise: torch.Tensor, patch_size: int, len_keep: int, norm_pix: bool = True):
    """The whole op: (visible, mask, ids_keep, ids_restore, ids_masked, targets).

    images (B, 3, H, W), noise (B, L). visible (B, len_keep, p*p*3) in the images' dtype; targets
    (B, L - len_keep, p*p*3) of the masked patches in ascending patch order, in :func:`target_dtype`.
    """
    ids_keep, ids_restore, ids_masked, mask = shuffle(noise, len_keep)
    patches = patchify(images, patch_size)
    visible = gather_tokens(patches, ids_keep)
    masked = gather_tokens(patches, ids_masked).to(compute_dtype(images.dtype))
    targets = normalize_patches(masked) if norm_pix and masked.numel() else masked
    return visible, mask, ids_keep, ids_restore, ids_masked, targets.to(target_dtype(images.dtype))


def mae_unshuffle(x_visible: torch.Tensor, ids_restore: torch.Tensor, mask_token: torch.Tensor) -> torch.Tensor:
    """MAE's decoder input: (B, len_keep, D) visible tokens + mask tokens, put back in patch order -> (B, L, D)."""
    B, K, D = x_visible.shape
    L = ids_restore.shape[1]
    tokens = torch.cat([x_visible, mask_token.to(x_visible.dtype).expand(B, L - K, D)], dim=1)
    return gather_tokens(tokens, ids_restore)
