"""MoCo (He et al. 2020) and MoCo v2 (Chen et al. 2020): a query encoder trained against a momentum key encoder
and a queue of past keys.

Each image gives two views (``fastssl.ops.augment`` in ``transform``): the query view x_q and the key view x_k.
q = normalise(head(backbone(x_q))) with gradient; k = normalise(key_encoder(x_k)) without, where the key
encoder is a copy of backbone + head whose parameters follow the query encoder's by momentum
(θ_k ← m·θ_k + (1 − m)·θ_q, m = 0.999, updated at the start of every training forward, before the keys;
its buffers — BatchNorm statistics — are copied). The loss is the cross-entropy of the logits
[q·k, q·queue] / τ with label 0 (``fastssl.ops.queue_info_nce_loss``, which never materialises them);
afterwards the keys of the global batch are enqueued. Metric ``positive_top1``: how often q·k is the top logit.

- **v1**: linear head to ``dim`` (128), τ 0.07, views cropped 0.2–1 of the area, colour jitter 0.4 on all four
  factors (always applied), grayscale p 0.2, flip (MoCo v1 applies grayscale before the jitter; fastssl's
  augment applies it after, which leaves grayscale images grayscale either way).
- **v2** (the default): MLP head Linear(D, D) → ReLU → Linear(D, dim), D the backbone's feature dim (2048 for a
  ResNet-50, as published), τ 0.2, the ``fastssl.recipes.mocov2`` views (jitter 0.4/0.4/0.4/0.1 with p 0.8,
  grayscale 0.2, blur p 0.5). The cosine schedule is the trainer's.

**The queue** is a persistent (queue_size, dim) float32 buffer of L2-normalised keys, seeded random unit
vectors at first, with a persistent write pointer ``queue_ptr``; both, and the key encoder, are module state,
so checkpoints (``task.state_dict()``) hold them and a resumed run continues exactly. The loss reads a
snapshot of the queue (``queue.clone()``), then — still inside forward, after the loss is built, without
gradient — the batch's detached keys are written at the pointer. The tensor autograd saved for backward is
the snapshot, which nothing modifies. Distributed, the keys enqueued are every rank's (gathered in rank order,
:func:`fastssl.distributed.all_gather_rows`), so all ranks hold the same queue. Any ``queue_size`` >= 1 works:
the queue is a ring, so a batch that does not divide it (the authors' code asserts that it does; here a batch
that lost an undecodable file, for one) wraps around its end, and a batch larger than the queue leaves only
its last ``queue_size`` keys.

**Shuffled BN** (``shuffle_bn=True``, in training mode). BatchNorm computes statistics over the samples it sees
together; if a query and its key were normalised with statistics of the same samples, the model could find the
positive by that shared signal instead of by content. The authors normalise per GPU and compute the keys on a
batch shuffled across GPUs:

- *Distributed* (world > 1): every rank's query views pass its own BN (per-rank statistics). The key views
  are gathered from all ranks in rank order, permuted by one permutation of the global batch that every rank
  computes alike (argsort of a hash of (seed, epoch, sample id), :mod:`fastssl.random`: no RNG state, the same
  after a resume), rank r encodes the permuted rows [offset_r, offset_r + n_r) with its key encoder (BN over
  that group), the keys are gathered back and un-permuted; each rank keeps its own rows for the loss and
  enqueues all of them.
- *One process*: the same, with ``bn_groups`` emulated GPUs. The batch of B is cut into
  G = min(bn_groups, B // 2) consecutive groups (``torch.tensor_split``; at least 2 samples in each) and the
  query encoder runs once per group, so its BN statistics are per group as on G GPUs; the key views are
  permuted as above (a permutation of the batch's ids), cut into G groups, encoded group by group, and
  un-permuted. The BN running statistics are then updated once per group (they are used for evaluation only).
  With G equal to a run's world size and the same global batch, this gives the distributed run's keys.

With ``shuffle_bn=False`` (or in eval mode) each encoder sees the rank's whole batch at once, unshuffled.

Example:
    >>> import torch
    >>> from fastssl.ragged import RaggedImages
    >>> task = MoCoTask("resnet10", image_size=32, queue_size=64)
    >>> ids = torch.arange(4)
    >>> batch = task.transform(RaggedImages.from_dense(torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8)),
    ...                        ids, epoch=0)
    >>> [v.shape for v in batch["views"]]
    [torch.Size([4, 3, 32, 32]), torch.Size([4, 3, 32, 32])]
    >>> batch.update(ids=ids, epoch=0)
    >>> out = task(batch)
    >>> sorted(out), int(task.queue_ptr)
    (['loss', 'positive_top1'], 4)
"""

