"""k-means: fastssl's fused assignment against faiss and a naive PyTorch cdist + argmin, at equal threads.

Cases (float32 rows of N x D, K centroids, the same initial centroids for every provider):

* ``assign``: the nearest centroid of every row (fastssl.ops.kmeans_assign; faiss IndexFlatL2.search with
  k = 1; naive: torch.cdist over all (N, K) pairs, then argmin).
* ``iteration``: one Lloyd iteration, assignment + per-cluster sums and counts (fastssl kmeans_assign +
  kmeans_update; faiss Kmeans.train with niter = 1 from the centroids, i.e. search + its centroid update;
  naive: cdist + argmin + index_add_ + bincount).
* ``fit``: a whole clustering of ``iterations`` iterations and the final assignment (DeepCluster's use:
  fastssl.ops.KMeans(init=centroids).fit; faiss Kmeans.train(init_centroids) + index.search; naive: the
  iteration above repeated, empty clusters keeping their centroid).

GFLOP/s count the distance products, 2 N K D per assignment. Agreement: the fraction of rows whose assignment
equals faiss's (rounding decides near-ties differently). faiss runs without subsampling
(max_points_per_centroid large, as DeepCluster sets it). Threads: torch.set_num_threads and
faiss.omp_set_num_threads both get --threads.

    python benchmarks/bench_kmeans.py --device cpu             # N = 100k and 1M (assign), D = 256, K = 1000
    python benchmarks/bench_kmeans.py --device cpu --quick     # seconds
    python benchmarks/bench_kmeans.py --device cuda            # fastssl triton (float32, bfloat16), naive,
                                                               # faiss-gpu when importable (N = 1M, K = 10k)
Writes benchmarks/results/kmeans_<device>.json and .md (kmeans_<device>_quick.* under --quick).
"""

from __future__ import annotations

import sys
import time

import torch

import common
from fastssl.ops import KMeans, kmeans_assign, kmeans_update


# ------------------------------------------------------------------------------------------ providers

#: provider -> the objective (mean squared distance) of its last fit's last iteration
FINAL_OBJECTIVE: dict[str, float] = {}
#: provider -> the iterations its last fit ran (faiss can stop early; the bench asks it not to)
ITERATIONS_RUN: dict[str, int] = {}


def _faiss(device: torch.device):
    """The faiss module when it can run on ``device`` (faiss-gpu for CUDA), else the reason it cannot."""
    try:
        import faiss
    except ImportError as error:
        return f"faiss is not installed ({error})"
    if device.type == "cuda" and not (hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0):
        return "faiss has no GPU support here (faiss-cpu, or no GPU visible to it)"
    return faiss


def naive_assign(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x, centroids).argmin(dim=1)


def naive_update(x: torch.Tensor, assignment: torch.Tensor, k: int):
    sums = torch.zeros((k, x.shape[1]), dtype=torch.float32, device=x.device).index_add_(0, assignment, x)
    return sums, torch.bincount(assignment, minlength=k)


def naive_fit(x: torch.Tensor, centroids: torch.Tensor, iterations: int) -> torch.Tensor:
    for _ in range(iterations):
        sums, counts = naive_update(x, naive_assign(x, centroids), centroids.shape[0])
        centroids = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centroids)
    return naive_assign(x, centroids)


class FaissKMeans:
    """faiss's Clustering on numpy copies of the inputs (made once, outside the timings)."""

    def __init__(self, faiss, x: torch.Tensor, centroids: torch.Tensor, device: torch.device):
        self.faiss, self.gpu = faiss, device.type == "cuda"
        self.x, self.centroids = x.float().cpu().numpy(), centroids.float().cpu().numpy()
        self.k, self.d = centroids.shape

    def _index(self):
        index = self.faiss.IndexFlatL2(self.d)
        if self.gpu:
            index = self.faiss.index_cpu_to_gpu(self.faiss.StandardGpuResources(), 0, index)
        return index

    def assign(self):
        index = self._index()
        index.add(self.centroids)
        return torch.from_numpy(index.search(self.x, 1)[1][:, 0])

    def fit(self, iterations: int, final_search: bool = True):
        options = dict(niter=iterations, max_points_per_centroid=10**9, min_points_per_centroid=1, gpu=self.gpu)
        if hasattr(self.faiss.ClusteringParameters(), "early_stop_threshold"):
            options["early_stop_threshold"] = -1.0  # every iteration runs, as in the other providers
        km = self.faiss.Kmeans(self.d, self.k, **options)
        km.train(self.x, init_centroids=self.centroids)
        FINAL_OBJECTIVE["faiss"] = km.iteration_stats[-1]["obj"] / self.x.shape[0]
        ITERATIONS_RUN["faiss"] = len(km.iteration_stats)
        return torch.from_numpy(km.index.search(self.x, 1)[1][:, 0]) if final_search else None


