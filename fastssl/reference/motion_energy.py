"""Cheap motion signals of a video clip: frame-difference energy and the sum-of-differences encoding.

Clips are (B, T, C, H, W); frame t of clip b is ``clips[b, t]``. uint8 values are read as value / 255,
float values as they are. Both signals compare consecutive frames only, so they cost one read of each
frame; neither is optical flow.

* :func:`motion_energy` (B, T-1): both frames of each consecutive pair are box-averaged over
  ``pool`` x ``pool`` cells (H' = H // pool, W' = W // pool; the H % pool last rows and W % pool last
  columns are ignored), then energy[b, t] = mean over (c, y', x') of (A[b, t+1] - A[b, t])^2 — a cheap
  proxy for the magnitude of optical flow (large where much moves, 0 for a still clip; pooling makes it
  less sensitive to pixel noise and to sub-cell jitter).
* :func:`frame_difference_sum` (B, C, H, W): mean over t of |x[b, t+1] - x[b, t]|, the clip encoding of
  Odd-One-Out networks (Fernando et al. 2017). The differences are absolute: their signed sum telescopes
  to x[b, T-1] - x[b, 0] and would not see the order of the middle frames.

Computed in float64 for uint8 and float64 input (float32 otherwise). Output dtypes: motion_energy float32
(float64 for float64 input); frame_difference_sum float32 for uint8 input (values in [0, 1]), else the
input's dtype.

Example:
    >>> import torch
    >>> clip = torch.zeros(1, 3, 1, 2, 2)
    >>> clip[0, 1] = 1.0  # frames 0, 1, 2: black, white, black
    >>> motion_energy(clip).tolist()
    [[1.0, 1.0]]
    >>> frame_difference_sum(clip)[0, 0].tolist()
    [[1.0, 1.0], [1.0, 1.0]]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype in (torch.uint8, torch.float64) else torch.float32


def energy_dtype(dtype: torch.dtype) -> torch.dtype:
    """dtype of :func:`motion_energy`'s output for clips of ``dtype``."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def difference_dtype(dtype: torch.dtype) -> torch.dtype:
    """dtype of :func:`frame_difference_sum`'s output for clips of ``dtype``."""
    return torch.float32 if dtype == torch.uint8 else dtype


def frame_values(clips: torch.Tensor) -> torch.Tensor:
    """The clips' values in :func:`compute_dtype`: uint8 divided by 255, floats as they are."""
    x = clips.to(compute_dtype(clips.dtype))
    return x / 255 if clips.dtype == torch.uint8 else x


def motion_energy(clips: torch.Tensor, pool: int = 1) -> torch.Tensor:
    """(B, T, C, H, W) -> (B, T-1): mean squared difference of consecutive pool x pool box-averaged frames."""
    B, T, C, H, W = clips.shape
    pooled = F.avg_pool2d(frame_values(clips).reshape(B * T, C, H, W), pool).reshape(B, T, -1)
    return (pooled[:, 1:] - pooled[:, :-1]).square().mean(-1).to(energy_dtype(clips.dtype))


def frame_difference_sum(clips: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) -> (B, C, H, W): mean over t of |x[b, t+1] - x[b, t]|."""
    x = frame_values(clips)
    return (x[:, 1:] - x[:, :-1]).abs().mean(1).to(difference_dtype(clips.dtype)).contiguous()
