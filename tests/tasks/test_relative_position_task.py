import pytest
import torch
from task_helpers import assert_loss_falls, assert_split_invariant, make_batch

from fastssl.tasks import make_task
from fastssl.tasks.relative_position import relative_position_geometry


def test_geometry_scaled_from_the_paper():
    assert relative_position_geometry(398) == (96, 48, 7)
    assert relative_position_geometry(64) == (15, 7, 1)
    assert relative_position_geometry(32) == (7, 3, 1)


def test_transform_shapes_and_batch_split(images):
    task = make_task("relative_position", backbone="resnet10", image_size=32)
    batch = assert_split_invariant(task, images)
    assert batch["patches"].shape == (4, 2, 3, 7, 7) and batch["patches"].dtype == torch.float32
    assert batch["targets"].dtype == torch.int64 and bool(((batch["targets"] >= 0) & (batch["targets"] < 8)).all())
    assert task.encoder_size(32) == 7


def test_loss_falls(images):
    task = make_task("relative_position", backbone="resnet10", image_size=32, color_drop=0.0)
    assert_loss_falls(task, make_batch(task, images))


@pytest.mark.parametrize("options, name", [
    (dict(patch=0), "patch"), (dict(gap=-1), "gap"), (dict(patch=12), "patch"), (dict(color_drop=2), "color_drop"),
    (dict(hidden=0), "hidden"),
])
def test_bad_options_name_the_argument(options, name):
    with pytest.raises(ValueError, match=name):
        make_task("relative_position", backbone="resnet10", image_size=32, **options)
