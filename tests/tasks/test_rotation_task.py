import pytest
import torch
from task_helpers import assert_loss_falls, assert_split_invariant, make_batch

from fastssl.tasks import make_task


def test_transform_is_the_four_rotations(images):
    task = make_task("rotation", backbone="resnet10", image_size=32)
    batch = assert_split_invariant(task, images)
    x, labels = batch["inputs"], batch["targets"]
    assert x.shape == (16, 3, 32, 32) and labels.tolist() == [0, 1, 2, 3] * 4
    for k in range(1, 4):  # rotating back gives the unrotated crop
        torch.testing.assert_close(torch.rot90(x[k::4], -k, dims=(-2, -1)), x[0::4], rtol=0, atol=0)


def test_loss_falls(images):
    task = make_task("rotation", backbone="resnet10", image_size=32)
    assert_loss_falls(task, make_batch(task, images[:4]))


def test_unknown_names():
    with pytest.raises(ValueError, match="task must be one of"):
        make_task("rotations")
    with pytest.raises(ValueError, match="backbone must be one of"):
        make_task("rotation", backbone="resnet34")