from __future__ import annotations

import copy
from dataclasses import replace
from itertools import chain

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .. import random, recipes
from .._validation import check_int, check_number
from ..distributed import all_gather_rows
from ..ops.augment import augment
from ..ops.nt_xent import queue_info_nce_loss
from .base import Task

#: version -> default temperature
TEMPERATURES = {"v1": 0.07, "v2": 0.2}


def mocov1(size: int = 224) -> recipes.Recipe:
    """MoCo v1's two views: crop 0.2–1, colour jitter 0.4 on all four factors (always), grayscale 0.2, flip."""
    view = replace(recipes.mocov2(size).views[0], jitter=(0.4, 0.4, 0.4, 0.4), jitter_p=1.0, blur_p=0.0)
    return recipes.Recipe("mocov1", (view, view))


def projection_head(version: str, feature_dim: int, dim: int) -> nn.Module:
    """v1: Linear(feature_dim, dim); v2: Linear(feature_dim, feature_dim) → ReLU → Linear(feature_dim, dim)."""
    if version == "v1":
        return nn.Linear(feature_dim, dim)
    return nn.Sequential(nn.Linear(feature_dim, feature_dim), nn.ReLU(inplace=True), nn.Linear(feature_dim, dim))


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def in_groups(encoder, x: torch.Tensor, groups: int) -> torch.Tensor:
    """``encoder`` on ``groups`` consecutive slices of the batch (BN statistics per slice), concatenated."""
    if groups == 1:
        return encoder(x)
    return torch.cat([encoder(part) for part in x.tensor_split(groups)])


