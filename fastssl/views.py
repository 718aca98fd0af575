"""Per-sample augmentation parameters and the published recipes that draw them.

:class:`AugmentParams` holds everything one view of a batch depends on; ``fastssl.ops.augment`` is a
deterministic function of the images and these parameters. The recipes draw them from
:mod:`fastssl.random`, keyed by (seed, epoch, sample id, view, slot), so the same sample gets the same
view on any backend, batch size, worker count or device — and the caller gets the parameters back.

Distributions (torchvision's sampling rules, per sample):

- random resized crop: up to 10 tries of area ~ U(scale) · H·W and log-aspect ~ U(log ratio),
  w = round(sqrt(area · aspect)), h = round(sqrt(area / aspect)), accepted when it fits, position
  uniform; otherwise the centre crop clamped to the ratio range;
- flip with p = 0.5;
- colour jitter with probability p: brightness, contrast, saturation ~ U(max(0, 1 - x), 1 + x),
  hue ~ U(-x, x), applied in a uniformly random order (identity factors when not applied);
- grayscale with probability p; Gaussian blur with probability p, sigma ~ U(0.1, 2.0), kernel
  about 10% of the output side (odd: 23 at 224); solarize (threshold 0.5) with probability p.

Recipes, as published: SimCLR (strength s), BYOL (asymmetric blur / solarize per view),
MoCo v2, MAE (crop 0.2–1 + flip), multi-crop (2 x 224 + k x 96).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import torch

from . import _validation, random

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
COLOUR_OPS = ("brightness", "contrast", "saturation", "hue")
INTERPOLATIONS = ("bilinear", "bicubic")


@dataclass(frozen=True)
class AugmentParams:
    """The parameters of one view of a batch of B images (per-sample tensors first, batch-wide settings after).

    ``crop`` boxes are in source pixels of each image; colour factors are torchvision's (1 = identity,
    hue in turns in [-0.5, 0.5]); ``order[b]`` lists the colour ops (0 brightness, 1 contrast,
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
        """Raises with the argument named when the parameters do not fit images of ``image_sizes`` (B, 2) = (H, W).

        Parameters on the CPU are read at once (``ValueError`` naming the first bad sample); on a GPU the
        per-sample conditions go to ``torch._assert_async`` (:mod:`fastssl._validation`): nothing is read back.
        """
        B = len(self)
        for name, value in self.per_sample().items():
            if value.shape[0] != B:
                raise ValueError(f"params.{name} has {value.shape[0]} rows, params.crop has {B}")
        if image_sizes.shape[0] != B:
            raise ValueError(f"params describe {B} samples, the batch has {image_sizes.shape[0]} images")
        top, left, height, width = self.crop.to(torch.int64).unbind(1)
        H, W = _moved(image_sizes, self.crop.device).unbind(1)
        outside = (height < 1) | (width < 1) | (top < 0) | (left < 0) | (top + height > H) | (left + width > W)
        _refuse(outside, "params.crop lies outside its image (top, left, height, width)",
                lambda b: f"params.crop[{b}] = {self.crop[b].tolist()} (top, left, height, width) lies outside "
                          f"image {b} of size {image_sizes[b].tolist()}")
        unordered = (self.order.sort(1).values != torch.arange(4, device=self.order.device)).any(1)
        _refuse(unordered, "params.order rows must be permutations of 0..3",
                lambda b: f"params.order rows must be permutations of 0..3, got params.order[{b}] = "
                          f"{self.order[b].tolist()}")
        for name in ("brightness", "contrast", "saturation", "hue", "blur_sigma"):
            value = getattr(self, name)
            _refuse(~torch.isfinite(value), f"params.{name} must be finite (no NaN or inf)",
                    lambda b: f"params.{name} must be finite (no NaN or inf), got params.{name}[{b}] = "
                              f"{float(value[b])}")
            if name != "hue":
                _refuse(value < 0, f"params.{name} must be >= 0",
                        lambda b: f"params.{name} must be >= 0, got params.{name}[{b}] = {float(value[b])}")
        _refuse(self.hue.abs() > 0.5, "params.hue must be in [-0.5, 0.5]",
                lambda b: f"params.hue must be in [-0.5, 0.5], got params.hue[{b}] = {float(self.hue[b])}")
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


def _moved(t: torch.Tensor, device) -> torch.Tensor:
    """``t`` on ``device``; a copy to a GPU is queued without waiting (safe from pageable memory too)."""
    return t.to(device, non_blocking=torch.device(device).type == "cuda")


def _refuse(bad: torch.Tensor, message: str, detail) -> None:
    """Raises ``ValueError(detail(b))`` for the first b where ``bad`` (B,) bool is set; on a GPU (or under
    ``asynchronous_checks``) ``message`` goes to ``torch._assert_async`` instead: nothing is read back."""
    if _validation.checks_asynchronously(bad):
        _validation._assert_async(~bad.any(), message)
    elif bool(bad.any()):
        raise ValueError(detail(int(bad.to(torch.int8).argmax())))


@dataclass(frozen=True)
class ViewRecipe:
    """How one view is drawn: the published probabilities and ranges."""

    size: int = 224
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.2)  #: brightness, contrast, saturation, hue
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"

    @property
    def blur_kernel(self) -> int:
        """About 10% of the side, odd (23 at 224), as in SimCLR."""
        k = int(0.1 * self.size)
        return k + 1 if k % 2 == 0 else k


