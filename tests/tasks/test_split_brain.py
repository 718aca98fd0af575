"""Split-brain: Lab inputs and both halves' targets, L bins, the loss, features of both halves, training, the CLI."""

import pytest
import torch
import torch.nn.functional as F
from task_helpers import assert_loss_falls, assert_split_invariant, make_batch

from fastssl.cli import main
from fastssl.data import synthetic
from fastssl.ops import ab_bins
from fastssl.tasks import make_task
from fastssl.tasks.split_brain import lightness_bins
from fastssl.train import TrainConfig, train
from fastssl.train.evaluate import extract
from fastssl.train.log import read_csv


@pytest.fixture(scope="module")
def task():
    torch.manual_seed(0)
    return make_task("split_brain", backbone="resnet10", image_size=32)


def test_inputs_and_targets_of_both_halves(task, images):
    batch = assert_split_invariant(task, images)
    inputs = batch["inputs"]
    assert inputs.shape == (4, 3, 32, 32) and inputs.dtype == torch.float32
    assert float(inputs[:, 0].min()) >= -50 and float(inputs[:, 0].max()) <= 50  # L − 50
    assert float(inputs[:, 1:].abs().max()) <= 128 and float(inputs[:, 1:].abs().max()) > 5  # a, b in Lab units
    assert batch["bin_index"].shape == (4, 5, 8, 8) and batch["bin_index"].dtype == torch.int64
    torch.testing.assert_close(batch["bin_weight"].sum(1), torch.ones(4, 8, 8))
    assert batch["l_index"].shape == (4, 8, 8) and batch["l_index"].dtype == torch.int64
    mean_l = F.avg_pool2d(inputs[:, 0] + 50, 4)  # the target: the bin of each 4 x 4 cell's mean L
    assert torch.equal(batch["l_index"], lightness_bins(mean_l))
    assert 0 <= int(batch["l_index"].min()) and int(batch["l_index"].max()) < 50


def test_logits_of_both_halves(task, images):
    batch = make_batch(task, images[:2])
    assert task.logits(batch["inputs"], (8, 8)).shape == (2, len(ab_bins()), 8, 8)
    assert task.l_logits(batch["inputs"], (8, 8)).shape == (2, 50, 8, 8)
    coarse = make_task("split_brain", backbone="resnet10", image_size=32, l_bins=10)
    assert coarse.l_logits(batch["inputs"], (8, 8)).shape == (2, 10, 8, 8)
    assert int(make_batch(coarse, images[:2])["l_index"].max()) < 10


@pytest.mark.parametrize("bins", [50, 7])
def test_lightness_bins_cover_0_to_100(bins):
    lightness = torch.linspace(0, 100, 2001)
    index = lightness_bins(lightness, bins)
    assert int(index[0]) == 0 and int(index[-1]) == bins - 1
    assert torch.equal(index.unique(), torch.arange(bins))  # every bin used, none beyond
    assert bool((index.diff() >= 0).all())
    width = 100 / bins
    centres = (torch.arange(bins) + 0.5) * width
    assert torch.equal(lightness_bins(centres, bins), torch.arange(bins))
    assert lightness_bins(torch.tensor([-1.0, 101.0]), bins).tolist() == [0, bins - 1]


def test_loss_is_the_sum_of_both_halves_and_falls(images):
    torch.manual_seed(0)
    task = make_task("split_brain", backbone="resnet10", image_size=32)
    batch = make_batch(task, images[:4])
    out = task(batch)
    torch.testing.assert_close(out["loss"].detach(), out["ab_loss"] + out["l_loss"])
    assert set(out) == {"loss", "ab_loss", "l_loss", "ab_accuracy", "l_accuracy"}
    assert_loss_falls(task, batch)


def test_features_concatenate_both_halves(task):
    task.eval()
    l_net, ab_net = task.backbone.l_net, task.backbone.ab_net
    assert l_net.feature_dim == ab_net.feature_dim == 256  # each half at half a ResNet-10's width
    assert task.feature_dim == 512
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = task.features(x)
        assert before.shape == (2, 512)
        for half, own in ((l_net, slice(0, 256)), (ab_net, slice(256, 512))):
            other = slice(256, 512) if own.start == 0 else slice(0, 256)
            half.net.conv1.weight.mul_(-1)
            after = task.features(x)
            half.net.conv1.weight.mul_(-1)
            assert not torch.allclose(after[:, own], before[:, own])  # its own columns change
            torch.testing.assert_close(after[:, other], before[:, other], rtol=0, atol=0)  # the other half's do not
    task.train()


def test_width_sets_each_half(images):
    wide = make_task("split_brain", backbone="resnet10", image_size=32, width=1.0)
    assert wide.backbone.l_net.feature_dim == 512 and wide.feature_dim == 1024
    assert wide(make_batch(wide, images[:2]))["loss"].isfinite()


@pytest.mark.parametrize("options, name", [
    (dict(l_bins=1), "l_bins"), (dict(width=0), "width"), (dict(backbone="vit_tiny"), "backbone"),
    (dict(prior_batches=-1), "prior_batches"),
])
def test_bad_options_name_the_argument(options, name):
    options = {"backbone": "resnet10", **options}
    with pytest.raises(ValueError, match=name):
        make_task("split_brain", image_size=32, **options)


def test_a_few_training_steps_and_evaluation_features(tmp_path):
    data = synthetic.write_image_folder(str(tmp_path / "data"), classes=2, per_class=4, min_size=36, max_size=44,
                                        seed=0)
    config = TrainConfig(task="split_brain", data=data, out=str(tmp_path / "run"), backbone="resnet10",
                         image_size=32, batch_size=4, epochs=1, max_steps=2, decoder="pil", progress=False,
                         num_threads=1, task_options={"l_bins": 20, "prior_batches": 1})
    result = train(config)
    assert result.steps == 2 and all(torch.isfinite(torch.tensor(result.losses)))
    rows = read_csv(str(tmp_path / "run" / "log.csv"))
    assert len(rows) == 2 and all(row["l_loss"] > 0 and row["ab_loss"] > 0 for row in rows)
    features, labels = extract(make_task("split_brain", backbone="resnet10", image_size=32), data, decoder="pil")
    assert features.shape == (8, 512) and labels.shape == (8,)  # what the kNN and the linear probe take


def test_cli_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", "split_brain", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    lines = text.split("split_brain options")[1].splitlines()[1:]
    options = {line.split()[0]: line.split(None, 2)[1:] for line in lines}
    assert options["l_bins"] == ["int", "(default: 50)"]
    assert options["width"] == ["float", "(default: 0.5)"]
    assert set(options) == {"l_bins", "width", "prior_batches", "lam"}
