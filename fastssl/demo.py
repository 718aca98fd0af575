"""``fastssl demo``: pretrain on embedded generated images, score the features against random init, report.

The data are :func:`fastssl.data.synthetic.write_object_folder`'s JPEGs (no download): each class is
one shape, and everything else — the object's colour, size, position, tilt and shading, the
background's colours and blotches — is random per image. A randomly initialised network's features
mostly carry colour and layout, so they sit near chance; pretraining with an augmentation-invariance
task (SimCLR by default) has to learn shape to match two crops of an image under colour jitter, and
that is what the held-out kNN and linear-probe accuracies measure. The video tasks (shuffle_learn,
odd_one_out, arrow_of_time, clip_order) train on :func:`~fastssl.data.synthetic.write_video_folder`'s
WebM videos instead, whose classes are motions (:data:`~fastssl.data.synthetic.MOTIONS`: a random shape
sliding, spinning, growing, falling, bouncing or spiralling over a moving background, each slowed by friction
or driven by gravity, so that time has a direction), as the action classes of video benchmarks are, and are
scored on their features of each video's middle clip. The audio-visual tasks (avc, ave, av_sync) train on
:func:`~fastssl.data.synthetic.write_av_folder`'s videos with sound, where each class is a shape with its own
timbre and the loudness follows the shape's size, and are scored on both streams (the middle frame and the audio
around it) and by cross-modal retrieval (each frame's own audio among the held-out videos' audio, recall@1/@5).

The run goes through the whole pipeline — decoder, fastssl's fused ops in the loader, the trainer —
for a training time budget (``minutes``: the stop; the learning-rate schedule is sized from a
measured step time so that the time, not an epoch count, ends the run) or, deterministically, for a
number of ``steps``. It then scores the frozen features of the same network before and after
pretraining (k = 20 cosine kNN and an L-BFGS linear probe, on the held-out split of
:mod:`fastssl.train.evaluate`), measures kNN at a few checkpoints along the way, and writes
``report.json``, ``report.png`` and ``report.svg`` (loss and kNN per step) under ``out``.
:func:`run_all` runs every task for a short budget each and prints one table.

Example (one step on 12 images, about a second; the real demo is ``fastssl demo``):
    >>> import tempfile
    >>> report = run(steps=1, images=12, classes=2, batch_size=4, curve=False, out=tempfile.mkdtemp(), decoder="pil",
    ...              progress=False, log=lambda line: None)
    >>> report["steps"], report["images"], sorted(report["scores"])
    (1, 12, ['random_init', 'trained'])
"""

from __future__ import annotations

import argparse
import copy
import glob
import json
import math
import os
import re
import tempfile
import time

import torch

from .data import synthetic
from .data.video import CLIP_DECODERS
from .tasks import TASKS, make_task, task_class
from .train import TrainConfig, TrainError, train
from .train.checkpoint import load
from .train.evaluate import evaluate, features_for, knn_accuracy
from .train.optim import make_optimizer
from .train.plot import training_figure, why_no_figure
from .train.data import is_audio_visual, is_video, open_task_source, task_loader
from .train.trainer import default_lr, resolve_device

#: What ``fastssl demo`` runs unless told otherwise.
DEFAULTS = {"task": "simclr", "minutes": 3.0, "images": 2400, "classes": 6, "backbone": "resnet10", "image_size": 32,
            "batch_size": 64, "seed": 0}