@dataclass(frozen=True)
class Recipe:
    """A list of views; view v of sample i is drawn with key (seed, epoch, i, v)."""

    name: str
    views: tuple[ViewRecipe, ...] = field(default_factory=tuple)


def simclr(strength: float = 1.0, size: int = 224) -> Recipe:
    s = strength
    view = ViewRecipe(size=size, jitter=(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s))
    return Recipe(f"simclr(s={s})", (view, view))


def byol(size: int = 224) -> Recipe:
    base = ViewRecipe(size=size, jitter=(0.4, 0.4, 0.2, 0.1))
    return Recipe("byol", (replace(base, blur_p=1.0, solarize_p=0.0), replace(base, blur_p=0.1, solarize_p=0.2)))


def mocov2(size: int = 224) -> Recipe:
    view = ViewRecipe(size=size, scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.4, 0.1))
    return Recipe("mocov2", (view, view))


def mae(size: int = 224) -> Recipe:
    view = ViewRecipe(size=size, scale=(0.2, 1.0), jitter=(0.0, 0.0, 0.0, 0.0), jitter_p=0.0, grayscale_p=0.0,
                      blur_p=0.0, interpolation="bicubic")
    return Recipe("mae", (view,))


def multicrop(global_views: int = 2, local_views: int = 6, global_size: int = 224, local_size: int = 96) -> Recipe:
    """SwAV's multi-crop: global crops of scale (0.14, 1), local crops of scale (0.05, 0.14), SimCLR colour."""
    g = ViewRecipe(size=global_size, scale=(0.14, 1.0))
    local = ViewRecipe(size=local_size, scale=(0.05, 0.14))
    return Recipe(f"multicrop({global_views}x{global_size}+{local_views}x{local_size})",
                  (g,) * global_views + (local,) * local_views)


# Slots of the counter-based generator used by one view (each parameter its own slots).
_CROP_TRIES = 10
_SLOT_CROP = 0  # 4 per try: area, log-ratio, top, left
_SLOT_FLIP = 40
_SLOT_JITTER_APPLY = 41
_SLOT_FACTORS = 42  # 4: brightness, contrast, saturation, hue
_SLOT_ORDER = 46  # 4 keys sorted into the order
_SLOT_GRAY = 50
_SLOT_BLUR_APPLY = 51
_SLOT_SIGMA = 52
_SLOT_SOLARIZE = 53
_SLOTS = 54


def _crop_boxes(u: torch.Tensor, sizes: torch.Tensor, scale, ratio) -> torch.Tensor:
    """torchvision's RandomResizedCrop.get_params, vectorised over samples; u: (B, 40) uniforms (float64)."""
    H, W = sizes[:, 0:1].double(), sizes[:, 1:2].double()
    tries = u[:, :4 * _CROP_TRIES].view(-1, _CROP_TRIES, 4)
    area = H * W * (scale[0] + (scale[1] - scale[0]) * tries[..., 0])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * tries[..., 1])
    w = torch.round(torch.sqrt(area * aspect))
    h = torch.round(torch.sqrt(area / aspect))
    fits = (w > 0) & (w <= W) & (h > 0) & (h <= H)
    top = torch.floor(tries[..., 2] * (H - h + 1))
    left = torch.floor(tries[..., 3] * (W - w + 1))
    first = torch.argmax(fits.to(torch.int8), dim=1, keepdim=True)  # first fitting try (0 if none fits)
    pick = lambda t: t.gather(1, first).squeeze(1)  # noqa: E731
    # Fallback: the centre crop with the aspect ratio clamped into the range.
    Hs, Ws = H.squeeze(1), W.squeeze(1)
    in_ratio = Ws / Hs
    fw = torch.where(in_ratio < ratio[0], Ws, torch.where(in_ratio > ratio[1], torch.round(Hs * ratio[1]), Ws))
    fh = torch.where(in_ratio < ratio[0], torch.round(Ws / ratio[0]), Hs)
    fallback = torch.stack((torch.div(Hs - fh, 2, rounding_mode="floor"), torch.div(Ws - fw, 2, rounding_mode="floor"),
                            fh, fw), dim=1)
    chosen = torch.stack((pick(top), pick(left), pick(h), pick(w)), dim=1)
    any_fit = fits.any(1, keepdim=True)
    return torch.where(any_fit, chosen, fallback).to(torch.int64)


