"""How good are the features: kNN and a linear probe on frozen features of a labelled image folder.

Features are extracted once per backbone (whole image squashed to the encoder's square input, ImageNet
normalisation, no augmentation; for a video task, its features of each video's middle clip; for an audio-visual
task, of each video's middle frame, and of the audio centred on it for its audio stream), then:

- kNN (Wu et al. 2018, as the SSL literature reports it): cosine similarity to the training features,
  the k = 20 nearest vote with weights exp(s / T), T = 0.07;
- linear probe: multinomial logistic regression on standardised features, trained full-batch with
  L-BFGS (a few hundred iterations, small weight decay) — deterministic and seconds on CPU.

The labelled set is split into train / validation by a hash of each sample id (``val_fraction``),
stratified by class; :func:`compare` evaluates a trained task against the same architecture at random
initialisation, the baseline a pretext task has to beat.

Example:
    >>> import torch
    >>> f = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> y = torch.tensor([0, 0, 1, 1])
    >>> knn_accuracy(f, y, f, y, k=1), linear_probe_accuracy(f, y, f, y)
    (1.0, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import random
from ..progress import maybe
from ..tasks.audio_visual import recall_at
from ..tasks.base import Task
from .data import open_task_source, task_loader

@dataclass
class Features:
    train: torch.Tensor  #: (N_train, D) float32
    train_labels: torch.Tensor  #: (N_train,) int64
    val: torch.Tensor
    val_labels: torch.Tensor


def split(labels: torch.Tensor, val_fraction: float = 0.2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(train ids, val ids): per class, the ``val_fraction`` of ids with the smallest hash (at least one of each
    class with two or more samples)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    ids = torch.arange(len(labels))
    keys = random.bits(ids, [random.VALIDATION_SLOT], seed=seed)[:, 0]
    val = []
    for c in labels.unique():
        members = ids[labels == c]
        if len(members) < 2:
            continue
        count = max(1, round(val_fraction * len(members)))
        val.append(members[torch.argsort(keys[members], stable=True)[:count]])
    val_ids = torch.cat(val).sort().values if val else ids[:0]
    train_mask = torch.ones(len(labels), dtype=torch.bool)
    train_mask[val_ids] = False
    return ids[train_mask], val_ids


@torch.no_grad()
def extract_streams(task: Task, data, *, batch_size: int = 128, device="cpu", decoder: str = "auto",
                    num_threads: int | None = None, progress: bool = False) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """({stream: features (N, D) float32 on the CPU}, labels (N,), ids (N,)) of every usable sample of ``data`` (a
    path or an opened source), in id order: the stream "vision" (``task.features``), and "audio" for an
    audio-visual task (``task.audio_features``) (``progress``: a progress line on stderr)."""
    device = torch.device(device)
    loader = task_loader(task, open_task_source(task, data, num_threads=num_threads), evaluation=True,
                         batch_size=batch_size, device=device, decoder=decoder, shuffle=False, num_threads=num_threads)
    was_training = task.training
    task.eval()
    streams: dict[str, list] = {}
    labels, ids = [], []
    bar = maybe(progress, len(loader), "extracting features")
    for index, batch in enumerate(loader.epoch(0)):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            streams.setdefault("vision", []).append(task.features(batch["inputs"]).float().cpu())
            if "spectrogram" in batch:
                streams.setdefault("audio", []).append(task.audio_features(batch["spectrogram"]).float().cpu())
        labels.append(batch["labels"].cpu())
        ids.append(batch["ids"].cpu())
        if bar:
            bar.update(index + 1, f"{sum(len(i) for i in ids)} samples")
    task.train(was_training)
    ids = torch.cat(ids)
    order = torch.argsort(ids)
    return {name: torch.cat(parts)[order] for name, parts in streams.items()}, torch.cat(labels)[order], ids[order]


def extract(task: Task, data, **options) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, D) float32 on the CPU, labels (N,)) of every usable sample of ``data``, in id order (the vision
    stream of :func:`extract_streams`)."""
    streams, labels, _ = extract_streams(task, data, **options)
    return streams["vision"], labels


