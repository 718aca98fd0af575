"""Differentiable collectives over ``torch.distributed``, the pieces the distributed losses are built from.

- :func:`all_gather_rows`: every rank's rows, in rank order (any count per rank, even 0), with a
  backward that returns to each rank the gradient of its own rows summed over every rank's share;
- :func:`global_sum`: the sum of a value over ranks whose gradient is that of the local value alone;
- :func:`gather_samples`: every rank's per-sample rows keyed by sample id, each sample once, in id order (the
  shards of a sharded pass over a data set, put back together).

Both need an initialized process group in every rank of ``group`` (the world by default), and every
rank must call them. Integer and float tensors go through the backend as they are; float16 and bfloat16
rows travel as int16 (bit for bit), which every backend supports.

Example (outside a process group they say what is missing):
    >>> import torch
    >>> all_gather_rows(torch.ones(2, 3))
    Traceback (most recent call last):
    ...
    RuntimeError: all_gather_rows needs torch.distributed to be initialized (torch.distributed.init_process_group) in every process
"""

from __future__ import annotations

import torch


def require_process_group(caller: str, hint: str = ""):
    """``torch.distributed`` when a process group is initialized, else RuntimeError naming ``caller`` (and
    ``hint``, what to do instead)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(f"{caller} needs torch.distributed to be initialized (torch.distributed."
                           f"init_process_group) in every process" + (f"; {hint}" if hint else ""))
    return dist


class _AllGatherRows(torch.autograd.Function):
    """Concatenation of every rank's rows (unequal counts allowed). Backward: the gradient of the whole
    gathered tensor is summed over ranks (all-reduce) and each rank keeps the slice of its own rows, so
    that, when every rank back-propagates its share of the loss, each rank's rows receive the gradient
    of the sum of all shares: the single-process gradient."""

    @staticmethod
    def forward(ctx, x, sizes, rank, group):
        dist = require_process_group("all_gather_rows")
        longest = max(sizes)
        padded = x.new_zeros((longest,) + tuple(x.shape[1:]))
        padded[: x.shape[0]] = x
        wire = padded.view(torch.int16) if x.dtype in (torch.float16, torch.bfloat16) else padded
        parts = [torch.empty_like(wire) for _ in sizes]
        dist.all_gather(parts, wire.contiguous(), group=group)
        if wire is not padded:
            parts = [p.view(x.dtype) for p in parts]
        ctx.offset, ctx.rows, ctx.group = sum(sizes[:rank]), x.shape[0], group
        return torch.cat([p[:s] for p, s in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad):
        dist = require_process_group("all_gather_rows")
        total = grad.float().contiguous().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=ctx.group)
        return total[ctx.offset: ctx.offset + ctx.rows].to(grad.dtype), None, None, None


def _row_counts(rows: int, device: torch.device, group) -> tuple[list[int], int]:
    """(the row count of every rank, this rank's index in ``group``): one all-gather of one integer."""
    dist = require_process_group("all_gather_rows")
    count = torch.tensor([rows], dtype=torch.long, device=device)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size(group))]
    dist.all_gather(counts, count, group=group)
    return [int(c) for c in counts], dist.get_rank(group)


def all_gather_rows(x: torch.Tensor, group=None, sizes: list[int] | None = None) -> tuple[torch.Tensor, int]:
    """Differentiable all-gather of (n_r, ...) tensors with any n_r per rank.

    Returns (the rows of every rank in rank order, the offset of this rank's rows in it). Gradients
    flowing into the result are summed over ranks and returned to each rank's own rows. ``sizes``: every
    rank's n_r when the caller knows them (the trainer does, from its per-step agreement); otherwise they
    are gathered first, and read back to the host: on a GPU, a wait for the device.
    """
    if sizes is None:
        sizes, rank = _row_counts(x.shape[0], x.device, group)
    else:
        dist = require_process_group("all_gather_rows")
        sizes, rank = [int(n) for n in sizes], dist.get_rank(group)
        if len(sizes) != dist.get_world_size(group) or sizes[rank] != x.shape[0]:
            raise ValueError(f"sizes must hold every rank's row count ({dist.get_world_size(group)} of them, "
                             f"{x.shape[0]} for rank {rank}), got {sizes}")
    return _AllGatherRows.apply(x, sizes, rank, group), sum(sizes[:rank])


def global_sum(local: torch.Tensor, group=None) -> torch.Tensor:
    """A value equal to the sum of ``local`` over ranks whose gradient is that of ``local`` alone."""
    dist = require_process_group("global_sum")
    total = local.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
    return local + (total - local.detach())


@torch.no_grad()
def gather_samples(rows: torch.Tensor, ids: torch.Tensor, device=None, group=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows (N, ...), ids (N,)) of every rank, each sample once and in id order, on every rank, on the device
    of ``rows``: what a pass over a data set sharded over ranks gives (a shard padded by wrapping around repeats a
    few samples of another; their rows are equal, the first is kept). ``device``: where the collective runs
    (NCCL needs the GPU), default ``rows``' device. Not differentiable."""
    home = rows.device
    device = torch.device(device) if device is not None else home
    every, _ = all_gather_rows(rows.to(device), group)
    every_id, _ = all_gather_rows(ids.to(device=device, dtype=torch.int64), group)
    order = torch.argsort(every_id.cpu(), stable=True)
    sorted_ids = every_id.cpu()[order]
    first = torch.ones_like(sorted_ids, dtype=torch.bool)
    first[1:] = sorted_ids[1:] != sorted_ids[:-1]
    keep = order[first]
    return every.cpu()[keep].to(home), sorted_ids[first].to(ids.device)
