"""Per-sample multi-view augmentation: ``augment(images, params)`` and the transform-style :class:`Augment`.

Backends:

* ``reference`` — ``fastssl.reference.augment``, the specification, any device (per-sample loop on the CPU);
* ``cpp`` — the fused C++ kernel of fastssl._C on CPU tensors: one read of each decoded image per view,
  threads over samples;
* ``triton`` — ``fastssl.triton.augment`` on CUDA tensors (CPU tensors only under ``TRITON_INTERPRET=1``,
  for tests): one launch per pass for the whole ragged batch — one fused pass for crop + separable resize +
  flip + color ops + grayscale + solarize + normalize + cast, a pass over the output that finishes the
  samples with contrast (their mean gray summed by the first pass), and two blur passes when a sample blurs.

``auto`` takes cpp on CPU tensors (reference without fastssl._C) and triton on CUDA tensors (there is no
cuda kernel; reference without Triton). Both native backends take the resize weights of
:mod:`fastssl.ops.augment_weights` (flip folded into x; cpp: computed by fastssl._C, triton: by torch on
the batch's device). Every backend runs behind the torch.library op ``fastssl::augment`` (flattened
tensors, a fake implementation for torch.compile), which takes the batch as a
:class:`~fastssl.ragged.RaggedImages`.

Differences from NVIDIA DALI's operators (measured against in ``benchmarks/bench_augment.py``, which
runs DALI's own ops where installed): DALI's ``fn.color_twist`` folds brightness, contrast, saturation
and hue into one linear RGB transform, in a fixed order, with no clamp between the ops; its contrast
pivots on the middle of the range (0.5, or 128 for uint8) instead of the image's mean gray; its hue is
in degrees and is a rotation in YIQ space (an approximation of the HSV shift), its saturation scales YIQ
chroma. fastssl follows torchvision: the four ops in a per-sample random order, a clamp after each,
contrast toward the image's own mean gray, hue in turns through a true RGB -> HSV -> RGB round trip.
DALI's ``fn.gaussian_blur`` pads by reflection like torchvision (checked on images larger than half the
kernel).
"""

from __future__ import annotations

import torch

from ..backends import OpBackends, lazy, native
from ..ragged import RaggedImages
from ..reference import augment as reference
from ..recipes import Recipe, draw
from .augment_params import AugmentParams
from .augment_weights import axis_weights, native_axis_weights


def _kernel_args(images: RaggedImages, params: AugmentParams, native_weights: bool = False) -> tuple:
    """The arguments of the fused kernels (fastssl_C::augment and fastssl.triton.augment.augment), on the
    batch's device: resize weights from :mod:`.augment_weights` (flip folded into x), factors (B, 4). The
    torch weights get their tap bound from the batch's ``max_size`` (a crop is never longer than its image):
    nothing is read back."""
    crop = params.crop.to(torch.int64)
    if native_weights:
        y_start, y_weights, y_taps = native_axis_weights(crop[:, 2], params.size[0], params.interpolation)
        x_start, x_weights, x_taps = native_axis_weights(crop[:, 3], params.size[1], params.interpolation,
                                                         flip=params.flip)
    else:
        longest = images.max_size
        y_start, y_weights, y_taps = axis_weights(crop[:, 2], params.size[0], params.interpolation,
                                                  max_length=longest[0])
        x_start, x_weights, x_taps = axis_weights(crop[:, 3], params.size[1], params.interpolation, flip=params.flip,
                                                  max_length=longest[1])
    factors = torch.stack((params.brightness, params.contrast, params.saturation, params.hue), 1).float()
    return (images.data, images.offsets, images.sizes, crop, y_start, y_weights, torch.stack((y_taps, x_taps), 1),
            x_start, x_weights, factors, params.order.to(torch.int64), params.grayscale.to(torch.bool),
            params.blur_sigma.float(), params.solarize.to(torch.bool), params.blur_kernel, list(params.mean),
            list(params.std), params.interpolation == "bicubic", params.dtype, params.channels_last)


_NATIVE_AUGMENT = native("augment")
_TRITON_AUGMENT = lazy("fastssl.triton.augment", "augment")


def _cpp(images: RaggedImages, params: AugmentParams) -> torch.Tensor:
    """The fused C++ kernel (kernels/cpu/augment.cpp): one read of each image per view, threads over samples."""
    return _NATIVE_AUGMENT(*_kernel_args(images, params, native_weights=True))


def _triton(images: RaggedImages, params: AugmentParams) -> torch.Tensor:
    """The Triton kernels (fastssl/triton/augment.py): one launch per pass for the whole ragged batch; the blur and
    contrast passes only where the parameters may need them."""
    return _TRITON_AUGMENT(*_kernel_args(images, params), may_blur=params.may_blur,
                           may_change_contrast=params.may_change_contrast)