#: The video tasks' data: ``images`` then counts videos (default ``videos``) of ``frames`` frames of ``size`` pixels.
VIDEO_DEFAULTS = {"videos": 240, "frames": 32, "size": 48, "batch_size": 32}
#: The audio-visual tasks' videos: 3 s at 16 fps, so that a 1 s audio window fits with room for a shift.
AV_FRAMES = 48
#: Backbones for the tasks that cannot use the default one (MAE needs a ViT; the clip tasks a 3-D encoder).
TASK_BACKBONES = {"mae": "vit_tiny", "arrow_of_time": "r3d_10", "clip_order": "r3d_10"}
#: Task options for small images in a short run (SimCLR: the paper's CIFAR colour strength, larger crops, and the
#: temperature of small batches). Measured at 1250 steps (the 3-minute budget on 2 cores) on the default data: kNN /
#: linear-probe gain over random init +14.8 / +17.9 at temperature 0.1, +14.0 / +10.8 at 0.2, +8.5 / +6.5 at
#: strength 1.0 (0.2).
TASK_OPTIONS = {"simclr": {"strength": 0.5, "min_scale": 0.25, "temperature": 0.1},
                # the video tasks' tuples scaled to 32-frame videos
                "shuffle_learn": {"tau_min": 4, "tau_max": 16, "positive_fraction": 0.5},
                "odd_one_out": {"clips": 4, "clip_len": 4, "stride": 2},
                "arrow_of_time": {"clip_len": 8, "stride": 2},
                "clip_order": {"clip_len": 4, "gap": 4},
                # a short run's settings: 10 clusters per class (DeepCluster over-clusters), PCA to 64 of 512
                # dimensions; MoCo v2 with a queue of 64 batches, a faster key encoder for a few thousand steps and
                # two BN groups (each group is a forward pass of its own: eight made 384 steps in 3 minutes)
                # DeepCluster on Sobel gradients, as the paper's AlexNet: the clusters of colour images follow colour
                # (random here); 3 min: linear probe +16.2 over random init with Sobel, -1.9 without
                "deepcluster": {"clusters": 60, "pca_dim": 64, "min_scale": 0.25, "recluster_every": 8,
                                "sobel": True},
                "cluster_transfer": {"clusters": 60, "min_scale": 0.25},
                "moco": {"version": "v2", "queue_size": 4096, "momentum": 0.99, "temperature": 0.2, "bn_groups": 2},
                # audio at 16 kHz through L³-Net's audio stream at a quarter width; L³-Net's late fusion on 40 mel
                # bands (40 x 199: the audio stream's step takes a fifth of its time on the 129 x 199 spectrogram).
                # Synchronisation: only the shape's size tells in sync from shifted here, so the whole frame and no
                # gain (crops and gains change the size and the loudness seen), and half-second windows, which a
                # shift of 0.5..1 s never overlaps (the audio stream max-pools over its window); 400 steps in memory:
                # 80% (1 s windows, even without crops and gains: 53%)
                **{task: {"audio_backbone": "l3_audio_small", "sample_rate": 16000, **extra}
                   for task, extra in (("avc", {"mel_bins": 40}),
                                       ("av_sync", {"mel_bins": 40, "window": 0.5, "gain_db": 0.0, "min_scale": 1.0}),
                                       # AVE-Net's contrastive form: in a short run the distance loss moves one
                                       # pair at a time, InfoNCE every frame against the batch's audio
                                       ("ave", {"loss": "infonce"}))}}
#: Tasks that learn from a trained network: the demo first trains this teacher on the same data for the same budget.
TEACHERS = {"cluster_transfer": "jigsaw_pp"}
#: Learning rates (AdamW) of a short run where the trainer's default (1e-3) is slower. L³-Net's fusion leaves chance
#: only through the interaction of its two streams: at 1e-3 it barely does in 400 steps (57% at batch 32, 71% at 64),
#: at 3e-4 and batch 64 it reaches 77% (measured on the demo's videos held in memory).
TASK_LR = {"simclr": 2e-3, "avc": 3e-4, "av_sync": 3e-4}
#: Batches of a short run where the default (64 images, 32 videos) learns more slowly.
TASK_BATCH = {"avc": 64, "av_sync": 64}
#: ``--task all``: training minutes per task.
MINUTES_EACH = 0.3
#: A time-budgeted run's step cap, as a multiple of the steps a measured step time expects: the time ends the run,
#: and the learning-rate schedule follows the time (warmup, then the cosine ending at the budget), so a step time
#: measured off by a third (as a few steps at the start of a run can be) changes neither the stop nor the schedule.
STEP_CAP_MARGIN = 3.0
#: kNN is measured at this many checkpoints during training (plus random init and the end).
CURVE_POINTS = 4


