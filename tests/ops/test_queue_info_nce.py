"""queue_info_nce_loss (MoCo's loss: a positive key per query, a shared queue of negatives): every backend
against a float64 transcription of MoCo's logits and cross-entropy (values, gradients to queries and
positives, none to the negatives), dtypes, layouts, reductions, custom-op checks, memory, bad input."""

from __future__ import annotations

import math

import pytest
import torch

import fastssl
from fastssl import _native
from fastssl.backends import triton_interpreter
from fastssl.ops import QueueInfoNCELoss, queue_info_nce_loss
from fastssl.reference import nt_xent as reference


def cpp_ready() -> bool:
    return _native.state().available and hasattr(torch.ops.fastssl_C, "info_nce_grad_queries")


def triton_ready() -> bool:
    return fastssl.backends.triton_status() is None and (triton_interpreter() or torch.cuda.is_available())


needs_cpp = pytest.mark.skipif(not cpp_ready(), reason="fastssl._C without info_nce_grad_queries: rebuild it")
needs_triton = [pytest.mark.triton,
                pytest.mark.skipif(not triton_ready(), reason="needs CUDA, or TRITON_INTERPRET=1 for the CPU")]
needs_cuda = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

BACKENDS = [pytest.param("reference"), pytest.param("cpp", marks=needs_cpp),
            pytest.param("triton", marks=needs_triton)]
TRITON_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def device_of(backend: str) -> str:
    return TRITON_DEVICE if backend == "triton" else "cpu"


def moco_loss(q, k, queue, tau, normalize=True):
    """MoCo's loss as its authors write it, in float64: logits [q.k+, q.queue] / tau, cross-entropy with
    label 0, per query (reduction "none")."""
    q, k, queue = q.double(), k.double(), queue.double()
    if normalize:
        q, k, queue = (torch.nn.functional.normalize(x, dim=1) for x in (q, k, queue))
    l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
    l_neg = torch.einsum("nc,kc->nk", q, queue)
    logits = torch.cat([l_pos, l_neg], dim=1) / tau
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return torch.nn.functional.cross_entropy(logits, labels, reduction="none")


def rows(m, k, d, *, scale=1.0, seed=0, dtype=torch.float64, device="cpu"):
    """Queries, their positives (correlated with them) and a queue of negatives."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(m, d, generator=g, dtype=torch.float64) * scale
    pos = q + 1.5 * scale * torch.randn(m, d, generator=g, dtype=torch.float64)
    queue = torch.randn(k, d, generator=g, dtype=torch.float64) * scale
    return q.to(device, dtype), pos.to(device, dtype), queue.to(device, dtype)


def expected(q, k, queue, tau, normalize=True, reduction="mean"):
    """float64 loss and gradients (queries, positives) of MoCo's transcription, from the inputs as given."""
    a = q.detach().double().cpu().requires_grad_()
    b = k.detach().double().cpu().requires_grad_()
    losses = moco_loss(a, b, queue.detach().cpu(), tau, normalize)
    loss = losses.mean() if reduction == "mean" else losses.sum()
    return (loss.detach(), *torch.autograd.grad(loss, (a, b)))


def ours(q, k, queue, tau, backend, normalize=True, reduction="mean"):
    a, b = q.detach().clone().requires_grad_(), k.detach().clone().requires_grad_()
    n = queue.detach().clone().requires_grad_()  # requires grad, and still gets none
    loss = queue_info_nce_loss(a, b, n, tau, normalize=normalize, reduction=reduction, backend=backend)
    loss.backward()
    assert n.grad is None
    return loss.detach().double().cpu(), a.grad.double().cpu(), b.grad.double().cpu()


def assert_matches(got, want, rtol, atol_grad):
    loss, ga, gb = got
    rloss, rga, rgb = want
    torch.testing.assert_close(loss, rloss, rtol=rtol, atol=rtol)
    scale = max(rga.abs().max().item(), rgb.abs().max().item())
    torch.testing.assert_close(ga, rga, rtol=0, atol=atol_grad * scale)
    torch.testing.assert_close(gb, rgb, rtol=0, atol=atol_grad * scale)


# ------------------------------------------------------------------------------------ the specification


