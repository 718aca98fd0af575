"""Shuffle & Learn (Misra et al. 2016): is a triplet of frames in temporal order, or shuffled?

Each video gives frames a < b < c < d < e (:func:`fastssl.data.video.sampling.shuffle_learn_tuples`): a
positive shows (b, c, d) or its reverse, a negative (b, a, d) or (b, e, d). The three frames get the same
crop and flip (one parameter row per tuple), a shared image backbone encodes each, a per-frame fc (the
paper's fc7) maps each to ``dim``, and the three are concatenated into a 2-way classifier.

The paper's gaps (tau_max 60, tau_min 15 frames at 30 fps; 25% positives) are the defaults, so a video
needs 33 frames; short clips want smaller gaps. The paper picks high-motion windows by optical flow:
with ``motion_candidates`` = k > 1 the window is the liveliest of k by the videos' frame-difference
motion profiles (computed once per video, a full decode, and cached); with 1 (the default) it is uniform.

Example:
    >>> import torch
    >>> from fastssl.clips import RaggedClips
    >>> task = ShuffleLearnTask("resnet10", image_size=32, tau_min=2, tau_max=6)
    >>> plan = task.plan(torch.arange(2), torch.tensor([20, 30]), epoch=0)
    >>> clips = RaggedClips.from_list([torch.randint(0, 256, (3, 40, 40, 3), dtype=torch.uint8)] * 2)
    >>> batch = {**task.transform(clips, torch.arange(2), 0), **plan.targets}
    >>> batch["inputs"].shape, float(task(batch)["loss"].detach()) > 0
    (torch.Size([2, 3, 3, 32, 32]), True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.video.sampling import shuffle_learn_frames, shuffle_learn_tuples
from .base import accuracy
from .video import VideoTask, clip_squares, normalize_frames


class ShuffleLearnTask(VideoTask):
    name = "shuffle_learn"

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, tau_min: int = 15,
                 tau_max: int = 60, positive_fraction: float = 0.25, dim: int = 512, motion_candidates: int = 1):
        self.tau_min, self.tau_max, self.positive_fraction = tau_min, tau_max, positive_fraction
        self.motion_candidates = motion_candidates
        self.uses_motion = motion_candidates > 1
        shuffle_learn_frames(tau_min, tau_max)  # checks the gaps
        super().__init__(backbone, image_size, seed)
        self.fc = nn.Sequential(nn.Linear(self.feature_dim, dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(3 * dim, 2)

    @property
    def min_frames(self) -> int:
        return shuffle_learn_frames(self.tau_min, self.tau_max)

    def plan(self, ids, frames, epoch, motion=None):
        return shuffle_learn_tuples(ids, frames, tau_min=self.tau_min, tau_max=self.tau_max,
                                    positive_fraction=self.positive_fraction, seed=self.seed, epoch=epoch,
                                    motion=motion, candidates=self.motion_candidates)

    @torch.no_grad()
    def transform(self, clips, ids, epoch):
        return {"inputs": normalize_frames(clip_squares(clips, ids, epoch, self.image_size, seed=self.seed))}

    def forward(self, batch):
        x = batch["inputs"]  # (B, 3, C, S, S)
        B = x.shape[0]
        logits = self.head(self.fc(self.backbone(x.flatten(0, 1))).view(B, -1))
        return {"loss": F.cross_entropy(logits, batch["label"]), "accuracy": accuracy(logits, batch["label"])}
