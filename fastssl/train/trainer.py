"""The thin trainer: loader → task → optimiser, with everything a long pretraining run needs.

- The data come from :class:`fastssl.data.Loader` with the task's ``transform`` (decoding and view
  making on the device, in a background thread); the step counts the global batches of every epoch.
- Mixed precision (bfloat16 autocast where the device supports it; ``precision="fp32"`` turns it off),
  channels_last, optional ``torch.compile`` of the backbone, SGD / LARS / AdamW with linear warmup +
  cosine decay, gradient clipping, and a NaN guard: a step whose loss or gradients are not finite is
  skipped (counted in the log); ``max_bad_steps`` in a row stop the run with an error.
- Checkpoints every ``checkpoint_every`` steps and at the end, written atomically
  (:mod:`fastssl.train.checkpoint`). ``resume=True`` continues from the newest one with the same sample
  order and the same views — the order and every random choice are functions of (seed, epoch, id), so
  the resumed run sees exactly the batches the uninterrupted one would have.
- Logs: ``<out>/log.csv`` (one row per step: step, epoch, loss, lr, the task's metrics, images/s,
  data-wait share), TensorBoard when installed, a progress line.
- Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) it joins the process group (NCCL on GPUs, gloo on
  CPUs), wraps the task in DDP, and the loader reads this rank's shard. Rank 0 writes logs and checkpoints.

Example:
    >>> import tempfile
    >>> from fastssl.data import synthetic
    >>> root = synthetic.write_image_folder(tempfile.mkdtemp(), classes=2, per_class=4, seed=0)
    >>> config = TrainConfig(task="rotation", data=root, out=tempfile.mkdtemp(), backbone="resnet10", image_size=32,
    ...                      batch_size=4, epochs=1, decoder="pil", progress=False)
    >>> result = train(config)
    >>> result.steps, len(result.losses)
    (2, 2)
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from ..data import Loader, open_source
from ..tasks import task_class
from . import checkpoint
from .log import CSVLog, Progress, TensorBoard
from .optim import make_optimizer, warmup_cosine

PRECISIONS = ("auto", "bf16", "fp32")


@dataclass
class TrainConfig:
    task: str
    data: str
    out: str
    backbone: str = "resnet18"
    image_size: int = 64
    batch_size: int = 64
    epochs: int = 10
    optimizer: str = "adamw"
    lr: float | None = None  #: default: 1e-3 (adamw), 0.1 (sgd), 0.3 · batch / 256 (lars)
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
    resume: bool = False
    max_bad_steps: int = 20
    max_steps: int | None = None  #: stop after this many steps (a time-boxed run); the schedule keeps ``epochs``
    time_limit_s: float | None = None  #: stop (with a checkpoint) after this much training time
    progress: bool = True
    task_options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("image_size", "batch_size", "epochs", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass
class TrainResult:
    steps: int
    epochs_done: float
    losses: list[float]
    skipped_steps: int
    images_per_s: float
    data_wait: float
    checkpoint: str | None
    out: str


def default_lr(optimizer: str, batch_size: int) -> float:
    return {"adamw": 1e-3, "sgd": 0.1, "lars": 0.3 * batch_size / 256}.get(optimizer, 1e-3)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if torch.cuda.is_available() \
            else torch.device("cpu")
    return torch.device(device)


def _autocast(device: torch.device, precision: str):
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def _init_distributed(device: torch.device) -> tuple[int, int]:
    """Joins the process group under torchrun; (rank, world size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def _to_channels_last(batch: dict) -> dict:
    def convert(v):
        if isinstance(v, torch.Tensor) and v.dim() == 4 and v.is_floating_point():
            return v.contiguous(memory_format=torch.channels_last)
        if isinstance(v, list):
            return [convert(x) for x in v]
        return v
    return {k: convert(v) for k, v in batch.items()}


def _finite_gradients(model: torch.nn.Module) -> bool:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return not grads or bool(torch.isfinite(torch.stack([g.detach().float().abs().sum() for g in grads])).all())


def train(config: TrainConfig) -> TrainResult:
    """Trains ``config.task`` on ``config.data``; returns the losses and where the last checkpoint is."""
    device = resolve_device(config.device)
    rank, world = _init_distributed(device)
    main = rank == 0
    torch.manual_seed(config.seed)  # parameter initialisation; the data's randomness is keyed, not seeded here
    source = open_source(config.data)
    options = dict(config.task_options)
    cls = task_class(config.task)
    if "num_samples" in inspect.signature(cls.__init__).parameters:  # tasks with a per-sample memory bank
        options.setdefault("num_samples", len(source))
    task = cls(backbone=config.backbone, image_size=config.image_size, seed=config.seed, **options)
    loader = Loader(source, batch_size=config.batch_size, transform=task.transform, device=device,
                    decoder=config.decoder, seed=config.seed, drop_last=True, num_threads=config.num_threads)
    task.to(device)
    if config.channels_last:
        task.to(memory_format=torch.channels_last)
    if config.compile:
        task.backbone.compile()  # in place: the state_dict keys stay those of the plain backbone
    model = task
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            task, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)
    lr = config.lr or default_lr(config.optimizer, config.batch_size * world)
    optimizer = make_optimizer(config.optimizer, task, lr=lr, weight_decay=config.weight_decay)
    steps_per_epoch = len(loader)
    total = config.epochs * steps_per_epoch
    warmup = min(total - 1, int(config.warmup_epochs * steps_per_epoch)) if total > 1 else 0
    for group in optimizer.param_groups:
        group["base_lr"] = group["lr"]

    step, skipped, losses = 0, 0, []
    ckpt_dir = os.path.join(config.out, "checkpoints")
    if config.resume:
        path = checkpoint.latest(ckpt_dir)
        if path is not None:
            state = checkpoint.load(path, map_location=device)
            _check_same_run(state["config"], config)
            task.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            step, skipped, losses = state["step"], state["skipped"], state["losses"]
    log = CSVLog(os.path.join(config.out, "log.csv")) if main else None
    board = TensorBoard(os.path.join(config.out, "tensorboard")) if main else None
    progress = Progress(total) if main and config.progress else None
    last_path, bad_in_row, started = None, 0, time.perf_counter()
    stop = config.max_steps if config.max_steps is not None else total
    task.train()

    def save() -> str | None:
        if not main:
            return None
        state = {"model": task.state_dict(), "optimizer": optimizer.state_dict(),
                 "step": step, "skipped": skipped, "losses": losses, "config": dataclasses.asdict(config),
                 "task": config.task, "backbone": config.backbone, "image_size": config.image_size,
                 "task_options": options}
        path = checkpoint.save_atomic(state, os.path.join(ckpt_dir, f"step_{step}.pt"))
        checkpoint.prune(ckpt_dir, config.keep_checkpoints)
        return path

    try:
        while step < min(total, stop):
            epoch, start = divmod(step, steps_per_epoch)
            batches = loader.epoch(epoch, start=start)
            t_step = time.perf_counter()
            for batch in batches:
                if config.channels_last:
                    batch = _to_channels_last(batch)
                for group in optimizer.param_groups:  # the schedule is a function of the step alone
                    group["lr"] = group["base_lr"] * warmup_cosine(step, total=total, warmup=warmup)
                with _autocast(device, config.precision):
                    out = model(batch)
                loss = out["loss"]
                optimizer.zero_grad(set_to_none=True)
                finite = bool(torch.isfinite(loss.detach()))
                if finite:
                    loss.backward()
                    if config.clip_grad:
                        torch.nn.utils.clip_grad_norm_(task.parameters(), config.clip_grad)
                    finite = _finite_gradients(task)
                if finite:
                    optimizer.step()
                    bad_in_row = 0
                else:
                    skipped += 1
                    bad_in_row += 1
                    if bad_in_row >= config.max_bad_steps:
                        raise FloatingPointError(f"{bad_in_row} steps in a row had a non-finite loss or gradient "
                                                 f"(last loss {float(loss.detach())}); lower the lr or check the data")
                step += 1
                now = time.perf_counter()
                value = float(loss.detach())
                losses.append(value)
                row = {"step": step, "epoch": epoch, "loss": value, "lr": optimizer.param_groups[0]["lr"],
                       **{k: float(v) for k, v in out.items() if k != "loss"},
                       "images_per_s": len(batch["ids"]) * world / max(now - t_step, 1e-9),
                       "data_wait": loader.stats.wait_share, "skipped": skipped}
                t_step = now
                if main:
                    log.write(row)
                    board.write(step, row)
                    if progress:
                        progress.update(step, row)
                if main and step % config.checkpoint_every == 0:
                    last_path = save()
                out_of_time = config.time_limit_s is not None and now - started > config.time_limit_s
                if step >= min(total, stop) or out_of_time:
                    break
            if config.time_limit_s is not None and time.perf_counter() - started > config.time_limit_s:
                break
        if main and (last_path is None or not last_path.endswith(f"step_{step}.pt")):
            last_path = save()
    finally:
        if main:
            log.close()
            board.close()
    return TrainResult(step, step / steps_per_epoch, losses, skipped,
                       loader.stats.images_per_s * world, loader.stats.wait_share, last_path, config.out)


# Settings that must match for a resumed run to continue the same one.
_SAME_RUN = ("task", "backbone", "image_size", "batch_size", "epochs", "optimizer", "seed", "task_options")


def _check_same_run(saved: dict, config: TrainConfig) -> None:
    changed = [k for k in _SAME_RUN if saved.get(k) != getattr(config, k)]
    if changed:
        raise ValueError("--resume: the checkpoint was written by a different run ("
                         + ", ".join(f"{k}: {saved.get(k)!r} there, {getattr(config, k)!r} now" for k in changed) + ")")


__all__ = ["TrainConfig", "TrainResult", "default_lr", "train"]
