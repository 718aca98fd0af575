"""NT-Xent loss and MoCo's queue loss: naive PyTorch (matmul + cross-entropy), torch.compile of it, fastssl (fused).

Rows 2N x D, forward / backward / both; median time, achieved TFLOP/s and peak extra memory.
FLOPs count the logit matmul of the model: forward 2 (2N)^2 D, backward twice that (dZ = W Z and,
for the naive version, the transposed product), so fwd+bwd = 6 (2N)^2 D. fastssl's backward does
the same work in one recomputing pass (2 matmuls, see fastssl/triton/nt_xent.py), counted the same.
"backward" time = both - forward (medians; the forward is timed with inputs that require grad).

MoCo's loss (``queue_info_nce_loss``): M queries, their M positive keys and a queue of K negatives
(``--queue M K D``, default 256 x 65,536 x 128 on CUDA, 256 x 16,384 x 128 on the CPU); naive is MoCo's
code (einsum, cat, cross-entropy with label 0), the queue without gradient. FLOPs: forward 2 M K D,
backward 2 M K D (the queries' gradient; fastssl recomputes the logits, counted the same).

Peak extra memory: CUDA from torch.cuda.max_memory_allocated; CPU from torch's allocation events
(torch.profiler, every ATen allocation, C++ ops included) and, as a cross-check, the rise of the
process's peak RSS (VmHWM reset before the call).

    python benchmarks/bench_nt_xent.py --device cuda              # 2N in {4k..64k}, D in {128, 512}, bf16
    python benchmarks/bench_nt_xent.py --device cpu --quick       # 32k x 128 (ours), 4k x 128 (all), the queue
Writes benchmarks/results/nt_xent_<device>.json and .md.
"""

from __future__ import annotations

import sys

import torch

import common
from fastssl.ops import nt_xent_loss, queue_info_nce_loss
from fastssl.reference.nt_xent import nt_xent_loss_cross_entropy, queue_info_nce_cross_entropy

TAU = 0.1
MOCO_TAU = 0.07


def providers(device, allow_compile: bool):
    out = {"naive": lambda z1, z2: nt_xent_loss_cross_entropy(z1, z2, TAU)}
    if allow_compile:
        compiled = torch.compile(nt_xent_loss_cross_entropy, dynamic=False)
        out["torch.compile"] = lambda z1, z2: compiled(z1, z2, TAU)
    out["fastssl"] = lambda z1, z2: nt_xent_loss(z1, z2, TAU)
    return out


def queue_providers(allow_compile: bool):
    out = {"naive": lambda q, k, queue: queue_info_nce_cross_entropy(q, k, queue, MOCO_TAU)}
    if allow_compile:
        compiled = torch.compile(queue_info_nce_cross_entropy, dynamic=False)
        out["torch.compile"] = lambda q, k, queue: compiled(q, k, queue, MOCO_TAU)
    out["fastssl"] = lambda q, k, queue: queue_info_nce_loss(q, k, queue, MOCO_TAU)
    return out


def measure(fn, inputs, device, mode, budget_s, quick):
    # Both modes run the training forward (the first two inputs require grad, so what backward needs is
    # saved; a third, MoCo's queue, does not): the backward time is then the difference of the two medians.
    args = [x.detach().clone().requires_grad_() if i < 2 else x for i, x in enumerate(inputs)]

    def call():
        loss = fn(*args)
        if mode == "both":
            loss.backward()
            for x in args[:2]:
                x.grad = None
        return loss.detach()

    timing = common.time_fn(call, device, warmup=1, min_repeats=1 if quick else 3, budget_s=budget_s)
    mib, method = common.peak_extra_memory(call, device)
    rss = common._cpu_peak_by_rss(call) if device.type == "cpu" else None
    return timing, mib, method, None if rss is None else rss / 2**20


def measure_all(run: common.Run, env: dict) -> common.Report:
    """Every provider on every (2N, D) case, forward and forward + backward."""
    device, config = run.device, run.config
    dtype = getattr(torch, config["dtype"])
    table = providers(device, config["compile"])
    rows_out = []
    for d in config["dims"]:
        for n2 in config["rows"]:
            rows_out += measure_case(table, n2, d, device, dtype, config)
    _speedups(rows_out)
    queue_rows = measure_queue(queue_providers(config["compile"]), *config["queue"], device, dtype, config) \
        if config["queue"] else []
    _speedups(queue_rows, keys=("queries", "keys", "dim"))
    return common.Report(dict(environment=env, config=config, tau=TAU, rows=rows_out, moco_tau=MOCO_TAU,
                              queue_rows=queue_rows),
                         lambda: _markdown(rows_out, env) + _queue_markdown(queue_rows))