def draw_view(view: ViewRecipe, ids: torch.Tensor, image_sizes: torch.Tensor, *, seed: int, epoch: int,
              view_index, dtype: torch.dtype = torch.float32, channels_last: bool = False) -> AugmentParams:
    """The parameters of one view for samples ``ids`` (B,) of sizes (B, 2) = (H, W), from (seed, epoch, id, view_index).

    ``view_index`` is an int, or a (B,) integer tensor with each row's own view index (rows of several views
    drawn from the same :class:`ViewRecipe` at once).
    """
    ids = torch.as_tensor(ids)
    u = random.uniform(ids, _SLOTS, seed=seed, epoch=epoch, view=view_index, dtype=torch.float64)
    sizes = torch.as_tensor(image_sizes, device=ids.device).to(torch.int64)
    crop = _crop_boxes(u, sizes, view.scale, view.ratio)
    jitter_on = u[:, _SLOT_JITTER_APPLY] < view.jitter_p
    factors = []
    for k, strength in enumerate(view.jitter):
        x = u[:, _SLOT_FACTORS + k]
        if k < 3:
            lo, hi = max(0.0, 1 - strength), 1 + strength
            value, identity = lo + (hi - lo) * x, 1.0
        else:
            value, identity = -strength + 2 * strength * x, 0.0
        factors.append(torch.where(jitter_on, value, torch.full_like(value, identity)).float())
    order = torch.argsort(u[:, _SLOT_ORDER:_SLOT_ORDER + 4], dim=1)  # a uniformly random permutation
    blur_on = u[:, _SLOT_BLUR_APPLY] < view.blur_p
    sigma = view.blur_sigma[0] + (view.blur_sigma[1] - view.blur_sigma[0]) * u[:, _SLOT_SIGMA]
    return AugmentParams(
        crop=crop, flip=u[:, _SLOT_FLIP] < view.flip_p, brightness=factors[0], contrast=factors[1],
        saturation=factors[2], hue=factors[3], order=order, grayscale=u[:, _SLOT_GRAY] < view.grayscale_p,
        blur_sigma=torch.where(blur_on, sigma, torch.zeros_like(sigma)).float(),
        solarize=u[:, _SLOT_SOLARIZE] < view.solarize_p, size=(view.size, view.size), blur_kernel=view.blur_kernel,
        mean=view.mean, std=view.std, dtype=dtype, channels_last=channels_last, interpolation=view.interpolation)


def draw(recipe: Recipe, ids, image_sizes, *, seed: int, epoch: int = 0, dtype: torch.dtype = torch.float32,
         channels_last: bool = False) -> list[AugmentParams]:
    """One :class:`AugmentParams` per view of ``recipe`` for samples ``ids`` (B,) with sizes (B, 2) = (H, W).

    Example:
        >>> import torch
        >>> params = draw(simclr(), torch.arange(4), torch.tensor([[375, 500]] * 4), seed=0, epoch=1)
        >>> len(params), params[0].crop.shape, params[0].size
        (2, torch.Size([4, 4]), (224, 224))
    """
    ids = torch.as_tensor(ids)
    image_sizes = torch.as_tensor(image_sizes)
    B, params, first = len(ids), [], 0
    # Consecutive views drawn from equal recipes (SimCLR's two, multi-crop's locals) go through one draw on the
    # batch repeated, each row keyed by its own view index: the same numbers, a fraction of the tensor ops.
    for view, count in _runs(recipe.views):
        if count == 1:
            params.append(draw_view(view, ids, image_sizes, seed=seed, epoch=epoch, view_index=first, dtype=dtype,
                                    channels_last=channels_last))
        else:
            index = torch.arange(first, first + count, device=ids.device).view(count, 1).expand(count, B).reshape(-1)
            rows = draw_view(view, ids.repeat(count), image_sizes.repeat(count, 1), seed=seed, epoch=epoch,
                             view_index=index, dtype=dtype, channels_last=channels_last)
            params += [rows.select(slice(k * B, (k + 1) * B)) for k in range(count)]
        first += count
    return params


def _runs(items: tuple) -> list[tuple]:
    """(item, count) for each run of consecutive equal items."""
    runs: list[list] = []
    for item in items:
        if runs and runs[-1][0] == item:
            runs[-1][1] += 1
        else:
            runs.append([item, 1])
    return [tuple(run) for run in runs]
