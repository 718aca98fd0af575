"""What the temporal-order tasks share: a clip plan, temporally consistent crops, and clip features for evaluation.

A :class:`VideoTask` is a :class:`~fastssl.tasks.base.Task` trained from videos: the trainer gives it a
:class:`~fastssl.data.video.loader.ClipLoader` instead of the image loader. Besides ``transform`` (now
``transform(clips, ids, epoch)`` on a :class:`~fastssl.clips.RaggedClips`, the frames in the order of the
plan) and ``forward``, it says

- ``plan(ids, frames, epoch)``: the frames each video decodes and the pretext labels (a
  :class:`~fastssl.data.video.sampling.ClipPlan`, from the tuple rules of :mod:`fastssl.data.video.sampling`);
- ``min_frames``: the shortest video the plan can use (shorter ones are left out and named);
- ``uses_motion``: whether the plan picks windows by the videos' motion profiles
  (:mod:`fastssl.data.video.motion`), which the loader then computes once and passes as ``motion=``;
- for evaluation, ``eval_plan`` (the middle clip of ``eval_frames`` frames) and ``eval_transform`` (the
  whole frames squashed to the encoder's square, no augmentation): ``features(inputs)`` gives (B, D).

Frame encoders (an image backbone of :mod:`fastssl.models`) describe a clip by the mean of its frames'
features; clip encoders (a 3-D backbone, ``is_video_backbone``) by their pooled output. A task says which
kind it takes (``encoder = "frame"`` or ``"clip"``) and refuses the other.

Example:
    >>> import torch
    >>> from fastssl.clips import RaggedClips
    >>> clips = RaggedClips.from_list([torch.randint(0, 256, (6, 40, 48, 3), dtype=torch.uint8)] * 2)
    >>> clip_squares(clips, torch.tensor([3, 4]), 0, 32, seed=0, groups=3).shape
    torch.Size([2, 6, 3, 32, 32])
"""

from __future__ import annotations

import torch

from .. import models, recipes
from ..clips import RaggedClips
from ..data.video.sampling import ClipPlan, centre_clip
from ..ops.clip_augment import augment_clips, clip_params
from .base import PLAIN, Task, normalize, square_view, whole


def clip_squares(clips: RaggedClips, ids: torch.Tensor, epoch: int, size: int, *, seed: int, groups: int = 1,
                 scale: tuple[float, float] | None = (0.35, 1.0), flip: bool = True, layout: str = "btchw",
                 recipe: recipes.ViewRecipe = PLAIN) -> torch.Tensor:
    """(B, T, 3, size, size) (or ``layout="bcthw"``) float32 in [0, 1] (with ``PLAIN``): a random resized crop and
    flip per clip — per group of ``groups`` clips of a tuple — the same for all its frames; ``scale=None``: the
    whole frames squashed to the square (evaluation)."""
    params = clip_params(square_view(recipe, size, scale, flip), ids, clips, groups=groups, seed=seed, epoch=epoch)
    if scale is None:
        params = whole(params, torch.repeat_interleave(clips.host_sizes, groups, dim=0))
    return augment_clips(clips, params, groups=groups, layout=layout)


def normalize_frames(x: torch.Tensor) -> torch.Tensor:
    """ImageNet normalisation of (B, T, 3, H, W) frames in [0, 1]."""
    return normalize(x.flatten(0, 1)).view_as(x)


class VideoTask(Task):
    """Base class of the tasks trained from videos (see the module docstring)."""

    modality = "video"
    encoder = "frame"  #: "frame": an image backbone per frame; "clip": a 3-D backbone per clip
    eval_frames = 8  #: frames of the middle clip that evaluation describes a video by
    uses_motion = False  #: whether ``plan`` wants the videos' motion profiles (``plan(..., motion=profiles)``)

    def __init__(self, backbone: str, image_size: int, seed: int):
        wanted = models.is_video_backbone(backbone) == (self.encoder == "clip")
        if not wanted:
            kinds = {"frame": "an image backbone", "clip": f"a video backbone ({', '.join(models.VIDEO_BACKBONES)})"}
            raise ValueError(f"{self.name} takes {kinds[self.encoder]}, got {backbone!r}")
        super().__init__(backbone, image_size, seed)

    @property
    def min_frames(self) -> int:
        raise NotImplementedError

    def plan(self, ids: torch.Tensor, frames: torch.Tensor, epoch: int) -> ClipPlan:
        raise NotImplementedError

    def eval_plan(self, ids: torch.Tensor, frames: torch.Tensor, epoch: int) -> ClipPlan:
        return centre_clip(ids, frames, clip_len=min(self.eval_frames, self.min_frames))

    @torch.no_grad()
    def eval_transform(self, clips: RaggedClips, ids: torch.Tensor, epoch: int) -> dict:
        """{"inputs": the clips' whole frames at the encoder's size, normalised, in the encoder's layout}."""
        x = normalize_frames(clip_squares(clips, ids, 0, self.image_size, seed=0, scale=None, flip=False))
        return {"inputs": self.clip_input(x)}

    def clip_input(self, frames: torch.Tensor) -> torch.Tensor:
        """The encoder's input for normalised (B, T, 3, S, S) frames: the frames (frame encoder) or (B, 3, T, S, S)."""
        return frames if self.encoder == "frame" else frames.transpose(1, 2)

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, D): the mean of the frames' features (frame encoder) or the clip encoder's output."""
        if self.encoder == "frame":
            B, T = inputs.shape[:2]
            return self.backbone(inputs.flatten(0, 1)).view(B, T, -1).mean(1)
        return self.backbone(inputs)
