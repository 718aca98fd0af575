"""k-means: kmeans_assign / kmeans_update on every backend against the float64 reference (odd shapes, dtypes,
strides, ties), the KMeans driver against faiss-cpu from the same initial centroids, the split of empty
clusters (against faiss and the stated donor law), seeding, pca_whiten against faiss's PCAMatrix, opcheck, bad
input. Distributed runs: test_kmeans_distributed.py."""

from __future__ import annotations

import pytest
import torch

from fastssl import _native
from fastssl.backends import BackendUnavailable, triton_interpreter
from fastssl.ops import KMeans, kmeans_assign, kmeans_update, l2_normalize, pca_whiten
from fastssl.reference import kmeans as reference
from helpers import triton_device


def cpp_ready() -> bool:
    return _native.state().available and hasattr(torch.ops.fastssl_C, "kmeans_assign")


needs_cpp = pytest.mark.skipif(not cpp_ready(), reason="fastssl._C without csrc/kmeans.cpp: rebuild the extension")
BACKENDS = [pytest.param("reference"), pytest.param("cpp", marks=needs_cpp),
            pytest.param("triton", marks=pytest.mark.triton)]
FUSED = BACKENDS[1:]


def device_of(backend: str) -> str:
    return triton_device() if backend == "triton" else "cpu"


