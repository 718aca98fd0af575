"""Audio data: the audio of each video (its own track or an audio file beside it), indexed once, and windows of it
decoded, mono, at one sample rate.

- :mod:`~fastssl.data.audio.index`: :func:`probe_audio` decodes a track once (rate, channels, samples, start,
  peak; bad files recorded with the reason); :func:`index_audio` finds each video's audio
  (:func:`sidecar_for`; in tar shards :func:`tar_sidecars`) and caches the index as JSON.
- :mod:`~fastssl.data.audio.decode`: :class:`AudioDecoder` decodes a batch of windows (PyAV, seeking; DALI for
  WAV / FLAC / OGG files where installed).

PyAV is imported by the functions that read audio, never at import: ``import fastssl.data.audio`` needs none.

Example:
    >>> info = AudioInfo("a.webm", 1000, 0, sample_rate=48000, channels=2, samples=96000, codec="opus")
    >>> info.duration
    2.0
"""

from .decode import AUDIO_DECODERS, AudioDecoder
from .index import (MAX_CHANNELS, MAX_SAMPLE_RATE, SIDECAR_EXTENSIONS, AudioInfo, index_audio, probe_audio,
                    sidecar_for, tar_sidecars)

__all__ = ["AUDIO_DECODERS", "AudioDecoder", "AudioInfo", "MAX_CHANNELS", "MAX_SAMPLE_RATE", "SIDECAR_EXTENSIONS",
           "index_audio", "probe_audio", "sidecar_for", "tar_sidecars"]
