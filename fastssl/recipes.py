"""The published augmentation recipes and the drawing of their per-sample parameters.

A :class:`Recipe` lists the views of a method (:func:`simclr`, :func:`byol`, :func:`mocov2`, :func:`mae`,
:func:`multicrop`); :func:`draw` turns it into one :class:`~fastssl.ops.augment_params.AugmentParams` per view.
The numbers come from :mod:`fastssl.random`, keyed by (seed, epoch, sample id, view, slot), so the same sample
gets the same view on any backend, batch size, worker count or device — and the caller gets the parameters back.

Distributions (torchvision's sampling rules, per sample):

- random resized crop: up to 10 tries of area ~ U(scale) · H·W and log-aspect ~ U(log ratio),
  w = round(sqrt(area · aspect)), h = round(sqrt(area / aspect)), accepted when it fits, position
  uniform; otherwise the center crop clamped to the ratio range;
- flip with p = 0.5;
- color jitter with probability p: brightness, contrast, saturation ~ U(max(0, 1 - x), 1 + x),
  hue ~ U(-x, x), applied in a uniformly random order (identity factors when not applied);
- grayscale with probability p; Gaussian blur with probability p, sigma ~ U(0.1, 2.0), kernel
  about 10% of the output side (odd: 23 at 224); solarize (threshold 0.5) with probability p.

Recipes, as published: SimCLR (strength s), BYOL (asymmetric blur / solarize per view),
MoCo v2, MAE (crop 0.2–1 + flip), multi-crop (2 x 224 + k x 96).

Example:
    >>> import torch
    >>> params = draw(simclr(size=32), torch.arange(4), torch.tensor([[48, 64]] * 4), seed=0, epoch=1)
    >>> len(params), params[0].size, params[0].crop.shape
    (2, (32, 32), torch.Size([4, 4]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from . import random
from .ops.augment_params import IMAGENET_MEAN, IMAGENET_STD, AugmentParams

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Recipe", "ViewRecipe", "byol", "draw", "draw_view", "mae", "mocov2",
           "multicrop", "simclr"]


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
    """SwAV's multi-crop: global crops of scale (0.14, 1), local crops of scale (0.05, 0.14), SimCLR color."""
    g = ViewRecipe(size=global_size, scale=(0.14, 1.0))
    local = ViewRecipe(size=local_size, scale=(0.05, 0.14))
    return Recipe(f"multicrop({global_views}x{global_size}+{local_views}x{local_size})",
                  (g,) * global_views + (local,) * local_views)


_CROP_TRIES = 10  #: RandomResizedCrop's tries, 4 slots each (area, log-ratio, top, left) from AUGMENT_SLOTS.crop
_SLOTS = random.AUGMENT_SLOTS  # where each parameter of a view takes its numbers (fastssl.random.TAKEN lists them)


def _crop_boxes(u: torch.Tensor, sizes: torch.Tensor, scale, ratio) -> torch.Tensor:
    """torchvision's RandomResizedCrop.get_params, vectorized over samples; u: (B, 40) uniforms (float64)."""
    H, W = sizes[:, 0:1].double(), sizes[:, 1:2].double()
    tries = u[:, _SLOTS.crop:_SLOTS.crop + 4 * _CROP_TRIES].view(-1, _CROP_TRIES, 4)
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
    # Fallback: the center crop with the aspect ratio clamped into the range.
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
    u = random.uniform(ids, _SLOTS.count, seed=seed, epoch=epoch, view=view_index, dtype=torch.float64)
    sizes = torch.as_tensor(image_sizes, device=ids.device).to(torch.int64)
    crop = _crop_boxes(u, sizes, view.scale, view.ratio)
    jitter_on = u[:, _SLOTS.jitter_apply] < view.jitter_p
    factors = []
    for k, strength in enumerate(view.jitter):
        x = u[:, _SLOTS.factors + k]
        if k < 3:
            lo, hi = max(0.0, 1 - strength), 1 + strength
            value, identity = lo + (hi - lo) * x, 1.0
        else:
            value, identity = -strength + 2 * strength * x, 0.0
        factors.append(torch.where(jitter_on, value, torch.full_like(value, identity)).float())
    order = torch.argsort(u[:, _SLOTS.order:_SLOTS.order + 4], dim=1)  # a uniformly random permutation
    blur_on = u[:, _SLOTS.blur_apply] < view.blur_p
    sigma = view.blur_sigma[0] + (view.blur_sigma[1] - view.blur_sigma[0]) * u[:, _SLOTS.sigma]
    return AugmentParams(
        crop=crop, flip=u[:, _SLOTS.flip] < view.flip_p, brightness=factors[0], contrast=factors[1],
        saturation=factors[2], hue=factors[3], order=order, grayscale=u[:, _SLOTS.gray] < view.grayscale_p,
        blur_sigma=torch.where(blur_on, sigma, torch.zeros_like(sigma)).float(),
        solarize=u[:, _SLOTS.solarize] < view.solarize_p, size=(view.size, view.size), blur_kernel=view.blur_kernel,
        mean=view.mean, std=view.std, dtype=dtype, channels_last=channels_last, interpolation=view.interpolation,
        may_blur=view.blur_p > 0 and view.blur_sigma[1] > 0,
        may_change_contrast=view.jitter_p > 0 and view.jitter[1] > 0)


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