@pytest.mark.parametrize("normalize", [True, False])
def test_reference_is_moco_cross_entropy(normalize):
    q, k, queue = rows(9, 50, 12, scale=0.3)
    for tau in (0.07, 0.2, 1.0):
        torch.testing.assert_close(reference.queue_info_nce_loss(q, k, queue, tau, normalize),
                                   moco_loss(q, k, queue, tau, normalize), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(reference.queue_info_nce_cross_entropy(q, k, queue, 0.2),
                               moco_loss(q, k, queue, 0.2).mean(), rtol=1e-12, atol=1e-12)


def test_hand_computed_value_and_the_other_positives_left_out():
    # q = e0 with positive e0 (cos 1) and one negative e1 (cos 0): -2 + log(e^2 + 1) at tau = 0.5.
    e0, e1 = torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([[0.0, 3.0]], dtype=torch.float64)
    got = queue_info_nce_loss(e0, 2 * e0, e1, 0.5, reduction="none", backend="reference")
    torch.testing.assert_close(got, torch.tensor([-2 + math.log(math.exp(2) + 1)], dtype=torch.float64))
    # Two queries: query 0's loss does not depend on query 1's positive (it is not a negative of query 0).
    q, k, queue = rows(2, 5, 4, seed=1)
    moved = k.clone()
    moved[1] = -q[0]
    a = queue_info_nce_loss(q, k, queue, 0.1, reduction="none", backend="reference")
    b = queue_info_nce_loss(q, moved, queue, 0.1, reduction="none", backend="reference")
    assert a[0] == b[0] and a[1] != b[1]


# ---------------------------------------------------------------------------------- backends vs MoCo

CASES = [  # (M, K, D, tau, normalize, scale): M, K, D not multiples of any tile
    (1, 1, 1, 1.0, True, 1.0),
    (37, 100, 40, 0.07, True, 1.0),   # MoCo v1's tau
    (13, 257, 16, 0.2, True, 1.0),    # MoCo v2's tau
    (7, 9001, 13, 0.07, True, 1.0),   # K over the CPU kernel's 8192-key tile: the online log-sum-exp over tiles
    (5, 33, 70, 0.5, False, 0.3),     # dot products
    (17, 45, 33, 1.0, False, 1.5),    # unnormalised logits up to ~100: the online maximum
    (11, 64, 24, 0.02, True, 1.0),    # tau below the Triton kernel's fixed-maximum limit
    (29, 40, 16, 1.0, True, 1e4),     # large magnitudes, normalised
    (9, 300, 2048, 0.07, True, 1.0),  # D in chunks
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("m,k,d,tau,normalize,scale", CASES)
def test_float32_matches_moco(backend, m, k, d, tau, normalize, scale):
    if backend == "triton" and triton_interpreter() and (d > 100 or k > 1000):
        pytest.skip("large D and K are slow under the Triton interpreter (covered by the cuda tests)")
    q, pos, queue = rows(m, k, d, scale=scale, dtype=torch.float32, device=device_of(backend))
    assert_matches(ours(q, pos, queue, tau, backend, normalize), expected(q, pos, queue, tau, normalize),
                   rtol=2e-5 if normalize else 5e-5, atol_grad=1e-4 if d > 1000 else 2e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtypes(backend, dtype):
    """Half inputs against the float64 loss of the same (rounded) inputs: loss within 1e-3 relative, gradients
    (in the input dtype) within 1e-2 of their largest entry. float64 runs in float32 on the fused backends
    (1e-5) and in float64 on the reference (1e-10)."""
    if backend == "triton" and triton_interpreter() and dtype == torch.bfloat16:
        pytest.skip("the Triton interpreter has no bfloat16 (covered by the cuda tests)")
    q, pos, queue = rows(23, 150, 48, dtype=dtype, device=device_of(backend), seed=7)
    a = q.detach().clone().requires_grad_()
    loss = queue_info_nce_loss(a, pos, queue, 0.07, backend=backend)
    assert loss.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    loss.backward()
    assert a.grad.dtype == dtype
    got, want = ours(q, pos, queue, 0.07, backend), expected(q, pos, queue, 0.07)
    if dtype == torch.float64:
        tol = 1e-10 if backend == "reference" else 1e-5
        assert_matches(got, want, rtol=tol, atol_grad=tol)
    else:
        assert_matches(got, want, rtol=1e-3, atol_grad=1e-2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_contiguous_rows_and_a_transposed_queue(backend):
    """MoCo keeps its queue as a (D, K) buffer and passes queue.T; queries and positives as strided views."""
    device = device_of(backend)
    q, pos, queue = rows(19, 77, 24, dtype=torch.float32, device=device, seed=2)
    buffer = queue.T.contiguous()  # (D, K)
    q_strided = torch.stack([q, torch.zeros_like(q)], dim=2).flatten(1)[:, ::2]  # stride (48, 2)
    pos_t = pos.T.contiguous().T  # stride (1, 19)
    assert not (q_strided.is_contiguous() or pos_t.is_contiguous() or buffer.T.is_contiguous())
    a, b = q_strided.detach().requires_grad_(), pos_t.detach().requires_grad_()
    loss = queue_info_nce_loss(a, b, buffer.T, 0.2, backend=backend)
    loss.backward()
    assert_matches((loss.detach().double().cpu(), a.grad.double().cpu(), b.grad.double().cpu()),
                   expected(q, pos, queue, 0.2), rtol=2e-5, atol_grad=2e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reductions_and_module(backend):
    device = device_of(backend)
    q, pos, queue = rows(10, 40, 16, dtype=torch.float32, device=device, seed=8)
    per_query = queue_info_nce_loss(q, pos, queue, 0.3, reduction="none", backend=backend)
    assert per_query.shape == (10,)
    torch.testing.assert_close(per_query.double().cpu(), moco_loss(q.cpu(), pos.cpu(), queue.cpu(), 0.3),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(queue_info_nce_loss(q, pos, queue, 0.3, reduction="sum", backend=backend),
                               per_query.sum())
    module = QueueInfoNCELoss(0.3, backend=backend)
    torch.testing.assert_close(module(q, pos, queue), per_query.mean())
    assert "temperature=0.3" in repr(module)
    got, want = ours(q, pos, queue, 0.3, backend, reduction="sum"), expected(q, pos, queue, 0.3, reduction="sum")
    assert_matches(got, want, rtol=2e-5, atol_grad=2e-5)


def test_auto_backend_and_default_temperature_on_cpu():
    q, pos, queue = rows(5, 20, 8, dtype=torch.float32)
    torch.testing.assert_close(queue_info_nce_loss(q, pos, queue), moco_loss(q, pos, queue, 0.07).mean().float(),
                               rtol=1e-5, atol=1e-5)


def test_a_queue_updated_in_place_before_backward_raises():
    """Backward reads the negatives again: MoCo's enqueue must come after backward (or the loss gets a copy)."""
    q, pos, queue = rows(4, 30, 8, dtype=torch.float32)
    q.requires_grad_()
    loss = queue_info_nce_loss(q, pos, queue, 0.2)
    queue[:4] = pos
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


# ------------------------------------------------------------------------------------------ custom ops


@pytest.mark.parametrize("backend", BACKENDS)
def test_opcheck(backend):
    device = device_of(backend)
    q, pos, queue = (x.float().requires_grad_() for x in rows(5, 11, 16, device=device, seed=9))
    tests = ("test_schema", "test_autograd_registration", "test_faketensor")
    if backend != "triton":
        tests += ("test_aot_dispatch_dynamic",)
    torch.library.opcheck(torch.ops.fastssl.queue_info_nce.default, (q, pos, queue, 0.2, True, backend),
                          test_utils=tests)
    torch.library.opcheck(torch.ops.fastssl.queue_info_nce.default, (q, pos, queue.detach(), 0.5, False, backend),
                          test_utils=tests)
    loss, lse = torch.ops.fastssl.queue_info_nce(q, pos, queue, 0.2, True, backend)
    grad = torch.rand(5, device=device)
    torch.library.opcheck(torch.ops.fastssl.queue_info_nce_backward.default,
                          (grad, q.detach(), pos.detach(), queue.detach(), loss.detach(), lse, 0.2, True, backend),
                          test_utils=("test_schema", "test_faketensor"))


@needs_cpp
def test_cpp_memory_is_not_quadratic():
    """MoCo's queue, 65,536 keys, against 256 queries: the (M, K) float32 logits would be 64 MiB."""
    from torch.profiler import ProfilerActivity, profile

    q, pos, queue = rows(256, 65536, 16, dtype=torch.float32, seed=6)
    q.requires_grad_()
    pos.requires_grad_()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        queue_info_nce_loss(q, pos, queue, 0.07, backend="cpp").backward()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    quadratic = 256 * 65536 * 4
    assert 0 < peak < 24e6 < quadratic, peak


# ------------------------------------------------------------------------------------------- bad input


def test_bad_shapes_dtypes_and_sizes():
    q, pos, queue = torch.randn(3, 8), torch.randn(3, 8), torch.randn(20, 8)
    with pytest.raises(ValueError, match=r"positives must have the shape of queries \(M, D\) = \(3, 8\)"):
        queue_info_nce_loss(q, torch.randn(4, 8), queue)
    with pytest.raises(ValueError, match=r"positives must have the shape of queries"):
        queue_info_nce_loss(q, torch.randn(3, 7), queue)
    with pytest.raises(ValueError, match=r"negatives must have D = 8 features like queries, got \(20, 7\)"):
        queue_info_nce_loss(q, pos, torch.randn(20, 7))
    with pytest.raises(ValueError, match="negatives has no rows"):
        queue_info_nce_loss(q, pos, torch.randn(0, 8))
    with pytest.raises(ValueError, match="queries has no rows"):
        queue_info_nce_loss(torch.randn(0, 8), torch.randn(0, 8), queue)
    with pytest.raises(ValueError, match=r"negatives must have shape \(N, D\)"):
        queue_info_nce_loss(q, pos, torch.randn(8))
    with pytest.raises(TypeError, match="queries, positives and negatives must have the same dtype"):
        queue_info_nce_loss(q, pos, queue.double())
    with pytest.raises(TypeError, match="positives must have dtype"):
        queue_info_nce_loss(q, pos.long(), queue)
    with pytest.raises(TypeError, match="negatives must be a torch.Tensor"):
        queue_info_nce_loss(q, pos, [[1.0] * 8])
    with pytest.raises(ValueError, match="reduction"):
        queue_info_nce_loss(q, pos, queue, reduction="avg")
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        queue_info_nce_loss(q, pos, queue, 0.0)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        QueueInfoNCELoss(-1.0)
    with pytest.raises(fastssl.backends.BackendUnavailable, match="unknown backend"):
        queue_info_nce_loss(q, pos, queue, backend="cuda2")


@pytest.mark.parametrize("name", ["queries", "positives", "negatives"])
def test_non_finite_rows_raise_naming_the_argument(name):
    args = dict(zip(("queries", "positives", "negatives"), (torch.randn(3, 8), torch.randn(3, 8), torch.randn(9, 8))))
    args[name][1, 2] = float("nan")
    with pytest.raises(ValueError, match=f"{name} contains 1 NaN or infinite"):
        queue_info_nce_loss(**args)


# ---------------------------------------------------------------------------------------------- GPU


@pytest.mark.parametrize("dtype,rtol,atol_grad", [(torch.float32, 1e-5, 1e-4), (torch.float16, 1e-3, 1e-2),
                                                  (torch.bfloat16, 3e-3, 2e-2)])
@pytest.mark.parametrize("m,k,d,tau", [(256, 65536, 128, 0.07), (255, 4099, 512, 0.2), (31, 1000, 2048, 0.07)])
@pytest.mark.parametrize("_", [pytest.param(None, marks=needs_cuda, id="cuda")])
def test_triton_gpu_matches_moco(dtype, rtol, atol_grad, m, k, d, tau, _):
    q, pos, queue = rows(m, k, d, dtype=dtype, device="cuda", seed=10)
    assert_matches(ours(q, pos, queue, tau, "triton"), expected(q, pos, queue, tau), rtol=rtol, atol_grad=atol_grad)


@pytest.mark.parametrize("_", [pytest.param(None, marks=needs_cuda, id="cuda")])
def test_triton_gpu_memory_is_flat(_):
    m, k, d = 4096, 65536, 128  # (M, K) float32 logits would be 1 GiB
    q, pos = (torch.randn(m, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(2))
    queue = torch.randn(k, d, device="cuda", dtype=torch.bfloat16)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    queue_info_nce_loss(q, pos, queue, 0.07, backend="triton").backward()
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - before
    assert extra < 64 * m * d + 8 * k, extra  # O(M D) float32 buffers (partial gradients) and O(K) scales
