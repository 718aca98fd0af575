import pytest
import torch
from task_helpers import assert_loss_falls, assert_split_invariant, make_batch

from fastssl.ops import patchify
from fastssl.tasks import make_task


def test_transform_shapes_and_batch_split(images):
    task = make_task("mae", backbone="vit_tiny", image_size=32)
    batch = assert_split_invariant(task, images)
    assert task.patch_size == 4
    assert batch["inputs"].shape == (4, 3, 32, 32) and batch["inputs"].dtype == torch.float32
    assert batch["ids_keep"].shape == (4, 16) and batch["ids_masked"].shape == (4, 48)
    assert batch["targets"].shape == (4, 48, 48) and batch["targets"].dtype == torch.float32
    # kept and removed patches partition the grid; targets are the norm-pix removed patches
    assert torch.equal(torch.cat([batch["ids_keep"], batch["ids_masked"]], 1).sort(1).values, torch.arange(64).expand(4, 64))
    raw = patchify(batch["inputs"], 4).gather(1, batch["ids_masked"][..., None].expand(-1, -1, 48))
    expected = (raw - raw.mean(-1, keepdim=True)) / (raw.var(-1, keepdim=True) + 1e-6).sqrt()
    torch.testing.assert_close(batch["targets"], expected, atol=1e-4, rtol=1e-4)


def test_decoder_output_and_features(images):
    task = make_task("mae", backbone="vit_tiny", image_size=32)
    batch = make_batch(task, images[:2])
    pred = task.decode(task.backbone.tokens(batch["inputs"], batch["ids_keep"]), batch["ids_restore"])
    assert pred.shape == (2, 64, 48)
    assert task.features(batch["inputs"]).shape == (2, 192)


def test_loss_falls(images):
    task = make_task("mae", backbone="vit_tiny", image_size=32)
    assert_loss_falls(task, make_batch(task, images[:4]))


@pytest.mark.parametrize("options, name", [
    (dict(mask_ratio=1.0), "mask_ratio"), (dict(decoder_dim=0), "decoder_dim"), (dict(decoder_dim=130), "decoder_dim"),
    (dict(decoder_heads=0), "decoder_heads"), (dict(backbone="resnet10"), "backbone"),
])
def test_bad_options_name_the_argument(options, name):
    options = {"backbone": "vit_tiny", **options}
    with pytest.raises(ValueError, match=name):
        make_task("mae", image_size=32, **options)
