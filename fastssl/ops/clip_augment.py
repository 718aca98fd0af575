"""Temporally consistent augmentation of clips: every frame of a clip gets the same crop, flip and colours.

The image augment kernels do the work (:func:`fastssl.ops.augment`, every backend): the frames of a
:class:`~fastssl.clips.RaggedClips` are handed over as images (no copy) with one parameter row per frame,
gathered from the clips' rows by a frame → row map — so each decoded frame is read once, by the same
kernel as an image, and no second kernel exists to keep in step.

A clip of T frames may hold ``groups`` clips of a tuple back to back (T / groups frames each, as a
:class:`~fastssl.data.video.sampling.ClipPlan` lays them out): each group then gets its own parameters
(:func:`clip_params` draws row (b, g) from (seed, epoch, id_b, view + g)), the same for all its frames.

Output layouts: ``"btchw"`` (B, T, C, h, w) for frame encoders; ``"bcthw"`` (B, C, T, h, w) for 3-D video
encoders (torchvision's r3d / r2plus1d take this one).

Example:
    >>> import torch
    >>> from fastssl import recipes
    >>> from fastssl.clips import RaggedClips
    >>> clips = RaggedClips.from_list([torch.randint(0, 256, (4, 40, 48, 3), dtype=torch.uint8),
    ...                                torch.randint(0, 256, (4, 36, 36, 3), dtype=torch.uint8)])
    >>> ids = torch.tensor([7, 9])
    >>> params = clip_params(recipes.ViewRecipe(size=16), ids, clips, groups=2, seed=0, epoch=0)
    >>> len(params), augment_clips(clips, params, groups=2).shape
    (4, torch.Size([2, 4, 3, 16, 16]))
    >>> augment_clips(clips, params, groups=2, layout="bcthw").shape
    torch.Size([2, 3, 4, 16, 16])
"""

from __future__ import annotations

import torch

from .. import recipes
from .._validation import check_int
from ..clips import RaggedClips
from .augment import augment
from .augment_params import AugmentParams

LAYOUTS = ("btchw", "bcthw")


def _frames_per_group(clips: RaggedClips, groups: int) -> int:
    """T / groups, checking that every clip has the same T and that groups divide it."""
    frames = clips.host_frames
    T = int(frames[0])
    if not bool((frames == T).all()):
        raise ValueError(f"every clip of the batch must have the same number of frames, got {frames.tolist()}")
    if T % check_int(groups, "groups", 1):
        raise ValueError(f"groups ({groups}) must divide the clips' {T} frames")
    return T // groups


def clip_params(recipe: recipes.ViewRecipe, ids, clips: RaggedClips, *, groups: int = 1, seed: int, epoch: int,
                view: int = 0) -> AugmentParams:
    """(B · groups) parameter rows: row ``b * groups + g`` for group g of clip b, drawn for clip b's frame size from
    (seed, epoch, ``ids[b]``, ``view + g``) (:func:`fastssl.recipes.draw_view`)."""
    _frames_per_group(clips, groups)
    ids = torch.as_tensor(ids)
    if ids.shape != (len(clips),):
        raise ValueError(f"ids must have one id per clip ({len(clips)},), got {tuple(ids.shape)}")
    rows = torch.repeat_interleave(ids, groups)
    views = view + torch.arange(groups, device=ids.device).repeat(len(clips))
    sizes = torch.repeat_interleave(clips.host_sizes, groups, dim=0)
    return recipes.draw_view(recipe, rows, sizes, seed=seed, epoch=epoch, view_index=views)


def frame_rows(clips: RaggedClips, groups: int = 1) -> torch.Tensor:
    """(B · T,) int64 on the CPU: the parameter row of each frame (frame t of clip b →
    ``b * groups + t // (T / groups)``)."""
    per_group = _frames_per_group(clips, groups)
    T = per_group * groups
    return (torch.arange(len(clips) * T) // T) * groups + (torch.arange(T) // per_group).repeat(len(clips))


def augment_clips(clips: RaggedClips, params: AugmentParams, *, groups: int = 1, layout: str = "btchw",
                  backend: str = "auto") -> torch.Tensor:
    """Every frame of ``clips`` augmented with its clip's (or group's) row of ``params`` (B · groups rows).

    Returns (B, T, C, h, w) (``layout="btchw"``) or (B, C, T, h, w) (``"bcthw"``), ``params.dtype``, with
    (h, w) = ``params.size``; the values are those of :func:`fastssl.ops.augment` on each frame with its row.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    rows = frame_rows(clips, groups)
    if len(params) != len(clips) * groups:
        raise ValueError(f"params must have {len(clips)} clips x {groups} groups = {len(clips) * groups} rows, got "
                         f"{len(params)}")
    frames = augment(clips.frames_as_images(), params.select(rows.to(params.crop.device)), backend=backend)
    out = frames.unflatten(0, (len(clips), -1))
    return out.transpose(1, 2) if layout == "bcthw" else out
