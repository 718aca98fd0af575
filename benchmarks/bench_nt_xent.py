"""NT-Xent loss: naive PyTorch (matmul + cross-entropy), torch.compile of it, fastssl (fused).

Rows 2N x D, forward / backward / both; median time, achieved TFLOP/s and peak extra memory.
FLOPs count the logit matmul of the model: forward 2 (2N)^2 D, backward twice that (dZ = W Z and,
for the naive version, the transposed product), so fwd+bwd = 6 (2N)^2 D. fastssl's backward does
the same work in one recomputing pass (2 matmuls, see fastssl/triton/nt_xent.py), counted the same.
"backward" time = both - forward (medians; the forward is timed with inputs that require grad).

Peak extra memory: CUDA from torch.cuda.max_memory_allocated; CPU from torch's allocation events
(torch.profiler, every ATen allocation, C++ ops included) and, as a cross-check, the rise of the
process's peak RSS (VmHWM reset before the call).

    python benchmarks/bench_nt_xent.py --device cuda              # 2N in {4k..64k}, D in {128, 512}, bf16
    python benchmarks/bench_nt_xent.py --device cpu --quick       # 32k x 128 (ours), 4k x 128 (all)
Writes benchmarks/results/nt_xent_<device>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from fastssl.ops import nt_xent_loss  # noqa: E402
from fastssl.reference.nt_xent import nt_xent_loss_cross_entropy  # noqa: E402

TAU = 0.1


def providers(device, allow_compile: bool):
    out = {"naive": lambda z1, z2: nt_xent_loss_cross_entropy(z1, z2, TAU)}
    if allow_compile:
        compiled = torch.compile(nt_xent_loss_cross_entropy, dynamic=False)
        out["torch.compile"] = lambda z1, z2: compiled(z1, z2, TAU)
    out["fastssl"] = lambda z1, z2: nt_xent_loss(z1, z2, TAU)
    return out


def measure(fn, z1, z2, device, mode, budget_s, quick):
    # Both modes run the training forward (inputs require grad, so what backward needs is saved): the
    # backward time is then the difference of the two medians.
    a, b = z1.detach().clone().requires_grad_(), z2.detach().clone().requires_grad_()

    def call():
        loss = fn(a, b)
        if mode == "both":
            loss.backward()
            a.grad = b.grad = None
        return loss.detach()

    timing = common.time_fn(call, device, warmup=1, min_repeats=1 if quick else 3, budget_s=budget_s)
    mib, method = common.peak_extra_memory(call, device)
    rss = common._cpu_peak_by_rss(call) if device.type == "cpu" else None
    return timing, mib, method, None if rss is None else rss / 2**20


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="CPU: 32k x 128 for fastssl, 4k x 128 for all")
    p.add_argument("--rows", type=int, nargs="*", help="2N values")
    p.add_argument("--dims", type=int, nargs="*")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"])
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--naive-max-rows", type=int, default=None, help="largest 2N for naive / compile (memory)")
    p.add_argument("--budget", type=float, default=3.0, help="seconds of timed repeats per measurement")
    p.add_argument("--out", default=str(common.RESULTS_DIR))
    args = p.parse_args(argv)
    device = common.resolve_device(args.device)
    cuda = device.type == "cuda"
    dtype = getattr(torch, args.dtype or ("bfloat16" if cuda else "float32"))
    if args.quick and not cuda:
        cases = [(4096, 128), (32768, 128)]
    else:
        cases = [(r, d) for d in (args.dims or [128, 512])
                 for r in (args.rows or ([4096, 8192, 16384, 32768, 65536] if cuda else [4096, 8192, 16384, 32768]))]
    naive_max = args.naive_max_rows or (65536 if cuda else (4096 if args.quick else 16384))
    allow_compile = not args.no_compile and not (args.quick and not cuda)
    table = providers(device, allow_compile)
    env = common.environment(device)
    rows_out = []
    for n2, d in cases:
        g = torch.Generator(device="cpu").manual_seed(0)
        z1 = torch.randn(n2 // 2, d, generator=g).to(device, dtype)
        z2 = (z1.float() + torch.randn(n2 // 2, d, generator=g).to(device)).to(dtype)
        flops = {"forward": 2 * n2 * n2 * d, "both": 6 * n2 * n2 * d, "backward": 4 * n2 * n2 * d}
        for name, fn in table.items():
            if name != "fastssl" and n2 > naive_max:
                rows_out.append(dict(rows=n2, dim=d, provider=name, skipped=f"2N > {naive_max} (quadratic memory)"))
                print(f"{n2:>6} x {d:<4} {name:<14} skipped: 2N > {naive_max}")
                continue
            result = dict(rows=n2, dim=d, provider=name, dtype=str(dtype).replace("torch.", ""))
            try:
                for mode in ("forward", "both"):
                    timing, mib, method, rss = measure(fn, z1, z2, device, mode, args.budget, args.quick)
                    result[mode] = dict(median_ms=timing.median_ms, min_ms=timing.min_ms, repeats=timing.repeats,
                                        tflops=flops[mode] / (timing.median_ms * 1e-3) / 1e12,
                                        peak_extra_mib=mib, peak_extra_rss_mib=rss, memory_method=method)
                bwd_ms = result["both"]["median_ms"] - result["forward"]["median_ms"]
                result["backward"] = dict(median_ms=bwd_ms, tflops=flops["backward"] / max(bwd_ms, 1e-9) / 1e9 / 1e3)
            except Exception as error:  # noqa: BLE001
                result["skipped"] = f"{type(error).__name__}: {error}"[:300]
            rows_out.append(result)
            print(_line(result), flush=True)
    _speedups(rows_out)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"nt_xent_{device.type}"
    stem.with_suffix(".json").write_text(json.dumps(dict(environment=env, tau=TAU, rows=rows_out), indent=2,
                                                    default=str))
    stem.with_suffix(".md").write_text(_markdown(rows_out, env))
    print(f"wrote {stem}.json and {stem}.md")


def _line(r):
    if "skipped" in r:
        return f"{r['rows']:>6} x {r['dim']:<4} {r['provider']:<14} skipped: {r['skipped']}"
    f, b = r["forward"], r["both"]
    rss = b.get("peak_extra_rss_mib")
    return (f"{r['rows']:>6} x {r['dim']:<4} {r['provider']:<14} fwd {f['median_ms']:9.2f} ms {f['tflops']:7.3f} TF/s"
            f" | bwd {r['backward']['median_ms']:9.2f} ms | both {b['median_ms']:9.2f} ms {b['tflops']:7.3f} TF/s"
            f" | peak extra {b['peak_extra_mib']:8.1f} MiB" + (f" (RSS {rss:.1f} MiB)" if rss is not None else ""))


def _speedups(rows):
    by_case = {}
    for r in rows:
        if "skipped" not in r:
            by_case.setdefault((r["rows"], r["dim"]), {})[r["provider"]] = r
    for case in by_case.values():
        ours = case.get("fastssl")
        if ours:
            for base in ("naive", "torch.compile"):
                if base in case:
                    ours.setdefault("speedup_both", {})[base] = case[base]["both"]["median_ms"] / ours["both"]["median_ms"]


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


if __name__ == "__main__":
    main()
