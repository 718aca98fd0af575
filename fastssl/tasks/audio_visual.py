"""What the audio-visual tasks share: a frame and an audio window per sample, two streams, and their evaluation.

An :class:`AVTask` is a :class:`~fastssl.tasks.base.Task` trained from videos with sound: the trainer gives it
an :class:`~fastssl.data.av.loader.AVLoader`, which decodes per sample one frame of its video and ``window``
seconds of audio (mono, ``sample_rate``) chosen by the task's pairing rule (``pairs``: correspondence or
synchronisation, :mod:`fastssl.data.av.pairs`). ``transform(clips, audio, ids, epoch)`` makes

- ``inputs``: the frame, a random resized crop (area ``min_scale``..1) and flip at ``image_size``,
  ImageNet-normalised, for the vision stream (``backbone``, an image backbone of :mod:`fastssl.models`): (B, 3, S,
  S). With ``clip_len`` > 1 a clip of that many frames ``stride`` apart, centred on the audio window, one crop for
  all its frames: (B, T, 3, S, S) for an image backbone (its features averaged over the frames), (B, 3, T, S, S)
  for a video backbone (:data:`fastssl.models.VIDEO_BACKBONES`, as AVTS-style work trains);
- ``spectrogram``: (B, 1, F, T) the audio's log spectrogram (:func:`fastssl.ops.log_spectrogram`: 10 ms windows,
  half overlap, as L³-Net — 257 x 199 for 1 s at 48 kHz) or, with ``mel_bins`` > 0, its log-mel spectrogram,
  after a random gain of ±``gain_db`` dB per sample, for the audio stream (``audio_backbone``, one of
  :data:`fastssl.models.AUDIO_BACKBONES`).

For evaluation (``eval_pairs``, ``eval_transform``: each video's middle frame, whole, and the audio centred on
it, no augmentation) a task gives ``features(inputs)`` (the vision stream), ``audio_features(spectrogram)``
and ``match_scores(vision, audio)`` ((N, M): how well frame i goes with audio j, for cross-modal retrieval).

Example:
    >>> import torch
    >>> from fastssl.clips import RaggedClips
    >>> from fastssl.tasks import make_task
    >>> task = make_task("avc", backbone="resnet10", image_size=32, audio_backbone="l3_audio_small",
    ...                  sample_rate=8000, window=0.5)
    >>> clips = RaggedClips.from_list([torch.randint(0, 256, (1, 40, 48, 3), dtype=torch.uint8)] * 2)
    >>> out = task.transform(clips, torch.rand(2, 4000) - 0.5, torch.arange(2), 0)
    >>> out["inputs"].shape, out["spectrogram"].shape
    (torch.Size([2, 3, 32, 32]), torch.Size([2, 1, 65, 99]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import models, random
from ..data.av.pairs import AVPairs, CentrePairs
from ..ops.spectrogram import log_mel_spectrogram, log_spectrogram
from .base import Task, normalize
from .video import clip_squares, normalize_frames


def stft_sizes(sample_rate: int) -> tuple[int, int, int]:
    """(n_fft, win_length, hop_length) of L³-Net's spectrogram at ``sample_rate``: 10 ms windows, half overlap,
    the FFT at the next power of two (48 kHz: 512, 480, 240)."""
    win = max(2, round(sample_rate / 100))
    return 1 << (win - 1).bit_length(), win, win // 2


class AVTask(Task):
    """Base class of the audio-visual tasks (see the module docstring)."""

    modality = "audio_visual"
    kind = "avc"  #: the pairing rule (:data:`fastssl.data.av.pairs.KINDS`)

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *,
                 audio_backbone: str = "l3_audio", sample_rate: int = 48000, window: float = 1.0, mel_bins: int = 0,
                 gain_db: float = 6.0, positive_fraction: float = 0.5, min_shift: float = 0.5, max_shift: float = 1.0,
                 min_scale: float = 0.35, clip_len: int = 1, stride: int = 1):
        if mel_bins < 0 or gain_db < 0:
            raise ValueError(f"mel_bins and gain_db must be >= 0, got {mel_bins}, {gain_db}")
        if not 0 < min_scale <= 1:
            raise ValueError(f"min_scale must be in (0, 1], got {min_scale}")
        super().__init__(backbone, image_size, seed)
        self.audio_backbone = models.audio_backbone(audio_backbone)
        self.sample_rate, self.window, self.mel_bins, self.gain_db = sample_rate, window, mel_bins, gain_db
        self.min_scale = min_scale
        self.pairs = AVPairs(self.kind, window=window, positive_fraction=positive_fraction, min_shift=min_shift,
                             max_shift=max_shift, seed=seed, clip_len=clip_len, stride=stride)
        self.eval_pairs = CentrePairs(window, clip_len=clip_len, stride=stride)
        self.video = models.is_video_backbone(backbone)
        self.encoder = "clip" if self.video else "frame"  #: as a video task's: the trainer keeps 3-D layouts

    @property
    def audio_feature_dim(self) -> int:
        return self.audio_backbone.feature_dim

    def spectrogram(self, audio: torch.Tensor, ids: torch.Tensor | None = None, epoch: int = 0) -> torch.Tensor:
        """(B, 1, F, T) float32 log (mel) spectrogram of (B, samples) audio; with ``ids``, each window first gets a
        gain uniform in ±``gain_db`` dB keyed by (seed, epoch, id)."""
        gain = None
        if ids is not None and self.gain_db > 0:
            u = random.uniform(ids, [random.AUDIO_GAIN_SLOT], seed=self.seed, epoch=epoch)[:, 0].to(audio.device)
            gain = 10.0 ** ((2 * u - 1) * self.gain_db / 20)
        n_fft, win, hop = stft_sizes(self.sample_rate)
        if self.mel_bins:
            spec = log_mel_spectrogram(audio, sample_rate=self.sample_rate, n_fft=n_fft, win_length=win,
                                       hop_length=hop, n_mels=self.mel_bins, gain=gain)
        else:
            spec = log_spectrogram(audio, n_fft=n_fft, win_length=win, hop_length=hop, gain=gain)
        return spec[:, None]

    @torch.no_grad()
    def transform(self, clips, audio, ids, epoch):
        frames = clip_squares(clips, ids, epoch, self.image_size, seed=self.seed, scale=(self.min_scale, 1.0))
        return {"inputs": self.vision_input(frames), "spectrogram": self.spectrogram(audio, ids, epoch)}

    @torch.no_grad()
    def eval_transform(self, clips, audio, ids, epoch):
        frames = clip_squares(clips, ids, 0, self.image_size, seed=0, scale=None, flip=False)
        return {"inputs": self.vision_input(frames), "spectrogram": self.spectrogram(audio)}

    def vision_input(self, frames: torch.Tensor) -> torch.Tensor:
        """The vision stream's input for (B, T, 3, S, S) frames in [0, 1]: normalised, (B, 3, S, S) for one frame,
        (B, 3, T, S, S) for a video backbone."""
        if self.video:
            return normalize_frames(frames).transpose(1, 2)
        return normalize(frames[:, 0]) if frames.shape[1] == 1 else normalize_frames(frames)

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, D) features of the vision stream's input (:meth:`vision_input`): an image backbone's features are
        averaged over a clip's frames."""
        if inputs.dim() == 5 and not self.video:
            B, T = inputs.shape[:2]
            return self.backbone(inputs.flatten(0, 1)).view(B, T, -1).mean(1)
        return self.backbone(inputs)

    def audio_features(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """(B, D_audio) features of (B, 1, F, T) spectrograms."""
        return self.audio_backbone(spectrogram)

    def match_scores(self, vision: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """(N, M) float32: how well frame i (features ``vision`` (N, D)) goes with audio j (``audio`` (M, D_audio)),
        higher is better."""
        raise NotImplementedError


class FusionHead(nn.Module):
    """L³-Net's fusion: the two streams' features concatenated → fc 128 → ReLU → fc 2 (logits).

    The concatenation is batch-normalised first, as every layer of L³-Net's streams is: the streams' pooled
    features come at different scales (a ResNet's averaged ones, the audio stream's max-pooled ones).
    """

    def __init__(self, vision_dim: int, audio_dim: int, hidden: int = 128):
        super().__init__()
        self.norm = nn.BatchNorm1d(vision_dim + audio_dim)
        self.fc = nn.Linear(vision_dim + audio_dim, hidden)
        self.out = nn.Linear(hidden, 2)
        self.vision_dim = vision_dim

    def forward(self, vision: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc(self.norm(torch.cat([vision, audio], 1)))))

    def _normalized(self, x: torch.Tensor, part: slice) -> torch.Tensor:
        """One stream's slice of the (evaluation-mode) batch normalisation: it acts per feature."""
        n = self.norm
        return F.batch_norm(x, n.running_mean[part], n.running_var[part], n.weight[part], n.bias[part],
                            training=False, eps=n.eps)

    @torch.no_grad()
    def all_pairs(self, vision: torch.Tensor, audio: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """(N, M) logit of "together" minus "apart" for every (frame i, audio j), with the head in evaluation mode
        and without an (N·M, D) input: the normalisation and the first layer are split into their vision and
        audio halves."""
        d = self.vision_dim
        vision = self._normalized(vision, slice(0, d))
        audio = self._normalized(audio, slice(d, None))
        w_v, w_a = self.fc.weight[:, :d], self.fc.weight[:, d:]
        v, a = vision @ w_v.T + self.fc.bias, audio @ w_a.T  # (N, H), (M, H)
        margin = self.out.weight[1] - self.out.weight[0]
        bias = self.out.bias[1] - self.out.bias[0]
        rows = [torch.relu(v[i:i + chunk, None, :] + a[None]) @ margin + bias for i in range(0, len(v), chunk)]
        return torch.cat(rows).float()


def recall_at(scores: torch.Tensor, ks=(1, 5)) -> dict[str, float]:
    """{"recall@k": the fraction of rows i whose own column i ranks in the top k of ``scores`` (N, N)} (ties count
    against: a row's column is ranked below every column with an equal score)."""
    own = scores.diagonal()[:, None]
    rank = (scores >= own).sum(1) - 1  # columns scoring at least as well, itself excluded
    return {f"recall@{k}": float((rank < k).double().mean()) for k in ks}


__all__ = ["AVTask", "FusionHead", "recall_at", "stft_sizes"]
