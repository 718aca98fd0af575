"""Training: the thin trainer (:func:`train`), optimisers and schedule, atomic checkpoints, logs, evaluation."""

from .trainer import TrainConfig, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