def run(*, task: str = DEFAULTS["task"], minutes: float = DEFAULTS["minutes"], steps: int | None = None,
        images: int | None = None, classes: int = DEFAULTS["classes"], backbone: str | None = None,
        image_size: int = DEFAULTS["image_size"], batch_size: int | None = None, out: str | None = None,
        device: str = "auto", decoder: str = "auto", seed: int = DEFAULTS["seed"], progress: bool = True,
        task_options: dict | None = None, curve: bool = True, data_dir: str | None = None, log=print) -> dict:
    """Runs the demo for ``task``; returns its report (also written to ``<out>/report.json``).

    ``minutes``: training time budget (ignored when ``steps`` is given: exactly that many steps, for runs that
    must not depend on the machine's speed). ``images``: how many JPEGs (videos for a video task) to generate (at
    least 2 per class; the report gives the number written; default 2400 images, 240 videos). ``batch_size``:
    default 64 (32 for a video task; :data:`TASK_BATCH` for some tasks). ``backbone``: default ``resnet10``
    (:data:`TASK_BACKBONES` for some tasks).
    ``curve``: measure kNN at a few checkpoints for the figure. ``data_dir``: where the images are written (and
    reused), default ``out``.
    """
    video = task in TASKS and is_video(task_class(task))
    sound = task in TASKS and is_audio_visual(task_class(task))
    images = images if images is not None else VIDEO_DEFAULTS["videos"] if video else DEFAULTS["images"]
    batch_size = batch_size or TASK_BATCH.get(task) or (VIDEO_DEFAULTS["batch_size"] if video
                                                        else DEFAULTS["batch_size"])
    _check(task=task, minutes=minutes, steps=steps, images=images, classes=classes, batch_size=batch_size)
    backbone = backbone or TASK_BACKBONES.get(task, DEFAULTS["backbone"])
    options = dict(TASK_OPTIONS.get(task, {}) if task_options is None else task_options)
    out = out or tempfile.mkdtemp(prefix="fastssl-demo-")
    os.makedirs(out, exist_ok=True)
    data, written = write_data(data_dir or out, images=images, classes=classes, seed=seed, progress=progress,
                               video=video, sound=sound)
    options = {k: v for k, v in _sized(task, options, written).items() if k != "num_samples"}  # the trainer adds it
    if task in TEACHERS and "teacher" not in options:
        options["teacher"] = _teacher(TEACHERS[task], out, data_dir or out, minutes=minutes, steps=steps,
                                      images=images, classes=classes, image_size=image_size,
                                      batch_size=batch_size, device=device, decoder=decoder, seed=seed)
    kind = "WebM videos with sound" if sound else "WebM videos" if video else "JPEGs"
    if video and decoder not in CLIP_DECODERS:
        log(f"fastssl demo: {task} decodes videos with {', '.join(CLIP_DECODERS)}, not {decoder}: using auto")
        decoder = "auto"
    per_epoch = written // batch_size
    if per_epoch < 1:
        batch_size = written // 2
        per_epoch = 2
        log(f"fastssl demo: the batch is reduced to {batch_size} images to make 2 batches of the {written} images")
    where = resolve_device(device)
    asked = "" if written == images else f" (asked for {images}: {written // classes} per class, at least 2)"
    log(f"fastssl demo: {task} on {written} generated {kind}{asked} of {classes} {_classes_are(kind)} "
        f"({data}), {backbone} at "
        f"{image_size} px, batches of {batch_size}, "
        + (f"{steps} steps" if steps is not None else f"{minutes:g} min of training"))

    def build() -> torch.nn.Module:  # the trainer's initial network: the same seed, the same draws
        torch.manual_seed(seed)
        return make_task(task, backbone=backbone, image_size=image_size, seed=seed, **_sized(task, options, written))

    random_init = build().to(where)
    evaluation = dict(device=where, decoder=decoder, progress=progress)
    started = time.perf_counter()
    baseline = _scores(random_init, data, evaluation)
    planned = steps  # the steps the run is expected to make (a time budget: estimated from a measured step time)
    if steps is None:
        planned = 0 if minutes == 0 else max(1, round(60 * minutes / measure_step_time(
            random_init, data, batch_size=batch_size, decoder=decoder, device=where)))
    if planned == 0:  # nothing to train: the report gives the random-init scores and says so
        result, train_s, checkpoints = None, 0.0, []
    else:
        every = max(1, planned // (CURVE_POINTS + 1)) if curve else 10**9
        cap = planned if steps is not None else math.ceil(STEP_CAP_MARGIN * planned)
        epochs = max(1, math.ceil(cap / per_epoch))
        warmup_share = min(per_epoch, 0.1 * planned) / planned  # of the expected steps (or of the time budget)
        config = TrainConfig(task=task, data=data, out=os.path.join(out, "run"), backbone=backbone,
                             image_size=image_size, batch_size=batch_size, epochs=epochs,
                             warmup_epochs=warmup_share * (planned / per_epoch if steps is not None else epochs),
                             max_steps=steps, time_limit_s=None if steps is not None else 60 * minutes,
                             schedule_by_time=steps is None, checkpoint_every=every,
                             keep_checkpoints=CURVE_POINTS + 3, overwrite=True, device=device, decoder=decoder,
                             seed=seed, progress=progress, task_options=options, lr=TASK_LR.get(task))
        t0 = time.perf_counter()
        result = train(config)
        train_s = time.perf_counter() - t0
        checkpoints = _checkpoints(os.path.join(out, "run", "checkpoints"))
    losses = result.losses if result else []
    done = result.steps if result else 0
    if done:
        trained = build()
        trained.load_state_dict(load(checkpoints[-1][1])["model"])
        scores = {"trained": _scores(trained.to(where), data, evaluation), "random_init": baseline}
    else:
        scores = {"trained": baseline, "random_init": baseline}
    knn_curve = [(0, 100 * baseline["knn"])]
    for step, path in checkpoints[:-1]:
        if step > 0:
            trained.load_state_dict(load(path)["model"])
            f = features_for(trained, data, **evaluation)
            knn_curve.append((step, 100 * knn_accuracy(f.train, f.train_labels, f.val, f.val_labels)))
    if done:
        knn_curve.append((done, 100 * scores["trained"]["knn"]))
    ends = max(1, min(10, len(losses) // 2))  # steps averaged at each end of the run
    first, last = _mean(losses[:ends]), _mean(losses[-ends:])
    accuracies = _logged(os.path.join(out, "run", "log.csv"), "accuracy") if done else []
    report = {"task": task, "backbone": backbone, "image_size": image_size, "images": written, "kind": kind,
              "classes": classes,
              "batch_size": batch_size, "steps": done, "planned_steps": planned,
              "budget": f"{steps} steps" if steps is not None else f"{minutes:g} min",
              "epochs": round(result.epochs_done, 2) if result else 0.0, "train_s": round(train_s, 1),
              "images_per_s": round(done * batch_size / train_s, 1) if train_s > 0 else 0.0,
              "data_wait": round(result.data_wait, 3) if result else 0.0, "loss_first": first, "loss_last": last,
              "loss_steps_averaged": ends,
              "pretext_accuracy": [_mean(accuracies[:ends]), _mean(accuracies[-ends:])] if accuracies else None,
              "scores": scores, "knn_curve": [(s, round(a, 2)) for s, a in knn_curve],
              "gain": {k: round(100 * (scores["trained"][k] - baseline[k]), 1) for k in scores["trained"]
                       if k in ("knn", "linear", "audio_knn", "audio_linear", "recall@1", "recall@5")},
              "checkpoint": result.checkpoint if result else None, "out": out, "files": []}
    reason = f"no training step ran ({report['budget']})" if done == 0 else why_no_figure(losses)
    if reason is None:
        report["files"] = training_figure(losses, os.path.join(out, "report"), knn=knn_curve,
                                          random_init_knn=100 * baseline["knn"], chance=100 / classes,
                                          title=f"{task} pretraining ({backbone}, {image_size} px): loss and kNN")
    report["no_figure"] = reason
    report["total_s"] = round(time.perf_counter() - started, 1)
    report["files"].append(os.path.join(out, "report.json"))
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    log(render(report))
    return report


def _check(*, task, minutes, steps, images, classes, batch_size) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(sorted(TASKS))} or all, got {task!r}")
    if not (isinstance(minutes, (int, float)) and math.isfinite(minutes) and minutes >= 0):
        raise ValueError(f"minutes must be a number >= 0, got {minutes!r}")
    if steps is not None and steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    sound = task in TASKS and is_audio_visual(task_class(task))
    kinds = synthetic.MOTIONS if task in TASKS and is_video(task_class(task)) and not sound else synthetic.SHAPES
    if not 2 <= classes <= len(kinds):
        raise ValueError(f"classes must be in 2..{len(kinds)} (one {'motion' if len(kinds) < 10 else 'shape'} each), "
                         f"got {classes}")
    if images < 1:
        raise ValueError(f"images must be >= 1, got {images}")
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2, got {batch_size}")


def write_data(out: str, *, images: int, classes: int, seed: int, progress: bool = False,
               video: bool = False, sound: bool = False) -> tuple[str, int]:
    """(folder, number of files in it): ``classes`` × max(2, images // classes) object images (or videos, with
    ``sound`` videos with sound) under ``out``, written once per (kind, classes, per class, seed) and reused."""
    per_class = max(2, images // classes)
    name = "sounding" if sound else "actions" if video else "data"
    folder = os.path.join(out, f"{name}_{classes}x{per_class}_seed{seed}")
    if not os.path.isdir(folder):
        partial = folder + ".partial"
        if sound:
            synthetic.write_av_folder(partial, classes=classes, per_class=per_class, frames=AV_FRAMES,
                                      size=VIDEO_DEFAULTS["size"], seed=seed)
        elif video:
            synthetic.write_video_folder(partial, classes=classes, per_class=per_class, frames=VIDEO_DEFAULTS["frames"],
                                         size=VIDEO_DEFAULTS["size"], seed=seed, classes_by="motion")
        else:
            synthetic.write_object_folder(partial, classes=classes, per_class=per_class, seed=seed, progress=progress)
        os.replace(partial, folder)
    return folder, classes * per_class


def _teacher(task: str, out: str, data_dir: str, **options) -> str:
    """The checkpoint of ``task`` trained on the same data for the same budget (cluster transfer's teacher)."""
    report = run(task=task, out=os.path.join(out, "teacher"), data_dir=data_dir, curve=False, progress=False,
                 log=lambda line: None, **options)
    if not report["checkpoint"]:
        raise ValueError(f"the teacher ({task}) trained no step: cluster transfer has nothing to cluster")
    return report["checkpoint"]


def _sized(task: str, options: dict, images: int) -> dict:
    """``options`` plus what the trainer adds for tasks with a per-sample state (a memory bank, cluster
    assignments), with no more clusters than a quarter of the images."""
    import inspect

    from .tasks import task_class

    if "clusters" in options:
        options = {**options, "clusters": min(options["clusters"], max(2, images // 4))}
    if "num_samples" in inspect.signature(task_class(task).__init__).parameters:
        return {"num_samples": images, **options}
    return options


def measure_step_time(task: torch.nn.Module, data: str, *, batch_size: int, decoder: str, device,
                      steps: int = 4) -> float:
    """Seconds per training step of ``task`` on ``data`` in the steady state (a copy of ``task``: it stays untouched).

    The loader feeds ``steps`` + 1 AdamW steps as in training; the first (loader start-up, first-call costs) is
    left out, the median of the others is the step time, the loader's waits included.
    """
    model = copy.deepcopy(task).train()
    loader = task_loader(model, open_task_source(model, data), batch_size=batch_size, device=device, decoder=decoder,
                         drop_last=True)
    optimizer = make_optimizer("adamw", model, lr=default_lr("adamw", batch_size), weight_decay=1e-4)
    times, batches = [], loader.epoch(0)
    try:
        t = time.perf_counter()
        for i, batch in zip(range(steps + 1), batches):
            loss = model(batch)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            now = time.perf_counter()
            if i:
                times.append(now - t)
            t = now
    finally:
        batches.close()
    if not times:
        raise ValueError(f"{data} gives fewer than 2 batches of {batch_size}: too few images to time a step")
    return sorted(times)[len(times) // 2]


def _checkpoints(folder: str) -> list[tuple[int, str]]:
    found = []
    for path in glob.glob(os.path.join(folder, "step_*.pt")):
        match = re.fullmatch(r"step_(\d+)\.pt", os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def _scores(task: torch.nn.Module, data: str, evaluation: dict) -> dict:
    return evaluate(task, data, **evaluation)


def _logged(path: str, column: str) -> list[float]:
    """The values of ``column`` in a training log.csv, step by step (none when the task logs no such metric)."""
    from .train.log import read_csv

    if not os.path.exists(path):
        return []
    return [float(row[column]) for row in read_csv(path) if row.get(column) not in (None, "")]


def _classes_are(kind: str) -> str:
    return "motions" if kind == "WebM videos" else "shapes"


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return round(sum(finite) / len(finite), 4) if finite else float("nan")


def verdict(gain_points: float, what: str) -> str:
    """'pretraining beat random init by 23.1 points of kNN accuracy' (or 'lost to ... by', 'tied with ...')."""
    if round(gain_points, 1) == 0:
        return f"pretraining tied with random init on {what}"
    return (f"pretraining {'beat' if gain_points > 0 else 'lost to'} random init by {abs(gain_points):.1f} points "
            f"of {what}")


def render(report: dict) -> str:
    t, r = report["scores"]["trained"], report["scores"]["random_init"]
    lines = ["", f"== fastssl demo: {report['task']} pretraining, {report['backbone']} at {report['image_size']} px, "
                 f"{report['images']} generated {report.get('kind', 'images')} of {report['classes']} "
                 f"{_classes_are(report.get('kind', 'images'))} =="]
    if report["steps"] == 0:
        lines.append(f"no training step ran ({report['budget']}): the scores below are the random-init network's")
    else:
        lines += [f"trained {report['steps']} steps ({report['epochs']} epochs, budget {report['budget']}) in "
                  f"{report['train_s']} s: {report['images_per_s']} images/s, waiting for data "
                  f"{100 * report['data_wait']:.0f}% of the time",
                  f"loss: {report['loss_first']} (mean of the first {report['loss_steps_averaged']} steps) -> "
                  f"{report['loss_last']} (last {report['loss_steps_averaged']})"]
        if report.get("pretext_accuracy"):
            first, last = report["pretext_accuracy"]
            lines.append(f"pretext accuracy (the task's own labels): {100 * first:.1f}% -> {100 * last:.1f}%")
    samples = "videos" if "video" in report.get("kind", "") else "images"
    lines += [f"frozen features of {t['val']} held-out {samples}, {t['classes']} classes "
              f"(chance {100 / t['classes']:.0f}%):",
              f"  kNN (k=20)    pretrained {100 * t['knn']:5.1f}%   random init {100 * r['knn']:5.1f}%",
              f"  linear probe  pretrained {100 * t['linear']:5.1f}%   random init {100 * r['linear']:5.1f}%"]
    if "audio_knn" in t:
        lines += [f"  their audio, kNN (k=20)    pretrained {100 * t['audio_knn']:5.1f}%   random init "
                  f"{100 * r['audio_knn']:5.1f}%",
                  f"  their audio, linear probe  pretrained {100 * t['audio_linear']:5.1f}%   random init "
                  f"{100 * r['audio_linear']:5.1f}%",
                  f"frame -> audio retrieval among the {t['val']} held-out videos (chance {100 / t['val']:.1f}% / "
                  f"{100 * min(5, t['val']) / t['val']:.1f}%):",
                  f"  recall@1  pretrained {100 * t['recall@1']:5.1f}%   random init {100 * r['recall@1']:5.1f}%",
                  f"  recall@5  pretrained {100 * t['recall@5']:5.1f}%   random init {100 * r['recall@5']:5.1f}%"]
    if report["steps"]:
        lines += [verdict(report["gain"]["knn"], "kNN accuracy"),
                  verdict(report["gain"]["linear"], "linear-probe accuracy")]
        if len(report["knn_curve"]) > 2:
            lines.append("kNN during training: " + ", ".join(f"step {s}: {a:.1f}%" for s, a in report["knn_curve"]))
    if report["no_figure"]:
        lines.append(f"no figure: {report['no_figure']}")
    lines += ["wrote: " + ", ".join(report["files"]), f"total time {report['total_s']} s"]
    return "\n".join(lines)


def run_all(*, minutes: float = MINUTES_EACH, steps: int | None = None, out: str | None = None, log=print,
            **options) -> list[dict]:
    """Runs every task of :data:`fastssl.tasks.TASKS` for ``minutes`` (or ``steps``) each on the same data; prints
    and returns their reports (a task that fails gets a row saying why)."""
    out = out or tempfile.mkdtemp(prefix="fastssl-demo-all-")
    reports = []
    for task in sorted(TASKS):
        try:
            reports.append(run(task=task, minutes=minutes, steps=steps, out=os.path.join(out, task), data_dir=out,
                               curve=False, log=lambda line: None, **options))
        except (TrainError, ValueError, RuntimeError) as error:
            reports.append({"task": task, "error": str(error).strip().splitlines()[0]})
        log(table_row(reports[-1]) if len(reports) > 1 else table_header() + "\n" + table_row(reports[-1]))
    with open(os.path.join(out, "reports.json"), "w") as f:
        json.dump(reports, f, indent=2)
    log(f"reports: {os.path.join(out, 'reports.json')} (one folder per task under {out})")
    return reports


_COLUMNS = "{:<18} {:>6} {:>9}  {:>22}  {:>22}  {:>17}"


def table_header() -> str:
    return _COLUMNS.format("task", "steps", "images/s", "kNN: trained / random", "linear: trained / random",
                           "loss first -> last")


def table_row(report: dict) -> str:
    if "error" in report:
        return f"{report['task']:<18} failed: {report['error']}"
    t, r, g = report["scores"]["trained"], report["scores"]["random_init"], report["gain"]
    return _COLUMNS.format(report["task"], report["steps"], report["images_per_s"],
                           f"{100 * t['knn']:.1f} / {100 * r['knn']:.1f} ({g['knn']:+.1f})",
                           f"{100 * t['linear']:.1f} / {100 * r['linear']:.1f} ({g['linear']:+.1f})",
                           f"{report['loss_first']:.3f} -> {report['loss_last']:.3f}")


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The demo's options (every default shown by ``--help``); ``parser.set_defaults(run=main_from_args)`` runs it."""
    d = DEFAULTS
    parser.add_argument("--task", default=d["task"], choices=sorted(TASKS) + ["all"],
                        help="pretext task, or all: every task for --minutes-each, one table (default: %(default)s)")
    parser.add_argument("--minutes", type=float, default=d["minutes"],
                        help="training time budget, the stop (default: %(default)s)")
    parser.add_argument("--minutes-each", type=float, default=MINUTES_EACH,
                        help="--task all: training minutes per task (default: %(default)s)")
    parser.add_argument("--steps", type=int, help="train exactly this many steps instead of a time budget "
                                                  "(the same result on any machine; default: time budget)")
    parser.add_argument("--images", type=int, help=f"generated JPEGs (videos for a video task), at least 2 per class "
                                                    f"(default: {d['images']}; {VIDEO_DEFAULTS['videos']} videos)")
    parser.add_argument("--classes", type=int, default=d["classes"], help="shapes, 2..10 (default: %(default)s)")
    parser.add_argument("--backbone", help=f"default: {d['backbone']} "
                                           f"({', '.join(f'{t}: {b}' for t, b in TASK_BACKBONES.items())})")
    parser.add_argument("--image-size", type=int, default=d["image_size"], help="pixels (default: %(default)s)")
    parser.add_argument("--batch-size", type=int,
                        help=f"default: {d['batch_size']} ({VIDEO_DEFAULTS['batch_size']} for a video task; "
                             f"{', '.join(f'{t}: {b}' for t, b in TASK_BATCH.items())})")
    parser.add_argument("--seed", type=int, default=d["seed"],
                        help="data, initialisation and views (default: %(default)s)")
    parser.add_argument("--out", help="folder for data, runs, report and figure (default: a new temporary folder)")
    parser.add_argument("--device", default="auto", help="auto: a GPU when there is one (default: %(default)s)")
    parser.add_argument("--decoder", default="auto", choices=("auto", "dali", "torchvision", "pil", "pyav"),
                        help="default: %(default)s")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    return parser


def main_from_args(args: argparse.Namespace) -> int:
    """Runs what :func:`add_arguments` parsed; a bad value is one line (SystemExit), not a traceback."""
    options = dict(steps=args.steps, images=args.images, classes=args.classes, backbone=args.backbone,
                   image_size=args.image_size, batch_size=args.batch_size, device=args.device, decoder=args.decoder,
                   seed=args.seed, progress=not args.quiet)
    try:
        if args.task == "all":
            run_all(minutes=args.minutes_each, out=args.out, **options)
        else:
            run(task=args.task, minutes=args.minutes, out=args.out, **options)
    except (TrainError, ValueError) as error:
        raise SystemExit(f"fastssl demo: {str(error).strip().splitlines()[0]}") from None
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m fastssl.demo [options]``: the same as ``fastssl demo``."""
    parser = add_arguments(argparse.ArgumentParser(prog="fastssl demo", description=__doc__.split("\n\n")[0]))
    return main_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
