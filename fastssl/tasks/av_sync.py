"""Audio-visual synchronisation: is this second of audio in sync with the frame, or shifted in time?

Both streams come from the same video: half of the samples (exactly, per epoch) show the audio window centred on
the frame, the others the window shifted by ``min_shift``..``max_shift`` seconds either way
(:class:`fastssl.data.av.pairs.AVPairs`, ``kind="sync"``), so the video's identity (its timbre, its scene) gives
nothing away and only timing does. Same network as :mod:`fastssl.tasks.avc` (two streams, concatenated →
fc 128 → fc 2), trained with cross-entropy on ``in_sync``.

Example:
    >>> import torch
    >>> task = AVSyncTask("resnet10", image_size=32, audio_backbone="l3_audio_small", sample_rate=8000, window=0.5,
    ...                   min_shift=0.25, max_shift=0.5)
    >>> batch = {"inputs": torch.randn(2, 3, 32, 32), "spectrogram": torch.randn(2, 1, 65, 99),
    ...          "in_sync": torch.tensor([1, 0])}
    >>> float(task(batch)["loss"].detach()) > 0, task.pairs.min_audio_seconds()
    (True, 1.0)
"""

from __future__ import annotations

from .avc import AVCorrespondenceTask


class AVSyncTask(AVCorrespondenceTask):
    name = "av_sync"
    kind = "sync"
    target = "in_sync"
