"""The decisions every rank of a data-parallel run takes together, over a CPU (gloo) group with a timeout.

A DDP step is collective: the gradient all-reduce in ``backward`` waits for every rank. A rank that
skips a step (its batch decoded to nothing) or stops (an error, the time limit) while its peers go on
leaves them waiting for ever. So before each step every rank states what it has — a batch or not, an
error, out of time, how many files its batch lost — in one small all-reduce, and all of them act on the
sums alike.

That all-reduce runs over a gloo group of its own, on CPU tensors: it never waits for the GPU (no host
sync), and its timeout turns a rank that is stuck or gone into a one-line :class:`TrainError` on the
others within ``timeout_s`` instead of a hang. The process group that :meth:`Ranks.join` creates under
``torchrun`` gets the same timeout (NCCL aborts a collective that exceeds it).

Example (one process: the sums are the values themselves):
    >>> ranks = Ranks.join("cpu", timeout_s=60)
    >>> ranks.rank, ranks.world, ranks.sum([1, 0, 3], "starting")
    (0, 1, [1, 0, 3])
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist


class TrainError(RuntimeError):
    """A training run cannot go on; the message (one line) says why and what to do."""


class Ranks:
    """This process's rank and world size, and the collective decisions of the run (see the module docstring)."""

    def __init__(self, rank: int, world: int, group, timeout_s: float):
        self.rank, self.world, self.group, self.timeout_s = rank, world, group, timeout_s

    @classmethod
    def join(cls, device_type: str, timeout_s: float) -> "Ranks":
        """Joins the process group under torchrun (``WORLD_SIZE`` > 1; NCCL on CUDA, gloo otherwise), or uses the
        one already initialised, and opens the gloo group for the decisions."""
        timeout = datetime.timedelta(seconds=timeout_s)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device_type == "cuda" else "gloo", timeout=timeout)
        if not dist.is_initialized() or dist.get_world_size() == 1:
            return cls(0, 1, None, timeout_s)
        return cls(dist.get_rank(), dist.get_world_size(), dist.new_group(backend="gloo", timeout=timeout), timeout_s)

    def sum(self, values: list[int], what: str) -> list[int]:
        """The element-wise sums of ``values`` over the ranks; ``what`` names the moment in the timeout's message."""
        if self.world == 1:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.int64)
        self._wait(lambda: dist.all_reduce(tensor, group=self.group), what)
        return tensor.tolist()

    def gather(self, value, what: str) -> list:
        """Every rank's ``value`` (picklable), in rank order, on every rank."""
        if self.world == 1:
            return [value]
        values = [None] * self.world
        self._wait(lambda: dist.all_gather_object(values, value, group=self.group), what)
        return values

    def _wait(self, collective, what: str) -> None:
        try:
            collective()
        except RuntimeError as error:  # gloo's timeout, or a peer that closed its connection
            raise TrainError(f"rank {self.rank} of {self.world}: no answer from the other ranks within "
                             f"{self.timeout_s:g} s while {what} (a rank is stuck or has stopped: its own output says "
                             f"why): {str(error).splitlines()[0] if str(error) else type(error).__name__}") from None


__all__ = ["Ranks", "TrainError"]
