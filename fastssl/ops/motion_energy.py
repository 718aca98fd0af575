"""Cheap motion signals of video clips, in one read of each frame: frame-difference energy and the
sum-of-differences encoding of Odd-One-Out networks.

Definitions (pooling, means, dtypes) are specified in :mod:`fastssl.reference.motion_energy`. Neither
op has a gradient: their inputs are decoded data.

Strides: the triton backend reads any strides as they are; the cpp backend reads any strides whose
last dimension is contiguous and copies the clips first otherwise (e.g. ``clips[..., ::2]``), and works
on a float32 copy of float16/bfloat16 clips.
"""

from __future__ import annotations

import torch

from .. import _validation as v
from .._dtypes import kernel_dtypes, triton_reads
from ..backends import OpBackends, lazy, native
from ..reference import motion_energy as reference
from ..reference.motion_energy import difference_dtype

DTYPES = (torch.uint8, torch.float32, torch.float16, torch.bfloat16)
CPP_READS = (torch.uint8, torch.float32)  # and write float32: float16/bfloat16 go through float32 (and back)
TRITON_READS = triton_reads(DTYPES)

MOTION_ENERGY = OpBackends(
    "motion_energy",
    {
        "reference": reference.motion_energy,
        "cpp": kernel_dtypes(native("motion_energy"), reads=CPP_READS, cast_back=False),
        "triton": kernel_dtypes(lazy("fastssl.triton.motion_energy", "motion_energy"), reads=TRITON_READS,
                                cast_back=False),
    },
)

FRAME_DIFFERENCE_SUM = OpBackends(
    "frame_difference_sum",
    {
        "reference": reference.frame_difference_sum,
        "cpp": kernel_dtypes(native("frame_difference_sum"), reads=CPP_READS),
        "triton": kernel_dtypes(lazy("fastssl.triton.motion_energy", "frame_difference_sum"), reads=TRITON_READS),
    },
)


@torch.library.custom_op("fastssl::motion_energy", mutates_args=())
def _motion_energy(clips: torch.Tensor, pool: int, backend: str) -> torch.Tensor:
    return MOTION_ENERGY(backend, clips, pool)


@_motion_energy.register_fake
def _(clips, pool, backend):
    return clips.new_empty(clips.shape[0], clips.shape[1] - 1, dtype=torch.float32)


@torch.library.custom_op("fastssl::frame_difference_sum", mutates_args=())
def _frame_difference_sum(clips: torch.Tensor, backend: str) -> torch.Tensor:
    return FRAME_DIFFERENCE_SUM(backend, clips)


@_frame_difference_sum.register_fake
def _(clips, backend):
    B, _, C, H, W = clips.shape
    return clips.new_empty(B, C, H, W, dtype=difference_dtype(clips.dtype))


def _check_clips(clips) -> None:
    """Shape and dtype of (B, T, C, H, W) clips, T >= 2: one-line ValueErrors naming ``clips`` (no value read)."""
    v.check_tensor(clips, "clips")
    if clips.dim() != 5:
        raise ValueError(f"clips must have shape (B, T, C, H, W), got {tuple(clips.shape)}")
    if clips.shape[1] < 2:
        raise ValueError(f"clips must have T >= 2 frames (dimension 1 of (B, T, C, H, W)), got {clips.shape[1]}")
    if clips.numel() == 0:
        raise ValueError(f"clips is empty (shape {tuple(clips.shape)})")
    if clips.dtype not in DTYPES:
        raise ValueError(f"clips must have dtype uint8, float32, float16 or bfloat16, got "
                         f"{str(clips.dtype).replace('torch.', '')}")


def motion_energy(clips: torch.Tensor, *, pool: int = 1, backend: str = "auto") -> torch.Tensor:
    """Frame-difference energy of each consecutive frame pair: a cheap proxy for optical-flow magnitude.

    Both frames of a pair are box-averaged over ``pool`` x ``pool`` cells (H // pool x W // pool cells; the
    remainder rows and columns are ignored), then energy[b, t] = mean over (c, y', x') of
    (A[b, t+1] - A[b, t])^2. One read of each frame (the pooled frames are never stored), float32 sums.
    The values are not checked: NaN in the clips propagates to the energy of the pairs that read it.

    Args:
        clips: (B, T, C, H, W), T >= 2; uint8 (read as value / 255) or float32/float16/bfloat16 (values as
            they are); any strides.
        pool: side of the averaging cells, in [1, min(H, W)].
        backend: "auto" | "reference" | "cpp" | "triton".

    Returns:
        (B, T - 1) float32, >= 0: energy[b, t] compares frames t and t + 1 of clip b; for values in [0, 1]
        it lies in [0, 1].

    Example:
        >>> import torch, fastssl
        >>> clips = torch.zeros(1, 3, 1, 4, 4, dtype=torch.uint8)
        >>> clips[0, 1, :, :2, :2] = 255  # frame 1: a white 2 x 2 square in the top-left corner
        >>> fastssl.ops.motion_energy(clips).tolist()  # 4 of 16 pixels change by 1
        [[0.25, 0.25]]
        >>> fastssl.ops.motion_energy(clips, pool=4).tolist()  # one cell, whose mean changes by 1/4
        [[0.0625, 0.0625]]
    """
    _check_clips(clips)
    H, W = clips.shape[-2:]
    v.check_int(pool, "pool", 1)
    if pool > min(H, W):
        raise ValueError(f"pool must be <= min(H, W) = {min(H, W)} (one cell at least), got {pool}")
    return _motion_energy(clips, pool, MOTION_ENERGY.resolve(backend, clips.device))


def frame_difference_sum(clips: torch.Tensor, *, backend: str = "auto") -> torch.Tensor:
    """The sum-of-differences encoding of a clip (Odd-One-Out networks): mean over t of |x[b, t+1] - x[b, t]|.

    Per pixel and channel. The differences are absolute: the signed sum telescopes to
    x[b, T-1] - x[b, 0] and would not see the order of the middle frames. One read of each frame,
    float32 sums. The values are not checked: NaN propagates to the pixels that hold it.

    Args:
        clips: (B, T, C, H, W), T >= 2; uint8 (read as value / 255) or float32/float16/bfloat16 (values as
            they are); any strides.
        backend: "auto" | "reference" | "cpp" | "triton".

    Returns:
        (B, C, H, W), >= 0: float32 for uint8 clips (values in [0, 1]), else the clips' dtype.

    Example:
        >>> import torch, fastssl
        >>> clips = torch.tensor([0.0, 1.0, 0.0, 0.5]).view(1, 4, 1, 1, 1)  # one pixel over 4 frames
        >>> fastssl.ops.frame_difference_sum(clips).flatten().tolist()  # (1 + 1 + 0.5) / 3
        [0.8333333134651184]
    """
    _check_clips(clips)
    return _frame_difference_sum(clips, FRAME_DIFFERENCE_SUM.resolve(backend, clips.device))
