"""The thin trainer: loader → task → optimiser, with everything a long pretraining run needs.

- **The epoch is the unit.** The data come from :class:`fastssl.data.Loader` with the task's ``transform``
  (video tasks: :class:`fastssl.data.video.ClipLoader` with the task's clip plan, from a video folder or list);
  an epoch visits the loader's batch positions 0 .. ``len(loader)`` - 1, and every rank has as many
  (:class:`~fastssl.data.EpochOrder` pads short shards by wrapping; the trainer drops the last partial
  batch). A step is a position at which every rank has a batch. A position whose batch decoded to nothing
  on some rank — or to a single sample when batches are larger: batch normalisation and in-batch negatives
  need two — is skipped by all ranks together and counted (``skipped_batches``), never repeated; the
  files left out are counted (``skipped_files``: once per epoch in which a file fails) and named in
  ``<out>/bad_files.txt``. An epoch without one usable batch is an error that names the files. The
  learning-rate schedule follows the position in the run (epoch, batch), so skipped batches do not shift it.
  A task with ``prepare_epoch`` (DeepCluster, cluster transfer) prepares each epoch before its first batch —
  given the whole set's features through the evaluation pipeline, each rank extracting its shard's — and names
  the samples the epoch visits (``task.visit(epoch)``) instead of the shuffled order; what it prepared is in its
  state, so a resumed epoch is not prepared again.
- **Ranks stay in step** (:mod:`fastssl.train.ranks`): before each step the ranks sum what they have (a
  batch or not, a loader error, the time limit) in one all-reduce over a CPU gloo group with a timeout, and
  act alike; nothing that waits on data can hang.
- Mixed precision (bfloat16 autocast where the device supports it; ``precision="fp32"`` turns it off),
  channels_last, optional ``torch.compile`` of the backbone, SGD / LARS / AdamW with linear warmup +
  cosine decay, gradient clipping, and a NaN guard: a step whose loss or gradients are not finite is
  skipped (``skipped_steps``); ``max_bad_steps`` in a row stop the run with an error. A non-finite loss
  seeds its own backward with NaN, so its gradients — and after DDP's all-reduce every rank's — are not
  finite: every rank sees the same total gradient norm and skips the same steps, with no collective of
  its own.
- **One host read per step.** The gradients' finiteness is one fused reduction on the device (the total
  norm, which clipping computes anyway); the loss, that norm and the task's metrics are read back together
  in one read after backward, which decides whether the optimiser steps and gives the log its row. No read
  per parameter, none before backward.
- Checkpoints every ``checkpoint_every`` steps and at the end, written atomically
  (:mod:`fastssl.train.checkpoint`), with the epoch and the position within it. ``resume=True`` continues
  from the newest usable one with the same sample order and the same views — the order and every random
  choice are functions of (seed, epoch, id), so the resumed run sees exactly the batches the uninterrupted
  one would have and ends with the same weights. The run folder's rules (a used ``out`` needs ``resume``
  or ``overwrite``; settings checked on resume; stale temporaries removed; fall-back to an older checkpoint)
  are in :mod:`fastssl.train.run_folder`.
- Logs: ``<out>/log.csv`` (one row per step: step, epoch, loss, lr, the task's metrics, images/s, data-wait
  share, global batch (images in the step over all ranks), skipped steps and files; cut back to the
  checkpoint's step on resume), TensorBoard when installed, a progress line.
- Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) it joins the process group (NCCL on GPUs, gloo on
  CPUs) with ``collective_timeout_s``, wraps the task in DDP, and the loader reads this rank's shard. Rank
  0 writes logs and checkpoints. Each step's batch holds ``rank_samples``, every rank's sample count (from the
  ranks' per-step agreement), so that a task's all-gathers need not gather the counts and read them back.

Example:
    >>> import tempfile
    >>> from fastssl.data import synthetic
    >>> root = synthetic.write_image_folder(tempfile.mkdtemp(), classes=2, per_class=4, seed=0)
    >>> config = TrainConfig(task="rotation", data=root, out=tempfile.mkdtemp(), backbone="resnet10", image_size=32,
    ...                      batch_size=4, epochs=1, max_steps=1, decoder="pil", progress=False)
    >>> result = train(config)
    >>> result.steps, len(result.losses), result.skipped_files
    (1, 1, 0)
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field

import torch

from ..data import Loader
from ..distributed import gather_samples
from ..tasks import task_class
from . import checkpoint, run_folder
from .data import open_task_source, task_loader, usable_samples
from .evaluate import extract_streams
from ..progress import Progress
from .log import CSVLog, TensorBoard, progress_text
from .optim import make_optimizer, warmup_cosine
from .ranks import Ranks, TrainError

PRECISIONS = ("auto", "bf16", "fp32")
BAD_FILES = "bad_files.txt"


@dataclass
class TrainConfig:
    task: str
    data: str
    out: str
    backbone: str | None = None  #: default: the task's own (resnet18; vit_tiny for MAE)
    image_size: int = 64
    batch_size: int = 64  #: per rank
    epochs: int = 10
    optimizer: str = "adamw"
    lr: float | None = None  #: default: 1e-3 (adamw), 0.1 (sgd), 0.3 · global batch / 256 (lars)
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    clip_grad: float | None = 3.0
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    seed: int = 0
    device: str = "auto"
    decoder: str = "auto"
    num_threads: int | None = None
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    resume: bool = False  #: continue from the newest usable checkpoint in ``out``
    resume_anyway: bool = False  #: resume even when settings that change the run's meaning differ (listed)
    overwrite: bool = False  #: delete the run already in ``out`` (else a used ``out`` needs ``resume``)
    max_bad_steps: int = 20
    max_steps: int | None = None  #: stop after this many steps (a time-boxed run); the schedule keeps ``epochs``
    time_limit_s: float | None = None  #: stop (with a checkpoint) after this much training time
    #: with ``time_limit_s``: the learning-rate schedule follows the training time, warmup and cosine ending at the
    #: time limit, instead of the position in ``epochs`` (which is then only a cap); the ranks use their mean time
    schedule_by_time: bool = False
    collective_timeout_s: float = 600.0  #: distributed: how long a rank waits for the others before failing
    progress: bool = True
    task_options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.backbone is None:
            self.backbone = inspect.signature(task_class(self.task).__init__).parameters["backbone"].default
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("image_size", "batch_size", "epochs", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not self.collective_timeout_s > 0:
            raise ValueError(f"collective_timeout_s must be > 0, got {self.collective_timeout_s}")
        if self.resume_anyway and not self.resume:
            raise ValueError("resume_anyway needs resume")
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other: continue the run in out, or delete it")
        if self.schedule_by_time and not (self.time_limit_s and self.time_limit_s > 0):
            raise ValueError("schedule_by_time needs a time_limit_s > 0 (the time the schedule spans)")


@dataclass
class TrainResult:
    steps: int
    epochs_done: float
    losses: list[float]
    skipped_steps: int  #: steps whose loss or gradients were not finite (no optimiser step)
    skipped_batches: int  #: batch positions at which some rank had nothing decodable
    skipped_files: int  #: files left out of their batch (once per epoch they failed in); named in bad_files.txt
    images_per_s: float
    data_wait: float
    checkpoint: str | None
    out: str


@dataclass
class _Counters:
    """Where the run is (saved in every checkpoint, restored on resume)."""

    epoch: int = 0
    position: int = 0  #: the next batch position within ``epoch``
    step: int = 0
    skipped_steps: int = 0
    skipped_batches: int = 0
    skipped_files: int = 0
    losses: list = field(default_factory=list)


def default_lr(optimizer: str, batch_size: int) -> float:
    return {"adamw": 1e-3, "sgd": 0.1, "lars": 0.3 * batch_size / 256}.get(optimizer, 1e-3)


def run_settings(config: TrainConfig, world: int) -> dict:
    """The settings that change a run's meaning: a resumed run must have the same ones (see
    :mod:`fastssl.train.run_folder`)."""
    global_batch = config.batch_size * world
    return {"task": config.task, "data": os.path.realpath(config.data), "backbone": config.backbone,
            "image_size": config.image_size, "global_batch": global_batch, "epochs": config.epochs,
            "warmup_epochs": config.warmup_epochs, "optimizer": config.optimizer,
            "lr": config.lr or default_lr(config.optimizer, global_batch), "weight_decay": config.weight_decay,
            "clip_grad": config.clip_grad or None, "seed": config.seed, "task_options": dict(config.task_options),
            **({"schedule_by_time": True} if config.schedule_by_time else {})}


def batch_within_data(config: TrainConfig, images: int, world: int = 1) -> TrainConfig:
    """``config`` with a batch no larger than a rank's share of the ``images`` (a warning says so when it was).

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True):
        ...     warnings.simplefilter("always")
        ...     batch_within_data(TrainConfig(task="rotation", data="d", out="o", batch_size=256), images=40).batch_size
        40
    """
    share = -(-images // world)
    if config.batch_size <= share:
        return config
    where = f"{images} images" + (f" over {world} ranks ({share} each)" if world > 1 else "")
    warnings.warn(f"batch_size {config.batch_size} is larger than the data ({where}): training with batches of "
                  f"{share}", UserWarning, stacklevel=2)
    return dataclasses.replace(config, batch_size=share)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if torch.cuda.is_available() \
            else torch.device("cpu")
    return torch.device(device)


def _autocast(device: torch.device, precision: str):
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def _to_channels_last(batch: dict) -> dict:
    def convert(v):
        if isinstance(v, torch.Tensor) and v.dim() == 4 and v.is_floating_point():
            return v.contiguous(memory_format=torch.channels_last)
        if isinstance(v, list):
            return [convert(x) for x in v]
        return v
    return {k: convert(v) for k, v in batch.items()}


def _say(message: str) -> None:
    print(f"fastssl train: {message}", file=sys.stderr, flush=True)


def _prepare_out(config: TrainConfig, settings: dict, ranks: Ranks) -> tuple[str | None, dict]:
    """Rank 0 readies the run folder (:func:`run_folder.prepare`) and tells the others which checkpoint to resume
    from; its refusal stops every rank. Returns (path, state) — (None, {}) for a fresh start."""
    path, state, failure = None, None, None
    if ranks.rank == 0:
        try:
            path, state = run_folder.prepare(config.out, settings, resume=config.resume,
                                             resume_anyway=config.resume_anyway, overwrite=config.overwrite, say=_say)
        except (TrainError, OSError) as error:
            failure = error
    path, message = ranks.gather((path, None if failure is None else str(failure)), "preparing the run folder")[0]
    if failure is not None:
        raise failure
    if message is not None:
        raise TrainError(f"rank 0 could not prepare --out {config.out}: {message}")
    if path is not None and state is None:
        state = checkpoint.load(path, map_location="cpu")
    return path, state or {}


class _Positions:
    """One epoch of the loader's batches by position: :meth:`take` gives the batch at a position, or None
    when the loader skipped it (all its files undecodable) or failed (the error is kept in ``failure``)."""

    def __init__(self, loader: Loader, epoch: int, start: int, visit: torch.Tensor | None = None):
        self.batches = loader.epoch(epoch, start=start, visit=visit)
        self.pending, self.done, self.failure = None, False, None

    def take(self, index: int) -> dict | None:
        if self.pending is None and not self.done:
            try:
                self.pending = next(self.batches)
            except StopIteration:
                self.done = True
            except Exception as error:  # reported to every rank by the caller, then raised
                self.done, self.failure = True, error
        if self.pending is not None and self.pending["index"] == index:
            batch, self.pending = self.pending, None
            return batch
        return None

    def close(self) -> None:
        self.pending = None
        self.batches.close()


def _total_norm(parameters: list[torch.nn.Parameter], clip: float | None) -> torch.Tensor:
    """The gradients' total 2-norm (a 0-d tensor on their device; not finite when any gradient is not), clipping
    them to ``clip`` when given: one fused reduction, no read back to the host."""
    if clip:
        return torch.nn.utils.clip_grad_norm_(parameters, clip)
    return torch.nn.utils.get_total_norm([p.grad for p in parameters])


def train(config: TrainConfig) -> TrainResult:
    """Trains ``config.task`` on ``config.data``; returns the losses, the counts of what was skipped and where the
    last checkpoint is."""
    device = resolve_device(config.device)
    ranks = Ranks.join(device.type, config.collective_timeout_s)
    if ranks.world > 1 and device.type == "cuda":
        torch.cuda.set_device(device)
    main = ranks.rank == 0
    cls = task_class(config.task)
    source = open_task_source(cls, config.data, num_threads=config.num_threads)
    config = batch_within_data(config, usable_samples(source), ranks.world)
    settings = run_settings(config, ranks.world)
    resumed_from, state = _prepare_out(config, settings, ranks)

    torch.manual_seed(config.seed)  # parameter initialisation; the data's randomness is keyed, not seeded here
    options = dict(config.task_options)
    if "num_samples" in inspect.signature(cls.__init__).parameters:  # tasks with a per-sample memory bank
        options.setdefault("num_samples", len(source))
    task = cls(backbone=config.backbone, image_size=config.image_size, seed=config.seed, **options)
    loader = task_loader(task, source, batch_size=config.batch_size, device=device, decoder=config.decoder,
                         seed=config.seed, drop_last=True, num_threads=config.num_threads,
                         progress=main and config.progress)
    task.to(device)
    if config.channels_last and getattr(task, "encoder", "frame") == "frame":  # 3-D encoders keep their layout
        task.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(config.optimizer, task, lr=settings["lr"], weight_decay=config.weight_decay)
    hyper = [{"base_lr": group["lr"], "weight_decay": group["weight_decay"]} for group in optimizer.param_groups]
    per_epoch = len(loader)
    total = config.epochs * per_epoch
    warmup = min(total - 1, int(config.warmup_epochs * per_epoch)) if total > 1 else 0

    counters = _Counters()
    if state:
        task.load_state_dict(state["model"])
        if state["settings"]["optimizer"] == config.optimizer:
            optimizer.load_state_dict(state["optimizer"])
        elif main:  # resume_anyway with another optimizer: its state starts afresh
            _say(f"--resume-anyway: the {config.optimizer} optimizer starts with a fresh state (the checkpoint holds "
                 f"{state['settings']['optimizer']}'s)")
        counters = _Counters(**{f.name: state[f.name] for f in dataclasses.fields(_Counters)})
        if state["steps_per_epoch"] != per_epoch:  # another data set or batch (resume_anyway): the same fraction
            counters.position = min(per_epoch, round(counters.position * per_epoch / state["steps_per_epoch"]))
    for group, values in zip(optimizer.param_groups, hyper):  # the settings are this run's, resumed or not
        group.update(values)
    if config.compile:
        task.backbone.compile()  # in place: the state_dict keys stay those of the plain backbone
    model = task
    if ranks.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            task, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)

    log = CSVLog(os.path.join(config.out, "log.csv"), keep_through_step=counters.step) if main else None
    board = TensorBoard(os.path.join(config.out, "tensorboard"),
                        purge_from=counters.step + 1 if resumed_from else None) if main else None
    progress = Progress(total, "training") if main and config.progress else None
    bad_files = _read_bad_files(config.out) if main and resumed_from else {}
    ckpt_dir = os.path.join(config.out, "checkpoints")
    last_path, bad_in_row, last_row, started = None, 0, {}, time.perf_counter()
    t_last = started  # the end of the previous step: images/s counts the whole step, data wait included
    parameters = [p for p in task.parameters() if p.requires_grad]
    task.train()

    def save() -> str | None:
        if not main:
            return None
        state = {"model": task.state_dict(), "optimizer": optimizer.state_dict(), **dataclasses.asdict(counters),
                 "steps_per_epoch": per_epoch, "settings": settings, "world": ranks.world,
                 "config": dataclasses.asdict(config), "task": config.task, "backbone": config.backbone,
                 "image_size": config.image_size, "task_options": options}
        path = checkpoint.save_atomic(state, os.path.join(ckpt_dir, f"step_{counters.step}.pt"))
        checkpoint.prune(ckpt_dir, config.keep_checkpoints)
        return path

    def prepare_epoch(epoch: int) -> torch.Tensor | None:
        """A task that samples its own epochs (DeepCluster: clusters of the whole set's features) prepares the
        epoch — at most once: its state, saved in checkpoints, says which epoch it prepared — and gives the
        samples to visit; the optimiser forgets the state of the parameters the task re-initialised."""
        if not hasattr(task, "prepare_epoch"):
            return None

        def features(module: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
            """The whole set's features: each rank extracts its shard's, then every rank gets them all."""
            streams, _, ids = extract_streams(module, source, batch_size=config.batch_size, device=device,
                                              decoder=config.decoder, num_threads=config.num_threads,
                                              progress=main and config.progress)
            if ranks.world == 1:
                return streams["vision"], ids
            return gather_samples(streams["vision"], ids, device)

        for parameter in task.prepare_epoch(epoch, features, size=len(source)):
            optimizer.state.pop(parameter, None)
        return task.visit(epoch)

    def record_bad_files(failure: str | None = None) -> list[tuple[str | None, list]]:
        """Every rank's bad files of this epoch (and a failure message) to every rank; rank 0 writes them."""
        reports = ranks.gather((failure, list(loader.stats.bad_files)), f"collecting epoch {counters.epoch}'s bad files")
        for _, named in reports:
            for name, why in named:
                bad_files.setdefault(name, why)
        if main and bad_files:
            _write_bad_files(config.out, bad_files)
        return reports

    def step(batch: dict, index: int, images: int, elapsed_s: float) -> None:
        """One optimiser step on ``batch``, the epoch's batch ``index`` (``images``: the step's images over all
        ranks; ``elapsed_s``: the ranks' mean training time so far)."""
        nonlocal bad_in_row, last_row, t_last
        if config.channels_last:
            batch = _to_channels_last(batch)
        done = counters.epoch * per_epoch + index
        at = min(total - 1, int(total * elapsed_s / config.time_limit_s)) if config.schedule_by_time else done
        for group in optimizer.param_groups:  # the schedule follows the position in the run (or the time)
            group["lr"] = group["base_lr"] * warmup_cosine(at, total=total, warmup=warmup)
        with _autocast(device, config.precision):
            out = model(batch)
        loss = out["loss"]
        optimizer.zero_grad(set_to_none=True)
        # A non-finite loss seeds its backward with NaN (x * 0 + 1 is 1 for finite x, NaN otherwise): its gradients
        # are not finite, nor, after DDP's all-reduce, any rank's, so every rank takes the same decision below.
        loss.backward(loss.detach() * 0 + 1)
        norm = _total_norm([p for p in parameters if p.grad is not None], config.clip_grad)
        names = [k for k, v in out.items() if k != "loss" and isinstance(v, torch.Tensor)]
        read = torch.stack([loss.detach().float().reshape(()), norm.float().reshape(()).to(loss.device),
                            *(out[k].detach().float().reshape(()) for k in names)]).tolist()  # the one host read
        value, finite = read[0], math.isfinite(read[1])
        if finite:
            optimizer.step()
            bad_in_row = 0
        else:
            counters.skipped_steps += 1
            bad_in_row += 1
        counters.step += 1
        counters.losses.append(value)
        row = {"step": counters.step, "epoch": counters.epoch, "loss": value,
               "lr": optimizer.param_groups[0]["lr"], **dict(zip(names, read[2:])),
               **{k: float(v) for k, v in out.items() if k != "loss" and not isinstance(v, torch.Tensor)},
               "images_per_s": images / max(time.perf_counter() - t_last, 1e-9), "data_wait": loader.stats.wait_share,
               "global_batch": images, "skipped_steps": counters.skipped_steps,
               "skipped_files": counters.skipped_files}
        last_row, t_last = row, time.perf_counter()
        if main:
            log.write(row)
            board.write(counters.step, row)
            if progress:
                progress.update(done + 1, progress_text(row))
        if bad_in_row >= config.max_bad_steps:
            raise FloatingPointError(f"{bad_in_row} steps in a row had a non-finite loss or gradient (last loss "
                                     f"{value}, gradient norm {read[1]}); lower the lr or check the data")

    stopped = False
    try:
        while counters.epoch < config.epochs and not stopped:
            start, steps_before = counters.position, counters.step
            visit = prepare_epoch(counters.epoch)
            positions, t_last = _Positions(loader, counters.epoch, start, visit), time.perf_counter()
            try:
                for index in range(start, per_epoch):
                    if config.max_steps is not None and counters.step >= config.max_steps:
                        stopped = True
                        break
                    batch = positions.take(index)
                    kept = 0 if batch is None else len(batch["ids"])
                    if kept < min(2, config.batch_size):  # nothing, or one sample of a larger batch
                        batch = None
                    elapsed_ms = int(1000 * (time.perf_counter() - started))
                    late = config.time_limit_s is not None and elapsed_ms > 1000 * config.time_limit_s
                    mine = [kept if r == ranks.rank else 0 for r in range(ranks.world)]
                    missing, failed, late, images, lost, elapsed_ms, *rank_samples = ranks.sum(
                        [batch is None, positions.failure is not None, late, kept,
                         0 if positions.failure is not None else config.batch_size - kept, elapsed_ms, *mine],
                        f"agreeing on epoch {counters.epoch}'s batch {index}")
                    if failed:
                        failure = positions.failure
                        _raise_failure(record_bad_files(failure and _one_line(failure)), failure)
                    if late:
                        stopped = True
                        break
                    counters.position, counters.skipped_files = index + 1, counters.skipped_files + lost
                    if missing:
                        counters.skipped_batches += 1
                        continue
                    if ranks.world > 1:  # every rank's sample count: collectives in the task need not gather them
                        batch["rank_samples"] = rank_samples
                    step(batch, index, images, elapsed_ms / 1000 / ranks.world)
                    if main and counters.step % config.checkpoint_every == 0:
                        last_path = save()
            finally:
                positions.close()
            record_bad_files()
            if stopped:
                break
            if start == 0 and counters.step == steps_before:
                shown = ", ".join(f"{name} ({why})" for name, why in list(bad_files.items())[:3])
                raise TrainError(f"epoch {counters.epoch} had no batch that every rank could decode "
                                 f"({len(bad_files)} undecodable file(s): {shown or 'none named'}"
                                 f"{', ...' if len(bad_files) > 3 else ''}); all are listed in "
                                 f"{os.path.join(config.out, BAD_FILES)}")
            counters.epoch, counters.position = counters.epoch + 1, 0
        if main and (last_path is None or not last_path.endswith(f"step_{counters.step}.pt")):
            last_path = save()
    finally:
        if main:
            log.close()
            board.close()
            done = counters.epoch * per_epoch + counters.position
            if progress and last_row and done < total:  # stopped early: the line of the last step
                progress.update(done, progress_text(last_row), force=True)
    return TrainResult(counters.step, counters.epoch + counters.position / per_epoch, counters.losses,
                       counters.skipped_steps, counters.skipped_batches, counters.skipped_files,
                       loader.stats.images_per_s * ranks.world, loader.stats.wait_share, last_path, config.out)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def _raise_failure(reports: list, failure: BaseException | None):
    """A rank's loader failed: that rank raises its own error, the others name it."""
    if failure is not None:
        raise failure
    rank, message = next((r, m) for r, (m, _) in enumerate(reports) if m is not None)
    raise TrainError(f"rank {rank} stopped: {message}")


def _read_bad_files(out: str) -> dict[str, str]:
    path = os.path.join(out, BAD_FILES)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return dict(line.rstrip("\n").split("\t", 1) for line in f if "\t" in line)


def _write_bad_files(out: str, bad_files: dict[str, str]) -> None:
    """``<out>/bad_files.txt``: one ``name<TAB>why`` line per file the loader could not use."""
    tmp = os.path.join(out, BAD_FILES + ".tmp")
    with open(tmp, "w") as f:
        f.writelines(f"{name}\t{' '.join(why.split())}\n" for name, why in bad_files.items())
    os.replace(tmp, os.path.join(out, BAD_FILES))


__all__ = ["TrainConfig", "TrainResult", "TrainError", "default_lr", "run_settings", "train"]
