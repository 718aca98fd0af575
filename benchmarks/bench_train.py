"""Benchmark of training: step time, images/s and the data-wait share of every pretext task.

Each task trains ``--steps`` steps through the real pipeline (generated JPEG folder → decoder →
the task's transform in the loader thread → forward/backward/optimiser step) with fastssl's trainer;
the first ``--skip`` steps (start-up, allocator warm-up) are left out of the medians. The data-wait
share is the fraction of the run's wall time the training loop spent blocked waiting for a batch
(the issue's goal on an H100: SimCLR ResNet-50 at 224² under 2%).

Examples:
  python benchmarks/bench_train.py --quick                         # every task, tiny, CPU
  python benchmarks/bench_train.py --device cuda                   # ResNet-50 / ViT at 224, batch 256
  python benchmarks/bench_train.py --tasks simclr --backbone resnet50 --image-size 224 --device cuda
Results: benchmarks/results/train_<device>.json and .md (``_quick`` under --quick; ``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import common  # noqa: E402
from fastssl.data import synthetic  # noqa: E402
from fastssl.tasks import TASKS  # noqa: E402
from fastssl.train import TrainConfig, train  # noqa: E402
from fastssl.train.log import read_csv  # noqa: E402

VIT_TASKS = ("mae",)
DEFAULTS = {"cpu": dict(image_size=64, batch=32, steps=12, skip=2, backbone="resnet18", images=512),
            "cuda": dict(image_size=224, batch=256, steps=40, skip=5, backbone="resnet50", images=4096)}
QUICK = dict(image_size=32, batch=8, steps=4, skip=1, backbone="resnet10", images=64)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--quick", action="store_true", help="tiny: 32 px, batch 8, 4 steps per task")
    parser.add_argument("--tasks", help=f"comma-separated (default: all of {', '.join(TASKS)})")
    parser.add_argument("--backbone", help="ResNet for every task but mae (vit_tiny/vit_small there)")
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--decoder", default="auto")
    parser.add_argument("--out", help=f"output folder (default {common.RESULTS_DIR})")
    return parser.parse_args(argv)


def measure(task: str, config: dict, data: str, device: torch.device, decoder: str) -> dict:
    backbone = ("vit_small" if device.type == "cuda" else "vit_tiny") if task in VIT_TASKS else config["backbone"]
    with tempfile.TemporaryDirectory() as out:
        result = train(TrainConfig(task=task, data=data, out=out, backbone=backbone, image_size=config["image_size"],
                                   batch_size=config["batch"], epochs=10**6, max_steps=config["steps"],
                                   checkpoint_every=10**9, device=str(device), decoder=decoder, progress=False,
                                   warmup_epochs=0))
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


def main(argv=None) -> int:
    args = parse_args(argv)
    device = common.resolve_device(args.device)
    config = dict(DEFAULTS[device.type])
    if args.quick:
        config.update(QUICK)
    for key, flag in (("backbone", args.backbone), ("image_size", args.image_size), ("batch", args.batch),
                      ("steps", args.steps)):
        if flag is not None:
            config[key] = flag
    config["decoder"] = args.decoder
    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else list(TASKS)
    data = os.path.join(tempfile.gettempdir(), f"fastssl-bench-train-{config['images']}")
    if not os.path.isdir(data):
        synthetic.write_image_folder(data + ".partial", classes=8, per_class=config["images"] // 8,
                                     min_size=config["image_size"], max_size=int(config["image_size"] * 1.6), seed=0)
        os.replace(data + ".partial", data)
    env = common.environment(device)
    rows, failed = [], {}
    for task in tasks:
        try:
            rows.append(measure(task, config, data, device, args.decoder))
            r = rows[-1]
            print(f"  {task:18s} {r['backbone']:9s} {r['step_ms']:8.1f} ms/step {r['images_per_s']:8.1f} img/s "
                  f"data wait {100 * r['data_wait']:5.1f}%", flush=True)
        except Exception as error:  # noqa: BLE001 (one failing task must not stop the others)
            failed[task] = f"{type(error).__name__}: {error}".splitlines()[0][:200]
            print(f"  {task:18s} failed: {failed[task]}", flush=True)
    env["load_average_end"] = common.load_average()
    out = Path(args.out) if args.out else common.RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    stem = f"train_{device.type}" + ("_quick" if args.quick else "")
    (out / f"{stem}.json").write_text(json.dumps({"benchmark": "train", "config": config, "environment": env,
                                                  "results": rows, "failed": failed}, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(env, config, rows, failed))
    print(f"wrote {out / stem}.json and .md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
