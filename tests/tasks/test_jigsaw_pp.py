"""Jigsaw++: the paper's defaults, replaced tiles keyed by sample, gray puzzles, a falling loss, fastssl train."""

import os

import pytest
import torch
from task_helpers import assert_loss_falls, make_batch

from fastssl.cli import main, task_options
from fastssl.data import synthetic
from fastssl.ops.jigsaw import hamming_stats
from fastssl.ragged import RaggedImages
from fastssl.tasks import make_task


def test_paper_defaults():
    task = make_task("jigsaw_pp", backbone="resnet10", image_size=32)
    assert task.permutations.shape == (701, 9) and hamming_stats(task.permutations)[0] >= 3
    assert task.classifier[-1].out_features == 701 and task.occlusion is None
    assert (task.replace_tiles, task.grayscale_puzzle, task.grayscale) == (2, 0.7, 0.0)
    options = task_options("jigsaw_pp")
    assert options["permutations"] == ("int", "701") and options["replace_tiles"] == ("int", "2")
    assert options["grayscale_puzzle"] == ("float", "0.7") and options["grid"] == ("int", "3")  # the jigsaw task's too


def test_transform_replaces_tiles_and_is_keyed(images):
    task = make_task("jigsaw_pp", backbone="resnet10", image_size=32, permutations=20)
    ids = torch.tensor([11, 5, 42, 7, 3, 9])
    batch = make_batch(task, images[:6], ids=ids, epoch=2)
    assert batch["tiles"].shape == (6, 9, 3, 9, 9) and batch["tiles"].dtype == torch.float32
    assert batch["replaced"].shape == (6, 9) and batch["replaced"].dtype == torch.bool
    assert batch["replaced"].any() and int(batch["replaced"].sum(1).max()) <= 2
    assert 0 <= int(batch["targets"].min()) <= int(batch["targets"].max()) < 20
    assert batch["tiles"].mean((-1, -2)).abs().max() < 1e-4  # every tile normalised by its own statistics
    # the same samples in another order: the same puzzles (the donors follow the samples, not their positions)
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    again = make_batch(task, images[:6][order], ids=ids[order], epoch=2)
    for key in ("tiles", "targets", "replaced"):
        assert torch.equal(again[key], batch[key][order]), key
    # another batch: the same labels, cells replaced and own tiles; only the donors' tiles may differ
    half = make_batch(task, images[:3], ids=ids[:3], epoch=2)
    assert torch.equal(half["targets"], batch["targets"][:3]) and torch.equal(half["replaced"], batch["replaced"][:3])
    own = ~half["replaced"]
    assert torch.equal(half["tiles"][own], batch["tiles"][:3][own])


def test_puzzles_are_gray_seventy_percent_of_the_time():
    task = make_task("jigsaw_pp", backbone="resnet10", image_size=32, permutations=10)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    tiles = task.transform(RaggedImages.from_dense(x), torch.arange(64), epoch=0)["tiles"]
    gray = (tiles[:, :, 0] == tiles[:, :, 1]).flatten(1).all(1) & (tiles[:, :, 1] == tiles[:, :, 2]).flatten(1).all(1)
    assert 0.5 < gray.float().mean() < 0.9


def test_a_batch_of_one_replaces_nothing(images):
    task = make_task("jigsaw_pp", backbone="resnet10", image_size=32, permutations=10)
    assert not make_batch(task, images[:1])["replaced"].any()


def test_loss_falls(images):
    task = make_task("jigsaw_pp", backbone="resnet10", image_size=32, permutations=10)
    assert_loss_falls(task, make_batch(task, images[:4]))


def test_occlusion_head_is_trained_when_weighted(images):
    task = make_task("jigsaw_pp", backbone="resnet10", image_size=32, permutations=10, occlusion_weight=1.0)
    batch = make_batch(task, images[:4])
    out = task(batch)
    assert set(out) == {"loss", "accuracy", "occlusion_accuracy"} and 0 <= float(out["occlusion_accuracy"]) <= 1
    assert_loss_falls(task, batch)


@pytest.mark.parametrize("options, name", [
    (dict(permutations=0), "permutations"), (dict(min_distance=1), "min_distance"),
    (dict(permutations=800, min_distance=6), "min_distance"), (dict(replace_tiles=-1), "replace_tiles"),
    (dict(replace_tiles=10), "replace_tiles"), (dict(grayscale_puzzle=1.5), "grayscale_puzzle"),
    (dict(occlusion_weight=-1.0), "occlusion_weight"), (dict(grid=1), "grid"), (dict(tile=12), "tile"),
])
def test_bad_options_name_the_argument(options, name):
    with pytest.raises((ValueError, TypeError), match=name):
        make_task("jigsaw_pp", backbone="resnet10", image_size=32, **options)


def test_fastssl_train_jigsaw_pp(tmp_path, capsys):
    data = synthetic.write_image_folder(str(tmp_path / "data"), classes=2, per_class=4, min_size=36, max_size=44,
                                        seed=0)
    out = str(tmp_path / "run")
    assert main(["train", "jigsaw_pp", "--data", data, "--out", out, "--backbone", "resnet10", "--image-size", "32",
                 "--batch-size", "4", "--max-steps", "2", "--decoder", "pil", "--quiet", "--option",
                 "permutations=50", "--option", "occlusion_weight=0.5"]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    assert os.path.exists(os.path.join(out, "checkpoints", "step_2.pt"))
