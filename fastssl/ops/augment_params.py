"""The parameters of one augmented view: :class:`AugmentParams`, what ``fastssl.ops.augment`` is a function of.

``augment(images, params)`` is deterministic: everything a view depends on is here, per sample (crop box,
flip, color factors and their order, grayscale, blur sigma, solarize) or for the whole batch (output size
and dtype, blur kernel, normalization, interpolation). :mod:`fastssl.recipes` draws them from the published
recipes; the caller gets them back with the views.

Example:
    >>> import torch
    >>> params = AugmentParams(crop=torch.tensor([[0, 0, 30, 40]]), flip=torch.tensor([True]),
    ...                        brightness=torch.ones(1), contrast=torch.ones(1), saturation=torch.ones(1),
    ...                        hue=torch.zeros(1), order=torch.arange(4).view(1, 4), grayscale=torch.tensor([False]),
    ...                        blur_sigma=torch.zeros(1), solarize=torch.tensor([False]), size=(16, 16))
    >>> len(params), params.settings()["size"], params.settings()["interpolation"]
    (1, (16, 16), 'bilinear')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch

from .. import _validation

IMAGENET_MEAN = (0.485, 0.456, 0.406)  #: the default normalization: ImageNet's per-channel mean ...
IMAGENET_STD = (0.229, 0.224, 0.225)  #: ... and standard deviation, of values in [0, 1]
INTERPOLATIONS = ("bilinear", "bicubic")
COLOR_OPS = ("brightness", "contrast", "saturation", "hue")  #: the color ops, by their number in ``order``


@dataclass(frozen=True)
class AugmentParams:
    """The parameters of one view of a batch of B images (per-sample tensors first, batch-wide settings after).

    ``crop`` boxes are in source pixels of each image; color factors are torchvision's (1 = identity,
    hue in turns in [-0.5, 0.5]); ``order[b]`` lists the color ops (0 brightness, 1 contrast,
    2 saturation, 3 hue) in the order they are applied; ``blur_sigma`` 0 means no blur.
    """

    crop: torch.Tensor  #: (B, 4) int64: top, left, height, width
    flip: torch.Tensor  #: (B,) bool, horizontal flip
    brightness: torch.Tensor  #: (B,) float32 >= 0
    contrast: torch.Tensor  #: (B,) float32 >= 0
    saturation: torch.Tensor  #: (B,) float32 >= 0
    hue: torch.Tensor  #: (B,) float32 in [-0.5, 0.5]
    order: torch.Tensor  #: (B, 4) int64, a permutation of 0..3
    grayscale: torch.Tensor  #: (B,) bool
    blur_sigma: torch.Tensor  #: (B,) float32 >= 0 (0: no blur)
    solarize: torch.Tensor  #: (B,) bool (x >= 0.5 -> 1 - x)
    size: tuple[int, int] = (224, 224)  #: output (H, W)
    blur_kernel: int = 23  #: odd kernel size of the Gaussian blur
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    dtype: torch.dtype = torch.float32  #: float32, bfloat16 or float16
    channels_last: bool = False  #: output memory format
    interpolation: str = "bilinear"  #: or "bicubic"; antialiased when downscaling
    #: False promises that no sample blurs (``blur_sigma`` all 0; checked): a GPU then skips the blur passes
    #: without reading ``blur_sigma`` back (a recipe without blur sets it)
    may_blur: bool = True
    #: False promises ``contrast`` all 1 (checked): a GPU then skips the contrast pass
    may_change_contrast: bool = True

    def __post_init__(self):
        """The construction's checks: the per-sample tensors' shapes and the batch-wide settings (Python values
        and tensor metadata only, nothing read from a tensor); :meth:`validate` checks the values."""
        per_sample = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _SETTINGS}
        for name, value in per_sample.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"params.{name} must be a tensor, got {type(value).__name__}")
        B = self.crop.shape[0] if self.crop.dim() else 0
        for name, value in per_sample.items():
            rows = value.shape[0] if value.dim() else 0
            if rows != B:
                raise ValueError(f"params.{name} has {rows} rows, params.crop has {B}")
            expected = (B, 4) if name in ("crop", "order") else (B,)
            if tuple(value.shape) != expected:
                raise ValueError(f"params.{name} must have shape {expected}, got {tuple(value.shape)}")
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"params.size must be (H, W) >= 1, got {self.size}")
        if self.blur_kernel < 1 or self.blur_kernel % 2 == 0:
            raise ValueError(f"params.blur_kernel must be odd and >= 1, got {self.blur_kernel}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"params.interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if self.dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ValueError(f"params.dtype must be float32, bfloat16 or float16, got {self.dtype}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"params.mean and params.std must have 3 values each, got {self.mean}, {self.std}")
        if not all(math.isfinite(v) for v in (*self.mean, *self.std)):
            raise ValueError(f"params.mean and params.std must be finite, got {self.mean}, {self.std}")
        if min(self.std) <= 0:
            raise ValueError(f"params.std must be > 0, got {self.std}")

    def __len__(self) -> int:
        return self.crop.shape[0]

    def per_sample(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), torch.Tensor)}

    def to(self, device) -> "AugmentParams":
        """The parameters on ``device``; copies to a GPU do not wait for it (``non_blocking``)."""
        return replace(self, **{k: _moved(v, device) for k, v in self.per_sample().items()})

    def select(self, index) -> "AugmentParams":
        """The parameters of a subset of the samples (index: a slice, a list or a tensor of positions)."""
        return replace(self, **{k: v[index] for k, v in self.per_sample().items()})

    def settings(self) -> dict:
        """The batch-wide settings (everything but the per-sample tensors)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if not isinstance(value, torch.Tensor)}

    @staticmethod
    def cat(params: list["AugmentParams"]) -> "AugmentParams":
        """The samples of several parameter sets back to back; their batch-wide settings must agree."""
        if not params:
            raise ValueError("params is empty")
        for k, p in enumerate(params[1:], 1):
            if p.settings() != params[0].settings():
                raise ValueError(f"params[{k}] has other batch-wide settings than params[0]: {p.settings()} vs "
                                 f"{params[0].settings()}")
        tensors = {name: torch.cat([getattr(p, name) for p in params]) for name in params[0].per_sample()}
        return replace(params[0], **tensors)

    def validate(self, image_sizes: torch.Tensor) -> None:
        """Raises with the argument named when a per-sample value is out of its range or a crop does not fit
        its image, for images of ``image_sizes`` (B, 2) = (H, W). The op's body calls it once per call, before
        any backend, at run time also in a torch.compile graph: the kernels trust the values (they index memory
        with ``crop`` and ``order``).

        Parameters on the CPU are read at once (``ValueError`` naming the first bad sample); on a GPU the
        per-sample conditions go to ``torch._assert_async`` (:mod:`fastssl._validation`): nothing is read
        back. Always checked (FASTSSL_CHECK_FINITE does not apply), except while torch.compile traces.

        Example:
            >>> import torch
            >>> from fastssl import recipes
            >>> (params,) = recipes.draw(recipes.mae(size=8), torch.arange(1), torch.tensor([[30, 40]]), seed=0)
            >>> params.validate(torch.tensor([[30, 40]]))
            >>> params.validate(torch.tensor([[3, 4]]))
            Traceback (most recent call last):
            ...
            ValueError: params.crop[0] = [...] (top, left, height, width) lies outside image 0 of size [3, 4]
        """
        B = len(self)
        if image_sizes.shape[0] != B:
            raise ValueError(f"params describe {B} samples, the batch has {image_sizes.shape[0]} images")
        top, left, height, width = self.crop.to(torch.int64).unbind(1)
        H, W = _moved(image_sizes, self.crop.device).unbind(1)
        outside = (height < 1) | (width < 1) | (top < 0) | (left < 0) | (top + height > H) | (left + width > W)
        _check_samples(outside, "params.crop lies outside its image (top, left, height, width)",
                       lambda b: f"params.crop[{b}] = {self.crop[b].tolist()} (top, left, height, width) lies "
                                 f"outside image {b} of size {image_sizes[b].tolist()}")
        unordered = (self.order.sort(1).values != torch.arange(4, device=self.order.device)).any(1)
        _check_samples(unordered, "params.order rows must be permutations of 0..3",
                       lambda b: f"params.order rows must be permutations of 0..3, got params.order[{b}] = "
                                 f"{self.order[b].tolist()}")
        for name in (*COLOR_OPS, "blur_sigma"):
            value = getattr(self, name)
            _check_samples(~torch.isfinite(value), f"params.{name} must be finite (no NaN or inf)",
                           lambda b: f"params.{name} must be finite (no NaN or inf), got params.{name}[{b}] = "
                                     f"{float(value[b])}")
            if name != "hue":
                _check_samples(value < 0, f"params.{name} must be >= 0",
                               lambda b: f"params.{name} must be >= 0, got params.{name}[{b}] = {float(value[b])}")
        _check_samples(self.hue.abs() > 0.5, "params.hue must be in [-0.5, 0.5]",
                       lambda b: f"params.hue must be in [-0.5, 0.5], got params.hue[{b}] = {float(self.hue[b])}")
        if not self.may_blur:
            _check_samples(self.blur_sigma != 0, "params.may_blur is False but a sample blurs",
                           lambda b: f"params.may_blur is False but params.blur_sigma[{b}] = "
                                     f"{float(self.blur_sigma[b])}")
        if not self.may_change_contrast:
            _check_samples(self.contrast != 1, "params.may_change_contrast is False but a sample changes contrast",
                           lambda b: f"params.may_change_contrast is False but params.contrast[{b}] = "
                                     f"{float(self.contrast[b])}")


_SETTINGS = ("size", "blur_kernel", "mean", "std", "dtype", "channels_last", "interpolation", "may_blur",
             "may_change_contrast")


def _moved(t: torch.Tensor, device) -> torch.Tensor:
    """``t`` on ``device``; a copy to a GPU is queued without waiting (safe from pageable memory too)."""
    return t.to(device, non_blocking=torch.device(device).type == "cuda")


def _check_samples(bad: torch.Tensor, message: str, detail) -> None:
    """Raises ``ValueError(detail(b))`` for the first sample b where ``bad`` (B,) bool is set.

    The conventions of :mod:`fastssl._validation`'s checks: on a GPU (or under ``asynchronous_checks``) the
    condition goes to ``torch._assert_async`` with ``message`` instead (nothing read back); skipped while
    torch.compile traces. (A per-sample form of ``_validation.check_none_equal``: it names the sample.)
    """
    if bad.numel() == 0 or torch.compiler.is_compiling():
        return
    if _validation.checks_asynchronously(bad):
        _validation._assert_async(~bad.any(), message)
    elif bool(bad.any()):
        raise ValueError(detail(int(bad.to(torch.int8).argmax())))