def measure_case(table: dict, n2: int, d: int, device: torch.device, dtype: torch.dtype, config: dict) -> list[dict]:
    """The rows of one (2N, D) case: one per provider, skipped where 2N is over the naive providers' limit."""
    g = torch.Generator(device="cpu").manual_seed(0)
    z1 = torch.randn(n2 // 2, d, generator=g).to(device, dtype)
    z2 = (z1.float() + torch.randn(n2 // 2, d, generator=g).to(device)).to(dtype)
    flops = {"forward": 2 * n2 * n2 * d, "both": 6 * n2 * n2 * d, "backward": 4 * n2 * n2 * d}
    naive_max = config["naive_max_rows"]
    rows_out = []
    for name, fn in table.items():
        if name != "fastssl" and n2 > naive_max:
            rows_out.append(dict(rows=n2, dim=d, provider=name, skipped=f"2N > {naive_max} (quadratic memory)"))
            print(f"{n2:>6} x {d:<4} {name:<14} skipped: 2N > {naive_max}")
            continue
        result = dict(rows=n2, dim=d, provider=name, dtype=str(dtype).replace("torch.", ""))
        try:
            for mode in ("forward", "both"):
                _time_mode(result, mode, fn, (z1, z2), flops, device, config)
            _backward(result, flops)
        except Exception as error:  # noqa: BLE001
            result["skipped"] = f"{type(error).__name__}: {error}"[:300]
        rows_out.append(result)
        print(_line(result), flush=True)
    return rows_out


def measure_queue(table: dict, m: int, k: int, d: int, device: torch.device, dtype: torch.dtype,
                  config: dict) -> list[dict]:
    """MoCo's loss, one row per provider: M queries and positives (with gradient), a queue of K negatives."""
    g = torch.Generator(device="cpu").manual_seed(1)
    q = torch.randn(m, d, generator=g)
    pos = (q + torch.randn(m, d, generator=g)).to(device, dtype)
    queue = torch.nn.functional.normalize(torch.randn(k, d, generator=g), dim=1).to(device, dtype)
    q = q.to(device, dtype)
    flops = {"forward": 2 * m * k * d, "both": 4 * m * k * d, "backward": 2 * m * k * d}
    rows_out = []
    for name, fn in table.items():
        result = dict(queries=m, keys=k, dim=d, provider=name, dtype=str(dtype).replace("torch.", ""))
        try:
            for mode in ("forward", "both"):
                _time_mode(result, mode, fn, (q, pos, queue), flops, device, config)
            _backward(result, flops)
        except Exception as error:  # noqa: BLE001
            result["skipped"] = f"{type(error).__name__}: {error}"[:300]
        rows_out.append(result)
        print(_queue_line(result), flush=True)
    return rows_out


def _time_mode(result: dict, mode: str, fn, inputs, flops: dict, device, config: dict) -> None:
    """result[mode]: the timing and memory of ``fn`` on ``inputs``, the first two with gradient."""
    timing, mib, method, rss = measure(fn, inputs, device, mode, config["budget_s"], config["quick"])
    result[mode] = dict(median_ms=timing.median_ms, min_ms=timing.min_ms, repeats=timing.repeats,
                        tflops=flops[mode] / (timing.median_ms * 1e-3) / 1e12,
                        peak_extra_mib=mib, peak_extra_rss_mib=rss, memory_method=method)


def _backward(result: dict, flops: dict) -> None:
    bwd_ms = result["both"]["median_ms"] - result["forward"]["median_ms"]
    result["backward"] = dict(median_ms=bwd_ms, tflops=flops["backward"] / max(bwd_ms, 1e-9) / 1e9 / 1e3)


def _line(r):
    if "skipped" in r:
        return f"{r['rows']:>6} x {r['dim']:<4} {r['provider']:<14} skipped: {r['skipped']}"
    f, b = r["forward"], r["both"]
    rss = b.get("peak_extra_rss_mib")
    return (f"{r['rows']:>6} x {r['dim']:<4} {r['provider']:<14} fwd {f['median_ms']:9.2f} ms {f['tflops']:7.3f} TF/s"
            f" | bwd {r['backward']['median_ms']:9.2f} ms | both {b['median_ms']:9.2f} ms {b['tflops']:7.3f} TF/s"
            f" | peak extra {b['peak_extra_mib']:8.1f} MiB" + (f" (RSS {rss:.1f} MiB)" if rss is not None else ""))


def _queue_line(r):
    head = f"queue {r['queries']} x {r['keys']} x {r['dim']} {r['provider']:<14}"
    if "skipped" in r:
        return f"{head} skipped: {r['skipped']}"
    f, b = r["forward"], r["both"]
    return (f"{head} fwd {f['median_ms']:9.2f} ms | bwd {r['backward']['median_ms']:9.2f} ms | both "
            f"{b['median_ms']:9.2f} ms {b['tflops']:7.3f} TF/s | peak extra {b['peak_extra_mib']:8.1f} MiB")


def _speedups(rows, keys=("rows", "dim")):
    by_case = {}
    for r in rows:
        if "skipped" not in r:
            by_case.setdefault(tuple(r[key] for key in keys), {})[r["provider"]] = r
    for case in by_case.values():
        ours = case.get("fastssl")
        if ours:
            for base in ("naive", "torch.compile"):
                if base in case:
                    speedup = case[base]["both"]["median_ms"] / ours["both"]["median_ms"]
                    ours.setdefault("speedup_both", {})[base] = speedup


def _markdown(rows, env) -> str:
    lines = ["# NT-Xent loss", "", f"Device: {env.get('device', env)}", "",
             "| 2N | D | provider | fwd ms | bwd ms | fwd+bwd ms | fwd+bwd TFLOP/s | peak extra MiB (fwd+bwd) | "
             "RSS rise MiB | speedup vs naive / compile |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['rows']} | {r['dim']} | {r['provider']} | skipped: {r['skipped']} ||||||| ")
            continue
        s = r.get("speedup_both", {})
        rss = r["both"].get("peak_extra_rss_mib")
        lines.append(f"| {r['rows']} | {r['dim']} | {r['provider']} | {r['forward']['median_ms']:.2f} | "
                     f"{r['backward']['median_ms']:.2f} | {r['both']['median_ms']:.2f} | {r['both']['tflops']:.3f} | "
                     f"{r['both']['peak_extra_mib']:.1f} | {'' if rss is None else f'{rss:.1f}'} | "
                     f"{s.get('naive', float('nan')):.2f} / {s.get('torch.compile', float('nan')):.2f} |")
    return "\n".join(lines) + "\n"


def _queue_markdown(rows) -> str:
    if not rows:
        return ""
    lines = ["", f"# MoCo's queue loss (queue_info_nce_loss, tau {MOCO_TAU})", "",
             ("| M | K | D | provider | fwd ms | bwd ms | fwd+bwd ms | fwd+bwd TFLOP/s | peak extra MiB (fwd+bwd) | "
              "speedup vs naive / compile |"), "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        head = f"| {r['queries']} | {r['keys']} | {r['dim']} | {r['provider']} |"
        if "skipped" in r:
            lines.append(f"{head} skipped: {r['skipped']} ||||||")
            continue
        s = r.get("speedup_both", {})
        lines.append(f"{head} {r['forward']['median_ms']:.2f} | {r['backward']['median_ms']:.2f} | "
                     f"{r['both']['median_ms']:.2f} | {r['both']['tflops']:.3f} | {r['both']['peak_extra_mib']:.1f} | "
                     f"{s.get('naive', float('nan')):.2f} / {s.get('torch.compile', float('nan')):.2f} |")
    return "\n".join(lines) + "\n"


BENCHMARK = common.Benchmark(
    name="nt_xent", doc=__doc__, measure=measure_all,
    device="cuda" if torch.cuda.is_available() else "cpu",
    defaults={"cpu": {"rows": [4096, 8192, 16384, 32768], "dims": [128, 512], "dtype": "float32",
                      "naive_max_rows": 16384, "compile": True, "budget_s": 3.0, "queue": [256, 16384, 128]},
              "cuda": {"rows": [4096, 8192, 16384, 32768, 65536], "dims": [128, 512], "dtype": "bfloat16",
                       "naive_max_rows": 65536, "compile": True, "budget_s": 3.0, "queue": [256, 65536, 128]}},
    quick={"rows": [4096, 32768], "dims": [128], "naive_max_rows": 4096, "compile": False}, quick_devices=("cpu",),
    flags=(common.flag("--rows", type=int, nargs="*", help="2N values"),
           common.flag("--dims", type=int, nargs="*", help="D values"),
           common.flag("--dtype", choices=["float32", "bfloat16", "float16"], help="dtype of the embeddings"),
           common.flag("--no-compile", dest="compile", action="store_false", help="no torch.compile row"),
           common.flag("--naive-max-rows", type=int, help="largest 2N for naive / compile (memory)"),
           common.flag("--queue", type=int, nargs="*", help="M K D of MoCo's queue loss (none: skip it)")),
    tag=lambda config: "",  # one file per device, --quick included
    headline="2N in {rows}, D in {dims}, {dtype}, queue M K D {queue}")


if __name__ == "__main__":
    sys.exit(common.main(BENCHMARK))
