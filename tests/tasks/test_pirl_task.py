import pytest
import torch
from task_helpers import assert_loss_falls, assert_split_invariant, make_batch

from fastssl.tasks import make_task


def task_(**options):
    return make_task("pirl", backbone="resnet10", image_size=32, permutations=10, **options)


def test_transform_shapes_and_batch_split(images):
    batch = assert_split_invariant(task_(num_samples=64), images)
    assert batch["image"].shape == (4, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["tiles"].shape == (4, 9, 3, 9, 9) and batch["tiles"].dtype == torch.float32
    assert batch["tiles"].mean((-1, -2)).abs().max() < 1e-4  # per-tile normalisation


def test_bank_holds_a_moving_average_of_the_image_embedding(images):
    task = task_(num_samples=16, negatives=5, momentum=0.5)
    ids = torch.tensor([2, 7])
    batch = make_batch(task, images[:2], ids=ids)
    before = task.memory.bank.clone()
    with torch.no_grad():  # f(v_I) as forward computes it (train-mode BatchNorm, same batch)
        f = torch.nn.functional.normalize(task.image_head(task.backbone(batch["image"])), dim=1)
    out = task(batch)
    assert {"loss", "nce_jigsaw", "nce_image", "invariance"} <= set(out)
    expected = torch.nn.functional.normalize(0.5 * before[ids] + 0.5 * f, dim=1)
    torch.testing.assert_close(task.memory.bank[ids], expected, atol=1e-5, rtol=1e-5)


def test_loss_falls(images):
    task = task_(num_samples=32, negatives=16)
    assert_loss_falls(task, make_batch(task, images[:2], ids=torch.tensor([9, 30])))


@pytest.mark.parametrize("options, name", [
    (dict(), "num_samples"), (dict(num_samples=8, lam=2), "lam"), (dict(num_samples=8, temperature=-1), "temperature"),
    (dict(num_samples=8, permutations=0), "permutations"), (dict(num_samples=8, dim=0), "dim"),
])
def test_bad_options_name_the_argument(options, name):
    with pytest.raises((ValueError, TypeError), match=name):
        task_(**options)
