"""MAE masking (He et al. 2022) with the patch gather fused: visible patches and norm-pix targets read
straight from the pixels, masks keyed by (seed, epoch, sample id, view).

Conventions — patchify order (p, q, c), argsort of the noise (small noise kept), unbiased variance in
the norm-pix target, stable tie-breaking — are specified in :mod:`fastssl.reference.mae`.

Public functions: :func:`mae_masking` (images -> visible patches + targets; registered as the
torch.library op ``fastssl::mae_masking``, differentiable for float images), :func:`mae_masking_tokens`
(the same masking of token embeddings), :func:`mae_unshuffle` (the decoder-side inverse, with mask
tokens), :func:`patchify` and :func:`unpatchify`. The last three are single PyTorch gathers / views
already at memory bandwidth: they run in PyTorch whatever the backend (only "auto" and "reference").
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .. import _validation as v
from .. import random
from ..backends import OpBackends, lazy, native
from ..reference import mae as reference

DTYPES = (torch.uint8, torch.float32, torch.float16, torch.bfloat16, torch.float64)
NOISE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


class MaskedPatches(NamedTuple):
    """What :func:`mae_masking` returns for B images, L patches, K = int(L (1 - mask_ratio)) kept, M = L - K masked."""

    visible: torch.Tensor  #: (B, K, p*p*3) images' dtype: kept patches in ids_keep order, each flattened (p, q, c)
    mask: torch.Tensor  #: (B, L) float32, 1 = removed, 0 = kept (MAE's mask)
    ids_keep: torch.Tensor  #: (B, K) int64, the kept patches, smallest noise first
    ids_restore: torch.Tensor  #: (B, L) int64, argsort(ids_shuffle): the decoder's unshuffle
    ids_masked: torch.Tensor  #: (B, M) int64, the removed patches in ascending order (the rows of ``targets``)
    targets: torch.Tensor  #: (B, M, p*p*3) float (float32 for uint8 images): removed patches, normalized per patch if norm_pix


class MaskedTokens(NamedTuple):
    """What :func:`mae_masking_tokens` returns for tokens (B, L, D)."""

    visible: torch.Tensor  #: (B, K, D) the kept tokens in ids_keep order
    mask: torch.Tensor  #: (B, L) float32, 1 = removed
    ids_keep: torch.Tensor  #: (B, K) int64
    ids_restore: torch.Tensor  #: (B, L) int64
    ids_masked: torch.Tensor  #: (B, M) int64, ascending


MAE_MASKING = OpBackends(
    "mae_masking",
    {
        "reference": lambda *args: tuple(t.contiguous() for t in reference.mae_masking(*args)),
        "cpp": native("mae_masking"),
        "triton": lazy("fastssl.triton.mae", "mae_masking"),
    },
    auto_order={"cpu": ("cpp", "reference"), "cuda": ("triton", "reference")},
)
# Token masking, unshuffle and unpatchify are one PyTorch gather or view each: reference only.
MAE_TOKENS = OpBackends("mae_masking_tokens", {"reference": None})


# --- the registered op -----------------------------------------------------------------------------


@torch.library.custom_op("fastssl::mae_masking", mutates_args=())
def _mae_masking(images: torch.Tensor, noise: torch.Tensor, patch_size: int, len_keep: int, norm_pix: bool,
                 backend: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                        torch.Tensor]:
    return tuple(MAE_MASKING(backend, images, noise, patch_size, len_keep, norm_pix))


@_mae_masking.register_fake
def _(images, noise, patch_size, len_keep, norm_pix, backend):
    B, _, H, W = images.shape
    L, n = (H // patch_size) * (W // patch_size), 3 * patch_size**2
    i64 = dict(dtype=torch.int64, device=images.device)
    return (images.new_empty(B, len_keep, n), images.new_empty(B, L, dtype=torch.float32),
            images.new_empty(B, len_keep, **i64), images.new_empty(B, L, **i64),
            images.new_empty(B, L - len_keep, **i64),
            images.new_empty(B, L - len_keep, n, dtype=reference.target_dtype(images.dtype)))


# Backward, shared by every backend: the gradient of a gather is a scatter. Visible patches scatter
# back to their pixels; target gradients go through the vector-Jacobian product of the normalization
# first. Computed in float32 (float64 for float64 images).
@torch.library.custom_op("fastssl::mae_masking_backward", mutates_args=())
def _mae_masking_backward(grad_visible: torch.Tensor, grad_targets: torch.Tensor, images: torch.Tensor,
                          ids_keep: torch.Tensor, ids_masked: torch.Tensor, patch_size: int,
                          norm_pix: bool) -> torch.Tensor:
    B, C, H, W = images.shape
    dtype = reference.compute_dtype(images.dtype)
    n = C * patch_size**2
    grad = torch.zeros(B, (H // patch_size) * (W // patch_size), n, dtype=dtype, device=images.device)
    grad.scatter_(1, ids_keep[..., None].expand(-1, -1, n), grad_visible.to(dtype))
    grad_masked = grad_targets.to(dtype)
    if norm_pix:
        masked = reference.gather_tokens(reference.patchify(images.to(dtype), patch_size), ids_masked)
        grad_masked = torch.func.vjp(reference.normalize_patches, masked)[1](grad_masked)[0]
    grad.scatter_(1, ids_masked[..., None].expand(-1, -1, n), grad_masked)
    return reference.unpatchify(grad, patch_size, H, W).to(images.dtype).contiguous()


@_mae_masking_backward.register_fake
def _(grad_visible, grad_targets, images, ids_keep, ids_masked, patch_size, norm_pix):
    return torch.empty_like(images, memory_format=torch.contiguous_format)


def _save_for_backward(ctx, inputs, output):
    images, _, patch_size, _, norm_pix, _ = inputs
    ctx.save_for_backward(images, output[2], output[4])
    ctx.options = (patch_size, norm_pix)
    ctx.mark_non_differentiable(output[1])


def _mae_masking_grad(ctx, grad_visible, grad_mask, grad_keep, grad_restore, grad_masked, grad_targets):
    images, ids_keep, ids_masked = ctx.saved_tensors
    if not images.is_floating_point():
        return None, None, None, None, None, None
    grad = torch.ops.fastssl.mae_masking_backward(grad_visible, grad_targets, images, ids_keep, ids_masked,
                                                  *ctx.options)
    return grad, None, None, None, None, None


_mae_masking.register_autograd(_mae_masking_grad, setup_context=_save_for_backward)


# --- validation and noise --------------------------------------------------------------------------


def _check_patch_size(patch_size, H: int, W: int) -> int:
    v.check_int(patch_size, "patch_size", 1)
    if H % patch_size or W % patch_size:
        raise ValueError(f"patch_size {patch_size} must divide the image height and width, got {H} x {W}")
    return patch_size


def _check_mask_ratio(mask_ratio) -> float:
    if not isinstance(mask_ratio, (int, float)) or isinstance(mask_ratio, bool) or not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be a number in [0, 1), got {mask_ratio!r}")
    return float(mask_ratio)


def _masking_noise(noise, ids, B: int, L: int, device: torch.device, seed: int, epoch: int, view: int):
    """The given noise (checked), or uniform noise drawn from fastssl.random for the samples ``ids`` (slots 0..L-1)."""
    if noise is not None:
        v.check_tensor(noise, "noise")
        if noise.shape != (B, L):
            raise ValueError(f"noise must have shape (B, L) = ({B}, {L}), got {tuple(noise.shape)}")
        if noise.dtype not in NOISE_DTYPES:
            raise TypeError(f"noise must be a floating-point tensor, got {noise.dtype}")
        if noise.device != device:
            raise ValueError(f"noise must be on the device of the input ({device}), got {noise.device}")
        v.check_finite(noise, "noise")
        return noise
    if ids is None:
        raise ValueError("pass ids (the (B,) dataset indices of the samples, so that masks are a function of "
                         "(seed, epoch, sample, view) and change every epoch) or noise (B, L)")
    return random.uniform(random.batch_ids(ids, B, device), L, seed=seed, epoch=epoch, view=view)


# --- public functions ------------------------------------------------------------------------------


def mae_masking(images: torch.Tensor, patch_size: int = 16, mask_ratio: float = 0.75,
                noise: torch.Tensor | None = None, *, ids=None, seed: int = 0, epoch: int = 0, view: int = 0,
                norm_pix: bool = True, backend: str = "auto") -> MaskedPatches:
    """MAE's random masking of image patches, with the visible patches and the targets gathered from the pixels.

    Bit-identical to MAE's ``patchify`` + ``random_masking`` given the same noise (visible patches,
    mask, ids): ``ids_shuffle = argsort(noise)`` (smallest kept, ties by patch index — a stable sort),
    ``ids_restore = argsort(ids_shuffle)``, ``K = int(L (1 - mask_ratio))`` patches kept. The targets
    are MAE's norm-pix targets, (x - mean) / sqrt(var + 1e-6) per patch with the unbiased variance,
    for the removed patches only (equal to MAE's within float32 rounding: the native kernels
    normalize in float64 (cpp) or with a two-pass float32 sum (triton)).

    Args:
        images: (B, 3, H, W) uint8, float32, float16, bfloat16 or float64; any strides. H and W multiples
            of ``patch_size``. Not checked for NaN (it propagates to the patches it is in).
        patch_size: p; L = (H / p)(W / p) patches of p*p*3 values.
        mask_ratio: fraction of patches removed, in [0, 1).
        noise: (B, L) float, the per-patch noise (MAE: torch.rand). Default: uniform noise from
            :mod:`fastssl.random` keyed by (seed, epoch, ids[b], view, patch) — then ``ids`` is required.
        ids: (B,) int sample ids (dataset indices); the mask of a sample then depends on nothing else
            than (seed, epoch, id, view): not on the batch, the worker, the device or the backend.
        norm_pix: normalize the targets per patch (MAE's ``norm_pix_loss``); else the raw pixels.
        backend: "auto" | "reference" | "cpp" | "triton".

    Returns:
        :class:`MaskedPatches` (visible, mask, ids_keep, ids_restore, ids_masked, targets). The loss of
        MAE is ``((pred.gather(1, ids_masked[..., None].expand_as(targets)) - targets) ** 2).mean()``
        for a decoder output ``pred`` (B, L, p*p*3). ``visible`` and ``targets`` are differentiable
        with respect to float ``images``.

    Example:
        >>> import torch, fastssl
        >>> x = torch.rand(2, 3, 32, 48)
        >>> out = fastssl.ops.mae_masking(x, patch_size=16, mask_ratio=0.5, ids=torch.tensor([7, 8]), epoch=1)
        >>> out.visible.shape, out.targets.shape, out.mask.sum(1).tolist()
        (torch.Size([2, 3, 768]), torch.Size([2, 3, 768]), [3.0, 3.0])
    """
    v.check_rgb(images, "images", False, DTYPES, min_dim=4, max_dim=4)
    B, _, H, W = images.shape
    p = _check_patch_size(patch_size, H, W)
    L = (H // p) * (W // p)
    len_keep = reference.keep_count(L, _check_mask_ratio(mask_ratio))
    noise = _masking_noise(noise, ids, B, L, images.device, seed, epoch, view)
    chosen = MAE_MASKING.resolve(backend, images.device)
    return MaskedPatches(*_mae_masking(images, noise, p, len_keep, bool(norm_pix), chosen))


def mae_masking_tokens(tokens: torch.Tensor, mask_ratio: float = 0.75, noise: torch.Tensor | None = None, *,
                       ids=None, seed: int = 0, epoch: int = 0, view: int = 0,
                       backend: str = "auto") -> MaskedTokens:
    """MAE's ``random_masking`` of token embeddings (B, L, D): the same indices as :func:`mae_masking`.

    Given the same ``noise`` (or ids/seed/epoch/view), the mask and ids equal those of
    :func:`mae_masking` on images with L patches. ``visible`` is ``tokens`` gathered at ``ids_keep``
    (one PyTorch gather, differentiable).

    Args:
        tokens: (B, L, D) float (e.g. patch embeddings plus position embeddings).
        mask_ratio, noise, ids, seed, epoch, view: as in :func:`mae_masking`.
        backend: "auto" | "reference".

    Returns:
        :class:`MaskedTokens` (visible (B, K, D), mask (B, L), ids_keep, ids_restore, ids_masked).

    Example:
        >>> import torch, fastssl
        >>> out = fastssl.ops.mae_masking_tokens(torch.randn(2, 8, 4), 0.75, ids=torch.tensor([0, 1]))
        >>> out.visible.shape, out.ids_restore.shape
        (torch.Size([2, 2, 4]), torch.Size([2, 8]))
    """
    v.check_tensor(tokens, "tokens")
    if tokens.dim() != 3 or tokens.shape[1] == 0:
        raise ValueError(f"tokens must have shape (B, L, D) with L > 0, got {tuple(tokens.shape)}")
    MAE_TOKENS.resolve(backend, tokens.device)
    B, L, _ = tokens.shape
    len_keep = reference.keep_count(L, _check_mask_ratio(mask_ratio))
    noise = _masking_noise(noise, ids, B, L, tokens.device, seed, epoch, view)
    ids_keep, ids_restore, ids_masked, mask = reference.shuffle(noise, len_keep)
    return MaskedTokens(reference.gather_tokens(tokens, ids_keep), mask, ids_keep, ids_restore, ids_masked)


def mae_unshuffle(x_visible: torch.Tensor, ids_restore: torch.Tensor, mask_token: torch.Tensor, *,
                  backend: str = "auto") -> torch.Tensor:
    """The decoder-side inverse of the masking: visible tokens + mask tokens, back in patch order.

    Args:
        x_visible: (B, K, D) float, the visible tokens in ids_keep order (e.g. the encoder's output
            without its class token).
        ids_restore: (B, L) int64 from the masking (a permutation of 0..L-1 per row), L >= K.
        mask_token: D values (shape (D,) or MAE's (1, 1, D) parameter).
        backend: "auto" | "reference".

    Returns:
        (B, L, D): position j holds x_visible[b, ids_restore[b, j]] when that is < K, else the mask
        token. Differentiable with respect to ``x_visible`` and ``mask_token``.

    Example:
        >>> import torch, fastssl
        >>> m = fastssl.ops.mae_masking_tokens(torch.arange(4.0).view(1, 4, 1), 0.5, noise=torch.tensor([[.3, .1, .4, .2]]))
        >>> fastssl.ops.mae_unshuffle(m.visible, m.ids_restore, torch.tensor([-1.0])).flatten().tolist()
        [-1.0, 1.0, -1.0, 3.0]
    """
    v.check_tensor(x_visible, "x_visible")
    v.check_tensor(ids_restore, "ids_restore")
    v.check_tensor(mask_token, "mask_token")
    MAE_TOKENS.resolve(backend, x_visible.device)
    if x_visible.dim() != 3:
        raise ValueError(f"x_visible must have shape (B, K, D), got {tuple(x_visible.shape)}")
    B, K, D = x_visible.shape
    if ids_restore.dim() != 2 or ids_restore.shape[0] != B or ids_restore.shape[1] < K:
        raise ValueError(f"ids_restore must have shape (B, L) = ({B}, L) with L >= K = {K}, got {tuple(ids_restore.shape)}")
    if ids_restore.dtype != torch.int64:
        raise TypeError(f"ids_restore must be int64, got {ids_restore.dtype}")
    if mask_token.numel() != D:
        raise ValueError(f"mask_token must hold D = {D} values, got shape {tuple(mask_token.shape)}")
    v.check_same_device({"x_visible": x_visible, "ids_restore": ids_restore, "mask_token": mask_token})
    return reference.mae_unshuffle(x_visible, ids_restore, mask_token.reshape(D))


def patchify(images: torch.Tensor, patch_size: int = 16) -> torch.Tensor:
    """(B, C, H, W) -> (B, L, p*p*C), MAE's patch order (each patch flattened as (p, q, c)).

    Example:
        >>> import torch, fastssl
        >>> fastssl.ops.patchify(torch.zeros(2, 3, 32, 48), 16).shape
        torch.Size([2, 6, 768])
    """
    v.check_tensor(images, "images")
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
    p = _check_patch_size(patch_size, images.shape[2], images.shape[3])
    return reference.patchify(images, p)


def unpatchify(patches: torch.Tensor, patch_size: int, height: int, width: int) -> torch.Tensor:
    """(B, L, p*p*C) -> (B, C, H, W): the inverse of :func:`patchify` (MAE's ``unpatchify``, any H x W).

    Args:
        patches: (B, L, p*p*C) with L = (H / p)(W / p), any dtype.
        patch_size, height, width: p, H, W; p must divide H and W.

    Example:
        >>> import torch, fastssl
        >>> x = torch.rand(2, 3, 32, 48)
        >>> torch.equal(fastssl.ops.unpatchify(fastssl.ops.patchify(x, 16), 16, 32, 48), x)
        True
    """
    v.check_tensor(patches, "patches")
    p = _check_patch_size(patch_size, height, width)
    L = (height // p) * (width // p)
    if patches.dim() != 3 or patches.shape[1] != L or patches.shape[2] % (p * p) or patches.shape[2] == 0:
        raise ValueError(f"patches must have shape (B, L, p*p*C) = (B, {L}, {p * p}*C) for {height} x {width} "
                         f"images and patch_size {p}, got {tuple(patches.shape)}")
    return reference.unpatchify(patches, p, height, width)
