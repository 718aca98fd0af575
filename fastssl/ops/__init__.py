"""fastssl's accelerated ops. Each takes ``backend="auto"|"reference"|"cpp"|"cuda"|"triton"``."""

from .augment import Augment, augment
from .clip_augment import augment_clips, clip_params
from .colorization import (
    ColorizationTargets,
    ab_bins,
    annealed_mean,
    bin_histogram,
    colorization_targets,
    rebalance_weights,
    smoothed_prior,
)
from .counting import counting_tiles
from .inpainting import InpaintingBatch, inpainting_masks
from .jigsaw import JigsawTiles, hamming_permutations, jigsaw_tiles, jigsaw_unpermute
from .kmeans import KMeans, Whitening, kmeans_assign, kmeans_update, l2_normalize, pca_whiten
from .lab import lab_to_rgb, rgb_to_lab
from .mae import MaskedPatches, MaskedTokens, mae_masking, mae_masking_tokens, mae_unshuffle, patchify, unpatchify
from .motion_energy import frame_difference_sum, motion_energy
from .nt_xent import InfoNCELoss, NTXentLoss, QueueInfoNCELoss, info_nce_loss, nt_xent_loss, queue_info_nce_loss
from .relative_position import RelativePositionPairs, relative_position_pairs
from .rotations import rotations
from .spectrogram import log_mel_spectrogram, log_spectrogram, mel_filters

__all__ = [
    "Augment",
    "ColorizationTargets",
    "InfoNCELoss",
    "InpaintingBatch",
    "JigsawTiles",
    "KMeans",
    "MaskedPatches",
    "MaskedTokens",
    "NTXentLoss",
    "QueueInfoNCELoss",
    "RelativePositionPairs",
    "Whitening",
    "ab_bins",
    "annealed_mean",
    "augment",
    "augment_clips",
    "bin_histogram",
    "clip_params",
    "colorization_targets",
    "counting_tiles",
    "frame_difference_sum",
    "hamming_permutations",
    "info_nce_loss",
    "inpainting_masks",
    "jigsaw_tiles",
    "jigsaw_unpermute",
    "kmeans_assign",
    "kmeans_update",
    "l2_normalize",
    "lab_to_rgb",
    "log_mel_spectrogram",
    "log_spectrogram",
    "mae_masking",
    "mae_masking_tokens",
    "mae_unshuffle",
    "mel_filters",
    "motion_energy",
    "nt_xent_loss",
    "patchify",
    "pca_whiten",
    "queue_info_nce_loss",
    "rebalance_weights",
    "relative_position_pairs",
    "rgb_to_lab",
    "rotations",
    "smoothed_prior",
    "unpatchify",
]
