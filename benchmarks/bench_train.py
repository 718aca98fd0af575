"""Benchmark of training: step time, images/s and the data-wait share of every pretext task.

Each task trains ``--steps`` steps through the real pipeline (generated JPEG folder → decoder →
the task's transform in the loader thread → forward/backward/optimiser step) with fastssl's trainer;
the first ``--skip`` steps (start-up, allocator warm-up) are left out of the medians. The data-wait
share is the fraction of the run's wall time the training loop spent blocked waiting for a batch
(the goal on an H100: SimCLR ResNet-50 at 224² under 2%).

Examples:
  python benchmarks/bench_train.py --quick                         # every task, tiny, CPU
  python benchmarks/bench_train.py --device cuda                   # ResNet-50 / ViT at 224, batch 256
  python benchmarks/bench_train.py --tasks simclr --backbone resnet50 --image-size 224 --device cuda
Results: benchmarks/results/train_<device>.json and .md (``_quick`` under --quick; ``--out`` elsewhere).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile

import torch

import common
from fastssl.data import synthetic
from fastssl.tasks import TASKS
from fastssl.train import TrainConfig, train
from fastssl.train.log import read_csv

VIT_TASKS = ("mae",)


def measure(task: str, config: dict, data: str, device: torch.device) -> dict:
    """One task trained for config["steps"] steps: its median step time, images/s, data-wait share and losses."""
    backbone = ("vit_small" if device.type == "cuda" else "vit_tiny") if task in VIT_TASKS else config["backbone"]
    with tempfile.TemporaryDirectory() as out:
        result = train(TrainConfig(task=task, data=data, out=out, backbone=backbone, image_size=config["image_size"],
                                   batch_size=config["batch"], epochs=10**6, max_steps=config["steps"],
                                   checkpoint_every=10**9, device=str(device), decoder=config["decoder"],
                                   progress=False, warmup_epochs=0))
        rows = read_csv(os.path.join(out, "log.csv"))[config["skip"]:]
    step_ms = statistics.median(1e3 * config["batch"] / r["images_per_s"] for r in rows)
    return {"task": task, "backbone": backbone, "steps": result.steps, "step_ms": step_ms,
            "images_per_s": config["batch"] / step_ms * 1e3, "data_wait": result.data_wait,
            "loss_first": result.losses[0], "loss_last": result.losses[-1]}


def markdown(env: dict, config: dict, rows: list[dict], failed: dict) -> str:
    lines = [f"# train benchmark on {env['device_kind']}", "",
             f"- device: **{env['device_name']}**, {env['torch_threads']} torch threads, torch {env['torch']}, "
             f"fastssl {env['fastssl']}; date {env['date']}; load average {env.get('load_average_1_5_15')}",
             f"- {config['image_size']} px, batch {config['batch']}, {config['steps']} steps per task (first "
             f"{config['skip']} not counted), decoder {config['decoder']}", "",
             "| task | backbone | step ms (median) | images/s | data wait | loss first → last |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['backbone']} | {r['step_ms']:.1f} | {r['images_per_s']:.1f} | "
                     f"{100 * r['data_wait']:.1f}% | {r['loss_first']:.3f} → {r['loss_last']:.3f} |")
    lines += [f"| {task} | — | failed: {why} | | | |" for task, why in failed.items()]
    return "\n".join(lines + [""])


def measure_tasks(run: common.Run, env: dict) -> common.Report:
    """Trains every task in turn on the generated JPEG folder; a failing task is reported, not raised."""
    config, device = run.config, run.device
    tasks = [t.strip() for t in config["tasks"].split(",")] if config["tasks"] else list(TASKS)
    data = os.path.join(tempfile.gettempdir(), f"fastssl-bench-train-{config['images']}")
    if not os.path.isdir(data):
        synthetic.write_image_folder(data + ".partial", classes=8, per_class=config["images"] // 8,
                                     min_size=config["image_size"], max_size=int(config["image_size"] * 1.6), seed=0)
        os.replace(data + ".partial", data)
    rows, failed = [], {}
    for task in tasks:
        try:
            rows.append(measure(task, config, data, device))
            r = rows[-1]
            print(f"  {task:18s} {r['backbone']:9s} {r['step_ms']:8.1f} ms/step {r['images_per_s']:8.1f} img/s "
                  f"data wait {100 * r['data_wait']:5.1f}%", flush=True)
        except Exception as error:  # noqa: BLE001 (one failing task must not stop the others)
            failed[task] = f"{type(error).__name__}: {error}".splitlines()[0][:200]
            print(f"  {task:18s} failed: {failed[task]}", flush=True)
    payload = {"benchmark": "train", "config": config, "environment": env, "results": rows, "failed": failed}
    return common.Report(payload, lambda: markdown(env, config, rows, failed), status=1 if failed else 0)


BENCHMARK = common.Benchmark(
    name="train", doc=__doc__, measure=measure_tasks,
    defaults={"cpu": dict(image_size=64, batch=32, steps=12, skip=2, backbone="resnet18", images=512, decoder="auto"),
              "cuda": dict(image_size=224, batch=256, steps=40, skip=5, backbone="resnet50", images=4096,
                           decoder="auto")},
    quick=dict(image_size=32, batch=8, steps=4, skip=1, backbone="resnet10", images=64),
    flags=(common.flag("--tasks", help=f"comma-separated (default: all of {', '.join(TASKS)})"),
           common.flag("--backbone", help="ResNet for every task but mae (vit_tiny/vit_small there)"),
           common.flag("--image-size", type=int, help="image side in pixels"),
           common.flag("--steps", type=int, help="training steps per task"),
           common.flag("--decoder", help="the loader's decoder")),
    headline="{image_size} px, batch {batch}, {steps} steps per task")


if __name__ == "__main__":
    sys.exit(common.main(BENCHMARK))
