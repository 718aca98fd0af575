import pytest
import torch
from task_helpers import assert_loss_falls, assert_split_invariant, make_batch

from fastssl.ops import nt_xent_loss
from fastssl.tasks import make_task


def test_views_depend_on_ids_not_on_the_batch(images):
    task = make_task("simclr", backbone="resnet10", image_size=32)
    whole = assert_split_invariant(task, images)["views"]  # also: other views in another epoch
    assert len(whole) == 2 and whole[0].shape == (4, 3, 32, 32)
    assert not torch.equal(whole[0], whole[1])


def test_loss_is_nt_xent_of_the_projections(images):
    task = make_task("simclr", backbone="resnet10", image_size=32, temperature=0.2).eval()
    batch = make_batch(task, images[:4])
    with torch.no_grad():
        z = task.projector(task.backbone(torch.cat(batch["views"])))
        expected = nt_xent_loss(*z.chunk(2), 0.2, backend="reference")
        torch.testing.assert_close(task(batch)["loss"], expected, rtol=1e-5, atol=1e-6)


def test_loss_falls(images):
    task = make_task("simclr", backbone="resnet10", image_size=32, strength=0.5)
    assert_loss_falls(task, make_batch(task, images[:4]))


@pytest.mark.parametrize("options, name", [(dict(temperature=0), "temperature"), (dict(min_scale=0), "min_scale")])
def test_bad_options_name_the_argument(options, name):
    with pytest.raises(ValueError, match=name):
        make_task("simclr", backbone="resnet10", image_size=32, **options)
