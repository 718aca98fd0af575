"""Shared benchmark infrastructure: timing, copy bandwidth, peak memory, environment, result files.

Every benchmark (``benchmarks/bench_*.py``) builds a list of :class:`Provider` per case, hands them
to :func:`run_case`, and writes what it measured with :func:`write_results`:
``<out>/<name>_<device kind>.json`` (everything, machine-readable) and ``.md`` (readable tables).

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
from typing import Callable

import torch

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
    """One workload: a name, how many images one call processes, and the bytes it strictly needs."""

    name: str
    images: int
    bytes_needed: int
    description: str = ""


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


def run_case(case: Case, providers: list[Provider], device: torch.device, copy_gbps: float,
             expected: Callable[[], object] | None = None, budget_s: float = 3.0,
             log: Callable[[str], None] = print, memory: bool = True) -> tuple[list[Row], list[Skipped]]:
    """Times every provider on ``case``; returns its rows and the providers skipped (with reasons).

    ``expected()``, when given, computes the output the providers are compared with (max |error|).
    ``memory=False`` skips the peak-memory call (on CPU its profiler costs seconds the first time).
    """
    rows, skipped = [], []
    reference_out = expected() if expected is not None else None
    _sync(torch.device(device))
    for provider in providers:
        row_or_skip = _run_provider(case, provider, device, copy_gbps, reference_out, budget_s, memory)
        (rows if isinstance(row_or_skip, Row) else skipped).append(row_or_skip)
        log(_log_line(row_or_skip))
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


def write_results(name: str, device: torch.device, env: dict, bandwidth: dict, cases: list[Case],
                  rows: list[Row], skipped: list[Skipped], baselines: tuple[str, ...] = (),
                  notes: list[str] | None = None, out_dir: str | os.PathLike | None = None,
                  config: dict | None = None, tag: str = "") -> tuple[Path, Path]:
    """Writes ``<out_dir>/<name>_<device kind>[_<tag>].json`` and ``.md``; returns both paths."""
    out = Path(out_dir) if out_dir else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{name}_{torch.device(device).type}" + (f"_{tag}" if tag else "")
    notes = notes or []
    payload = {"benchmark": name, "config": config or {}, "environment": env, "copy_bandwidth": bandwidth,
               "cases": [asdict(c) for c in cases], "results": [asdict(r) for r in rows],
               "skipped": [asdict(s) for s in skipped], "notes": notes}
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    title = f"{name} benchmark on {torch.device(device).type}" + (f" ({tag})" if tag else "")
    md_path.write_text(markdown_tables(title, env, bandwidth, cases, rows, skipped, baselines, notes))
    return json_path, md_path


def add_common_arguments(parser, batch_default: str, quick_help: str) -> None:
    """The flags every benchmark takes: --device, --batch, --quick, --budget, --out."""
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where to run (default cpu)")
    parser.add_argument("--batch", type=int, help=f"images per call (default {batch_default})")
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--budget", type=float, help="seconds of timed calls per provider and case")
    parser.add_argument("--out", help=f"output folder (default {RESULTS_DIR})")


def start(name: str, device: torch.device, copy_mib: int, detail: str) -> tuple[dict, dict]:
    """Records the environment and measures the copy bandwidth of ``device`` (printing both): (env, bandwidth)."""
    env = environment(device)
    print(f"{name} benchmark on {env['device_name']}: {detail}", flush=True)
    bandwidth = copy_bandwidth(device, copy_mib * 2**20)
    print(f"copy bandwidth: {bandwidth['gb_per_s']:.1f} GB/s", flush=True)
    return env, bandwidth


def resolve_device(kind: str) -> torch.device:
    """``torch.device(kind)``, exiting with a clear message when CUDA is asked for and absent."""
    device = torch.device(kind)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch.cuda.is_available() is False on this machine (no GPU or a CPU build of torch)")
    return device
