"""Clip order prediction, VCOP (Xu et al. 2019): in which of the 3! orders are three clips shown?

Each video gives three consecutive clips of ``clip_len`` frames, ``gap`` frames apart, shown in one of 6
orders (:func:`fastssl.data.video.sampling.clip_order_tuples`). Every frame of a clip gets the same crop
and flip (each clip its own). A 3-D encoder maps each clip to features; every pair of clips (i < j) goes
through a shared fc on their concatenated features, and the three pair features are concatenated into a
6-way classifier (dropout 0.5 before it, as the paper's).

The paper's clips are 16 frames with gaps of 8 (a video needs 64 frames) at 112 pixels.

Example:
    >>> import torch
    >>> from fastssl.clips import RaggedClips
    >>> task = ClipOrderTask("r3d_10", image_size=32, clip_len=2, gap=1)
    >>> plan = task.plan(torch.arange(2), torch.tensor([20, 30]), epoch=0)
    >>> clips = RaggedClips.from_list([torch.randint(0, 256, (6, 40, 40, 3), dtype=torch.uint8)] * 2)
    >>> batch = {**task.transform(clips, torch.arange(2), 0), **plan.targets}
    >>> batch["inputs"].shape, float(task(batch)["loss"].detach()) > 0
    (torch.Size([2, 3, 3, 2, 32, 32]), True)
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from ..data.video.sampling import CLIP_ORDERS, clip_order_span, clip_order_tuples
from .base import accuracy
from .video import VideoTask, clip_squares, normalize_frames

PAIRS = tuple(itertools.combinations(range(3), 2))


class ClipOrderTask(VideoTask):
    name = "clip_order"
    encoder = "clip"

    def __init__(self, backbone: str = "r3d_18", image_size: int = 64, seed: int = 0, *, clip_len: int = 16,
                 gap: int = 8, dim: int = 512):
        self.clip_len, self.gap = clip_len, gap
        self.eval_frames = clip_len
        clip_order_span(clip_len, gap)  # checks them
        super().__init__(backbone, image_size, seed)
        self.pair = nn.Sequential(nn.Linear(2 * self.feature_dim, dim), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(len(PAIRS) * dim, len(CLIP_ORDERS)))

    @property
    def min_frames(self) -> int:
        return clip_order_span(self.clip_len, self.gap)

    def plan(self, ids, frames, epoch):
        return clip_order_tuples(ids, frames, clip_len=self.clip_len, gap=self.gap, seed=self.seed, epoch=epoch)

    @torch.no_grad()
    def transform(self, clips, ids, epoch):
        x = normalize_frames(clip_squares(clips, ids, epoch, self.image_size, seed=self.seed, groups=3))
        B, _, C, S, _ = x.shape
        return {"inputs": x.view(B, 3, self.clip_len, C, S, S).transpose(2, 3)}  # (B, 3 clips, C, T, S, S)

    def forward(self, batch):
        x = batch["inputs"]
        B = x.shape[0]
        f = self.backbone(x.flatten(0, 1)).view(B, 3, -1)
        pairs = torch.cat([self.pair(torch.cat([f[:, i], f[:, j]], 1)) for i, j in PAIRS], 1)
        logits = self.head(pairs)
        return {"loss": F.cross_entropy(logits, batch["order"]), "accuracy": accuracy(logits, batch["order"])}
