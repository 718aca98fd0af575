"""A tiny labelled JPEG folder shared by the training tests."""

import pytest
import torch

from fastssl.data import synthetic


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """4 classes x 6 JPEGs of 36-48 px."""
    return synthetic.write_image_folder(str(tmp_path_factory.mktemp("tiny")), classes=4, per_class=6, min_size=36,
                                        max_size=48, seed=0)


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)
