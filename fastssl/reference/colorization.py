"""Colorization targets of Zhang, Isola & Efros, "Colorful Image Colorization" (ECCV 2016).

- Network input: the L channel shifted to L - 50 (range [-50, 50]).
- ab targets at 1/``factor`` resolution (4 in the paper), either the mean ab of each factor x factor
  cell (``pool="mean"``, default) or its top-left pixel (``pool="stride"``, the paper's
  ``[::4, ::4]`` subsampling). Partial cells at the right/bottom edge use the pixels they have, so the
  target grid is ceil(H / factor) x ceil(W / factor).
- Quantized ab space: centers on a grid of spacing 10 (multiples of 10). A center is *in gamut* when
  at least one of the 256^3 8-bit sRGB colors has its ab nearest to that center (all 16.7M colors
  are converted in float64). This yields Q = 261 bins at spacing 10, against the paper's 313, whose
  exact rule is not published (its file is named pts_in_hull); for comparison the grid points inside
  the convex hull of the sRGB ab gamut number 230. Any (Q, 2) set of centers can be passed instead.
- Soft encoding: the k = 5 nearest bins (Euclidean in ab, ties to the lower bin index), weighted by
  exp(-d^2 / (2 sigma^2)), sigma = 5, normalized to sum 1.
- Class rebalancing: w ∝ ((1 - λ) p̃ + λ / Q)^-1 with λ = 0.5 and p̃ the empirical prior of nearest
  bins smoothed by a Gaussian of sigma 5 over ab, normalized so that E_p̃[w] = Σ p̃_q w_q = 1.
- Inference: the annealed mean, softmax(log p / T) expectation of the bin centers, T = 0.38.
"""

from __future__ import annotations

import functools

import torch

from .lab import rgb_to_lab

NUM_NEAREST = 5
SIGMA = 5.0
FACTOR = 4
REBALANCE_LAMBDA = 0.5
ANNEAL_T = 0.38


@functools.cache
def _gamut_bins(spacing: int) -> tuple[tuple[float, float], ...]:
    reach = 200 // spacing + 1  # |a|, |b| < 200 for every sRGB color
    side = 2 * reach + 1
    hist = torch.zeros(side * side, dtype=torch.int64)
    levels = torch.arange(256, dtype=torch.uint8)
    g, b = torch.meshgrid(levels, levels, indexing="ij")
    for red in range(256):
        rgb = torch.stack((torch.full_like(g, red), g, b)).view(1, 3, 256, 256)
        ab = rgb_to_lab(rgb)[0, 1:].reshape(2, -1)
        cell = torch.round(ab / spacing).to(torch.int64) + reach
        hist += torch.bincount(cell[0] * side + cell[1], minlength=side * side)
    occupied = torch.nonzero(hist.view(side, side) > 0) - reach
    return tuple((float(a * spacing), float(b * spacing)) for a, b in occupied.tolist())


def ab_bins(spacing: int = 10, device=None) -> torch.Tensor:
    """(Q, 2) float32 ab centers of the in-gamut bins, sorted by (a, b). Q = 261 for spacing 10.

    Computed once per process (about 4 s on 2 cores) by converting every 8-bit sRGB color to Lab.

    Example:
        >>> bins = ab_bins()
        >>> bins.shape
        torch.Size([261, 2])
    """
    if spacing <= 0:
        raise ValueError(f"spacing must be > 0, got {spacing}")
    return torch.tensor(_gamut_bins(int(spacing)), dtype=torch.float32, device=device)


def pool_ab(ab: torch.Tensor, factor: int, pool: str) -> torch.Tensor:
    """(B, 2, H, W) -> (B, 2, ceil(H/factor), ceil(W/factor)) by cell mean or top-left subsampling."""
    if pool == "stride":
        return ab[:, :, ::factor, ::factor]
    B, C, H, W = ab.shape
    h, w = -(-H // factor), -(-W // factor)
    padded = ab.new_zeros(B, C, h * factor, w * factor)
    padded[:, :, :H, :W] = ab
    counts = ab.new_zeros(1, 1, h * factor, w * factor)
    counts[:, :, :H, :W] = 1
    sums = padded.view(B, C, h, factor, w, factor).sum(dim=(3, 5))
    return sums / counts.view(1, 1, h, factor, w, factor).sum(dim=(3, 5))


def soft_encode(ab: torch.Tensor, bins: torch.Tensor, k: int = NUM_NEAREST, sigma: float = SIGMA):
    """ab (B, 2, h, w) -> (index (B, k, h, w) int64, weight (B, k, h, w)) of the k nearest bins, nearest first."""
    points = ab.movedim(1, -1).unsqueeze(-2)  # (B, h, w, 1, 2)
    d2 = ((points - bins.to(ab.dtype)) ** 2).sum(-1)  # (B, h, w, Q)
    d2_sorted, order = torch.sort(d2, dim=-1, stable=True)
    d2_k, index = d2_sorted[..., :k], order[..., :k]
    weight = torch.exp(-(d2_k - d2_k[..., :1]) / (2 * sigma**2))
    weight = weight / weight.sum(-1, keepdim=True)
    return index.movedim(-1, 1), weight.movedim(-1, 1)


def colorization_targets(images: torch.Tensor, bins: torch.Tensor, *, channels_last: bool = False,
                         factor: int = FACTOR, pool: str = "mean", k: int = NUM_NEAREST, sigma: float = SIGMA):
    """uint8 (B, 3, H, W) -> (L - 50 (B, 1, H, W), ab (B, 2, h, w), index (B, k, h, w), weight (B, k, h, w)).

    Computed in float64.
    """
    lab = rgb_to_lab(images, channels_last=channels_last)
    if channels_last:
        lab = lab.movedim(-1, 1)
    ab = pool_ab(lab[:, 1:], factor, pool)
    index, weight = soft_encode(ab, bins, k, sigma)
    return lab[:, :1] - 50, ab, index, weight


def bin_histogram(index: torch.Tensor, num_bins: int) -> torch.Tensor:
    """Counts (Q,) float64 of the nearest-bin indices ``index`` (any shape)."""
    return torch.bincount(index.reshape(-1), minlength=num_bins).to(torch.float64)


def smoothed_prior(counts: torch.Tensor, bins: torch.Tensor, sigma: float = SIGMA) -> torch.Tensor:
    """The empirical distribution of ``counts`` (Q,) smoothed by a Gaussian of ``sigma`` over the ab centers, sums to 1."""
    p = counts.to(torch.float64) / counts.sum()
    centers = bins.to(torch.float64)
    kernel = torch.exp(-torch.cdist(centers, centers) ** 2 / (2 * sigma**2))
    smoothed = kernel @ p
    return smoothed / smoothed.sum()


def rebalance_weights(prior: torch.Tensor, lam: float = REBALANCE_LAMBDA) -> torch.Tensor:
    """w ∝ ((1 - λ) p̃ + λ / Q)^-1, normalized so that Σ p̃_q w_q = 1. ``prior`` (Q,) sums to 1."""
    prior = prior.to(torch.float64)
    w = 1 / ((1 - lam) * prior + lam / prior.numel())
    return w / (prior * w).sum()


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor, temperature: float = ANNEAL_T) -> torch.Tensor:
    """Logits (B, Q, h, w) -> ab (B, 2, h, w): the mean of softmax(logits / T), the annealed mean of log-probabilities."""
    p = torch.softmax(logits / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", p, bins.to(p.dtype))
