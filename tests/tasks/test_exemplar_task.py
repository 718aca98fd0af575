import pytest
import torch
from task_helpers import assert_loss_falls, assert_split_invariant, make_batch

from fastssl import random
from fastssl.tasks import make_task


def test_transform_shapes_and_batch_split(images):
    task = make_task("exemplar", backbone="resnet10", image_size=32, num_samples=64)
    batch = assert_split_invariant(task, images)
    assert batch["inputs"].shape == (4, 3, 32, 32) and batch["inputs"].dtype == torch.float32


def test_bank_updated_with_momentum(images):
    task = make_task("exemplar", backbone="resnet10", image_size=32, num_samples=16, negatives=3)
    ids = torch.tensor([2, 7])
    batch = make_batch(task, images[:2], ids=ids)
    before = task.memory.bank.clone()
    out = task(batch)
    out["loss"].backward()
    after = task.memory.bank
    assert not torch.equal(after[ids], before[ids])
    others = torch.ones(16, dtype=torch.bool)
    others[ids] = False
    assert torch.equal(after[others], before[others])
    torch.testing.assert_close(after.norm(dim=1), torch.ones(16))
    assert "memory.bank" in task.state_dict()


def test_loss_falls(images):
    task = make_task("exemplar", backbone="resnet10", image_size=32, num_samples=32)
    assert_loss_falls(task, make_batch(task, images[:4], ids=torch.tensor([0, 9, 17, 30])))


def test_ids_outside_the_bank(images):
    task = make_task("exemplar", backbone="resnet10", image_size=32, num_samples=4)
    with pytest.raises(ValueError, match="num_samples"):
        task(make_batch(task, images[:2], ids=torch.tensor([1, 4])))


@pytest.mark.parametrize("options, name", [
    (dict(), "num_samples"), (dict(num_samples=1), "num_samples"), (dict(num_samples=8, temperature=0), "temperature"),
    (dict(num_samples=8, momentum=1.5), "momentum"), (dict(num_samples=8, negatives=0), "negatives"),
])
def test_bad_options_name_the_argument(options, name):
    with pytest.raises((ValueError, TypeError), match=name):
        make_task("exemplar", backbone="resnet10", image_size=32, **options)


def test_memory_bank_loss_leaves_out_the_own_row_among_the_negatives():
    from fastssl.tasks.base import MemoryBank

    bank = MemoryBank(6, 4, seed=1)
    ids, q = torch.tensor([1, 4]), torch.nn.functional.normalize(torch.randn(2, 4), dim=1)
    neg = random.randint(ids[:1], 3, 6, seed=1, epoch=2, view=random.MEMORY_BANK_VIEW)[0]
    keys = torch.cat([bank.bank[ids], bank.bank[neg]])
    logits = q @ keys.T / 0.07
    for i in range(2):  # the sample's own id drawn as a negative is not in its denominator
        hits = (neg == ids[i]).nonzero()
        if len(hits):
            logits[i, 2 + int(hits[0])] = float("-inf")
    expected = torch.nn.functional.cross_entropy(logits, torch.arange(2))
    torch.testing.assert_close(bank.loss(q, ids, 2, 3, 0.07), expected)
