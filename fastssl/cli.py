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
import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

#: What a task option without a default gets from the trainer.
FILLED_BY_TRAINER = {"num_samples": "the number of images in --data"}


def _info(args) -> int:
    from . import info

    report = info.collect()
    print(json.dumps(report, indent=2, default=str) if args.json else info.render(report))
    return 0


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help in which every option shows its default (unless its help already says it) and numbers their type;
    descriptions and epilogs keep their lines."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        shown = not (default is None or default is False or default is argparse.SUPPRESS or isinstance(default, list))
        if shown and "default" not in text:
            text += (" " if text else "") + "(default: %(default)s)"
        return text

    def _get_default_metavar_for_optional(self, action):
        return {int: "INT", float: "FLOAT"}.get(action.type, action.dest.upper())


class _TaskParser(argparse.ArgumentParser):
    """The parser of ``fastssl train <task>``: its help ends with the task's own options, read when it is shown."""

    def __init__(self, *args, task: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task

    def format_help(self) -> str:
        self.epilog = task_options_help(self.task)
        return super().format_help()


def task_options(task: str) -> dict[str, tuple[str, str]]:
    """The options ``--option`` sets for ``task``: name → (type, default), as text, from the task's signature (and
    its base classes' where it passes ``**options`` on to them).

    Example:
        >>> task_options("simclr")["temperature"]
        ('float', '0.5')
        >>> task_options("rotation")
        {}
    """
    from .tasks import task_class

    options = {}
    for p in _init_parameters(task_class(task)):
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:  # self, backbone, image_size, seed: flags of their own
            continue
        if p.name in options:
            continue
        if p.default is inspect.Parameter.empty:
            default = FILLED_BY_TRAINER.get(p.name, "required")
        else:
            default = repr(p.default)
        if p.annotation is not inspect.Parameter.empty:
            kind = p.annotation if isinstance(p.annotation, str) else p.annotation.__name__
        else:
            kind = "any" if p.default in (None, inspect.Parameter.empty) else type(p.default).__name__
        options[p.name] = (kind, default)
    return options


def _init_parameters(cls) -> list[inspect.Parameter]:
    """The parameters of ``cls.__init__``, then of its bases' while an ``__init__`` passes ``**kwargs`` on."""
    found = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = list(inspect.signature(klass.__init__).parameters.values())
        found += parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            break
    return found


def task_options_help(task: str) -> str:
    """The lines that ``fastssl train <task> --help`` ends with."""
    options = task_options(task)
    if not options:
        return f"{task} has no task options."
    width = max(len(name) for name in options) + 2
    lines = [f"{task} options (--option KEY=VALUE, repeatable; VALUE is read as JSON: 0.5, 3, true, null, "
             f"\"text\" or text):"]
    lines += [f"  {name:<{width}}{kind:<14}(default: {default})" for name, (kind, default) in options.items()]
    return "\n".join(lines)


def _task_options(task: str, pairs: list[str]) -> dict:
    """``key=value`` strings → a dict (values parsed as JSON when they parse, else kept as strings), each key an
    option of ``task`` and each value of its type."""
    known = task_options(task)
    options = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"fastssl: --option expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        if key not in known:
            valid = f"its options: {', '.join(known)}" if known else "it takes none"
            raise SystemExit(f"fastssl train: {task} has no option {key!r} ({valid}; see fastssl train {task} --help)")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
        kind = known[key][0]
        if not _of_type(options[key], kind):
            spelled = " (JSON: true or false)" if "bool" in kind else ""
            raise SystemExit(f"fastssl train: --option {key} expects {kind}{spelled}, got {value!r}")
    return options


def _of_type(value, kind: str) -> bool:
    """Whether ``value`` fits the annotation text ``kind`` ("float", "int | None", ...); kinds other than
    int, float, bool, str and None are not checked here (the task checks them)."""
    accepted = {part.strip() for part in kind.split("|")}
    if not accepted <= {"int", "float", "bool", "str", "None"}:
        return True
    if value is None:
        return "None" in accepted
    if isinstance(value, bool):
        return "bool" in accepted
    if isinstance(value, int):
        return bool(accepted & {"int", "float"})
    if isinstance(value, float):
        return "float" in accepted
    return isinstance(value, str) and "str" in accepted


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
                             task_options=_task_options(args.task, args.option))
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
    from .train.checkpoint import task_from_checkpoint
    from .train.evaluate import compare, evaluate
    from .train.trainer import resolve_device

    try:
        task = task_from_checkpoint(args.checkpoint)
    except ValueError as error:
        raise SystemExit(f"fastssl eval: {error}") from None
    device = resolve_device(args.device)
    task.to(device)
    options = dict(device=device, decoder=args.decoder, val_fraction=args.val_fraction, progress=not args.quiet)
    if args.baseline:
        scores = compare(task, task_from_checkpoint(args.checkpoint, weights=False, seed=1).to(device), args.data,
                         **options)
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

    parser = argparse.ArgumentParser(prog="fastssl", description="fastssl: fast data and augmentation engine for SSL",
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (default: one line saying what went wrong)")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="versions, native build, backends per device, decoders, GPU",
                               formatter_class=_HelpFormatter)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=_info)

    train = commands.add_parser("train", help="pretrain a backbone with a pretext task", formatter_class=_HelpFormatter,
                                usage="%(prog)s TASK --data DATA --out OUT [options]",
                                description="Pretrain a backbone with a pretext task. fastssl train TASK --help "
                                            "lists the options,\nthe task's own included.")
    tasks = train.add_subparsers(dest="task", required=True, metavar="TASK", parser_class=_TaskParser,
                                 title="tasks", description=textwrap.fill("  ".join(sorted(TASKS)), 76),
                                 help=argparse.SUPPRESS)
    for task in sorted(TASKS):
        _add_train_arguments(tasks.add_parser(task, task=task, prog=f"{train.prog} {task}",
                                              formatter_class=_HelpFormatter))

    ev = commands.add_parser("eval", help="kNN and linear probe of a checkpoint's frozen features",
                             formatter_class=_HelpFormatter)
    ev.add_argument("--checkpoint", required=True, help="a checkpoint of fastssl train (checkpoints/step_<n>.pt)")
    ev.add_argument("--data", required=True, help="labelled image folder (one subfolder per class; videos for a video "
                                                  "task's checkpoint)")
    ev.add_argument("--val-fraction", type=float, default=0.2, help="share of each class held out for scoring")
    ev.add_argument("--baseline", action="store_true", help="also evaluate the same network at random init")
    ev.add_argument("--device", default="auto", help="auto: a GPU when there is one")
    ev.add_argument("--decoder", default="auto", choices=("auto", "dali", "torchvision", "pil", "pyav"),
                    help="auto: the first installed of dali, torchvision, pil (videos: dali on a GPU, else pyav)")
    ev.add_argument("--json", action="store_true", help="machine-readable output")
    ev.add_argument("--quiet", action="store_true", help="no progress line")
    ev.set_defaults(run=_eval)

    bench = commands.add_parser("bench", help="run benchmarks/bench_<name>.py (source checkout)",
                                formatter_class=_HelpFormatter)
    bench.add_argument("name", help="lab, nt_xent, augment, patches, loader, train, ...")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")
    bench.set_defaults(run=_bench)

    from . import demo as demo_module

    demo = commands.add_parser("demo", help="pretrain on embedded generated data, evaluate vs random init, report",
                               formatter_class=_HelpFormatter)
    demo_module.add_arguments(demo)
    demo.set_defaults(run=demo_module.main_from_args)
    return parser


