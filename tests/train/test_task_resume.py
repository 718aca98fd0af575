"""Tasks with state of their own resume exactly: a run stopped after a checkpoint and resumed gives the losses of an
uninterrupted run (Jigsaw++'s keyed donors and permutation set, Split-Brain's online colour prior)."""

import pytest

from fastssl.data import synthetic
from fastssl.train import TrainConfig, train

#: small settings per task
OPTIONS = {"jigsaw_pp": {"permutations": 24, "replace_tiles": 2}, "split_brain": {"prior_batches": 3}}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return synthetic.write_image_folder(str(tmp_path_factory.mktemp("img")), classes=2, per_class=8, seed=0)


def config(data, out, task, **overrides):
    settings = dict(task=task, data=data, out=str(out), backbone="resnet10", image_size=48, batch_size=4, epochs=2,
                    progress=False, task_options=OPTIONS[task], checkpoint_every=2, decoder="pil")
    return TrainConfig(**{**settings, **overrides})


@pytest.mark.parametrize("task", sorted(OPTIONS))
def test_kill_and_resume_gives_the_same_losses(folder, tmp_path, task):
    whole = train(config(folder, tmp_path / "a", task))
    assert whole.steps == 8
    first = train(config(folder, tmp_path / "b", task, max_steps=6))
    assert first.steps == 6
    resumed = train(config(folder, tmp_path / "b", task, resume=True))
    assert resumed.steps == 8 and resumed.losses == whole.losses
