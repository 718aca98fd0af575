"""Shared benchmark infrastructure: the declaration every benchmark makes, and the timing, memory,
environment and result files behind it.

A benchmark script (``benchmarks/bench_<op>.py``) says only what it measures: a :class:`Benchmark`
with its settings per device, its flags, and either its cases (each a :class:`Workload`: a
:class:`Case` and the :class:`Provider` s to time on it) or its own ``measure``. Its last line is
``sys.exit(common.main(BENCHMARK))``: :func:`main` parses the flags, runs it, and writes
``<out>/<name>_<device kind>[_<tag>].json`` (everything, machine-readable) and ``.md`` (readable tables).

A whole benchmark, timing ``x.flip(-1)`` against a copy on the CPU (``python bench_flip.py --quick``)::

    def cases(run):
        x = torch.rand(run.config["batch"], 3, 64, 64)
        case = Case("flip float32", x.shape[0], 2 * x.numel() * 4, "x.flip(-1), read once and written once")
        yield Workload(case, [Provider("flip", make=lambda: lambda: x.flip(-1)),
                              Provider("copy", make=lambda: lambda: x.clone())], expected=lambda: x.flip(-1))

    BENCHMARK = Benchmark(name="flip", doc=__doc__, cases=cases, baselines=("copy",),
                          defaults={"cpu": {"batch": 64, "copy_mib": 64, "budget_s": 1.0}},
                          quick={"batch": 4, "budget_s": 0.1})

Rules the numbers follow:

* CPU timings use ``time.perf_counter``; CUDA timings use ``torch.cuda.Event`` pairs around each
  call, after ``torch.cuda.synchronize()``. Both report the median of the repeats after a warmup,
  with the number of repeats bounded by a time budget (at least ``min_repeats`` are always run).
* The device's copy bandwidth is measured in the same run (``dst.copy_(src)`` of a large tensor,
  bytes read + written over the time), so "% of copy" compares each op with what the same machine
  can move at that moment.
* GB/s counts only the bytes an op strictly needs: its input read once and its outputs written once.
* A provider that cannot run (backend missing, compile failure, no peer library) is recorded as
  skipped with its reason; it never stops the run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import signal
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # quiet the profiler used for CPU peak memory

import torch  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# --------------------------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Milliseconds per call: the median and the minimum over ``repeats`` timed calls."""

    median_ms: float
    min_ms: float
    repeats: int


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_once_cpu(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def _time_once_cuda(fn: Callable[[], object]) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def time_fn(fn: Callable[[], object], device: torch.device, *, warmup: int = 2, min_repeats: int = 3,
            max_repeats: int = 50, budget_s: float = 3.0) -> Timing:
    """Times ``fn()`` on ``device``: ``warmup`` untimed calls, then repeats until ``budget_s`` is spent.

    At least ``min_repeats`` and at most ``max_repeats`` calls are timed; the median is reported.
    """
    device = torch.device(device)
    once = _time_once_cuda if device.type == "cuda" else _time_once_cpu
    for _ in range(warmup):
        fn()
    _sync(device)
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < max_repeats and (len(samples) < min_repeats or time.perf_counter() < deadline):
        samples.append(once(fn))
    return Timing(statistics.median(samples), min(samples), len(samples))


def copy_bandwidth(device: torch.device, nbytes: int, budget_s: float = 2.0) -> dict:
    """The device's memory bandwidth as seen by ``dst.copy_(src)``: (read + written bytes) / median time."""
    device = torch.device(device)
    src = torch.empty(nbytes, dtype=torch.uint8, device=device).random_(0, 256)
    dst = torch.empty_like(src)
    timing = time_fn(lambda: dst.copy_(src), device, warmup=2, min_repeats=5, budget_s=budget_s)
    gbps = 2 * nbytes / (timing.median_ms * 1e-3) / 1e9
    return {"bytes": nbytes, "median_ms": timing.median_ms, "gb_per_s": gbps,
            "method": "dst.copy_(src) of a uint8 tensor; GB/s = 2 x bytes (read + write) / median time"}


# --------------------------------------------------------------------------------------------- memory


def _proc_status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS mark (VmHWM) of this process to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _cpu_peak_by_profiler(fn: Callable[[], object]) -> float:
    """Peak bytes of torch CPU allocations during ``fn()`` (live at its end included), from the profiler's
    allocation events (exact for torch tensors; memory outside torch's allocator is not seen)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    del result
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def _cpu_peak_by_rss(fn: Callable[[], object]) -> float | None:
    """Rise of the process's peak resident set (VmHWM, reset first) over its RSS before ``fn()``."""
    before = _proc_status_kb("VmRSS")
    if before is None or not _reset_peak_rss():
        return None
    result = fn()
    peak = _proc_status_kb("VmHWM")
    del result
    return max(peak - before, 0) * 1024


def peak_extra_memory(fn: Callable[[], object], device: torch.device) -> tuple[float | None, str]:
    """MiB that one call of ``fn`` allocates at its peak on top of what was allocated before it (outputs included).

    CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation before the call. CPU: the peak of
    torch's allocations replayed from the profiler's memory events; when the profiler cannot give
    them, the rise of the peak RSS (approximate: the C allocator reuses freed pages).
    Returns (MiB or None, the method used).
    """
    device = torch.device(device)
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        result = fn()
        _sync(device)
        peak = torch.cuda.max_memory_allocated(device)
        del result
        return (peak - before) / 2**20, "torch.cuda.max_memory_allocated() - memory_allocated() before the call"
    try:
        return _cpu_peak_by_profiler(fn) / 2**20, "torch.profiler allocation events (profile_memory=True), replayed"
    except Exception:  # noqa: BLE001  (profiler internals differ across torch versions)
        peak = _cpu_peak_by_rss(fn)
        if peak is None:
            return None, "not measured (no profiler memory events, no /proc/self/clear_refs)"
        return peak / 2**20, "peak RSS (VmHWM) - RSS before the call; approximate"


# ---------------------------------------------------------------------------------------- environment


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def device_name(device: torch.device) -> str:
    """A human-readable name of ``device``."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({os.cpu_count()} logical cores)"


def _version(module_name: str) -> str | None:
    try:
        module = __import__(module_name)
    except Exception:  # noqa: BLE001  (an optional library: any import failure means "absent")
        return None
    return getattr(module, "__version__", "unknown")


def _native_info() -> dict:
    from fastssl import _native

    native = _native.state()
    return {"available": native.available, "info": dict(native.info), "reason": native.reason}


def load_average() -> list[float] | None:
    """The system's 1/5/15-minute load average: other work on the machine skews CPU timings."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def environment(device: torch.device) -> dict:
    """What the numbers were measured on: device, library versions, fastssl._C build, threads, date."""
    import fastssl

    device = torch.device(device)
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": str(device),
        "device_kind": device.type,
        "device_name": device_name(device),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "triton": _version("triton"),
        "kornia": _version("kornia"),
        "fastssl": fastssl.__version__,
        "fastssl_C": _native_info(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": load_average(),
        "env": {k: os.environ[k] for k in ("FASTSSL_BACKEND", "FASTSSL_CHECK_FINITE", "TRITON_INTERPRET",
                                           "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES") if k in os.environ},
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        env["gpu_capability"] = f"{props.major}.{props.minor}"
    return env


# ---------------------------------------------------------------------------------------- providers


@dataclass
class Provider:
    """One implementation to time: ``make()`` prepares it and returns the zero-argument callable to time.

    ``skip`` (a reason) marks a provider that cannot run here. ``make`` may raise: the provider is
    then skipped with the error as the reason. ``note`` is shown next to its row.
    """

    name: str
    make: Callable[[], Callable[[], object]] | None = None
    skip: str | None = None
    note: str = ""


@dataclass
class Row:
    """The measurement of one provider on one case."""

    case: str
    provider: str
    ms: float
    min_ms: float
    repeats: int
    images_per_s: float
    gb_per_s: float
    pct_copy: float
    peak_extra_mib: float | None = None
    max_abs_err: float | None = None
    setup_s: float | None = None
    note: str = ""
    speedup: dict = field(default_factory=dict)
    memory_method: str = ""


@dataclass
class Skipped:
    """A provider that did not run on a case, and why."""

    case: str
    provider: str
    reason: str


@dataclass
class Case:
    """One case of a table: a name, how many images one call processes, and the bytes it strictly needs."""

    name: str
    images: int
    bytes_needed: int
    description: str = ""


@dataclass
class Workload:
    """One case to time: its :class:`Case`, the providers, the oracle and the notes it adds to the report.

    ``expected()``, when given, computes the output every provider is compared with (max abs err);
    ``notes`` are printed under the case's name and appended to the report's notes.
    """

    case: Case
    providers: list[Provider]
    expected: Callable[[], object] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Run:
    """What a benchmark's functions are given: the device, the settings, the command line and the results' tag."""

    device: torch.device
    config: dict
    argv: list[str]
    tag: str


@dataclass
class Report:
    """What a benchmark hands back to be written: the JSON payload, the markdown (rendered last) and the exit status."""

    payload: dict
    markdown: Callable[[], str]
    status: int = 0


@contextlib.contextmanager
def time_limit(seconds: float, what: str):
    """Raises TimeoutError when the block runs longer than ``seconds`` (main thread, Unix only; else no limit)."""
    usable = hasattr(signal, "setitimer") and seconds > 0
    try:
        import threading

        usable = usable and threading.current_thread() is threading.main_thread()
    except Exception:  # noqa: BLE001
        usable = False
    if not usable:
        yield
        return

    def _expired(signum, frame):
        raise TimeoutError(f"{what} took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _error_reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(error).__name__}: {first}"[:400]


def _max_abs_err(output, expected) -> float | None:
    """Largest |output - expected| over the first tensor of each (None when either is missing)."""
    if expected is None or output is None:
        return None
    out = output[0] if isinstance(output, (tuple, list)) else output
    exp = expected[0] if isinstance(expected, (tuple, list)) else expected
    if not isinstance(out, torch.Tensor) or out.shape != exp.shape:
        return None
    return float((out.double() - exp.double()).abs().max())


def time_in_process(workload: Workload, run: Run, copy_gbps: float) -> tuple[list[Row], list[Skipped]]:
    """Times every provider of ``workload`` in this process; returns its rows and the providers skipped (with reasons).

    ``workload.expected()``, when given, computes the output the providers are compared with (max |error|).
    ``run.config["memory"]`` False skips the peak-memory call (on CPU its profiler costs seconds the first time).
    """
    rows, skipped = [], []
    reference_out = workload.expected() if workload.expected is not None else None
    _sync(run.device)
    for provider in workload.providers:
        row_or_skip = _run_provider(workload.case, provider, run.device, copy_gbps, reference_out,
                                    run.config["budget_s"], run.config["memory"])
        (rows if isinstance(row_or_skip, Row) else skipped).append(row_or_skip)
        print(_log_line(row_or_skip), flush=True)
    del reference_out
    return rows, skipped


def _run_provider(case, provider, device, copy_gbps, reference_out, budget_s, memory) -> Row | Skipped:
    if provider.skip:
        return Skipped(case.name, provider.name, provider.skip)
    try:
        start = time.perf_counter()
        fn = provider.make()
        output = fn()  # the first call: compiles / loads / checks that it runs at all
        _sync(torch.device(device))
        setup_s = time.perf_counter() - start
        err = _max_abs_err(output, reference_out)
        del output
        timing = time_fn(fn, device, warmup=1, budget_s=budget_s)  # the first call above warmed up too
        peak, memory_method = peak_extra_memory(fn, device) if memory else (None, "not measured in this run")
    except Exception as error:  # noqa: BLE001  (one failing provider must not stop the run)
        return Skipped(case.name, provider.name, _error_reason(error))
    seconds = timing.median_ms * 1e-3
    gbps = case.bytes_needed / seconds / 1e9
    return Row(case.name, provider.name, timing.median_ms, timing.min_ms, timing.repeats,
               case.images / seconds, gbps, 100 * gbps / copy_gbps, peak, err, setup_s, provider.note,
               memory_method=memory_method)


def _log_line(item: Row | Skipped) -> str:
    if isinstance(item, Skipped):
        return f"  {item.provider:<28} skipped: {item.reason}"
    return (f"  {item.provider:<28} {item.ms:9.3f} ms  {item.images_per_s:10.1f} img/s  "
            f"{item.gb_per_s:7.2f} GB/s  ({item.pct_copy:5.1f}% of copy)")


def add_speedups(rows: list[Row], baselines: tuple[str, ...]) -> None:
    """Fills ``row.speedup[b]`` = time of baseline ``b`` / time of the row, per case, where ``b`` ran."""
    by_case: dict[str, dict[str, Row]] = {}
    for row in rows:
        by_case.setdefault(row.case, {})[row.provider] = row
    for row in rows:
        for baseline in baselines:
            base = by_case[row.case].get(baseline)
            if base is not None:
                row.speedup[baseline] = base.ms / row.ms


# -------------------------------------------------------------------------------------------- output


def _fmt(value, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value != 0 and abs(value) < 10 ** -digits:
            return f"{value:.1e}{suffix}"
        return f"{value:,.{digits}f}{suffix}"
    return f"{value}{suffix}"


def markdown_tables(title: str, env: dict, bandwidth: dict, cases: list[Case], rows: list[Row],
                    skipped: list[Skipped], baselines: tuple[str, ...], notes: list[str]) -> str:
    """A readable report: environment, copy bandwidth, one table per case, skipped providers, notes."""
    native = env["fastssl_C"]
    lines = [f"# {title}", "",
             f"- device: **{env['device_name']}** ({env['device']}), {env['torch_threads']} torch threads",
             f"- python {env['python']}, torch {env['torch']} (CUDA {env['torch_cuda']}), triton {env['triton']}, "
             f"kornia {env['kornia']}, fastssl {env['fastssl']}",
             f"- fastssl._C: {native['info'] if native['available'] else native['reason']}",
             f"- date: {env['date']}; load average (1/5/15 min) at start {env.get('load_average_1_5_15')}, "
             f"at end {env.get('load_average_end')}",
             f"- copy bandwidth (same run): **{bandwidth['gb_per_s']:.1f} GB/s** ({bandwidth['method']}, "
             f"{bandwidth['bytes'] / 2**20:.0f} MiB)", ""]
    for case in cases:
        lines += _case_table(case, [r for r in rows if r.case == case.name], baselines)
    if skipped:
        lines += ["## Skipped", "", "| case | provider | reason |", "|---|---|---|"]
        lines += [f"| {s.case} | {s.provider} | {s.reason.replace('|', '/')} |" for s in skipped]
        lines.append("")
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def _case_table(case: Case, rows: list[Row], baselines: tuple[str, ...]) -> list[str]:
    header = ["provider", "ms", "images/s", "GB/s", "% of copy"] + [f"× vs {b}" for b in baselines]
    header += ["peak extra MiB", "max abs err", "first call s", "note"]
    lines = [f"## {case.name}", "", f"{case.description} — {case.images} images, "
             f"{case.bytes_needed / 2**20:.1f} MiB strictly needed (input read + outputs written once).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r.provider, _fmt(r.ms, 3), _fmt(r.images_per_s, 0), _fmt(r.gb_per_s), _fmt(r.pct_copy, 1, "%")]
        cells += [_fmt(r.speedup.get(b), 2, "×") for b in baselines]
        cells += [_fmt(r.peak_extra_mib, 1), _fmt(r.max_abs_err, 5), _fmt(r.setup_s, 2), r.note]
        lines.append("| " + " | ".join(cells) + " |")
    if not rows:
        lines.append("| (no provider ran) |" + " |" * (len(header) - 1))
    return lines + [""]


# ------------------------------------------------------------------------------------ declaration


def flag(*names: str, **options) -> tuple[tuple[str, ...], dict]:
    """One flag of one benchmark, as ``argparse``'s ``add_argument(*names, **options)``.

    Given on the command line, its value replaces the setting named by its ``dest`` (``--mask-ratio``:
    ``mask_ratio``); not given, the setting keeps its default (or is None when the defaults lack it).
    ``--help`` shows the defaults. Example: ``flag("--size", type=int, help="image side in pixels")``.
    """
    return names, options


def positive_int(text: str) -> int:
    """``argparse`` type: a whole number >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def quick_tag(config: dict) -> str:
    """The results' file-name tag: "quick" under --quick (``<name>_<device>_quick.json``), else none."""
    return "quick" if config["quick"] else ""


@dataclass
class Benchmark:
    """What a ``bench_<op>.py`` declares; :func:`main` parses its flags, runs it and writes its results.

    name: the results are ``<out>/<name>_<device kind>[_<tag>].json`` and ``.md``.
    doc: the script's docstring (its first line is --help's description).
    defaults: the settings per device kind ("cpu", "cuda"); they are the JSON's ``config``. A ``batch``
      setting adds --batch, a ``budget_s`` setting (seconds of timed calls per provider) adds --budget.
    quick: the settings --quick replaces (a smoke run of seconds), on the devices in ``quick_devices``.
    flags: the script's own :func:`flag` s. Every benchmark takes --device, --quick and --out.
    environ: environment variables set before the run (and recorded in its environment).
    headline: the first printed line, formatted with the settings, e.g. ``"batch {batch}, size {size}"``.
    tag: the results' file-name tag from the settings.
    device: the default --device.

    A table benchmark (one table per case, one row per provider) gives ``cases``; it also takes
    --threads (``torch.set_num_threads``) and --providers (comma-separated substrings of provider names):
      cases: ``cases(run)`` yields its :class:`Workload` s, each built when its turn comes.
      baselines: the providers every row is compared with (the "× vs" columns).
      notes: the report's notes, after :data:`TABLE_NOTES`; the workloads' notes and how peak memory
        was measured follow them.
      note_row: ``note_row(row)`` is put before each row's note.
      time: ``time(workload, run, copy_gbps)`` -> (rows, skipped); default :func:`time_in_process`.
      Settings it needs: ``copy_mib`` (MiB of the copy-bandwidth measurement) and ``budget_s``;
      ``memory`` (measure peak memory) defaults to False under --quick on the CPU, else True.
    Any other benchmark gives ``measure(run, env)`` -> :class:`Report` instead.
    """

    name: str
    doc: str
    defaults: dict[str, dict]
    quick: dict = field(default_factory=dict)
    quick_devices: tuple[str, ...] = ("cpu", "cuda")
    flags: tuple = ()
    environ: dict[str, str] = field(default_factory=dict)
    headline: str = ""
    tag: Callable[[dict], str] = quick_tag
    device: str = "cpu"
    cases: Callable[[Run], Iterable[Workload]] | None = None
    baselines: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    note_row: Callable[[Row], str] | None = None
    time: Callable[[Workload, Run, float], tuple[list[Row], list[Skipped]]] = time_in_process
    measure: Callable[[Run, dict], Report] | None = None


def _default_help(key: str, defaults: dict[str, dict]) -> str:
    values = {kind: settings[key] for kind, settings in defaults.items() if key in settings}
    if not values:
        return ""
    if len(set(map(repr, values.values()))) == 1:
        return f" (default {next(iter(values.values()))})"
    return " (default " + ", ".join(f"{v} on {kind.upper()}" for kind, v in values.items()) + ")"


def _quick_help(benchmark: Benchmark) -> str:
    overrides = ", ".join(f"{key} {value}" for key, value in benchmark.quick.items())
    where = "" if set(benchmark.quick_devices) == set(benchmark.defaults) else \
        " on " + ", ".join(kind.upper() for kind in benchmark.quick_devices)
    return f"a smoke run of seconds{where}: {overrides}" if overrides else "a smoke run of seconds"


def argument_parser(benchmark: Benchmark) -> tuple[argparse.ArgumentParser, list[str]]:
    """The benchmark's argument parser and the settings its flags set (their ``dest`` s)."""
    parser = argparse.ArgumentParser(description=benchmark.doc.split("\n")[0])
    parser.add_argument("--device", default=benchmark.device, choices=tuple(benchmark.defaults),
                        help=f"where to run (default {benchmark.device})")
    parser.add_argument("--quick", action="store_true", help=_quick_help(benchmark))
    parser.add_argument("--out", help=f"output folder (default {RESULTS_DIR})")
    some_defaults = next(iter(benchmark.defaults.values()))
    flags = list(benchmark.flags)
    if "batch" in some_defaults:
        flags.append(flag("--batch", type=int, help="images per batch"))
    if "budget_s" in some_defaults:
        flags.append(flag("--budget", dest="budget_s", type=float, help="seconds of timed calls per measurement"))
    if benchmark.cases is not None:
        flags.append(flag("--threads", type=int,
                          help="threads of torch (torch.set_num_threads) and of the providers' workers"))
        flags.append(flag("--providers", help="comma-separated substrings: run only the providers matching one"))
    dests = []
    for names, options in flags:
        options = {"default": argparse.SUPPRESS, **options}
        action = parser.add_argument(*names, **options)
        if action.help and action.help != argparse.SUPPRESS and action.nargs != 0:  # not for on/off switches
            action.help += _default_help(action.dest, benchmark.defaults)
        dests.append(action.dest)
    return parser, dests


def settings(benchmark: Benchmark, args: argparse.Namespace, dests: list[str]) -> dict:
    """The run's settings: the device's defaults, then --quick's, then the flags given."""
    config = dict(benchmark.defaults[args.device])
    if args.quick and args.device in benchmark.quick_devices:
        config.update(benchmark.quick)
    for dest in dests:
        if hasattr(args, dest):
            config[dest] = getattr(args, dest)
        else:
            config.setdefault(dest, None)
    config["quick"] = args.quick
    return config


def main(benchmark: Benchmark, argv: list[str] | None = None) -> int:
    """Runs ``benchmark`` with the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, dests = argument_parser(benchmark)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    config = settings(benchmark, args, dests)
    os.environ.update(benchmark.environ)
    if config.get("threads"):
        torch.set_num_threads(config["threads"])
    run = Run(device, config, argv, benchmark.tag(config))
    env = environment(device)
    print(f"{benchmark.name} benchmark on {env['device_name']}: {benchmark.headline.format(**config)}"
          f"{', ' if benchmark.headline else ''}{torch.get_num_threads()} torch threads", flush=True)
    report = benchmark.measure(run, env) if benchmark.measure else _time_cases(benchmark, run, env)
    env["load_average_end"] = load_average()
    out = Path(args.out) if args.out else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    stem = out / (f"{benchmark.name}_{device.type}" + (f"_{run.tag}" if run.tag else ""))
    json_path, md_path = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".md")
    json_path.write_text(json.dumps(report.payload, indent=2, default=str) + "\n")
    md_path.write_text(report.markdown())
    print(f"wrote {json_path} and {md_path}")
    return report.status


#: What every table's columns mean (the "× vs" line only where there are baselines).
TABLE_NOTES = [
    "% of copy = GB/s / the copy bandwidth measured at the start of this run on the same device.",
    "× vs X = time of X / time of the row (above 1: faster than X). Times are medians after warmup.",
]


def _selected(providers: list[Provider], wanted: str | None) -> list[Provider]:
    if not wanted:
        return providers
    parts = [w.strip() for w in wanted.split(",") if w.strip()]
    return [p for p in providers if any(w in p.name for w in parts)]


def _time_cases(benchmark: Benchmark, run: Run, env: dict) -> Report:
    """Measures the copy bandwidth, then times every workload of a table benchmark: its :class:`Report`."""
    config = run.config
    config.setdefault("memory", not (config["quick"] and run.device.type == "cpu"))
    bandwidth = copy_bandwidth(run.device, config["copy_mib"] * 2**20)
    print(f"copy bandwidth: {bandwidth['gb_per_s']:.1f} GB/s", flush=True)
    cases, rows, skipped = [], [], []
    notes = TABLE_NOTES[:len(TABLE_NOTES) if benchmark.baselines else 1] + list(benchmark.notes)
    for workload in benchmark.cases(run):
        workload.providers = _selected(workload.providers, config.get("providers"))
        print("\n  ".join([workload.case.name] + workload.notes), flush=True)
        case_rows, case_skipped = benchmark.time(workload, run, bandwidth["gb_per_s"])
        cases.append(workload.case)
        rows += case_rows
        skipped += case_skipped
        notes += workload.notes
    if benchmark.note_row is not None:
        for row in rows:
            row.note = benchmark.note_row(row) + row.note
    add_speedups(rows, benchmark.baselines)
    memory_method = next((r.memory_method for r in rows if r.memory_method), "not measured")
    measured = any(r.peak_extra_mib is not None for r in rows)
    notes.append(f"peak extra MiB: {memory_method}" + (" (outputs included)." if measured else "."))
    payload = {"benchmark": benchmark.name, "config": config, "environment": env, "copy_bandwidth": bandwidth,
               "cases": [asdict(c) for c in cases], "results": [asdict(r) for r in rows],
               "skipped": [asdict(s) for s in skipped], "notes": notes}
    title = f"{benchmark.name} benchmark on {run.device.type}" + (f" ({run.tag})" if run.tag else "")
    return Report(payload, lambda: markdown_tables(title, env, bandwidth, cases, rows, skipped,
                                                   benchmark.baselines, notes))


def resolve_device(kind: str) -> torch.device:
    """``torch.device(kind)``, exiting with a clear message when CUDA is asked for and absent."""
    device = torch.device(kind)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch.cuda.is_available() is False on this machine (no GPU or a CPU build of torch)")
    return device
