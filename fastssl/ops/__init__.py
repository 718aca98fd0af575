"""fastssl's accelerated ops. Each takes ``backend="auto"|"reference"|"cpp"|"cuda"|"triton"``."""

from .colorization import (
    ColorizationTargets,
    ab_bins,
    annealed_mean,
    bin_histogram,
    colorization_targets,
    rebalance_weights,
    smoothed_prior,
)
from .lab import lab_to_rgb, rgb_to_lab
from .nt_xent import InfoNCELoss, NTXentLoss, info_nce_loss, nt_xent_loss

__all__ = [
    "InfoNCELoss",
    "NTXentLoss",
    "info_nce_loss",
    "nt_xent_loss",
    "ColorizationTargets",
    "ab_bins",
    "annealed_mean",
    "bin_histogram",
    "colorization_targets",
    "lab_to_rgb",
    "rebalance_weights",
    "rgb_to_lab",
    "smoothed_prior",
]
