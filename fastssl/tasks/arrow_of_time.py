"""Arrow of Time (Wei et al. 2018): is a clip playing forwards or backwards?

Each video gives one clip of ``clip_len`` frames, reversed half of the time
(:func:`fastssl.data.video.sampling.arrow_of_time_clips`), with the same crop and flip on every frame. The
input is the clip's **frame differences** (``inputs="differences"``, the default): the paper's input is
optical flow, and differences are its cheap stand-in — they keep where things move and drop the static
appearance a network could otherwise key on (black borders, a still background). ``inputs="rgb"`` gives the
frames themselves, as the paper's RGB option. The paper leaves out clips without motion: with
``motion_candidates`` = k > 1 the clip is the liveliest of k by the videos' motion profiles (computed once per
video and cached); with 1 (the default) it starts uniformly. A 3-D encoder (``r3d_18`` by default) maps the
clip to features and a linear head to one logit, trained with binary cross-entropy.

Example:
    >>> import torch
    >>> from fastssl.clips import RaggedClips
    >>> task = ArrowOfTimeTask("r3d_10", image_size=32, clip_len=4)
    >>> plan = task.plan(torch.arange(2), torch.tensor([20, 30]), epoch=0)
    >>> clips = RaggedClips.from_list([torch.randint(0, 256, (4, 40, 40, 3), dtype=torch.uint8)] * 2)
    >>> batch = {**task.transform(clips, torch.arange(2), 0), **plan.targets}
    >>> batch["inputs"].shape, float(task(batch)["loss"].detach()) > 0
    (torch.Size([2, 3, 3, 32, 32]), True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.video.sampling import arrow_of_time_clips, clip_span
from .video import VideoTask, clip_squares, normalize_frames

INPUTS = ("differences", "rgb")


class ArrowOfTimeTask(VideoTask):
    name = "arrow_of_time"
    encoder = "clip"

    def __init__(self, backbone: str = "r3d_18", image_size: int = 64, seed: int = 0, *, clip_len: int = 11,
                 stride: int = 1, inputs: str = "differences", motion_candidates: int = 1):
        if inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {INPUTS}, got {inputs!r}")
        self.clip_len, self.stride, self.inputs = clip_len, stride, inputs
        self.motion_candidates = motion_candidates
        self.uses_motion = motion_candidates > 1
        self.eval_frames = clip_len
        super().__init__(backbone, image_size, seed)
        self.head = nn.Linear(self.feature_dim, 1)

    @property
    def min_frames(self) -> int:
        return clip_span(self.clip_len, self.stride)

    def plan(self, ids, frames, epoch, motion=None):
        return arrow_of_time_clips(ids, frames, clip_len=self.clip_len, stride=self.stride, seed=self.seed,
                                   epoch=epoch, motion=motion, candidates=self.motion_candidates)

    def clip_input(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, T - 1, S, S) differences of consecutive frames (or (B, 3, T, S, S) frames with ``inputs="rgb"``)."""
        if self.inputs == "differences":
            frames = frames[:, 1:] - frames[:, :-1]
        return frames.transpose(1, 2)

    @torch.no_grad()
    def transform(self, clips, ids, epoch):
        x = normalize_frames(clip_squares(clips, ids, epoch, self.image_size, seed=self.seed))
        return {"inputs": self.clip_input(x)}

    def forward(self, batch):
        logit = self.head(self.backbone(batch["inputs"]))[:, 0]
        target = batch["reversed"].to(logit.dtype)
        accuracy = ((logit.detach() > 0) == (target > 0.5)).float().mean()
        return {"loss": F.binary_cross_entropy_with_logits(logit, target), "accuracy": accuracy}
