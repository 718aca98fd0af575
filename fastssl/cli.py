"""The ``fastssl`` command line (also ``python -m fastssl``): info, train, eval, bench, demo.

Examples:
    fastssl info
    fastssl demo                                     # pretrain on the embedded data, evaluate, report
    fastssl train simclr --data /data/train --out runs/simclr --backbone resnet50 --image-size 224 --epochs 100
    fastssl train rotation --data DIR --out runs/rot --resume     # or --overwrite to start that run again
    fastssl eval --checkpoint runs/rot/checkpoints/step_500.pt --data /data/labelled
    fastssl bench loader --device cuda               # benchmarks/bench_loader.py (source checkout)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path


def _info(args) -> int:
    from . import info

    report = info.collect()
    print(json.dumps(report, indent=2, default=str) if args.json else info.render(report))
    return 0


def _task_options(pairs: list[str]) -> dict:
    """``key=value`` strings → a dict (values parsed as JSON when they parse, else kept as strings)."""
    options = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"fastssl: --option expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _train(args) -> int:
    from .data import BadImageError
    from .train import TrainConfig, TrainError, train

    if not os.path.exists(args.data):
        raise SystemExit(f"fastssl train: --data {args.data!r} does not exist")
    try:
        config = TrainConfig(task=args.task, data=args.data, out=args.out, backbone=args.backbone,
                             image_size=args.image_size, batch_size=args.batch_size, epochs=args.epochs,
                             optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
                             warmup_epochs=args.warmup_epochs, clip_grad=args.clip_grad or None,
                             precision=args.precision, channels_last=not args.no_channels_last, compile=args.compile,
                             seed=args.seed, device=args.device, decoder=args.decoder, num_threads=args.threads,
                             checkpoint_every=args.checkpoint_every, resume=args.resume,
                             resume_anyway=args.resume_anyway, overwrite=args.overwrite, max_steps=args.max_steps,
                             collective_timeout_s=args.collective_timeout, progress=not args.quiet,
                             task_options=_task_options(args.option))
        result = train(config)
    except (TrainError, BadImageError, FloatingPointError, ValueError) as error:  # one line, no traceback
        raise SystemExit(f"fastssl train: {str(error).strip()}") from None
    if int(os.environ.get("RANK", "0")) != 0:  # rank 0 reports for the whole run
        return 0
    checkpoint = result.checkpoint if result.checkpoint and os.path.exists(result.checkpoint) else "none written"
    bad_files = os.path.join(args.out, "bad_files.txt")
    print(f"trained {result.steps} steps ({result.epochs_done:.2f} epochs), last loss "
          f"{result.losses[-1] if result.losses else float('nan'):.4f}; skipped: {result.skipped_files} files"
          f"{f' (listed in {bad_files})' if result.skipped_files else ''}, {result.skipped_batches} batches, "
          f"{result.skipped_steps} non-finite steps; checkpoint {checkpoint}; log {os.path.join(args.out, 'log.csv')}")
    return 0


def _eval(args) -> int:
    from .tasks import make_task
    from .train.checkpoint import load
    from .train.evaluate import compare, evaluate
    from .train.trainer import resolve_device

    state = load(args.checkpoint)
    if "task" not in state or "model" not in state:
        raise SystemExit(f"fastssl eval: {args.checkpoint!r} is not a fastssl training checkpoint")
    device = resolve_device(args.device)
    build = dict(backbone=state["backbone"], image_size=state["image_size"], **state.get("task_options", {}))
    task = make_task(state["task"], **build)
    task.load_state_dict(state["model"])
    task.to(device)
    options = dict(device=device, decoder=args.decoder, val_fraction=args.val_fraction)
    if args.baseline:
        scores = compare(task, make_task(state["task"], seed=1, **build).to(device), args.data, **options)
    else:
        scores = {"trained": evaluate(task, args.data, **options)}
    print(json.dumps(scores, indent=2) if args.json else "\n".join(
        f"{name:12s} kNN {100 * s['knn']:5.1f}%  linear probe {100 * s['linear']:5.1f}%  "
        f"({s['train']} train / {s['val']} val images, {s['classes']} classes)" for name, s in scores.items()))
    return 0


def _bench(args) -> int:
    root = Path(__file__).resolve().parent.parent / "benchmarks"
    script = root / f"bench_{args.name}.py"
    if not script.exists():
        names = sorted(p.stem[6:] for p in root.glob("bench_*.py")) if root.is_dir() else []
        where = f"available: {', '.join(names)}" if names else "the benchmarks live in fastssl's source checkout"
        raise SystemExit(f"fastssl bench: no benchmark {args.name!r} ({where})")
    return subprocess.call([sys.executable, str(script), *args.rest])


def _parser() -> argparse.ArgumentParser:
    from .tasks import TASKS

    parser = argparse.ArgumentParser(prog="fastssl", description="fastssl: fast data and augmentation engine for SSL")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="versions, native build, backends per device, decoders, GPU")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=_info)

    train = commands.add_parser("train", help="pretrain a backbone with a pretext task")
    train.add_argument("task", choices=sorted(TASKS))
    train.add_argument("--data", required=True, help="image folder, .txt file list or .tar shard")
    train.add_argument("--out", required=True, help="run folder: log.csv, checkpoints/, tensorboard/")
    train.add_argument("--backbone", default="resnet18")
    train.add_argument("--image-size", type=int, default=64)
    train.add_argument("--batch-size", type=int, default=64, help="per process")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--optimizer", default="adamw", choices=("sgd", "lars", "adamw"))
    train.add_argument("--lr", type=float, help="default: 1e-3 adamw, 0.1 sgd, 0.3 x batch/256 lars")
    train.add_argument("--weight-decay", type=float, default=1e-4)
    train.add_argument("--warmup-epochs", type=float, default=1.0)
    train.add_argument("--clip-grad", type=float, default=3.0, help="max gradient norm (0: off)")
    train.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    train.add_argument("--no-channels-last", action="store_true")
    train.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto")
    train.add_argument("--decoder", default="auto", choices=("auto", "dali", "torchvision", "pil"))
    train.add_argument("--threads", type=int, help="decoding threads")
    train.add_argument("--checkpoint-every", type=int, default=500, help="steps")
    train.add_argument("--resume", action="store_true", help="continue from the newest usable checkpoint in --out")
    train.add_argument("--resume-anyway", action="store_true",
                       help="with --resume: continue even if data, lr, schedule, batch, ... differ from the checkpoint's")
    train.add_argument("--overwrite", action="store_true", help="delete the run already in --out and start again")
    train.add_argument("--collective-timeout", type=float, default=600.0,
                       help="distributed: seconds a rank waits for the others before failing")
    train.add_argument("--max-steps", type=int, help="stop early (the schedule still spans --epochs)")
    train.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="task option (repeatable)")
    train.add_argument("--quiet", action="store_true", help="no progress line")
    train.set_defaults(run=_train)

    ev = commands.add_parser("eval", help="kNN and linear probe of a checkpoint's frozen features")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--data", required=True, help="labelled image folder (one subfolder per class)")
    ev.add_argument("--val-fraction", type=float, default=0.2)
    ev.add_argument("--baseline", action="store_true", help="also evaluate the same network at random init")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--decoder", default="auto", choices=("auto", "dali", "torchvision", "pil"))
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(run=_eval)

    bench = commands.add_parser("bench", help="run benchmarks/bench_<name>.py (source checkout)")
    bench.add_argument("name", help="lab, nt_xent, augment, patches, loader, train, ...")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")
    bench.set_defaults(run=_bench)

    from . import demo as demo_module

    demo = commands.add_parser("demo", help="pretrain on embedded generated data, evaluate vs random init, report")
    demo_module.add_arguments(demo)
    demo.set_defaults(run=demo_module.main_from_args)
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
