"""MoCo: the loss is MoCo's cross-entropy on the queue as it was before the step, the queue is a ring written
after the loss, the key encoder follows the query encoder by momentum only, shuffled BN in one process is
per-group BN over a keyed permutation, checkpoints hold the queue and the key encoder."""

import pytest
import torch
import torch.nn.functional as F
from task_helpers import assert_loss_falls, assert_split_invariant, make_batch

from fastssl.cli import task_options
from fastssl.tasks import make_task
from fastssl.tasks.moco import in_groups


def task_(**options):
    torch.manual_seed(0)
    return make_task("moco", backbone="resnet10", image_size=32, **{"queue_size": 16, **options})


def moco_loss_float64(q, k, queue, temperature):
    """The authors' logits [q.k, q.queue] / tau, label 0, cross-entropy, in float64."""
    q, k, queue = q.double(), k.double(), queue.double()
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], 1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long))


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_views_depend_on_ids_not_on_the_batch(images, version):
    task = task_(version=version)
    whole = assert_split_invariant(task, images)["views"]
    assert len(whole) == 2 and whole[0].shape == (4, 3, 32, 32)
    assert not torch.equal(whole[0], whole[1])
    view = task.recipe.views[0]
    assert (view.blur_p, view.jitter_p, view.jitter) == ((0.0, 1.0, (0.4,) * 4) if version == "v1" else
                                                          (0.5, 0.8, (0.4, 0.4, 0.4, 0.1)))


def test_versions_set_the_head_and_temperature():
    v1, v2 = task_(version="v1"), task_(version="v2")
    assert isinstance(v1.head, torch.nn.Linear) and v1.temperature == 0.07
    assert [type(m).__name__ for m in v2.head] == ["Linear", "ReLU", "Linear"] and v2.temperature == 0.2
    assert v2.head[0].out_features == v2.feature_dim and v2.head[2].out_features == 128
    assert task_(version="v1", temperature=0.5).temperature == 0.5
    assert set(task_options("moco")) == {"version", "queue_size", "momentum", "temperature", "dim", "shuffle_bn",
                                         "bn_groups"}


def test_eval_loss_is_the_float64_transcription_and_leaves_the_state_alone(images):
    task = task_().eval()
    batch = make_batch(task, images[:4])
    state = {k: v.clone() for k, v in task.state_dict().items()}
    with torch.no_grad():
        q = F.normalize(task.head(task.backbone(batch["views"][0])), dim=1)
        k = F.normalize(task.key_encoder(batch["views"][1]), dim=1)
        out = task(batch)
    torch.testing.assert_close(out["loss"].double(), moco_loss_float64(q, k, task.queue, 0.2), rtol=1e-5, atol=1e-6)
    assert all(torch.equal(v, task.state_dict()[name]) for name, v in state.items())


