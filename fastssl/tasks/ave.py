"""AVE-Net (Arandjelović & Zisserman 2018, "Objects that Sound"): embeddings of a frame and of a second of audio
that are close when they belong together.

The pairs are those of :mod:`fastssl.tasks.avc` (half positives, exactly, per epoch; negatives from another
video). Each stream ends in fc 128 and L2 normalisation; the Euclidean distance between the two embeddings goes
through fc(1 → 2), trained with cross-entropy on ``corresponds`` (``loss="distance"``, the paper). With
``loss="infonce"`` every sample is a positive and the loss is a symmetric InfoNCE between the streams over the
batch (the other samples' audio are a frame's negatives; :func:`fastssl.ops.info_nce_loss`), as later
audio-visual contrastive work trains. Either way frame i and audio j match by ``-distance`` in retrieval.

Example:
    >>> import torch
    >>> task = AVEmbeddingTask("resnet10", image_size=32, audio_backbone="l3_audio_small", sample_rate=8000,
    ...                        window=0.5)
    >>> batch = {"inputs": torch.randn(4, 3, 32, 32), "spectrogram": torch.randn(4, 1, 65, 99),
    ...          "corresponds": torch.tensor([1, 0, 1, 0])}
    >>> out = task(batch)
    >>> sorted(out), task.embed_audio(torch.randn(3, 128)).norm(dim=1).round(decimals=4).tolist()
    (['accuracy', 'distance_gap', 'loss'], [1.0, 1.0, 1.0])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.nt_xent import info_nce_loss
from .audio_visual import AVTask
from .base import accuracy

LOSSES = ("distance", "infonce")


class AVEmbeddingTask(AVTask):
    name = "ave"
    kind = "avc"

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, dim: int = 128,
                 loss: str = "distance", temperature: float = 0.07, **options):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if loss == "infonce":
            options["positive_fraction"] = 1.0  # the other samples of the batch are the negatives
        super().__init__(backbone, image_size, seed, **options)
        self.loss, self.temperature = loss, temperature
        self.vision_fc = nn.Linear(self.feature_dim, dim)
        self.audio_fc = nn.Linear(self.audio_feature_dim, dim)
        self.classifier = nn.Linear(1, 2)

    def embed_vision(self, features: torch.Tensor) -> torch.Tensor:
        """(B, dim) unit vectors from vision features (B, D)."""
        return F.normalize(self.vision_fc(features), dim=1)

    def embed_audio(self, features: torch.Tensor) -> torch.Tensor:
        """(B, dim) unit vectors from audio features (B, D_audio)."""
        return F.normalize(self.audio_fc(features), dim=1)

    def forward(self, batch):
        v = self.embed_vision(self.features(batch["inputs"]))
        a = self.embed_audio(self.audio_features(batch["spectrogram"]))
        if self.loss == "infonce":
            targets = torch.arange(len(v), device=v.device)
            loss = 0.5 * (info_nce_loss(v, a, targets, self.temperature)
                          + info_nce_loss(a, v, targets, self.temperature))
            scores = v.detach() @ a.detach().T
            return {"loss": loss, "accuracy": accuracy(scores, targets)}
        distance = (v - a).norm(dim=1)
        logits = self.classifier(distance[:, None])
        labels = batch["corresponds"]
        together = labels == 1
        gap = distance[~together].mean() - distance[together].mean() if together.any() and (~together).any() else \
            distance.new_zeros(())
        return {"loss": F.cross_entropy(logits, labels), "accuracy": accuracy(logits, labels),
                "distance_gap": gap.detach()}

    @torch.no_grad()
    def match_scores(self, vision, audio):
        return -torch.cdist(self.embed_vision(vision), self.embed_audio(audio)).float()
