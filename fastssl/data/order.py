"""Which samples each rank reads in each epoch, in which batches.

The order is a function of (seed, epoch, dataset size) only: every sample gets a 32-bit key from
:func:`fastssl.random.bits` keyed by (seed, epoch, id) and the epoch visits samples by (key, id).
The global order is dealt to ``num_shards`` ranks round-robin (shard s takes positions s, s + n, ...),
so shards cover the dataset and do not depend on the batch size. Every shard gets the same number of
samples, ``ceil(size / num_shards)``, so that every rank runs the same number of steps: when ``size``
is not a multiple of ``num_shards`` the order is padded by wrapping around (torch's DistributedSampler
does the same), i.e. the first ``num_shards * ceil(size / num_shards) - size`` samples of the epoch's
order are visited a second time, by the shards that would otherwise be one short. Within a shard every
sample appears once. Each shard is then cut into batches; ``drop_last`` drops its last partial one,
on every shard alike.

Example:
    >>> order = EpochOrder(10, batch_size=4, seed=0)
    >>> batches = order.batches(epoch=0)
    >>> [len(b) for b in batches], sorted(int(i) for b in batches for i in b) == list(range(10))
    ([4, 4, 2], True)
    >>> [len(EpochOrder(31, batch_size=8, drop_last=True, shard_id=s, num_shards=2)) for s in (0, 1)]
    [2, 2]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import random

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
        if self.num_shards > self.size:
            raise ValueError(f"num_shards = {self.num_shards} exceeds the dataset's {self.size} samples (every shard needs "
                             f"one of its own)")
        if self.drop_last and self.shard_size < self.batch_size:
            raise ValueError(f"drop_last with batch_size {self.batch_size} leaves no batch: shard {self.shard_id} "
                             f"holds {self.shard_size} samples")

    @property
    def shard_size(self) -> int:
        """Samples every shard visits per epoch (before drop_last), padding included: ceil(size / num_shards)."""
        return -(-self.size // self.num_shards)

    def __len__(self) -> int:
        """Batches per epoch for this shard."""
        full, rest = divmod(self.shard_size, self.batch_size)
        return full + (rest > 0 and not self.drop_last)

    def _checked(self, visit) -> torch.Tensor:
        visit = torch.as_tensor(visit, dtype=torch.int64).cpu()
        if visit.shape != (self.size,):
            raise ValueError(f"visit must hold one sample id per position, shape ({self.size},), got "
                             f"{tuple(visit.shape)}")
        if len(visit) and (int(visit.min()) < 0 or int(visit.max()) >= self.size):
            raise ValueError(f"visit's ids must lie in [0, {self.size}), got [{int(visit.min())}, {int(visit.max())}]")
        return visit

    def permutation(self, epoch: int) -> torch.Tensor:
        """(size,) int64: the global visiting order of the epoch (identity without shuffle)."""
        ids = torch.arange(self.size, dtype=torch.int64)
        if not self.shuffle:
            return ids
        keys = random.bits(ids, [random.SHUFFLE_SLOT], seed=self.seed, epoch=epoch)[:, 0]
        return ids[torch.argsort(keys, stable=True)]  # ties (equal keys) in id order

    def batches(self, epoch: int, visit: torch.Tensor | None = None) -> list[torch.Tensor]:
        """This shard's batches of sample ids for ``epoch``, in order. ``visit``: (size,) int64 sample ids in
        [0, size) to visit instead of the epoch's permutation (repeats allowed: a task's own sampling, e.g.
        DeepCluster's uniform over clusters), dealt to the shards and cut into batches the same way."""
        order = self.permutation(epoch) if visit is None else self._checked(visit)
        padded = torch.cat([order, order[: self.num_shards * self.shard_size - self.size]])
        mine = padded[self.shard_id::self.num_shards]
        return list(mine[: len(self) * self.batch_size if self.drop_last else None].split(self.batch_size))
