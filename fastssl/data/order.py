"""Which samples each rank reads in each epoch, in which batches.

The order is a function of (seed, epoch, dataset size) only: every sample gets a 32-bit key from
:func:`fastssl.random.bits` keyed by (seed, epoch, id) and the epoch visits samples by (key, id).
The global order is dealt to ``num_shards`` ranks round-robin (shard s takes positions s, s + n, ...),
so shards are disjoint, cover the dataset, differ in length by at most one sample, and do not
depend on the batch size. Each shard is then cut into batches; ``drop_last`` drops its last partial one.

Example:
    >>> order = EpochOrder(10, batch_size=4, seed=0)
    >>> batches = order.batches(epoch=0)
    >>> [len(b) for b in batches], sorted(int(i) for b in batches for i in b) == list(range(10))
    ([4, 4, 2], True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import random

SHUFFLE_SLOT = 0x5348  # the slot of the shuffle keys in fastssl.random's counter space


@dataclass(frozen=True)
class EpochOrder:
    size: int  #: samples in the dataset
    batch_size: int
    seed: int = 0
    shuffle: bool = True
    drop_last: bool = False
    shard_id: int = 0
    num_shards: int = 1

    def __post_init__(self):
        if self.size <= 0:
            raise ValueError(f"size must be positive, got {self.size}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if not 0 <= self.shard_id < self.num_shards:
            raise ValueError(f"shard_id must be in [0, num_shards = {self.num_shards}), got {self.shard_id}")
        if self.shard_size == 0:
            raise ValueError(f"num_shards = {self.num_shards} exceeds the dataset's {self.size} samples: shard "
                             f"{self.shard_id} would get none")
        if self.drop_last and self.shard_size < self.batch_size:
            raise ValueError(f"drop_last with batch_size {self.batch_size} leaves no batch: shard {self.shard_id} "
                             f"holds {self.shard_size} samples")

    @property
    def shard_size(self) -> int:
        """Samples this shard visits per epoch (before drop_last)."""
        return (self.size - self.shard_id + self.num_shards - 1) // self.num_shards

    def __len__(self) -> int:
        """Batches per epoch for this shard."""
        full, rest = divmod(self.shard_size, self.batch_size)
        return full + (rest > 0 and not self.drop_last)

    def permutation(self, epoch: int) -> torch.Tensor:
        """(size,) int64: the global visiting order of the epoch (identity without shuffle)."""
        ids = torch.arange(self.size, dtype=torch.int64)
        if not self.shuffle:
            return ids
        keys = random.bits(ids, [SHUFFLE_SLOT], seed=self.seed, epoch=epoch)[:, 0]
        return ids[torch.argsort(keys, stable=True)]  # ties (equal keys) in id order

    def batches(self, epoch: int) -> list[torch.Tensor]:
        """This shard's batches of sample ids for ``epoch``, in order."""
        mine = self.permutation(epoch)[self.shard_id::self.num_shards]
        return list(mine[: len(self) * self.batch_size if self.drop_last else None].split(self.batch_size))
