"""Training: the thin trainer (:func:`train`), optimisers and schedule, atomic checkpoints, logs, evaluation."""

from .ranks import TrainError
from .trainer import TrainConfig, TrainResult, train

__all__ = ["TrainConfig", "TrainError", "TrainResult", "train"]
