"""Audio-visual data: which frame and which audio window each sample shows, and the loader that decodes both.

- :mod:`~fastssl.data.av.pairs`: :class:`AVPairs` (correspondence and synchronisation pairs, keyed by (seed,
  epoch, id)), :class:`CentrePairs` (evaluation), :class:`AVTiming` (where each video's frames and audio lie);
- :mod:`~fastssl.data.av.loader`: :class:`AVLoader`, a clip loader that also decodes audio windows.

Example:
    >>> AVPairs("sync", window=1.0, min_shift=0.5).min_audio_seconds()
    2.0
"""

from .loader import AVLoader
from .pairs import KINDS, AVPairs, AVPlan, AVTiming, CentrePairs

__all__ = ["AVLoader", "AVPairs", "AVPlan", "AVTiming", "CentrePairs", "KINDS"]