AUGMENT = OpBackends("augment", {"reference": reference.augment, "cpp": _cpp, "triton": _triton})


@torch.library.custom_op("fastssl::augment", mutates_args=())
def _augment(data: torch.Tensor, offsets: torch.Tensor, sizes: torch.Tensor, host_offsets: torch.Tensor,
             host_sizes: torch.Tensor, max_size: list[int], crop: torch.Tensor, flip: torch.Tensor,
             factors: torch.Tensor, order: torch.Tensor, grayscale: torch.Tensor, blur_sigma: torch.Tensor,
             solarize: torch.Tensor, size: list[int], blur_kernel: int, mean: list[float], std: list[float],
             dtype: torch.dtype, channels_last: bool, interpolation: str, may_blur: bool,
             may_change_contrast: bool, backend: str) -> torch.Tensor:
    """The op over flat tensors: a ragged batch (data, offsets, sizes, the CPU copies of offsets and sizes,
    the largest (H, W)) and AugmentParams with factors (B, 4). The parameters' values are checked here, in the
    op's body, which runs at run time also inside a torch.compile graph (the kernels index memory with them)."""
    images = RaggedImages(data, offsets, sizes, host_offsets, host_sizes, tuple(max_size))
    brightness, contrast, saturation, hue = factors.unbind(1)
    params = AugmentParams(crop=crop, flip=flip, brightness=brightness, contrast=contrast, saturation=saturation,
                           hue=hue, order=order, grayscale=grayscale, blur_sigma=blur_sigma, solarize=solarize,
                           size=(size[0], size[1]), blur_kernel=blur_kernel, mean=tuple(mean), std=tuple(std),
                           dtype=dtype, channels_last=channels_last, interpolation=interpolation,
                           may_blur=may_blur, may_change_contrast=may_change_contrast)
    params.validate(host_sizes)
    out = AUGMENT(backend, images, params)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    return out.contiguous(memory_format=memory)  # the reference's layout for 1x1 outputs is ambiguous


@_augment.register_fake
def _(data, offsets, sizes, host_offsets, host_sizes, max_size, crop, flip, factors, order, grayscale, blur_sigma,
      solarize, size, blur_kernel, mean, std, dtype, channels_last, interpolation, may_blur, may_change_contrast,
      backend):
    memory = torch.channels_last if channels_last else torch.contiguous_format
    return torch.empty((crop.shape[0], 3, size[0], size[1]), dtype=dtype, device=data.device, memory_format=memory)


def _as_ragged(images) -> RaggedImages:
    """The batch as the kernels' input format (dense and list inputs are packed: one copy)."""
    if isinstance(images, RaggedImages):
        return images
    if isinstance(images, torch.Tensor):
        _image_sizes(images)  # checks the shape and dtype
        return RaggedImages.from_dense(images)
    if isinstance(images, (list, tuple)):
        return RaggedImages.from_list(list(images))
    raise TypeError(f"images must be a tensor, a list of tensors or RaggedImages, got {type(images).__name__}")


def _image_sizes(images) -> torch.Tensor:
    if isinstance(images, RaggedImages):
        return images.host_sizes
    if isinstance(images, torch.Tensor):
        if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"images must be a uint8 (B, 3, H, W) tensor, a list of (3, H, W) uint8 tensors or "
                             f"RaggedImages, got {tuple(images.shape)} {images.dtype}")
        if images.shape[0] == 0:
            raise ValueError("images is empty")
        return torch.tensor([list(images.shape[2:])] * images.shape[0], dtype=torch.int64)
    if isinstance(images, (list, tuple)):
        return RaggedImages.from_list(list(images)).host_sizes
    raise TypeError(f"images must be a tensor, a list of tensors or RaggedImages, got {type(images).__name__}")


