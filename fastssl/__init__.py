"""fastssl: a fast data and augmentation engine for self-supervised visual pretraining.

``import fastssl`` is lean: it needs neither a GPU, the compiled extension, Triton nor DALI, and
touches no CUDA state. The native extension is loaded on the first op that uses it.
"""

__version__ = "0.1.0"

from . import backends, ops, reference  # noqa: E402
from .backends import BackendUnavailable, available_backends  # noqa: E402

__all__ = ["BackendUnavailable", "available_backends", "backends", "ops", "reference", "__version__"]
