import pytest
import torch
from task_helpers import assert_loss_falls, assert_split_invariant, make_batch

from fastssl.ragged import RaggedImages
from fastssl.tasks import make_task


def test_transform_shapes_and_batch_split(images):
    task = make_task("inpainting", backbone="resnet10", image_size=32)
    batch = assert_split_invariant(task, images)
    assert batch["inputs"].shape == batch["targets"].shape == (4, 3, 32, 32)
    w = batch["weights"]
    assert w.shape == (4, 1, 32, 32) and w.dtype == torch.float32
    # centre hole of 16 px shrunk by the 1-px overlap: 14 x 14 of weight 1, a band of weight 10 around it
    assert int((w == 1).sum()) == 4 * 14 * 14 and int((w == 10).sum()) == 4 * (16 * 16 - 14 * 14)
    assert float(batch["inputs"][:, :, 9:23, 9:23].abs().max()) < 1e-5  # mean fill = 0 after normalisation


def test_random_modes():
    task = make_task("inpainting", backbone="resnet10", image_size=32, mode="random_region")
    w = task.transform(RaggedImages.from_dense(torch.zeros(2, 3, 40, 40, dtype=torch.uint8)), torch.arange(2), 0)["weights"]
    assert 0 < float(w.mean()) < 0.5


def test_loss_falls(images):
    task = make_task("inpainting", backbone="resnet10", image_size=32)
    assert_loss_falls(task, make_batch(task, images[:4]))


def test_adversarial_terms_move_only_their_player(images):
    task = make_task("inpainting", backbone="resnet10", image_size=32, adversarial_weight=0.5)
    batch = make_batch(task, images[:2])
    out = task(batch)
    assert set(out) == {"loss", "reconstruction", "adversarial", "discriminator"}
    pred = task.reconstruct(batch["inputs"])
    generator, disc = task.adversarial_losses(pred, batch["targets"])
    d_params = task.discriminator_parameters()
    assert len(d_params) > 0
    assert all(g is None for g in torch.autograd.grad(generator, d_params, allow_unused=True))
    assert torch.autograd.grad(generator, pred)[0].abs().sum() > 0
    assert all(g is not None for g in torch.autograd.grad(disc, d_params, retain_graph=True))
    assert torch.autograd.grad(disc, pred, allow_unused=True)[0] is None


@pytest.mark.parametrize("options, name", [
    (dict(mode="hole"), "mode"), (dict(overlap=8), "overlap"), (dict(mode="random_block", overlap=1), "overlap"),
    (dict(adversarial_weight=-1), "adversarial_weight"), (dict(overlap_weight=-1), "overlap_weight"),
    (dict(mode="random_block", blocks=0), "blocks"), (dict(backbone="vit_tiny"), "backbone"),
])
def test_bad_options_name_the_argument(options, name):
    options = {"backbone": "resnet10", **options}
    with pytest.raises(ValueError, match=name):
        make_task("inpainting", image_size=32, **options)
