"""DeepCluster (Caron et al. 2018): classify each image into the cluster its own features fell in, re-clustered
every epoch; and cluster transfer (Noroozi et al. 2018): the clusters of a trained teacher's features as the
labels of a fresh network.

Before each epoch — or every ``recluster_every``-th: the paper's epochs are thousands of steps, a small set's are
tens, too few for a head re-initialised each time — (:meth:`DeepClusterTask.prepare_epoch`, called by the trainer)
the whole set's features are extracted through the evaluation pipeline (eval mode, the whole image squashed to the
input size), PCA-whitened to
``pca_dim`` dimensions, L2-normalised and clustered by :class:`fastssl.ops.kmeans.KMeans` (``kmeans_iterations``
Lloyd iterations from random rows, a fresh seed each epoch, empty clusters split faiss's way). The assignments
become the pseudo-labels; the classifier head is re-initialised (N(0, 0.01), zero bias) and the optimiser forgets
its state. The epoch then visits samples uniformly over the non-empty clusters (:meth:`visit`:
⌊N / non-empty⌋ + 1 per cluster, drawn with replacement, shuffled, cut to N, keyed by (seed, epoch)) instead of
the usual shuffle. The assignments and the epoch they belong to are buffers: checkpoints hold them, so a resumed
run continues with the same labels and order. Training crops: random resized crop (scale ``min_scale``..1) and
flip; with ``sobel=True`` the network sees the two Sobel gradients of the grey image, as the paper's AlexNet does.

:class:`ClusterTransferTask` clusters once, at the start of training, the features of ``teacher`` (a fastssl
training checkpoint of any image task, e.g. ``jigsaw_pp``) and trains this task's own (possibly other) backbone on
them — ``fastssl train cluster_transfer --option teacher=runs/jig/checkpoints/last.pt``.

Under distributed training each rank extracts the features of its shard and the trainer gathers them
(:func:`fastssl.distributed.gather_samples`): every rank clusters the whole set's features with the same seed, and
rank 0's assignments are broadcast so that ranks agree bit for bit.

Example:
    >>> import torch
    >>> task = DeepClusterTask("resnet10", image_size=32, num_samples=40, clusters=4, pca_dim=8)
    >>> features = lambda module: (torch.randn(40, 512, generator=torch.Generator().manual_seed(0)), torch.arange(40))
    >>> reset = task.prepare_epoch(0, features, size=40)
    >>> int(task.clustered_epoch), int((task.assignments >= 0).sum()), len(reset), task.visit(0).shape
    (0, 40, 2, torch.Size([40]))
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.kmeans import KMeans, l2_normalize, pca_whiten
from .base import Task, accuracy, normalize, squares

Features = Callable[[nn.Module], tuple[torch.Tensor, torch.Tensor]]


class Sobel(nn.Module):
    """(B, 3, H, W) normalised RGB → (B, 2, H, W): the grey image's horizontal and vertical Sobel gradients (fixed
    filters, no parameters)."""

    def __init__(self):
        super().__init__()
        sobel = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
        self.register_buffer("gray", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("filters", torch.stack([sobel, sobel.T])[:, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gray = (x * self.gray.to(x.dtype)).sum(1, keepdim=True)
        return F.conv2d(gray, self.filters.to(x.dtype), padding=1)


class DeepClusterTask(Task):
    name = "deepcluster"
    recluster = True  #: cluster before every epoch (cluster transfer: once)

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, num_samples: int,
                 clusters: int = 10000, pca_dim: int | None = 256, kmeans_iterations: int = 20, sobel: bool = False,
                 min_scale: float = 0.08, recluster_every: int = 1):
        if recluster_every < 1:
            raise ValueError(f"recluster_every must be >= 1 epochs, got {recluster_every}")
        if not 2 <= clusters <= num_samples:
            raise ValueError(f"clusters must be in [2, the {num_samples} samples], got {clusters} "
                             f"(--option clusters=...)")
        if pca_dim is not None and pca_dim < 1:
            raise ValueError(f"pca_dim must be >= 1 or None, got {pca_dim}")
        self.in_channels = 2 if sobel else 3
        super().__init__(backbone, image_size, seed)
        self.clusters, self.pca_dim, self.kmeans_iterations = clusters, pca_dim, kmeans_iterations
        self.min_scale, self.recluster_every = min_scale, recluster_every
        self.sobel = Sobel() if sobel else None
        self.head = nn.Linear(self.feature_dim, clusters)
        self.register_buffer("assignments", torch.full((num_samples,), -1, dtype=torch.int64))
        self.register_buffer("clustered_epoch", torch.tensor(-1, dtype=torch.int64))
        self.last_objective: float | None = None

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return self.sobel(x) if self.sobel is not None else x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self._input(x))

    @torch.no_grad()
    def transform(self, images, ids, epoch):
        return {"inputs": normalize(squares(images, ids, epoch, self.image_size, seed=self.seed,
                                            scale=(self.min_scale, 1.0)))}

    def forward(self, batch):
        logits = self.head(self.features(batch["inputs"]))
        labels = self.assignments[batch["ids"].to(self.assignments.device)]
        return {"loss": F.cross_entropy(logits, labels, ignore_index=-1), "accuracy": accuracy(logits, labels)}

    # --- the epoch's clusters ---------------------------------------------------------------------------

    def source_of_features(self) -> nn.Module:
        """The network whose features are clustered: this one (cluster transfer: the teacher)."""
        return self

    @torch.no_grad()
    def cluster(self, features: torch.Tensor, epoch: int) -> torch.Tensor:
        """(N,) int64 cluster of each row of ``features`` (N, D): PCA-whitened to ``pca_dim``, L2-normalised,
        k-means with the epoch's seed."""
        x = features.float()
        if self.pca_dim is not None:
            x, _ = pca_whiten(x, min(self.pca_dim, x.shape[1]))
        kmeans = KMeans(self.clusters, iterations=self.kmeans_iterations, init="random",
                        seed=self.seed * 1_000_003 + epoch).fit(l2_normalize(x))
        self.last_objective = kmeans.objective[-1] if kmeans.objective else None
        return kmeans.assignment

    def prepare_epoch(self, epoch: int, features: Features, *, size: int) -> list[nn.Parameter]:
        """Clusters the features ``features(module) -> (rows (N, D), sample ids (N,))`` of :meth:`source_of_features`
        for ``epoch`` unless the clusters in use are recent enough (made less than ``recluster_every`` epochs ago;
        for cluster transfer: made at all); returns the parameters it re-initialised (the head), whose optimiser
        state must be forgotten."""
        done = int(self.clustered_epoch)
        if done >= 0 and (not self.recluster or epoch - done < self.recluster_every):
            return []
        if size != len(self.assignments):
            raise ValueError(f"the data hold {size} samples, this task was built for num_samples = "
                             f"{len(self.assignments)}")
        rows, ids = features(self.source_of_features())
        if len(rows) < self.clusters:
            raise ValueError(f"{len(rows)} samples could be read for clustering, fewer than clusters = {self.clusters}")
        assignments = torch.full_like(self.assignments, -1)
        assignments[ids.to(assignments.device)] = self.cluster(rows, epoch).to(assignments.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.broadcast(assignments, src=0)
        self.assignments.copy_(assignments)
        self.clustered_epoch.fill_(epoch)
        with torch.no_grad():
            self.head.weight.normal_(0.0, 0.01, generator=torch.Generator(device=self.head.weight.device)
                                     .manual_seed(self.seed * 1_000_003 + epoch))
            self.head.bias.zero_()
        return list(self.head.parameters())

    def visit(self, epoch: int) -> torch.Tensor:
        """(N,) int64 sample ids: the same number from every non-empty cluster (⌊N / non-empty⌋ + 1, drawn with
        replacement), shuffled, cut to N = ``num_samples``; keyed by (seed, epoch)."""
        assignments = self.assignments.cpu()
        size = len(assignments)
        assigned = torch.nonzero(assignments >= 0).flatten()
        if len(assigned) == 0:
            raise ValueError("no sample has a cluster: prepare_epoch has not run")
        labels = assignments[assigned]
        order = torch.argsort(labels, stable=True)
        members, counts = assigned[order], torch.bincount(labels, minlength=self.clusters)
        nonempty = torch.nonzero(counts).flatten()
        per_cluster = size // len(nonempty) + 1
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        starts = torch.cumsum(counts, 0) - counts
        draws = (torch.rand(len(nonempty), per_cluster, generator=g, dtype=torch.float64)
                 * counts[nonempty, None].double()).long()
        chosen = members[(starts[nonempty, None] + draws).flatten()]
        return chosen[torch.randperm(len(chosen), generator=g)][:size]


class ClusterTransferTask(DeepClusterTask):
    name = "cluster_transfer"
    recluster = False

    def __init__(self, backbone: str = "resnet18", image_size: int = 64, seed: int = 0, *, teacher: str,
                 num_samples: int, clusters: int = 2000, pca_dim: int | None = None, kmeans_iterations: int = 20,
                 sobel: bool = False, min_scale: float = 0.08):  # clustered once: no recluster_every
        super().__init__(backbone, image_size, seed, num_samples=num_samples, clusters=clusters, pca_dim=pca_dim,
                         kmeans_iterations=kmeans_iterations, sobel=sobel, min_scale=min_scale)
        self.teacher_path = teacher
        self._teacher: list[nn.Module] = []  # not a submodule: neither trained nor saved

    def source_of_features(self) -> nn.Module:
        from ..train.checkpoint import task_from_checkpoint

        if not self._teacher:
            teacher = task_from_checkpoint(self.teacher_path)
            if getattr(teacher, "modality", "image") != "image":
                raise ValueError(f"the teacher {self.teacher_path!r} is a {teacher.modality} task: cluster transfer "
                                 f"clusters image features")
            self._teacher.append(teacher.to(self.head.weight.device))
        return self._teacher[0]