def _fastssl_fit(name: str, rows: torch.Tensor, centroids: torch.Tensor, iterations: int) -> torch.Tensor:
    kmeans = KMeans(centroids.shape[0], iterations=iterations, init=centroids).fit(rows)
    FINAL_OBJECTIVE[name] = kmeans.objective[-1]
    ITERATIONS_RUN[name] = len(kmeans.objective)
    return kmeans.assignment


def providers(case: str, x: torch.Tensor, centroids: torch.Tensor, iterations: int, config: dict) -> dict:
    """name -> zero-argument callable returning the assignment (or None), or the reason it is skipped."""
    device, k = x.device, centroids.shape[0]
    out = {}
    for dtype in config["fastssl_dtypes"]:
        rows = x.to(getattr(torch, dtype))
        name = f"fastssl ({'cpp' if device.type == 'cpu' else 'triton'}{', ' + dtype if dtype != 'float32' else ''})"
        if case == "assign":
            out[name] = lambda rows=rows: kmeans_assign(rows, centroids)[0]
        elif case == "iteration":
            out[name] = lambda rows=rows: kmeans_update(rows, kmeans_assign(rows, centroids)[0], k)
        else:
            out[name] = lambda rows=rows, name=name: _fastssl_fit(name, rows, centroids, iterations)
    faiss = _faiss(device)
    if isinstance(faiss, str):
        out["faiss"] = faiss
    else:
        peer = FaissKMeans(faiss, x, centroids, device)
        out["faiss"] = {"assign": peer.assign, "iteration": lambda: peer.fit(1, final_search=False),
                        "fit": lambda: peer.fit(iterations)}[case]
    if x.shape[0] > config["naive_max_rows"]:
        out["naive torch"] = f"N > {config['naive_max_rows']} (cdist holds the whole (N, K) matrix)"
    else:
        out["naive torch"] = {"assign": lambda: naive_assign(x, centroids),
                              "iteration": lambda: naive_update(x, naive_assign(x, centroids), k),
                              "fit": lambda: naive_fit(x, centroids, iterations)}[case]
    return out


# --------------------------------------------------------------------------------------------- measuring


