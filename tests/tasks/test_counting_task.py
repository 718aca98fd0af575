import pytest
import torch
import torch.nn.functional as F
from task_helpers import assert_loss_falls, assert_split_invariant, make_batch

from fastssl.tasks import make_task
from fastssl.tasks.base import IMAGENET_MEAN, IMAGENET_STD


def test_transform_shapes_and_batch_split(images):
    task = make_task("counting", backbone="resnet10", image_size=32)
    batch = assert_split_invariant(task, images)
    x = batch["inputs"]
    assert x.shape == (4, 5, 3, 16, 16) and x.dtype == torch.float32 and task.encoder_size(32) == 16
    # the whole image is the 2x2 average of the tiles put together
    raw = x * IMAGENET_STD.unsqueeze(0) + IMAGENET_MEAN.unsqueeze(0)
    full = torch.cat([torch.cat([raw[:, 1], raw[:, 2]], -1), torch.cat([raw[:, 3], raw[:, 4]], -1)], -2)
    torch.testing.assert_close(F.avg_pool2d(full, 2), raw[:, 0], atol=1e-5, rtol=0)


def test_loss_falls(images):
    task = make_task("counting", backbone="resnet10", image_size=32)
    assert_loss_falls(task, make_batch(task, images[:4]))


def test_needs_two_images(images):
    task = make_task("counting", backbone="resnet10", image_size=32)
    with pytest.raises(ValueError, match="at least 2"):
        task(make_batch(task, images[:1]))


@pytest.mark.parametrize("options, name", [(dict(margin=0), "margin"), (dict(dim=0), "dim"), (dict(image_size=2), "image_size")])
def test_bad_options_name_the_argument(options, name):
    options = {"image_size": 32, **options}
    with pytest.raises(ValueError, match=name):
        make_task("counting", backbone="resnet10", **options)