def _add_train_arguments(train: _TaskParser) -> None:
    """The options of ``fastssl train <task>``; the backbone's default is the task's own."""
    from .models import BACKBONES
    from .tasks import task_class

    cls = task_class(train.task)
    backbone = inspect.signature(cls.__init__).parameters["backbone"].default
    video = cls.modality in ("video", "audio_visual")
    sound = " with sound (in the file or a .wav/.flac/.ogg beside it)" if cls.modality == "audio_visual" else ""
    train.add_argument("--data", required=True, help=f"folder of videos{sound} (class subfolders or flat), .txt list "
                       "of 'path [label]' or .tar shards" if video else "image folder, .txt file list or .tar shard")
    train.add_argument("--out", required=True, help="run folder: log.csv, checkpoints/, tensorboard/")
    train.add_argument("--backbone", default=backbone, choices=BACKBONES, help="network to pretrain")
    train.add_argument("--image-size", type=int, default=64, help="pixels (square)")
    train.add_argument("--batch-size", type=int, default=64, help="images per process")
    train.add_argument("--epochs", type=int, default=10, help="length of the learning-rate schedule")
    train.add_argument("--optimizer", default="adamw", choices=("sgd", "lars", "adamw"), help="optimiser")
    train.add_argument("--lr", type=float, help="default: 1e-3 adamw, 0.1 sgd, 0.3 x global batch/256 lars")
    train.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay")
    train.add_argument("--warmup-epochs", type=float, default=1.0, help="linear warmup before the cosine decay")
    train.add_argument("--clip-grad", type=float, default=3.0, help="max gradient norm (0: off)")
    train.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                       help="auto: bfloat16 autocast where the device supports it")
    train.add_argument("--no-channels-last", action="store_true", help="keep the default memory format")
    train.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    train.add_argument("--seed", type=int, default=0, help="initialisation, sample order and views")
    train.add_argument("--device", default="auto", help="auto: a GPU when there is one")
    if video:
        train.add_argument("--decoder", default="auto", choices=("auto", "dali", "pyav"),
                           help="auto: dali on a GPU where installed, else pyav (dali hands what it cannot decode to "
                                "pyav)")
    else:
        train.add_argument("--decoder", default="auto", choices=("auto", "dali", "torchvision", "pil"),
                           help="auto: the first installed of dali, torchvision, pil")
    train.add_argument("--threads", type=int, help="threads reading and decoding files (default: min(8, CPUs))")
    train.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    train.add_argument("--resume", action="store_true", help="continue from the newest usable checkpoint in --out")
    train.add_argument("--resume-anyway", action="store_true",
                       help="with --resume: continue even if data, lr, schedule, batch, ... differ from the checkpoint's")
    train.add_argument("--overwrite", action="store_true", help="delete the run already in --out and start again")
    train.add_argument("--collective-timeout", type=float, default=600.0,
                       help="distributed: seconds a rank waits for the others before failing")
    train.add_argument("--max-steps", type=int,
                       help="stop early; the schedule still spans --epochs (default: run every epoch)")
    train.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="a task option, repeatable (listed below; default: the task's own)")
    train.add_argument("--quiet", action="store_true", help="no progress line")
    train.set_defaults(run=_train)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except Exception as error:  # what a command does not already turn into its own one-line message
        if args.debug:
            raise
        lines = str(error).strip().splitlines() or [""]
        raise SystemExit(f"fastssl {args.command}: {type(error).__name__}: {lines[0]}"
                         f"{' ...' if len(lines) > 1 else ''} (fastssl --debug {args.command} ... shows the traceback)") \
            from None


if __name__ == "__main__":
    sys.exit(main())
