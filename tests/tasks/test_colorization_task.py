import pytest
import torch
from task_helpers import assert_loss_falls, assert_split_invariant, make_batch

from fastssl.ops import ab_bins
from fastssl.tasks import make_task


def test_transform_shapes_and_batch_split(images):
    task = make_task("colorization", backbone="resnet10", image_size=32)
    batch = assert_split_invariant(task, images)
    assert batch["inputs"].shape == (4, 1, 32, 32) and batch["inputs"].dtype == torch.float32
    assert float(batch["inputs"].min()) >= -50 and float(batch["inputs"].max()) <= 50
    assert batch["bin_index"].shape == (4, 5, 8, 8) and batch["bin_index"].dtype == torch.int64
    torch.testing.assert_close(batch["bin_weight"].sum(1), torch.ones(4, 8, 8))
    assert task.in_channels == 1 and task.num_bins == len(ab_bins())


def test_prior_counted_online_then_frozen(images):
    task = make_task("colorization", backbone="resnet10", image_size=32, prior_batches=1)
    batch = make_batch(task, images[:2])
    assert torch.equal(task.class_weights(), torch.ones(task.num_bins))
    task(batch)
    counts = task.counts.clone()
    assert counts.sum() == 2 * 8 * 8
    w = task.class_weights()
    assert w.shape == (task.num_bins,) and float(w.max()) > float(w.min())
    task(batch)
    assert torch.equal(task.counts, counts)  # frozen after prior_batches


def test_features_from_rgb():
    task = make_task("colorization", backbone="resnet10", image_size=32).eval()
    assert task.features(torch.randn(2, 3, 32, 32)).shape == (2, task.feature_dim)


def test_loss_falls(images):
    task = make_task("colorization", backbone="resnet10", image_size=32)
    assert_loss_falls(task, make_batch(task, images[:4]))


@pytest.mark.parametrize("options, name", [
    (dict(prior_batches=-1), "prior_batches"), (dict(lam=1.5), "lam"), (dict(backbone="vit_tiny"), "backbone"),
])
def test_bad_options_name_the_argument(options, name):
    options = {"backbone": "resnet10", **options}
    with pytest.raises(ValueError, match=name):
        make_task("colorization", image_size=32, **options)


def test_frozen_prior_survives_a_checkpoint(images):
    task = make_task("colorization", backbone="resnet10", image_size=32, prior_batches=1)
    batch = make_batch(task, images[:2])
    task(batch)
    fresh = make_task("colorization", backbone="resnet10", image_size=32, prior_batches=1)
    fresh(make_batch(fresh, images[2:4]))  # counts another batch, then frozen
    fresh.load_state_dict(task.state_dict())
    torch.testing.assert_close(fresh(batch)["loss"], task(batch)["loss"])
    assert torch.equal(fresh.counts, task.counts)