class MoCoTask(Task):
    """Options: ``version`` ("v1" | "v2"), ``queue_size`` (65536), ``momentum`` (0.999), ``temperature`` (None:
    0.07 for v1, 0.2 for v2), ``dim`` (128), ``shuffle_bn`` (True), ``bn_groups`` (8: the GPUs emulated by
    shuffled BN in one process). See the module docstring."""

    name = "moco"

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, version: str = "v2",
                 queue_size: int = 65536, momentum: float = 0.999, temperature: float | None = None, dim: int = 128,
                 shuffle_bn: bool = True, bn_groups: int = 8):
        if version not in TEMPERATURES:
            raise ValueError(f"version must be 'v1' or 'v2', got {version!r}")
        queue_size, dim = check_int(queue_size, "queue_size"), check_int(dim, "dim")
        self.momentum = check_number(momentum, "momentum", 0.0, 1.0)
        self.temperature = TEMPERATURES[version] if temperature is None else \
            check_number(temperature, "temperature", 0.0, open_low=True)
        if not isinstance(shuffle_bn, bool):
            raise TypeError(f"shuffle_bn must be true or false, got {shuffle_bn!r}")
        self.version, self.shuffle_bn, self.bn_groups = version, shuffle_bn, check_int(bn_groups, "bn_groups")
        super().__init__(backbone, image_size, seed)
        self.recipe = mocov1(image_size) if version == "v1" else recipes.mocov2(image_size)
        self.head = projection_head(version, self.feature_dim, dim)
        self.key_encoder = nn.Sequential(copy.deepcopy(self.backbone), copy.deepcopy(self.head))
        self.key_encoder.requires_grad_(False)
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim, generator=g), dim=1))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.int64))

    @torch.no_grad()
    def transform(self, images, ids, epoch):
        params = recipes.draw(self.recipe, ids, images.host_sizes, seed=self.seed, epoch=epoch)
        return {"views": [augment(images, p) for p in params]}

    @torch.no_grad()
    def momentum_update(self) -> None:
        """θ_k ← m·θ_k + (1 − m)·θ_q for every parameter of the key encoder; its buffers ← the query encoder's."""
        query = (self.backbone, self.head)
        keys = list(self.key_encoder.parameters())
        torch._foreach_mul_(keys, self.momentum)
        torch._foreach_add_(keys, [p.detach() for m in query for p in m.parameters()], alpha=1 - self.momentum)
        query_buffers = chain.from_iterable(m.buffers() for m in query)
        for key_buffer, query_buffer in zip(self.key_encoder.buffers(), query_buffers):
            key_buffer.copy_(query_buffer)

    def bn_groups_for(self, n: int) -> int:
        """How many groups one process cuts a batch of ``n`` into for BN statistics (1: no emulation)."""
        if not (self.training and self.shuffle_bn) or world_size() > 1:
            return 1
        return max(1, min(self.bn_groups, n // 2))

    def shuffle_permutation(self, ids: torch.Tensor, epoch: int) -> torch.Tensor:
        """A permutation of the rows of ``ids`` (N,): argsort of a hash of (seed, epoch, id) — the same on every
        rank holding the same ids, and after a resume."""
        slot = torch.full((1,), random.SHUFFLE_BN_SLOT, device=ids.device)  # made on the device: no copy from the host
        return torch.argsort(random.bits(ids, slot, seed=self.seed, epoch=epoch)[:, 0], stable=True)

    def query_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """(B, dim) float32 unit rows q, with gradient."""
        q = in_groups(lambda part: self.head(self.backbone(part)), x, self.bn_groups_for(len(x)))
        return F.normalize(q.float(), dim=1)

    @torch.no_grad()
    def key_embeddings(self, x: torch.Tensor, ids: torch.Tensor, epoch: int,
                       sizes: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(this rank's keys (n, dim), every rank's keys (N, dim) in rank order), float32 unit rows, no gradient
        (shuffled BN as the module docstring says; in eval mode the second is the first). ``sizes``: every rank's
        n when known (:func:`fastssl.distributed.all_gather_rows`)."""
        def encode(part):
            return F.normalize(self.key_encoder(part).float(), dim=1)

        if not self.training:
            return (k := encode(x)), k
        world, n = world_size(), len(x)
        if not self.shuffle_bn:
            k = encode(x)
            return k, all_gather_rows(k, sizes=sizes)[0] if world > 1 else k
        ids = ids.to(x.device)
        if world > 1:
            views, offset = all_gather_rows(x, sizes=sizes)
            perm = self.shuffle_permutation(all_gather_rows(ids, sizes=sizes)[0], epoch)
            shuffled = all_gather_rows(encode(views.index_select(0, perm[offset:offset + n])), sizes=sizes)[0]
        else:
            offset, perm = 0, self.shuffle_permutation(ids, epoch)
            shuffled = in_groups(encode, x.index_select(0, perm), self.bn_groups_for(n))
        keys = shuffled.index_select(0, torch.argsort(perm))  # row perm[j] of the batch is row j of shuffled
        return keys[offset:offset + n], keys

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Writes ``keys`` (N, dim) at the queue's pointer (wrapping around its end) and advances the pointer by
        N; with N > queue_size only the last queue_size keys stay. No host read."""
        size, n = self.queue.shape[0], keys.shape[0]
        kept = min(n, size)
        rows = (self.queue_ptr + (n - kept) + torch.arange(kept, device=self.queue.device)) % size
        self.queue.index_copy_(0, rows, keys[n - kept:].to(self.queue.dtype))
        self.queue_ptr.copy_((self.queue_ptr + n) % size)

    def forward(self, batch):
        x_q, x_k = batch["views"]
        if self.training:
            self.momentum_update()
        q = self.query_embeddings(x_q)
        k, every_key = self.key_embeddings(x_k, batch["ids"], int(batch["epoch"]), batch.get("rank_samples"))
        negatives = self.queue.clone()  # what backward reads: enqueue() below writes the queue itself
        loss = queue_info_nce_loss(q, k, negatives, self.temperature, normalize=False)
        with torch.no_grad():
            qd = q.detach()
            top1 = ((qd * k).sum(1) >= (qd @ negatives.T).amax(1)).float().mean()
        if self.training:
            self.enqueue(every_key)
        return {"loss": loss, "positive_top1": top1}