def _inputs(n: int, d: int, k: int, device: torch.device):
    """Rows from k Gaussian clusters (centres N(0, 1), spread 0.5), and k rows as initial centroids."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(k, d, generator=g)
    labels = torch.randint(0, k, (n,), generator=g)
    x = centres[labels] + 0.5 * torch.randn(n, d, generator=g)
    init = x[torch.randperm(n, generator=g)[:k]].clone()
    return x.to(device), init.to(device)


def _timed(fn, device: torch.device, warmup: bool, repeats: int) -> tuple[common.Timing, object]:
    """(median and minimum of ``repeats`` timed calls after an optional untimed one, the last call's output)."""
    if warmup:
        fn()
    samples, output = [], None
    for _ in range(repeats):
        common._sync(device)
        start = time.perf_counter()
        output = fn()
        common._sync(device)
        samples.append((time.perf_counter() - start) * 1e3)
    samples.sort()
    return common.Timing(samples[len(samples) // 2], samples[0], repeats), output


def measure_case(case: str, n: int, d: int, k: int, run: common.Run) -> list[dict]:
    config, device = run.config, run.device
    iterations = config["iterations"]
    x, centroids = _inputs(n, d, k, device)
    passes = iterations + 1 if case == "fit" else 1
    gflop = passes * 2 * n * k * d / 1e9
    rows, faiss_assignment = [], None
    for name, fn in providers(case, x, centroids, iterations, config).items():
        row = dict(case=case, rows=n, dim=d, k=k, iterations=iterations if case == "fit" else None, provider=name)
        if isinstance(fn, str):
            rows.append(dict(row, skipped=fn))
            print(f"{case:<9} N={n:<8} {name:<26} skipped: {fn}", flush=True)
            continue
        try:
            repeats = 1 if case == "fit" or config["quick"] else 3
            timing, output = _timed(fn, device, warmup=case != "fit", repeats=repeats)
        except Exception as error:  # noqa: BLE001  (one failing provider must not stop the run)
            rows.append(dict(row, skipped=f"{type(error).__name__}: {error}"[:300]))
            continue
        assignment = output if isinstance(output, torch.Tensor) else None
        row.update(median_ms=timing.median_ms, min_ms=timing.min_ms, repeats=timing.repeats,
                   gflops=gflop / (timing.median_ms * 1e-3))
        if assignment is not None:
            assignment = assignment.cpu()
            if name == "faiss":
                faiss_assignment = assignment
            row["_assignment"] = assignment
        rows.append(row)
        print(f"{case:<9} N={n:<8} {name:<26} {timing.median_ms:10.1f} ms  {row['gflops']:7.1f} GFLOP/s", flush=True)
    faiss_ms = next((r["median_ms"] for r in rows if r["provider"] == "faiss" and "median_ms" in r), None)
    for r in rows:
        assignment = r.pop("_assignment", None)
        if faiss_ms and "median_ms" in r:
            r["speedup_vs_faiss"] = faiss_ms / r["median_ms"]
        if assignment is not None and faiss_assignment is not None:
            r["agreement_with_faiss"] = float((assignment == faiss_assignment).double().mean())
        if case == "fit" and r["provider"] in FINAL_OBJECTIVE:
            r["final_objective"] = FINAL_OBJECTIVE.pop(r["provider"])
            r["iterations_run"] = ITERATIONS_RUN.pop(r["provider"])
    return rows


def measure_all(run: common.Run, env: dict) -> common.Report:
    faiss = _faiss(torch.device("cpu"))
    if not isinstance(faiss, str):
        faiss.omp_set_num_threads(torch.get_num_threads())
    config = run.config
    rows = []
    started = time.perf_counter()
    for case in ("assign", "iteration", "fit"):
        for n in config["rows"] if case == "assign" else config["rows"][:1]:
            rows += measure_case(case, n, config["dim"], config["k"], run)
    env["faiss"] = common._version("faiss")
    env["faiss_threads"] = None if isinstance(faiss, str) else faiss.omp_get_max_threads()
    env["total_s"] = time.perf_counter() - started
    return common.Report(dict(environment=env, config=config, rows=rows), lambda: _markdown(rows, env, config))


def _fmt(value, digits=1):
    return "—" if value is None else f"{value:,.{digits}f}"


def _markdown(rows, env, config) -> str:
    native = env["fastssl_C"]["info"] if env["fastssl_C"]["available"] else "—"
    lines = [f"# k-means on {env['device']}", "",
             f"- device: **{env['device_name']}**, {env['torch_threads']} torch threads, faiss "
             f"{env.get('faiss')} with {env.get('faiss_threads')} OpenMP threads",
             f"- torch {env['torch']}, fastssl._C: {native}",
             f"- date: {env['date']}; load average at start {env.get('load_average_1_5_15')}, at end "
             f"{env.get('load_average_end')}; whole run {env.get('total_s', 0):.0f} s",
             f"- float32 rows, D = {config['dim']}, K = {config['k']}, fit = {config['iterations']} iterations + "
             "the final assignment, all from the same initial centroids", "",
             "| case | N | provider | ms | GFLOP/s | × vs faiss | agreement with faiss | final objective |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['case']} | {r['rows']} | {r['provider']} | skipped: {r['skipped']} | | | | |")
            continue
        agreement = r.get("agreement_with_faiss")
        lines.append(f"| {r['case']} | {r['rows']} | {r['provider']} | {_fmt(r['median_ms'])} | {_fmt(r['gflops'])} | "
                     f"{_fmt(r.get('speedup_vs_faiss'), 2)} | "
                     f"{'—' if agreement is None else f'{100 * agreement:.3f}%'} | "
                     f"{_fmt(r.get('final_objective'), 6)} |")
    lines += ["", "GFLOP/s: 2 N K D per assignment (fit: iterations + 1 assignments) over the median time. "
              "Agreement: rows assigned as faiss assigns them (float32 rounding splits near-ties either way). "
              "Final objective: the mean squared distance at the last iteration's assignment; faiss's early stop "
              "(once the objective stops decreasing) is turned off, every provider runs every iteration.", ""]
    return "\n".join(lines)


BENCHMARK = common.Benchmark(
    name="kmeans", doc=__doc__, measure=measure_all,
    device="cuda" if torch.cuda.is_available() else "cpu",
    defaults={"cpu": {"rows": [100_000, 1_000_000], "dim": 256, "k": 1000, "iterations": 20,
                      "fastssl_dtypes": ["float32"], "naive_max_rows": 100_000, "threads": 2},
              "cuda": {"rows": [1_000_000], "dim": 256, "k": 10_000, "iterations": 20,
                       "fastssl_dtypes": ["float32", "bfloat16"], "naive_max_rows": 200_000, "threads": None}},
    quick={"rows": [10_000], "dim": 64, "k": 100, "iterations": 5},
    flags=(common.flag("--rows", type=int, nargs="*", help="N values (the first one for the iteration and fit cases)"),
           common.flag("--dim", type=int, help="D"),
           common.flag("--k", type=int, help="K centroids"),
           common.flag("--iterations", type=int, help="Lloyd iterations of the fit case"),
           common.flag("--threads", type=int, help="torch and faiss threads"),
           common.flag("--naive-max-rows", type=int, help="largest N of the naive provider (memory)")),
    tag=common.quick_tag,
    headline="N in {rows}, D {dim}, K {k}, {iterations} iterations")


if __name__ == "__main__":
    sys.exit(common.main(BENCHMARK))
