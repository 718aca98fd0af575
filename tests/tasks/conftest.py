"""Fixtures of the task tests (helpers: task_helpers.py)."""

import pytest
import torch
from task_helpers import smooth_images

torch.set_num_threads(2)


@pytest.fixture
def images() -> torch.Tensor:
    """(8, 3, 40, 40) uint8 smooth random images."""
    return smooth_images(8)