def rows(n, d, seed=0, scale=1.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def blobs(per_blob, k, d, seed=0, spread=0.05):
    """k well-separated blobs (centres 10 apart in a random direction each) of per_blob rows, float64."""
    g = torch.Generator().manual_seed(seed)
    centres = 10 * torch.randn(k, d, generator=g, dtype=torch.float64)
    x = centres.repeat_interleave(per_blob, 0) + spread * torch.randn(k * per_blob, d, generator=g, dtype=torch.float64)
    return x[torch.randperm(x.shape[0], generator=g)], centres


def assert_assignment_matches(x, centroids, assignment, distance, *, atol):
    """The chosen centroid is the nearest up to ``atol`` of rounding (float64 distances of the rounded inputs),
    and the distance is within ``atol`` of its exact value."""
    exact = torch.cdist(x.double().cpu(), centroids.double().cpu()).square()
    nearest = exact.min(dim=1).values
    chosen = exact.gather(1, assignment.cpu().view(-1, 1)).squeeze(1)
    assert assignment.dtype == torch.int64 and distance.dtype == torch.float32
    assert float((chosen - nearest).max()) <= atol
    assert float((distance.double().cpu() - chosen).abs().max()) <= atol


# ---------------------------------------------------------------------------------------- the specification


def test_reference_assign_is_the_exact_nearest_centroid():
    x, c = rows(50, 7, 1), rows(9, 7, 2)
    brute = ((x[:, None, :] - c[None]) ** 2).sum(-1)
    assignment, distance = reference.assign(x, c)
    assert torch.equal(assignment, brute.argmin(dim=1))
    torch.testing.assert_close(distance, brute.min(dim=1).values, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------- assignment / update

SHAPES = [(1, 1, 1), (37, 5, 3), (70, 45, 37), (129, 33, 130), (300, 1100, 5)]  # (N, K, D): odd, > one tile


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n,k,d", SHAPES)
def test_assign_float32_matches_reference(backend, n, k, d):
    if backend == "triton" and triton_interpreter() and n * k * d > 200_000:
        pytest.skip("large under the Triton interpreter (covered by the cuda tests)")
    device = device_of(backend)
    x, c = rows(n, d, 3).float(), rows(k, d, 4).float()
    assignment, distance = kmeans_assign(x.to(device), c.to(device), backend=backend)
    assert_assignment_matches(x, c, assignment, distance, atol=1e-4 * d)
    if backend != "reference":
        expected, _ = kmeans_assign(x, c, backend="reference")
        assert (assignment.cpu() == expected).float().mean() > 0.99  # only near-ties may differ


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64], ids=str)
def test_assign_dtypes(backend, dtype):
    """16-bit rows are compared with the exact distances of the rounded rows: the fused backends read them as they
    are (Triton: against centroids split into two 16-bit parts, ~16 significant bits); float64 rows are rounded to
    float32 by the fused backends."""
    device = device_of(backend)
    x, c = rows(41, 19, 5).to(dtype), rows(13, 19, 6).float()
    assignment, distance = kmeans_assign(x.to(device), c.to(device), backend=backend)
    atol = 2e-3 if dtype == torch.float64 else 2e-2  # the distances are float32: ~4e-6 of rounding at 30
    assert_assignment_matches(x, c, assignment, distance, atol=atol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_assign_strided_rows(backend):
    device = device_of(backend)
    wide = rows(64, 22, 7).float().to(device)
    x = wide[::2, ::2]  # strides (44, 2)
    t = rows(11, 31, 8).float().to(device).T  # (31, 11) with strides (1, 31)
    c = rows(6, 11, 9).float().to(device)
    for rows_in in (x, t):
        assignment, distance = kmeans_assign(rows_in, c, backend=backend)
        assert_assignment_matches(rows_in, c, assignment, distance, atol=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_go_to_the_lowest_index(backend):
    """Duplicated centroids: the lower copy wins, within a tile, across the C++ kernel's 512-wide tiles and
    across the Triton launcher's splits (16-wide tiles under the interpreter)."""
    device = device_of(backend)
    k = 1100 if backend != "triton" or not triton_interpreter() else 70
    c = rows(k, 4, 10).float() + 100  # far from every row
    c[3] = c[40] = c[k - 2] = torch.tensor([0.0, 0.0, 0.0, 1.0])
    c[5] = c[k - 1] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    x = torch.tensor([[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.5]])  # the last: equidistant
    assignment, distance = kmeans_assign(x.to(device), c.to(device), backend=backend)
    assert assignment.tolist() == [3, 5, 3]
    torch.testing.assert_close(distance.cpu(), torch.tensor([0.0, 0.0, 0.5]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_update_matches_reference(backend, dtype):
    device = device_of(backend)
    x = rows(203, 37, 11).to(dtype)
    assignment = torch.randint(0, 9, (203,), generator=torch.Generator().manual_seed(12))
    assignment[assignment == 4] = 5  # an empty cluster
    sums, counts = kmeans_update(x.to(device), assignment.to(device), 10, backend=backend)
    expected_sums, expected_counts = reference.update(x, assignment, 10)
    assert sums.dtype == torch.float32 and counts.dtype == torch.int64
    assert torch.equal(counts.cpu(), expected_counts) and counts[4] == 0
    torch.testing.assert_close(sums.double().cpu(), expected_sums, rtol=0, atol=1e-5)


@needs_cpp
def test_cpp_update_is_deterministic_whatever_the_threads():
    x = rows(5000, 16, 13).float()
    assignment = torch.randint(0, 7, (5000,), generator=torch.Generator().manual_seed(14))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = kmeans_update(x, assignment, 7, backend="cpp")
        torch.set_num_threads(2)
        two = kmeans_update(x, assignment, 7, backend="cpp")
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_opcheck(backend):
    device = device_of(backend)
    x, c = rows(9, 5, 15).float().to(device), rows(4, 5, 16).float().to(device)
    assignment = torch.tensor([0, 3, 3, 1, 0, 2, 2, 2, 1], device=device)
    tests = ("test_schema", "test_autograd_registration", "test_faketensor")
    if backend != "triton":
        tests += ("test_aot_dispatch_dynamic",)
    torch.library.opcheck(torch.ops.fastssl.kmeans_assign.default, (x, c, backend), test_utils=tests)
    torch.library.opcheck(torch.ops.fastssl.kmeans_update.default, (x, assignment, 4, backend), test_utils=tests)


# ---------------------------------------------------------------------------------------------- the driver


def faiss_kmeans(x, init, iterations):
    """faiss-cpu's k-means from the initial centroids ``init`` (no subsampling): (centroids, objective per
    iteration divided by N, splits per iteration). faiss stops early once the objective stops decreasing: the
    lists may be shorter than ``iterations`` (the centroids no longer move then)."""
    faiss = pytest.importorskip("faiss")
    import numpy as np

    k, d = init.shape
    km = faiss.Kmeans(d, k, niter=iterations, max_points_per_centroid=10**7, min_points_per_centroid=1)
    km.train(np.ascontiguousarray(x.float().numpy()), init_centroids=np.ascontiguousarray(init.float().numpy()))
    stats = km.iteration_stats
    return (torch.from_numpy(km.centroids), [s["obj"] / x.shape[0] for s in stats], [s["nsplit"] for s in stats])


@pytest.mark.parametrize("backend", BACKENDS)
def test_identical_to_faiss_on_separated_blobs(backend):
    x, centres = blobs(12, 5, 6, seed=17)
    init = (centres + 0.5).float()  # one initial centroid near each blob
    iterations = 4
    ours = KMeans(5, iterations=iterations, init=init, backend=backend).fit(x.float().to(device_of(backend)))
    centroids, objective, splits = faiss_kmeans(x, init, iterations)
    expected, _ = reference.assign(x, centroids.double())
    assert torch.equal(ours.assignment.cpu(), expected)
    torch.testing.assert_close(ours.centroids.cpu(), centroids, rtol=0, atol=1e-5)
    done = len(objective)  # float32 expansions of ||x||^2 ~ 600: rounding ~4e-5 per row on both sides
    torch.testing.assert_close(torch.tensor(ours.objective[:done]), torch.tensor(objective), rtol=1e-4, atol=5e-5)
    assert ours.splits == [0] * iterations and splits == [0] * done


@pytest.mark.parametrize("backend", FUSED)
def test_objective_within_tolerance_of_faiss_and_the_reference(backend):
    """Overlapping Gaussian data (many near-ties), 20 iterations from the same initial centroids: the fused backend,
    faiss and the float64 reference end within a small relative tolerance of each other's objective."""
    if backend == "triton" and triton_interpreter():
        n, k, d, iterations = 120, 6, 8, 6
    else:
        n, k, d, iterations = 600, 12, 16, 20
    x = rows(n, d, 18).float()
    init = x[torch.randperm(n, generator=torch.Generator().manual_seed(19))[:k]].clone()
    ours = KMeans(k, iterations=iterations, init=init, backend=backend).fit(x.to(device_of(backend)))
    spec = KMeans(k, iterations=iterations, init=init, backend="reference").fit(x)
    _, objective, splits = faiss_kmeans(x, init, iterations)
    assert sum(splits) == sum(ours.splits) == 0
    for other in (spec.objective, objective):
        torch.testing.assert_close(torch.tensor(ours.objective[:len(other)]), torch.tensor(other), rtol=2e-3, atol=0)
    assert all(a >= b - 1e-6 * a for a, b in zip(ours.objective, ours.objective[1:]))  # Lloyd never goes up


def empty_cluster_case():
    """4 rows around (1, 2, 3), one row at (-5, 0, 0), and an initial centroid far from both: at the first
    iteration the far cluster is empty and the 4-row cluster is the only possible donor (size - 1 = 3 vs 0)."""
    x = torch.tensor([[1.0, 2.0, 3.0], [1.2, 2.0, 3.0], [1.0, 2.4, 3.0], [1.0, 2.0, 3.8], [-5.0, 0.0, 0.0]])
    init = torch.tensor([[1.0, 2.0, 3.0], [-5.0, 0.0, 0.0], [100.0, 100.0, 100.0]])
    return x, init


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_cluster_split_as_faiss_does(backend):
    x, init = empty_cluster_case()
    ours = KMeans(3, iterations=1, init=init, backend=backend).fit(x.to(device_of(backend)))
    mean = x[:4].double().mean(dim=0)
    eps = torch.tensor([1, -1, 1], dtype=torch.float64) / 1024
    assert ours.splits == [1]
    torch.testing.assert_close(ours.centroids.cpu().double(), torch.stack([mean * (1 - eps), x[4].double(),
                                                                          mean * (1 + eps)]), rtol=1e-6, atol=0)
    centroids, _, splits = faiss_kmeans(x, init, 1)
    assert splits == [1]
    torch.testing.assert_close(ours.centroids.cpu(), centroids, rtol=1e-6, atol=0)
    # the next iteration separates the two copies: the donor's rows split between them, nothing empty
    more = KMeans(3, iterations=3, init=init, backend=backend).fit(x.to(device_of(backend)))
    assert more.splits[1:] == [0, 0] and bool((more.assignment.bincount(minlength=3) > 0).all())


def test_split_donors_follow_size_minus_one():
    """Donor law: P(j) = max(n_j - 1, 0) / sum; sizes are shared in halves after each split."""
    c = torch.arange(12, dtype=torch.float32).reshape(4, 3) + 1
    counts = torch.tensor([0, 3, 1, 5])
    g = torch.Generator().manual_seed(20)
    donors = []
    for _ in range(3000):
        out, splits = reference.split_empty_clusters(c, counts, g)
        assert splits == 1
        donors.append(_donor_of(out, c))
    freq = torch.bincount(torch.tensor(donors), minlength=4).double() / len(donors)
    torch.testing.assert_close(freq, torch.tensor([0, 1 / 3, 0, 2 / 3], dtype=torch.float64), atol=0.03, rtol=0)
    # three empty clusters, one donor of size 3: halves 1.5 / 1.5, then a half gives again (0.75 / 0.75): every
    # centroid is the donor's, perturbed by one or two factors 1 +- 1/1024 (copies may coincide, as in faiss)
    out, splits = reference.split_empty_clusters(c, torch.tensor([0, 0, 3, 0]), torch.Generator().manual_seed(21))
    assert splits == 3 and torch.allclose(out, c[2].expand(4, 3), rtol=2.01 / 1024, atol=0)
    assert all(not torch.equal(out[j], c[j]) for j in range(4))


def _donor_of(out: torch.Tensor, before: torch.Tensor) -> int:
    """The cluster whose centroid moved by a split (the donor), other than the refilled cluster 0."""
    moved = [j for j in range(1, before.shape[0]) if not torch.equal(out[j], before[j])]
    assert len(moved) == 1
    return moved[0]


def test_split_needs_a_donor():
    with pytest.raises(ValueError, match="no donor"):
        reference.split_empty_clusters(torch.zeros(3, 2), torch.tensor([0, 1, 1]), torch.Generator())


@pytest.mark.parametrize("backend", BACKENDS)
def test_kmeans_plus_plus_finds_separated_blobs_and_is_seeded(backend):
    x, _ = blobs(8, 6, 5, seed=22)
    device = device_of(backend)
    one = KMeans(6, iterations=2, seed=3, backend=backend).fit(x.float().to(device))
    again = KMeans(6, iterations=2, seed=3, backend=backend).fit(x.float().to(device))
    assert torch.equal(one.centroids, again.centroids) and one.objective == again.objective
    assert sorted(one.assignment.bincount(minlength=6).tolist()) == [8] * 6  # one centroid per blob
    assert one.objective[-1] < 0.05
    random = KMeans(6, iterations=0, init="random", seed=3, backend=backend).fit(x.float().to(device))
    other = KMeans(6, iterations=0, init="random", seed=4, backend=backend).fit(x.float().to(device))
    assert not torch.equal(random.centroids, other.centroids)
    assert all(bool((x.float().to(device) == row).all(dim=1).any()) for row in random.centroids)  # rows of x


def test_same_clustering_on_every_backend_from_a_seed():
    x, _ = blobs(10, 4, 3, seed=23)
    results = [KMeans(4, iterations=3, seed=5, backend=b).fit(x.float()) for b in ("reference", "cpp")
               if b != "cpp" or cpp_ready()]
    for r in results[1:]:
        assert torch.equal(r.assignment, results[0].assignment)
        torch.testing.assert_close(r.centroids, results[0].centroids, rtol=0, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bfloat16_rows_cluster_like_their_float32_values(backend):
    x, centres = blobs(10, 4, 8, seed=24)
    x16 = x.bfloat16()
    device = device_of(backend)
    init = (centres + 0.3).float()
    ours = KMeans(4, iterations=3, init=init, backend=backend).fit(x16.to(device))
    wide = KMeans(4, iterations=3, init=init, backend=backend).fit(x16.float().to(device))
    assert ours.centroids.dtype == torch.float32
    assert torch.equal(ours.assignment, wide.assignment)
    torch.testing.assert_close(ours.centroids, wide.centroids, rtol=0, atol=1e-4)


def test_iterations_zero_and_repr():
    x, _ = empty_cluster_case()
    init = x[:3].clone()
    km = KMeans(3, iterations=0, init=init)
    assert "k=3" in repr(km) and km.fit(x) is km
    assert torch.equal(km.centroids, init) and km.objective == [] and km.assignment.tolist() == [0, 1, 2, 0, 0]


# ----------------------------------------------------------------------------------------- preprocessing


def test_pca_whiten_matches_faiss_pca_matrix():
    faiss = pytest.importorskip("faiss")
    g = torch.Generator().manual_seed(25)
    x = (torch.randn(400, 12, generator=g) @ torch.randn(12, 12, generator=g) + 3).float()
    white, projection = pca_whiten(x, 5, eps=0.0)
    pca = faiss.PCAMatrix(12, 5, -0.5)
    pca.train(x.numpy())
    theirs = torch.from_numpy(pca.apply_py(x.numpy()))
    signs = torch.sign((white * theirs).sum(dim=0))  # eigenvector signs are a convention
    # faiss leaves its covariance undivided by N: its whitened rows are ours / sqrt(N), equal once normalised
    torch.testing.assert_close(white / 400**0.5, theirs * signs, rtol=0, atol=1e-4)
    torch.testing.assert_close(l2_normalize(white), l2_normalize(theirs * signs), rtol=0, atol=1e-4)
    torch.testing.assert_close(white.T @ white / 400, torch.eye(5), rtol=0, atol=1e-3)
    torch.testing.assert_close(projection(x[:7]), white[:7])
    top = projection.matrix.abs().argmax(dim=0)
    assert bool((projection.matrix.gather(0, top[None]) > 0).all())  # largest entry of each direction positive


def test_l2_normalize_rows():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1e-3, 0.0]], dtype=torch.bfloat16)
    out = l2_normalize(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), torch.tensor([[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]]), atol=4e-3, rtol=0)


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_input():
    x, c = torch.randn(6, 4), torch.randn(3, 4)
    with pytest.raises(ValueError, match=r"x must have shape \(N, D\)"):
        kmeans_assign(torch.randn(6), c)
    with pytest.raises(ValueError, match="same D"):
        kmeans_assign(x, torch.randn(3, 5))
    with pytest.raises(ValueError, match="K >= 1"):
        kmeans_assign(x, torch.randn(0, 4))
    with pytest.raises(TypeError, match="x must have dtype"):
        kmeans_assign(x.long(), c)
    with pytest.raises(TypeError, match="centroids must have dtype float32 or float64"):
        kmeans_assign(x, c.half())
    with pytest.raises(ValueError, match="x has D = 0"):
        kmeans_assign(torch.randn(6, 0), torch.randn(3, 0))
    bad = x.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        kmeans_assign(bad, c)
    with pytest.raises(ValueError, match=r"assignment must lie in \[0, 3\)"):
        kmeans_update(x, torch.tensor([0, 1, 2, 3, 0, 0]), 3)
    with pytest.raises(ValueError, match="assignment must have shape"):
        kmeans_update(x, torch.tensor([0, 1]), 3)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        kmeans_update(x, torch.zeros(6, dtype=torch.long), 0)
    with pytest.raises(BackendUnavailable, match="unknown backend"):
        kmeans_assign(x, c, backend="gpu")
    with pytest.raises(ValueError, match="needs at least k rows"):
        KMeans(7).fit(x)
    with pytest.raises(ValueError, match="init must be one of"):
        KMeans(3, init="kmeans||")
    with pytest.raises(ValueError, match=r"init must have shape \(k, D\) = \(3, 4\)"):
        KMeans(3, init=torch.randn(3, 5)).fit(x)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        KMeans(3, seed=-1)
    with pytest.raises(ValueError, match="dim must be at most D = 4"):
        pca_whiten(x, 5)


# ------------------------------------------------------------------------------------------------------- GPU


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-3), (torch.float16, 3e-2), (torch.bfloat16, 3e-2)])
@pytest.mark.parametrize("n,k,d", [(20000, 1000, 256), (777, 10000, 128), (4097, 333, 70)])
def test_triton_gpu_matches_reference(dtype, atol, n, k, d):
    x, c = rows(n, d, 26).to(dtype), rows(k, d, 27).float()
    assignment, distance = kmeans_assign(x.cuda(), c.cuda(), backend="triton")
    assert_assignment_matches(x, c, assignment, distance, atol=atol * d ** 0.5)
