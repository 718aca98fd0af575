"""Audio-visual correspondence (L³-Net, Arandjelović & Zisserman 2017): do this frame and this second of audio come
from the same video?

Half of the samples (exactly, per epoch) show a frame and the audio window centred on it; the others the
frame and a window of another video (:class:`fastssl.data.av.pairs.AVPairs`, ``kind="avc"``). Each stream
is pooled to its features (512-d for ResNet-18 and ``l3_audio``), the two concatenated (batch-normalised, see
:class:`~fastssl.tasks.audio_visual.FusionHead`) → fc 128 → fc 2,
trained with cross-entropy on ``corresponds``.

Example:
    >>> import torch
    >>> task = AVCorrespondenceTask("resnet10", image_size=32, audio_backbone="l3_audio_small", sample_rate=8000,
    ...                             window=0.5)
    >>> batch = {"inputs": torch.randn(4, 3, 32, 32), "spectrogram": torch.randn(4, 1, 65, 99),
    ...          "corresponds": torch.tensor([1, 0, 1, 0])}
    >>> out = task(batch)
    >>> sorted(out), task.match_scores(torch.randn(3, 512), torch.randn(5, 128)).shape
    (['accuracy', 'loss'], torch.Size([3, 5]))
"""

from __future__ import annotations

import torch.nn.functional as F

from .audio_visual import AVTask, FusionHead
from .base import accuracy


class AVCorrespondenceTask(AVTask):
    name = "avc"
    kind = "avc"
    target = "corresponds"  #: the batch entry holding the 0/1 label

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, **options):
        super().__init__(backbone, image_size, seed, **options)
        self.head = FusionHead(self.feature_dim, self.audio_feature_dim)

    def forward(self, batch):
        logits = self.head(self.features(batch["inputs"]), self.audio_features(batch["spectrogram"]))
        labels = batch[self.target]
        return {"loss": F.cross_entropy(logits, labels), "accuracy": accuracy(logits, labels)}

    def match_scores(self, vision, audio):
        return self.head.all_pairs(vision, audio)
