"""Epoch order: every sample once per epoch over all shards, independent of batch size, fresh per epoch."""

import pytest
import torch

from fastssl.data import EpochOrder


def visited(order: EpochOrder, epoch: int) -> list[int]:
    return [int(i) for batch in order.batches(epoch) for i in batch]


@pytest.mark.parametrize("size,batch,shards", [(1, 1, 1), (10, 3, 1), (101, 8, 4), (7, 4, 3), (64, 64, 2), (5, 2, 5),
                                               (31, 8, 2), (32, 5, 3)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_shards_are_equal_and_cover_the_dataset(size, batch, shards, drop_last):
    """Every shard gets ceil(size / shards) samples (the same number of batches on every rank); the padding
    repeats the head of the epoch's order, never a sample within one shard."""
    per_shard = -(-size // shards)
    if drop_last and per_shard < batch:
        return
    for epoch in (0, 3):
        whole = visited(EpochOrder(size, batch, seed=5), epoch)
        ids = []
        for s in range(shards):
            order = EpochOrder(size, batch, seed=5, drop_last=drop_last, shard_id=s, num_shards=shards)
            mine = visited(order, epoch)
            assert len(order.batches(epoch)) == len(order) == len(EpochOrder(size, batch, drop_last=drop_last,
                                                                             num_shards=shards))
            assert all(len(b) == batch for b in order.batches(epoch)[:-1])
            assert len(set(mine)) == len(mine)
            ids += mine
        if not drop_last:
            padding = shards * per_shard - size
            assert sorted(ids) == sorted(list(range(size)) + whole[:padding])


def test_order_depends_on_seed_and_epoch_only():
    a = EpochOrder(1000, 32, seed=1)
    assert visited(a, 0) == visited(EpochOrder(1000, 7, seed=1), 0)  # the batch size does not change the order
    assert visited(a, 0) == visited(a, 0)
    assert visited(a, 0) != visited(a, 1)
    assert visited(a, 0) != visited(EpochOrder(1000, 32, seed=2), 0)
    assert visited(EpochOrder(10, 4, shuffle=False), 5) == list(range(10))
    # a shard's sequence is the global order (padded by wrapping to a multiple of 3) dealt round-robin
    whole = visited(a, 2)
    assert visited(EpochOrder(1000, 32, seed=1, shard_id=1, num_shards=3), 2) == (whole + whole[:2])[1::3]


def test_shuffle_is_roughly_uniform():
    first = torch.tensor([visited(EpochOrder(8, 8, seed=0), e)[0] for e in range(800)])
    counts = torch.bincount(first, minlength=8)
    assert counts.min() > 60 and counts.max() < 140, counts  # 100 expected per id; 5 sigma ~ 47


def test_drop_last():
    order = EpochOrder(10, 4, drop_last=True)
    assert len(order) == 2 and [len(b) for b in order.batches(0)] == [4, 4]
    # 31 samples on 2 ranks: both get 16 (rank 1 wraps around to the epoch's first sample), so 2 batches each
    assert [len(EpochOrder(31, 8, drop_last=True, shard_id=s, num_shards=2)) for s in (0, 1)] == [2, 2]
    assert [len(EpochOrder(10, 4, drop_last=True, shard_id=s, num_shards=2)) for s in (0, 1)] == [1, 1]


@pytest.mark.parametrize("kwargs,match", [
    (dict(size=0, batch_size=1), "size"), (dict(size=3, batch_size=0), "batch_size"),
    (dict(size=3, batch_size=1, shard_id=2, num_shards=2), "shard_id"),
    (dict(size=3, batch_size=4, drop_last=True), "drop_last"),
    (dict(size=3, batch_size=1, shard_id=3, num_shards=4), "exceeds"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EpochOrder(**kwargs)
