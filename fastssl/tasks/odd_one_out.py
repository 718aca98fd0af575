"""Odd-One-Out networks (Fernando et al. 2017): which of N + 1 clips has its frames out of order?

Each video gives ``clips`` clips of ``clip_len`` frames at their own starts, one of them with its frames
shuffled (:func:`fastssl.data.video.sampling.odd_one_out_tuples`); each clip gets its own crop and flip,
the same for all its frames. A clip is encoded as one image, the mean of the absolute differences of its
consecutive frames (:func:`fastssl.ops.frame_difference_sum`; the paper's sum-of-differences encoding —
its exact form is not published; absolute values keep the order of the middle frames visible, which a
signed sum, telescoping to last − first, would not). A shared image backbone encodes each clip image,
a per-stream fc maps it to ``dim``, and the streams are concatenated into a ``clips``-way classifier of the
odd clip's position.

The paper's setting (6 clips of 6 frames) is the default.

Example:
    >>> import torch
    >>> from fastssl.clips import RaggedClips
    >>> task = OddOneOutTask("resnet10", image_size=32, clips=3, clip_len=3)
    >>> plan = task.plan(torch.arange(2), torch.tensor([20, 30]), epoch=0)
    >>> clips = RaggedClips.from_list([torch.randint(0, 256, (9, 40, 40, 3), dtype=torch.uint8)] * 2)
    >>> batch = {**task.transform(clips, torch.arange(2), 0), **plan.targets}
    >>> batch["inputs"].shape, float(task(batch)["loss"].detach()) > 0
    (torch.Size([2, 3, 3, 32, 32]), True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.video.sampling import clip_span, odd_one_out_tuples
from ..ops.motion_energy import frame_difference_sum
from .base import accuracy
from .video import VideoTask, clip_squares

#: scale of the difference images fed to the backbone (mean absolute differences of natural video are ~0.05)
DIFFERENCE_SCALE = 10.0


class OddOneOutTask(VideoTask):
    name = "odd_one_out"

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, clips: int = 6,
                 clip_len: int = 6, stride: int = 1, dim: int = 128):
        self.clips, self.clip_len, self.stride = clips, clip_len, stride
        super().__init__(backbone, image_size, seed)
        self.fc = nn.Sequential(nn.Linear(self.feature_dim, dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(clips * dim, clips)

    @property
    def min_frames(self) -> int:
        return clip_span(self.clip_len, self.stride)

    def plan(self, ids, frames, epoch):
        return odd_one_out_tuples(ids, frames, clips=self.clips, clip_len=self.clip_len, stride=self.stride,
                                  seed=self.seed, epoch=epoch)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, K, 3, S, S) clip images of (B, K, L, 3, S, S) frames in [0, 1]: their frame-difference encoding."""
        B, K = frames.shape[:2]
        return (frame_difference_sum(frames.flatten(0, 1)) * DIFFERENCE_SCALE).view(B, K, *frames.shape[3:])

    @torch.no_grad()
    def transform(self, clips, ids, epoch):
        x = clip_squares(clips, ids, epoch, self.image_size, seed=self.seed, groups=self.clips)
        return {"inputs": self.encode(x.unflatten(1, (self.clips, self.clip_len)))}

    @torch.no_grad()
    def eval_transform(self, clips, ids, epoch):
        """{"inputs": (B, 1, 3, S, S)} the middle clip's frames, whole, as one clip image."""
        x = clip_squares(clips, ids, 0, self.image_size, seed=0, scale=None, flip=False)
        return {"inputs": self.encode(x[:, None])}

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, D) features of (B, K, 3, S, S) clip images: the mean over the K clips."""
        B, K = inputs.shape[:2]
        return self.backbone(inputs.flatten(0, 1)).view(B, K, -1).mean(1)

    def forward(self, batch):
        x = batch["inputs"]
        B = x.shape[0]
        logits = self.head(self.fc(self.backbone(x.flatten(0, 1))).view(B, -1))
        return {"loss": F.cross_entropy(logits, batch["odd"]), "accuracy": accuracy(logits, batch["odd"])}