def test_training_step_reads_the_queue_before_enqueueing_the_keys(images):
    task = task_(bn_groups=2).train()
    ids = torch.tensor([3, 9, 4, 1])
    batch = make_batch(task, images[:4], ids=ids, epoch=2)
    before = task.queue.clone()
    out = task(batch)
    out["loss"].backward()  # the queue written after the loss does not disturb backward
    with torch.no_grad():  # train-mode BN uses batch statistics: recomputing gives the step's q and k
        q = task.query_embeddings(batch["views"][0])
        k, every_key = task.key_embeddings(batch["views"][1], ids, 2)
    assert torch.equal(k, every_key)  # one process: this rank's keys are all the keys
    torch.testing.assert_close(out["loss"].double(), moco_loss_float64(q, k, before, 0.2), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(task.queue[:4], k, rtol=0, atol=0)  # the newest keys are the batch's keys
    assert torch.equal(task.queue[4:], before[4:]) and int(task.queue_ptr) == 4
    positive = (q * k).sum(1) >= (q @ before.T).amax(1)
    assert float(out["positive_top1"]) == positive.float().mean().item()


def test_shuffled_bn_in_one_process_is_per_group_bn_of_a_keyed_permutation(images):
    task = task_(bn_groups=2).train()
    x = make_batch(task, images)["views"][1]  # 8 samples: 2 groups of 4
    ids = torch.arange(20, 28)
    perm = task.shuffle_permutation(ids, epoch=1)
    assert sorted(perm.tolist()) == list(range(8)) and perm.tolist() != list(range(8))
    assert torch.equal(perm, task.shuffle_permutation(ids, epoch=1))  # keyed: the same after a resume
    assert not torch.equal(perm, task.shuffle_permutation(ids, epoch=2))
    with torch.no_grad():
        keys, _ = task.key_embeddings(x, ids, epoch=1)
        expected = torch.empty_like(keys)
        for group in perm.tensor_split(2):  # each group of the permuted batch through the key encoder alone
            expected[group] = F.normalize(task.key_encoder(x[group]), dim=1)
        torch.testing.assert_close(keys, expected, rtol=1e-5, atol=1e-6)
        whole_batch = F.normalize(task.key_encoder(x), dim=1)
        assert not torch.allclose(keys, whole_batch, atol=1e-3)  # the statistics differ from the whole batch's
        queries = task.query_embeddings(x)
        groups = F.normalize(in_groups(lambda p: task.head(task.backbone(p)), x, 2), dim=1)
        torch.testing.assert_close(queries, groups, rtol=1e-5, atol=1e-6)
    assert task.bn_groups_for(8) == 2 and task.bn_groups_for(3) == 1 and task_(bn_groups=8).bn_groups_for(6) == 3
    assert task_(shuffle_bn=False).bn_groups_for(8) == 1 and task.eval().bn_groups_for(8) == 1


def test_enqueue_is_a_ring():
    task = task_(queue_size=6, dim=2)
    keys = torch.arange(20, dtype=torch.float32).view(10, 2)
    task.enqueue(keys[:4])
    assert torch.equal(task.queue[:4], keys[:4]) and int(task.queue_ptr) == 4
    task.enqueue(keys[4:8])  # wraps around the end: rows 4, 5, 0, 1
    assert torch.equal(task.queue, keys[[6, 7, 2, 3, 4, 5]]) and int(task.queue_ptr) == 2
    task.enqueue(keys[:9])  # more keys than rows: as if written one by one from row 2, the last 6 stay
    assert int(task.queue_ptr) == (2 + 9) % 6
    assert torch.equal(task.queue, keys[[4, 5, 6, 7, 8, 3]])


def test_key_encoder_follows_by_momentum_not_by_the_optimiser(images):
    task = task_(momentum=0.9).train()
    query = [*task.backbone.parameters(), *task.head.parameters()]
    keyed = list(task.key_encoder.parameters())
    assert all(torch.equal(k, q) and not k.requires_grad for k, q in zip(keyed, query))  # a copy, frozen
    optimizer = torch.optim.SGD(task.parameters(), lr=0.5)
    batch = make_batch(task, images[:4])
    for _ in range(2):
        before_k, before_q = [k.clone() for k in keyed], [q.detach().clone() for q in query]
        out = task(batch)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        assert all(k.grad is None for k in keyed)
        for k, k0, q0 in zip(keyed, before_k, before_q):  # the query encoder as it was before this step's update
            torch.testing.assert_close(k, 0.9 * k0 + 0.1 * q0, rtol=1e-6, atol=1e-7)
    assert any(not torch.equal(q, q0) for q, q0 in zip(query, before_q))  # the query encoder did learn
    task.momentum_update()
    query_buffers = [*task.backbone.buffers(), *task.head.buffers()]
    assert all(torch.equal(k, q) for k, q in zip(task.key_encoder.buffers(), query_buffers))


def test_loss_falls_against_a_large_queue(images):
    task = task_(queue_size=4096)
    assert_loss_falls(task, make_batch(task, images[:4]), steps=6)


def test_checkpoint_round_trip_holds_queue_pointer_and_key_encoder(images, tmp_path):
    task = task_(momentum=0.5).train()
    batch = make_batch(task, images[:4])
    for _ in range(2):
        task(batch)["loss"].backward()
    state = task.state_dict()
    assert {"queue", "queue_ptr"} <= set(state) and any(name.startswith("key_encoder.") for name in state)
    torch.save(state, tmp_path / "moco.pt")
    torch.manual_seed(1)
    restored = make_task("moco", backbone="resnet10", image_size=32, queue_size=16, momentum=0.5)
    restored.load_state_dict(torch.load(tmp_path / "moco.pt"))
    assert all(torch.equal(v, restored.state_dict()[name]) for name, v in state.items())
    assert int(restored.queue_ptr) == 8
    out, again = task(batch), restored.train()(batch)
    assert torch.equal(out["loss"], again["loss"]) and torch.equal(task.queue, restored.queue)


@pytest.mark.parametrize("options, name", [
    (dict(version="v3"), "version"), (dict(queue_size=0), "queue_size"), (dict(momentum=1.5), "momentum"),
    (dict(temperature=0), "temperature"), (dict(dim=0), "dim"), (dict(shuffle_bn="yes"), "shuffle_bn"),
    (dict(bn_groups=0), "bn_groups"),
])
def test_bad_options_name_the_argument(options, name):
    with pytest.raises((ValueError, TypeError), match=name):
        task_(**options)
