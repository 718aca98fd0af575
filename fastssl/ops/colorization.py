"""Colorization targets (Zhang et al. 2016) in one fused pass over uint8 pixels.

The conventions — bins, soft encoding, rebalancing, annealed mean — are specified in
:mod:`fastssl.reference.colorization`; the helpers here are re-exported from there.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .. import _validation as v
from ..backends import OpBackends, lazy, native
from ..reference.colorization import (  # noqa: F401  (public helpers)
    ANNEAL_T,
    FACTOR,
    NUM_NEAREST,
    REBALANCE_LAMBDA,
    SIGMA,
    ab_bins,
    annealed_mean,
    bin_histogram,
    rebalance_weights,
    smoothed_prior,
)
from ..reference.colorization import (  # noqa: F401
    colorization_targets as _reference_targets,
)

POOLS = ("mean", "stride")
MAX_K = 8


class ColorizationTargets(NamedTuple):
    """What :func:`colorization_targets` returns (B images of H x W, targets at h x w = ceil(H/f) x ceil(W/f))."""

    l_input: torch.Tensor  #: (B, 1, H, W) float32, L - 50 in [-50, 50]: the network input
    ab: torch.Tensor  #: (B, 2, h, w) float32, the pooled ab of each cell
    bin_index: torch.Tensor  #: (B, k, h, w) int64, the k nearest bins, nearest first
    bin_weight: torch.Tensor  #: (B, k, h, w) float32, soft-encoding weights, summing to 1 over k
    rebalance: torch.Tensor  #: (B, h, w) float32, class-rebalancing weight of the nearest bin (1 without weights)

    @property
    def index(self) -> torch.Tensor:
        """(B, h, w) int64: the hard target, the nearest bin."""
        return self.bin_index[:, 0]

    def soft(self, num_bins: int) -> torch.Tensor:
        """(B, Q, h, w) float32: the dense soft-encoded distribution over ``num_bins`` = Q bins."""
        B, _, h, w = self.bin_index.shape
        dense = self.bin_weight.new_zeros(B, num_bins, h, w)
        return dense.scatter_(1, self.bin_index, self.bin_weight)


COLORIZATION_TARGETS = OpBackends(
    "colorization_targets",
    {
        "reference": lambda images, bins, *args: _reference_call(images, bins, *args),
        "cpp": native("colorization_targets"),
        "cuda": native("colorization_targets"),
        "triton": lazy("fastssl.triton.colorization", "colorization_targets"),
    },
)


def _reference_call(images, bins, channels_last, factor, mean_pool, k, sigma):
    l_input, ab, index, weight = _reference_targets(images, bins, channels_last=channels_last, factor=factor,
                                                    pool="mean" if mean_pool else "stride", k=k, sigma=sigma)
    return l_input.float().contiguous(), ab.float().contiguous(), index.contiguous(), weight.float().contiguous()


@torch.library.custom_op("fastssl::colorization_targets", mutates_args=())
def _colorization_targets(images: torch.Tensor, bins: torch.Tensor, channels_last: bool, factor: int,
                          mean_pool: bool, k: int, sigma: float, backend: str
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return tuple(COLORIZATION_TARGETS(backend, images, bins, channels_last, factor, mean_pool, k, sigma))


@_colorization_targets.register_fake
def _(images, bins, channels_last, factor, mean_pool, k, sigma, backend):
    B = images.shape[0]
    H, W = (images.shape[1], images.shape[2]) if channels_last else (images.shape[2], images.shape[3])
    h, w = -(-H // factor), -(-W // factor)
    f32 = dict(dtype=torch.float32, device=images.device)
    return (images.new_empty(B, 1, H, W, **f32), images.new_empty(B, 2, h, w, **f32),
            images.new_empty(B, k, h, w, dtype=torch.int64, device=images.device),
            images.new_empty(B, k, h, w, **f32))


def colorization_targets(images: torch.Tensor, *, bins: torch.Tensor | None = None,
                         class_weights: torch.Tensor | None = None, channels_last: bool = False,
                         factor: int = FACTOR, pool: str = "mean", k: int = NUM_NEAREST, sigma: float = SIGMA,
                         backend: str = "auto") -> ColorizationTargets:
    """Network input and ab targets of colorization (Zhang et al. 2016), in one pass over the pixels.

    Each output cell reads its ``factor`` x ``factor`` pixels once: converts them to Lab (uint8
    linearization by a 256-entry table), writes L - 50 at full resolution, pools ab, and soft-encodes
    the pooled ab over its ``k`` nearest bins with a Gaussian of ``sigma``.

    Args:
        images: (B, 3, H, W) uint8 — or (B, H, W, 3) with ``channels_last=True``. Any strides.
        bins: (Q, 2) ab bin centers; default :func:`ab_bins` (Q = 261 in-gamut bins, spacing 10).
        class_weights: (Q,) rebalancing weight of each bin, e.g.
            ``rebalance_weights(smoothed_prior(counts, bins))``; default all ones.
        factor: downsampling of the ab targets (4 in the paper).
        pool: "mean" (mean ab of each cell) or "stride" (its top-left pixel, the paper's ``[::4, ::4]``).
        k: nearest bins kept, 1..8 (5 in the paper; 1 gives the hard bin index only).
        sigma: Gaussian of the soft encoding, in ab units (5 in the paper).
        backend: "auto" | "reference" | "cpp" | "cuda" | "triton".

    Returns:
        :class:`ColorizationTargets` with ``l_input`` (B, 1, H, W), ``ab`` (B, 2, h, w), ``bin_index``
        and ``bin_weight`` (B, k, h, w), ``rebalance`` (B, h, w); ``.soft(Q)`` gives the dense
        (B, Q, h, w) distribution, ``.index`` the (B, h, w) hard target.

    Example:
        >>> import torch, fastssl
        >>> images = torch.randint(0, 256, (2, 3, 32, 48), dtype=torch.uint8)
        >>> bins = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [-10.0, 0.0], [0.0, -10.0]])  # Q = 5
        >>> t = fastssl.ops.colorization_targets(images, bins=bins, k=2)
        >>> t.l_input.shape, t.bin_index.shape, t.soft(5).shape
        (torch.Size([2, 1, 32, 48]), torch.Size([2, 2, 8, 12]), torch.Size([2, 5, 8, 12]))
    """
    v.check_rgb(images, "images", channels_last, (torch.uint8,), min_dim=4, max_dim=4)
    bins = ab_bins(device=images.device) if bins is None else v.check_tensor(bins, "bins")
    if bins.dim() != 2 or bins.shape[1] != 2 or bins.shape[0] == 0:
        raise ValueError(f"bins must have shape (Q, 2) with Q > 0, got {tuple(bins.shape)}")
    tensors = {"images": images, "bins": bins}
    if class_weights is not None:
        v.check_tensor(class_weights, "class_weights")
        if class_weights.shape != (bins.shape[0],):
            raise ValueError(f"class_weights must have shape (Q,) = ({bins.shape[0]},), got {tuple(class_weights.shape)}")
        tensors["class_weights"] = class_weights
    v.check_same_device(tensors)
    v.check_finite(bins, "bins")
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    v.check_int(factor, "factor", 1)
    if not isinstance(k, int) or not 1 <= k <= min(MAX_K, bins.shape[0]):
        raise ValueError(f"k must be an integer in [1, min({MAX_K}, Q={bins.shape[0]})], got {k!r}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    bins = bins.to(torch.float32).contiguous()
    chosen = COLORIZATION_TARGETS.resolve(backend, images.device)
    l_input, ab, index, weight = _colorization_targets(images, bins, channels_last, factor, pool == "mean", k,
                                                       float(sigma), chosen)
    nearest = index[:, 0]
    rebalance = (class_weights.to(torch.float32)[nearest] if class_weights is not None
                 else torch.ones(nearest.shape, dtype=torch.float32, device=images.device))
    return ColorizationTargets(l_input, ab, index, weight, rebalance)