def _split_features(features: torch.Tensor, labels: torch.Tensor, val_fraction: float, seed: int) -> Features:
    if bool((labels < 0).any()):
        raise ValueError("evaluation needs labelled data: a folder with one subfolder per class")
    train_ids, val_ids = split(labels, val_fraction, seed)
    return Features(features[train_ids], labels[train_ids], features[val_ids], labels[val_ids])


def features_for(task: Task, data, *, val_fraction: float = 0.2, seed: int = 0, **options) -> Features:
    features, labels = extract(task, data, **options)
    return _split_features(features, labels, val_fraction, seed)


def knn_accuracy(train: torch.Tensor, train_labels: torch.Tensor, val: torch.Tensor, val_labels: torch.Tensor, *,
                 k: int = 20, temperature: float = 0.07, chunk: int = 1024) -> float:
    """Top-1 accuracy of temperature-weighted cosine kNN voting."""
    train_n = F.normalize(train.float(), dim=1)
    classes = int(max(train_labels.max(), val_labels.max())) + 1
    k = min(k, len(train))
    correct = 0
    for start in range(0, len(val), chunk):
        sim = F.normalize(val[start:start + chunk].float(), dim=1) @ train_n.T
        top, index = sim.topk(k, dim=1)
        votes = torch.zeros(len(sim), classes).scatter_add_(1, train_labels[index], (top / temperature).exp())
        correct += int((votes.argmax(1) == val_labels[start:start + chunk]).sum())
    return correct / max(1, len(val))


def linear_probe_accuracy(train: torch.Tensor, train_labels: torch.Tensor, val: torch.Tensor,
                          val_labels: torch.Tensor, *, weight_decay: float = 1e-4, iterations: int = 300) -> float:
    """Top-1 accuracy of a logistic-regression probe on standardised frozen features (full-batch L-BFGS)."""
    mean, std = train.mean(0), train.std(0, unbiased=False).clamp_min(1e-6)
    x, xv = (train.double() - mean) / std, (val.double() - mean) / std
    classes = int(max(train_labels.max(), val_labels.max())) + 1
    linear = torch.nn.Linear(x.shape[1], classes, dtype=torch.float64)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    optimizer = torch.optim.LBFGS(linear.parameters(), lr=1, max_iter=iterations, history_size=20,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(x), train_labels) + weight_decay * linear.weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        return float((linear(xv).argmax(1) == val_labels).double().mean())


def _probe(f: Features, k: int) -> dict:
    return {"knn": knn_accuracy(f.train, f.train_labels, f.val, f.val_labels, k=k),
            "linear": linear_probe_accuracy(f.train, f.train_labels, f.val, f.val_labels),
            "train": len(f.train), "val": len(f.val),
            "classes": int(torch.cat([f.train_labels, f.val_labels]).max()) + 1}


def evaluate(task: Task, data, *, k: int = 20, val_fraction: float = 0.2, seed: int = 0, **options) -> dict:
    """{"knn": accuracy, "linear": accuracy, "train": N, "val": N, "classes": C} of ``task``'s backbone; for an
    audio-visual task also "audio_knn" and "audio_linear" (its audio stream) and cross-modal retrieval on the held-out
    videos: "recall@1" and "recall@5" of each frame's own audio among the held-out videos' audio, ranked by
    ``task.match_scores`` (random scores: recall@k = k / val)."""
    streams, labels, _ = extract_streams(task, data, **options)
    scores = _probe(_split_features(streams["vision"], labels, val_fraction, seed), k)
    if "audio" in streams:
        audio = _probe(_split_features(streams["audio"], labels, val_fraction, seed), k)
        scores.update(audio_knn=audio["knn"], audio_linear=audio["linear"])
        _, val_ids = split(labels, val_fraction, seed)
        with torch.no_grad():
            matches = task.match_scores(streams["vision"][val_ids].to(_device_of(task)),
                                        streams["audio"][val_ids].to(_device_of(task))).cpu()
        scores.update(recall_at(matches))
    return scores


def _device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def compare(task: Task, random_init: Task, data, **options) -> dict:
    """{"trained": evaluate(task), "random_init": evaluate(random_init)} on the same split."""
    return {"trained": evaluate(task, data, **options), "random_init": evaluate(random_init, data, **options)}