def augment(images, params: AugmentParams, *, backend: str = "auto") -> torch.Tensor:
    """One augmented view of every image, a deterministic function of ``params``.

    Args:
        images: uint8 images: a dense (B, 3, H, W) tensor, a list of (3, H_b, W_b) tensors, or
            :class:`fastssl.ragged.RaggedImages` (what a decoder hands over).
        params: :class:`~fastssl.ops.augment_params.AugmentParams` for the B samples (e.g. from
            :func:`fastssl.recipes.draw`).
        backend: "auto" | "reference" | "cpp" (CPU tensors) | "triton" (CUDA tensors; CPU tensors under
            TRITON_INTERPRET=1). "auto" takes cpp on the CPU when fastssl._C is built, triton on CUDA
            tensors when Triton is installed, else the reference. There is no "cuda" kernel.

    Returns:
        (B, 3, h, w) with (h, w) = ``params.size``, ``params.dtype``, normalized by ``params.mean/std``,
        channels_last memory format when ``params.channels_last``.

    Checks: once, in the op (``torch.ops.fastssl.augment``); the kernels (C++ binding, Triton launcher) check
    only their arguments' shapes and dtypes and trust the values. The parameters' shapes and batch-wide
    settings are checked when they are made (:class:`~fastssl.ops.augment_params.AugmentParams`), their
    per-sample values against the batch by the op's body
    (:meth:`~fastssl.ops.augment_params.AugmentParams.validate`), at run time also in a torch.compile graph: on
    the CPU a bad value raises ``ValueError`` naming the sample; parameters on a GPU are checked by
    ``torch._assert_async`` (nothing read back: a device-side assert with the message, see
    :mod:`fastssl._validation`). The batch's checks and the resize's tap bound read its host copies
    (:class:`~fastssl.ragged.RaggedImages`).

    Example:
        >>> import torch
        >>> from fastssl import recipes
        >>> images = torch.randint(0, 256, (2, 3, 64, 80), dtype=torch.uint8)
        >>> params = recipes.draw(recipes.simclr(size=32), torch.arange(2), torch.tensor([[64, 80]] * 2), seed=0)
        >>> augment(images, params[0]).shape
        torch.Size([2, 3, 32, 32])
    """
    if not isinstance(params, AugmentParams):
        raise TypeError(f"params must be fastssl.ops.augment_params.AugmentParams, got {type(params).__name__}")
    batch = _as_ragged(images)
    device = batch.device
    resolved = AUGMENT.resolve(backend, device)
    p = params.to(device)
    factors = torch.stack((p.brightness, p.contrast, p.saturation, p.hue), 1).float()
    return _augment(batch.data, batch.offsets, batch.sizes, batch.host_offsets, batch.host_sizes,
                    list(batch.max_size), p.crop.to(torch.int64), p.flip.to(torch.bool), factors,
                    p.order.to(torch.int64), p.grayscale.to(torch.bool), p.blur_sigma.float(),
                    p.solarize.to(torch.bool), list(p.size), p.blur_kernel, [float(m) for m in p.mean],
                    [float(v) for v in p.std], p.dtype, p.channels_last, p.interpolation, p.may_blur,
                    p.may_change_contrast, resolved)


class Augment(torch.nn.Module):
    """Transform-style wrapper: draws each view's parameters from ``recipe`` and applies them.

    ``forward(images, ids, epoch)`` returns ``(views, params)``: a list with one (B, 3, h, w) tensor per
    view of the recipe, and the :class:`AugmentParams` that made each — the same for the same
    (seed, epoch, id) whatever the batch.

    Example:
        >>> import torch
        >>> from fastssl import recipes
        >>> transform = Augment(recipes.simclr(size=32), seed=0)
        >>> out, params = transform(torch.randint(0, 256, (4, 3, 48, 48), dtype=torch.uint8), torch.arange(4), epoch=0)
        >>> [v.shape for v in out]
        [torch.Size([4, 3, 32, 32]), torch.Size([4, 3, 32, 32])]
    """

    def __init__(self, recipe: Recipe, *, seed: int = 0, dtype: torch.dtype = torch.float32,
                 channels_last: bool = False, backend: str = "auto"):
        super().__init__()
        self.recipe, self.seed, self.dtype, self.channels_last, self.backend = recipe, seed, dtype, channels_last, backend

    def forward(self, images, ids: torch.Tensor, epoch: int = 0):
        batch = _as_ragged(images)  # packed once for all the views
        params = draw(self.recipe, ids, batch.host_sizes, seed=self.seed, epoch=epoch, dtype=self.dtype,
                      channels_last=self.channels_last)
        # Consecutive views with the same output settings go through one call on the batch repeated (no
        # copy): one launch, and the native kernels make the views of an image back to back while it is
        # in cache. Each view is a contiguous slice of that call's output.
        out = []
        for group in _same_settings(params):
            if len(group) == 1:
                out.append(augment(batch, group[0], backend=self.backend))
            else:
                views = augment(batch.repeat(len(group)), AugmentParams.cat(group), backend=self.backend)
                out += list(views.split(len(batch)))
        return out, params


def _same_settings(params: list[AugmentParams]) -> list[list[AugmentParams]]:
    """``params`` cut into runs of consecutive entries with equal batch-wide settings."""
    groups: list[list[AugmentParams]] = []
    for p in params:
        if groups and groups[-1][0].settings() == p.settings():
            groups[-1].append(p)
        else:
            groups.append([p])
    return groups
