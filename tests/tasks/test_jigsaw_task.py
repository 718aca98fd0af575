import pytest
import torch
from task_helpers import assert_loss_falls, assert_split_invariant, make_batch

from fastssl.ops import hamming_permutations
from fastssl.tasks import make_task
from fastssl.tasks.jigsaw import jigsaw_geometry


def test_geometry_scaled_from_the_paper():
    assert jigsaw_geometry(225) == (75, 64, 2)
    assert jigsaw_geometry(64) == (21, 18, 1)
    assert jigsaw_geometry(32) == (10, 9, 0)


def test_transform_shapes_and_batch_split(images):
    task = make_task("jigsaw", backbone="resnet10", image_size=32, permutations=20)
    batch = assert_split_invariant(task, images)
    assert batch["tiles"].shape == (4, 9, 3, 9, 9) and batch["tiles"].dtype == torch.float32
    assert batch["targets"].dtype == torch.int64 and 0 <= int(batch["targets"].min()) <= int(batch["targets"].max()) < 20
    # per-tile normalisation: each tile channel has mean ~0
    assert batch["tiles"].mean((-1, -2)).abs().max() < 1e-4
    assert task.encoder_size(32) == 9 and task.features(torch.zeros(2, 3, 9, 9)).shape == (2, task.feature_dim)


def test_explicit_permutations():
    perms = hamming_permutations(4)
    task = make_task("jigsaw", backbone="resnet10", image_size=32, permutations=perms)
    assert torch.equal(task.permutations, perms) and task.classifier[-1].out_features == 4


def test_loss_falls(images):
    task = make_task("jigsaw", backbone="resnet10", image_size=32, permutations=10)
    assert_loss_falls(task, make_batch(task, images[:4]))


@pytest.mark.parametrize("options, name", [
    (dict(grid=1), "grid"), (dict(permutations=0), "permutations"), (dict(permutations=torch.zeros(3, 9)), "permutations"),
    (dict(tile=12), "tile"), (dict(cell=12), "cell"), (dict(grayscale=1.5), "grayscale"), (dict(tile_dim=0), "tile_dim"),
])
def test_bad_options_name_the_argument(options, name):
    with pytest.raises((ValueError, TypeError), match=name):
        make_task("jigsaw", backbone="resnet10", image_size=32, **options)


def test_the_old_option_name_still_works_with_a_future_warning():
    with pytest.warns(FutureWarning, match="use grayscale="):
        task = make_task("jigsaw", backbone="resnet10", image_size=32, greyscale=0.5)
    assert task.grayscale == 0.5
