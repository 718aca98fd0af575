"""``fastssl demo``: pretrain on the embedded data, evaluate against a random-init baseline, report.

The embedded data are the procedural JPEG classes of :mod:`fastssl.data.synthetic` (oriented
stripes, varied colours, sizes and layouts: no download), written once into a temporary folder. A
small backbone is pretrained with a pretext task for a time budget (a few minutes on a CPU, less on
a GPU) through the full pipeline — decoder, fastssl's fused ops in the loader, the trainer — then
its frozen features are scored by kNN and a linear probe against the same network at random
initialisation. The report gives the throughput and the accuracies and points at the loss-curve SVG.

Example (a 10-second run):
    python -m fastssl demo --minutes 0.15 --images 160
"""

from __future__ import annotations

import json
import os
import tempfile
import time

from .data import synthetic
from .tasks import make_task
from .train import TrainConfig, train
from .train.checkpoint import load
from .train.evaluate import compare
from .train.plot import loss_curve_svg
from .train.trainer import resolve_device


def run(*, task: str = "simclr", minutes: float = 3.0, images: int = 1200, classes: int = 6,
        backbone: str = "resnet10", image_size: int = 32, batch_size: int = 64, epochs: int = 30,
        out: str | None = None, device: str = "auto", decoder: str = "auto", seed: int = 0, progress: bool = True,
        task_options: dict | None = None, log=print) -> dict:
    """Runs the demo; returns its report (also written to ``<out>/report.json``)."""
    if task_options is None and task == "simclr":  # SimCLR's small-image settings (the paper's CIFAR runs: s = 0.5)
        task_options = {"strength": 0.5, "min_scale": 0.25}
    out = out or tempfile.mkdtemp(prefix="fastssl-demo-")
    batch_size = max(2, min(batch_size, images // 2))  # at least two batches of a tiny set
    data = os.path.join(out, "data")
    if not os.path.isdir(data):
        synthetic.write_image_folder(data, classes=classes, per_class=max(2, images // classes), min_size=40,
                                     max_size=80, seed=seed)
    log(f"fastssl demo: {task} on {images} generated JPEGs of {classes} classes ({data}), {backbone} at "
        f"{image_size} px, up to {minutes:g} min of training")
    config = TrainConfig(task=task, data=data, out=os.path.join(out, "run"), backbone=backbone, image_size=image_size,
                         batch_size=batch_size, epochs=epochs, warmup_epochs=1, time_limit_s=60 * minutes,
                         checkpoint_every=10**9, overwrite=True, device=device, decoder=decoder, seed=seed,
                         progress=progress, task_options=dict(task_options or {}))
    started = time.perf_counter()
    result = train(config)
    train_s = time.perf_counter() - started
    state = load(result.checkpoint)
    trained = make_task(task, backbone=backbone, image_size=image_size, seed=seed, **state["task_options"])
    trained.load_state_dict(state["model"])
    baseline = make_task(task, backbone=backbone, image_size=image_size, seed=seed + 1, **state["task_options"])
    where = resolve_device(device)
    scores = compare(trained.to(where), baseline.to(where), data, device=where, decoder=decoder)
    plot = loss_curve_svg(result.losses, os.path.join(out, "loss.svg"), title=f"{task} pretraining loss ({backbone})")
    first, last = _mean(result.losses[:10]), _mean(result.losses[-10:])
    report = {"task": task, "backbone": backbone, "image_size": image_size, "images": images, "classes": classes,
              "steps": result.steps, "epochs": round(result.epochs_done, 2), "train_s": round(train_s, 1),
              "images_per_s": round(result.steps * batch_size / train_s, 1), "data_wait": round(result.data_wait, 3),
              "loss_first10": first, "loss_last10": last, "scores": scores, "plot": plot,
              "checkpoint": result.checkpoint, "out": out}
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    log(render(report))
    return report


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else float("nan")


def render(report: dict) -> str:
    s = report["scores"]
    t, r = s["trained"], s["random_init"]
    chance = 1 / t["classes"]
    return "\n".join([
        "",
        f"== fastssl demo: {report['task']} pretraining, {report['backbone']} at {report['image_size']} px ==",
        f"trained {report['steps']} steps ({report['epochs']} epochs) in {report['train_s']} s: "
        f"{report['images_per_s']} images/s, waiting for data {100 * report['data_wait']:.0f}% of the time",
        f"loss: {report['loss_first10']} (first 10 steps) -> {report['loss_last10']} (last 10)",
        f"frozen features on {t['val']} held-out images of {t['classes']} classes (chance {100 * chance:.0f}%):",
        f"  kNN (k=20)    pretrained {100 * t['knn']:5.1f}%   random init {100 * r['knn']:5.1f}%",
        f"  linear probe  pretrained {100 * t['linear']:5.1f}%   random init {100 * r['linear']:5.1f}%",
        f"pretraining {'beat' if t['knn'] > r['knn'] else 'did not beat'} random init on kNN by "
        f"{100 * (t['knn'] - r['knn']):+.1f} points (longer runs: --minutes; a GPU: seconds per epoch)",
        f"loss curve: {report['plot']}",
        f"checkpoint: {report['checkpoint']}",
    ])
