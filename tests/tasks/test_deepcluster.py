"""DeepCluster and cluster transfer: clustering per epoch, the uniform-over-clusters visit, the rebuilt head, and
training through the trainer with exact resume (the assignments live in the checkpoints)."""

import os

import pytest
import torch
from task_helpers import assert_loss_falls, make_batch, smooth_images

from fastssl.data import synthetic
from fastssl.tasks import make_task
from fastssl.train import TrainConfig, train
from fastssl.train.checkpoint import load


def blobs(n_per: int, k: int, dim: int = 64, seed: int = 0) -> torch.Tensor:
    """k well-separated Gaussian blobs of n_per rows each, blob by blob."""
    g = torch.Generator().manual_seed(seed)
    centres = 10 * torch.randn(k, dim, generator=g)
    return (centres[:, None] + torch.randn(k, n_per, dim, generator=g)).reshape(k * n_per, dim)


def task(**options):
    torch.manual_seed(0)
    settings = dict(backbone="resnet10", image_size=32, num_samples=60, clusters=3, pca_dim=16)
    return make_task("deepcluster", **{**settings, **options})


def test_clusters_of_separable_features_follow_the_blobs_and_each_epoch_once():
    t = task(pca_dim=2)  # the blobs' two principal directions: whitened and normalised, three separate arcs
    rows = blobs(20, 3)
    calls = []

    def features(module):
        calls.append(module)
        return rows, torch.arange(60)

    reset = t.prepare_epoch(0, features, size=60)
    assert calls == [t] and {id(p) for p in reset} == {id(t.head.weight), id(t.head.bias)}
    labels = t.assignments.view(3, 20)
    assert all(len(row.unique()) == 1 for row in labels) and len(labels[:, 0].unique()) == 3
    assert float(t.head.weight.detach().std()) == pytest.approx(0.01, rel=0.2) and float(t.head.bias.abs().max()) == 0
    assert t.prepare_epoch(0, features, size=60) == [] and len(calls) == 1, "an epoch is clustered once"
    t.prepare_epoch(1, features, size=60)
    assert len(calls) == 2 and int(t.clustered_epoch) == 1
    every = task(pca_dim=2, recluster_every=3)
    for epoch in range(7):
        every.prepare_epoch(epoch, features, size=60)
    assert len(calls) == 2 + 3 and int(every.clustered_epoch) == 6, "epochs 0, 3 and 6 cluster"


def test_the_visit_is_uniform_over_non_empty_clusters_and_keyed():
    t = task(num_samples=100, clusters=4)
    assignments = torch.full((100,), -1)
    assignments[:70] = 0  # a big cluster
    assignments[70:80] = 1
    assignments[80:85] = 3  # cluster 2 empty; ids 85.. unreadable (no cluster)
    t.assignments.copy_(assignments)
    visit = t.visit(5)
    assert visit.shape == (100,) and bool((assignments[visit] >= 0).all())
    counts = torch.bincount(assignments[visit], minlength=4)
    # 100 // 3 + 1 = 34 draws from each of the 3 non-empty clusters, shuffled, cut to 100: 32..34 each
    assert counts[2] == 0 and all(32 <= c <= 34 for c in counts[[0, 1, 3]].tolist()), counts
    assert len(visit[assignments[visit] == 3].unique()) == 5, "the small cluster's members repeat"
    assert torch.equal(visit, t.visit(5)) and not torch.equal(visit, t.visit(6))


def test_a_step_on_a_fixed_batch_lowers_the_loss_and_sobel_feeds_two_channels():
    for sobel in (False, True):
        t = task(num_samples=8, clusters=2, sobel=sobel)
        t.assignments.copy_(torch.tensor([0, 1] * 4))
        batch = make_batch(t, smooth_images(8))
        assert t.features(batch["inputs"]).shape == (8, t.feature_dim)
        assert t.backbone.net.conv1.in_channels == (2 if sobel else 3)
        assert_loss_falls(t, batch, steps=10)


def test_too_many_clusters_are_refused():
    with pytest.raises(ValueError, match="clusters"):
        task(num_samples=10, clusters=11)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return synthetic.write_image_folder(str(tmp_path_factory.mktemp("img")), classes=3, per_class=8, seed=0)


def config(data, out, task_name="deepcluster", **overrides):
    options = {"clusters": 4, "pca_dim": 16, "kmeans_iterations": 5}
    settings = dict(task=task_name, data=data, out=str(out), backbone="resnet10", image_size=32, batch_size=6,
                    epochs=2, progress=False, task_options=options, checkpoint_every=2, decoder="pil")
    return TrainConfig(**{**settings, **overrides})


def test_trains_reclusters_each_epoch_and_resumes_exactly(folder, tmp_path):
    whole = train(config(folder, tmp_path / "a"))
    assert whole.steps == 8  # 24 images / 6, 2 epochs
    state = load(whole.checkpoint)
    assert int(state["model"]["clustered_epoch"]) == 1 and int((state["model"]["assignments"] >= 0).sum()) == 24
    first = train(config(folder, tmp_path / "b", max_steps=6))  # stopped mid-epoch 1, after its clustering
    assert first.steps == 6
    resumed = train(config(folder, tmp_path / "b", resume=True))
    assert resumed.steps == 8 and resumed.losses == whole.losses


def test_cluster_transfer_clusters_a_teachers_features_once(folder, tmp_path):
    teacher = train(config(folder, tmp_path / "teacher", "rotation", task_options={}, epochs=1))
    options = {"teacher": teacher.checkpoint, "clusters": 3, "kmeans_iterations": 5}
    student = train(config(folder, tmp_path / "student", "cluster_transfer", task_options=options,
                           backbone="resnet18"))
    assert student.steps == 8 and all(map(torch.isfinite, torch.tensor(student.losses)))
    state = load(student.checkpoint)
    assert int(state["model"]["clustered_epoch"]) == 0, "clustered once, before the first epoch"
    assert not any(key.startswith("_teacher") for key in state["model"]), "the teacher is neither trained nor saved"
    assert os.path.exists(teacher.checkpoint)
