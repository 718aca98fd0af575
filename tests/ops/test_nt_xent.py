"""nt_xent_loss / info_nce_loss: every backend against the float64 reference (values and gradients),
dtypes, memory flatness, custom-op checks, bad input. Distributed tests: test_nt_xent_distributed.py."""

from __future__ import annotations

import math

import pytest
import torch

import fastssl
from fastssl import _native
from fastssl.backends import BackendUnavailable, triton_interpreter
from fastssl.ops import InfoNCELoss, NTXentLoss, info_nce_loss, nt_xent_loss
from fastssl.reference import nt_xent as reference


def cpp_ready() -> bool:
    return _native.state().available and hasattr(torch.ops.fastssl_C, "info_nce_lse")


def triton_ready() -> bool:
    return fastssl.backends.triton_status() is None and (triton_interpreter() or torch.cuda.is_available())


needs_cpp = pytest.mark.skipif(not cpp_ready(), reason="fastssl._C without csrc/nt_xent.cpp: rebuild the extension")
needs_triton = [pytest.mark.triton,
                pytest.mark.skipif(not triton_ready(), reason="needs CUDA, or TRITON_INTERPRET=1 for the CPU")]

CPU_BACKENDS = [pytest.param("reference"), pytest.param("cpp", marks=needs_cpp),
                pytest.param("triton", marks=needs_triton)]
TRITON_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def device_of(backend: str) -> str:
    return TRITON_DEVICE if backend == "triton" else "cpu"


def embeddings(n, d, *, scale=1.0, seed=0, dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, d, generator=g, dtype=torch.float64) * scale
    z2 = z1 + 1.5 * scale * torch.randn(n, d, generator=g, dtype=torch.float64)  # views, mildly correlated
    return z1.to(device, dtype), z2.to(device, dtype)


def reference_value_and_grads(z1, z2, tau, normalize=True, reduction="mean"):
    """float64 loss and gradients of the specification, from inputs as given (already rounded)."""
    a = z1.detach().double().cpu().requires_grad_()
    b = z2.detach().double().cpu().requires_grad_()
    losses = reference.nt_xent_loss(a, b, tau, normalize)
    loss = losses.mean() if reduction == "mean" else losses.sum()
    ga, gb = torch.autograd.grad(loss, (a, b))
    return loss.detach(), ga, gb


def ours_value_and_grads(z1, z2, tau, backend, normalize=True, reduction="mean"):
    a, b = z1.detach().clone().requires_grad_(), z2.detach().clone().requires_grad_()
    loss = nt_xent_loss(a, b, tau, normalize=normalize, reduction=reduction, backend=backend)
    loss.backward()
    return loss.detach().double().cpu(), a.grad.double().cpu(), b.grad.double().cpu()


def assert_matches(ours, ref, rtol, atol_grad):
    loss, ga, gb = ours
    rloss, rga, rgb = ref
    torch.testing.assert_close(loss, rloss, rtol=rtol, atol=rtol)
    scale = max(rga.abs().max().item(), rgb.abs().max().item())
    torch.testing.assert_close(ga, rga, rtol=0, atol=atol_grad * scale)
    torch.testing.assert_close(gb, rgb, rtol=0, atol=atol_grad * scale)


# ------------------------------------------------------------------------------------ the specification


def test_reference_matches_cross_entropy_formulation():
    z1, z2 = embeddings(33, 24)
    for tau in (0.05, 0.2, 1.0):
        per_anchor = reference.nt_xent_loss(z1, z2, tau)
        torch.testing.assert_close(per_anchor.mean(), reference.nt_xent_loss_cross_entropy(z1, z2, tau),
                                   rtol=1e-12, atol=1e-12)


def test_reference_matches_hand_computed_values():
    # N = 1: each anchor's denominator holds its positive only, so the loss is exactly 0.
    assert reference.nt_xent_loss(torch.randn(1, 5, dtype=torch.float64), torch.randn(1, 5, dtype=torch.float64),
                                  0.1).abs().max() < 1e-12
    # N = 2 in the plane, written out with math: z = [e0, e1; e0, -e1].
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    z2 = torch.tensor([[2.0, 0.0], [0.0, -3.0]], dtype=torch.float64)
    tau = 0.5
    # anchor 0 (e0): positive e0 (cos 1); others e1 (0), -e1 (0)
    l0 = -1 / tau + math.log(math.exp(1 / tau) + 2)
    # anchor 1 (e1): positive -e1 (cos -1); others e0 (0), e0 (0)
    l1 = 1 / tau + math.log(math.exp(-1 / tau) + 2)
    expected = torch.tensor([l0, l1, l0, l1], dtype=torch.float64)
    torch.testing.assert_close(reference.nt_xent_loss(z1, z2, tau), expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------- backends vs the spec

CASES = [  # (N, D, tau, normalize, scale): N not a multiple of any tile; D from 16 to 2048
    (37, 16, 0.1, True, 1.0),
    (21, 70, 0.05, True, 1.0),
    (13, 40, 0.5, False, 0.3),
    (9, 2048, 0.07, True, 1.0),
    (29, 16, 1.0, True, 1e4),    # large magnitudes, normalised
    (17, 33, 1.0, False, 1.5),   # unnormalised: logits up to ~200, the online maximum is needed
    (11, 24, 0.02, True, 1.0),   # tau below the fixed-maximum limit (2 / tau > 80)
]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("n,d,tau,normalize,scale", CASES)
def test_nt_xent_float32_matches_reference(backend, n, d, tau, normalize, scale):
    if backend == "triton" and triton_interpreter() and d > 100:
        pytest.skip("large D is slow under the Triton interpreter (covered by the cuda tests)")
    z1, z2 = embeddings(n, d, scale=scale, dtype=torch.float32, device=device_of(backend))
    ours = ours_value_and_grads(z1, z2, tau, backend, normalize)
    ref = reference_value_and_grads(z1, z2, tau, normalize)
    assert_matches(ours, ref, rtol=2e-5 if normalize else 5e-5, atol_grad=1e-4 if d > 1000 else 2e-5)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_info_nce_with_bank_and_exclusions_matches_reference(backend):
    device = device_of(backend)
    g = torch.Generator().manual_seed(3)
    q = torch.randn(19, 40, generator=g, dtype=torch.float64)
    k = torch.randn(71, 40, generator=g, dtype=torch.float64)
    pos = torch.randint(0, 71, (19,), generator=g)
    excl = (pos + 1) % 71
    excl[::3] = -1
    tau = 0.2
    a, b = q.clone().requires_grad_(), k.clone().requires_grad_()
    ref = reference.info_nce_loss(a, b, pos, tau, excl).sum()
    rga, rgb = torch.autograd.grad(ref, (a, b))
    a = q.float().to(device).requires_grad_()
    b = k.float().to(device).requires_grad_()
    loss = info_nce_loss(a, b, pos.to(device), tau, exclude_index=excl.to(device), reduction="sum", backend=backend)
    loss.backward()
    torch.testing.assert_close(loss.double().cpu(), ref, rtol=2e-5, atol=1e-5)
    torch.testing.assert_close(a.grad.double().cpu(), rga, rtol=0, atol=2e-5 * rga.abs().max().item())
    torch.testing.assert_close(b.grad.double().cpu(), rgb, rtol=0, atol=2e-5 * rgb.abs().max().item())


def test_info_nce_memory_bank_pirl_form_equals_cross_entropy():
    # PIRL: queries against [positives; bank], positive_index = arange(B), no exclusion.
    g = torch.Generator().manual_seed(4)
    q, pos_keys, bank = (torch.randn(s, 32, generator=g, dtype=torch.float64) for s in (6, 6, 50))
    keys = torch.cat([pos_keys, bank])
    logits = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(keys, dim=1).T / 0.07
    expected = torch.nn.functional.cross_entropy(logits, torch.arange(6))
    got = info_nce_loss(q, keys, torch.arange(6), 0.07, backend="reference")
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    if cpp_ready():
        torch.testing.assert_close(info_nce_loss(q.float(), keys.float(), torch.arange(6), 0.07, backend="cpp"),
                                   expected.float(), rtol=1e-5, atol=1e-5)


@needs_cpp
def test_cpp_row_chunks_and_large_batch():
    # 2N = 4202 rows: (2N)^2 float32 logits are 70 MB, so the 32 MiB row chunks split the work in three.
    z1, z2 = embeddings(2101, 16, dtype=torch.float32, seed=5)
    ours = ours_value_and_grads(z1, z2, 0.1, "cpp")
    ref = reference_value_and_grads(z1, z2, 0.1)
    assert_matches(ours, ref, rtol=2e-5, atol_grad=5e-5)


@needs_cpp
def test_cpp_memory_is_not_quadratic():
    from torch.profiler import ProfilerActivity, profile

    z1, z2 = embeddings(4096, 16, dtype=torch.float32, seed=6)
    z1.requires_grad_()
    z2.requires_grad_()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        nt_xent_loss(z1, z2, 0.1, backend="cpp").backward()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    quadratic = (2 * 4096) ** 2 * 4  # 268 MB: one float32 (2N)^2 matrix
    assert 0 < peak < 80e6 < quadratic, peak


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtypes(backend, dtype):
    """Stated tolerances: half inputs are compared with the float64 loss of the same (rounded) inputs:
    loss within 1e-3 relative; gradients, returned in the input dtype, within 1e-2 of their largest entry.
    float64 runs in float32 on the fused backends (1e-5) and in float64 on the reference (1e-10)."""
    if backend == "triton" and triton_interpreter() and dtype == torch.bfloat16:
        pytest.skip("the Triton interpreter has no bfloat16 (covered by the cuda tests)")
    z1, z2 = embeddings(23, 48, dtype=dtype, device=device_of(backend), seed=7)
    ours = ours_value_and_grads(z1, z2, 0.1, backend)
    a = z1.detach().clone().requires_grad_()
    loss = nt_xent_loss(a, z2, 0.1, backend=backend)
    assert loss.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    loss.backward()
    assert a.grad.dtype == dtype
    ref = reference_value_and_grads(z1, z2, 0.1)
    if dtype == torch.float64:
        tol = 1e-10 if backend == "reference" else 1e-5
        assert_matches(ours, ref, rtol=tol, atol_grad=tol)
    else:
        assert_matches(ours, ref, rtol=1e-3, atol_grad=1e-2)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_reductions_and_module(backend):
    device = device_of(backend)
    z1, z2 = embeddings(10, 16, dtype=torch.float32, device=device, seed=8)
    per_anchor = nt_xent_loss(z1, z2, 0.3, reduction="none", backend=backend)
    assert per_anchor.shape == (20,)
    torch.testing.assert_close(per_anchor.double().cpu(), reference.nt_xent_loss(z1.double().cpu(), z2.double().cpu(),
                                                                               0.3), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(nt_xent_loss(z1, z2, 0.3, reduction="sum", backend=backend), per_anchor.sum())
    module = NTXentLoss(0.3, backend=backend)
    torch.testing.assert_close(module(z1, z2), per_anchor.mean())
    assert "temperature=0.3" in repr(module)
    pos = torch.arange(20, device=device).add(10).remainder(20)
    z = torch.cat([z1, z2])
    got = InfoNCELoss(0.3, backend=backend)(z, z, pos, torch.arange(20, device=device))
    torch.testing.assert_close(got, per_anchor.mean(), rtol=1e-6, atol=1e-6)


def test_auto_backend_on_cpu():
    z1, z2 = embeddings(5, 8, dtype=torch.float32)
    expected = reference.nt_xent_loss(z1.double(), z2.double(), 0.1).mean().float()
    torch.testing.assert_close(nt_xent_loss(z1, z2), expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------ custom ops


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_opcheck(backend):
    device = device_of(backend)
    g = torch.Generator().manual_seed(9)
    z = torch.randn(6, 16, generator=g).to(device).requires_grad_()
    q = torch.randn(5, 16, generator=g).to(device).requires_grad_()
    k = torch.randn(9, 16, generator=g).to(device).requires_grad_()
    pos = torch.tensor([0, 3, 8, 1, 2], device=device)
    excl = torch.tensor([-1, 4, 0, -1, 5], device=device)
    tests = ("test_schema", "test_autograd_registration", "test_faketensor")
    if backend != "triton":
        tests += ("test_aot_dispatch_dynamic",)
    torch.library.opcheck(torch.ops.fastssl.nt_xent.default, (z, 0.2, True, backend), test_utils=tests)
    torch.library.opcheck(torch.ops.fastssl.info_nce.default, (q, k, pos, excl, 0.2, True, backend), test_utils=tests)
    loss, lse = torch.ops.fastssl.nt_xent(z, 0.2, True, backend)
    grad = torch.rand(6, device=device)
    torch.library.opcheck(torch.ops.fastssl.nt_xent_backward.default, (grad, z.detach(), lse, 0.2, True, backend),
                          test_utils=("test_schema", "test_faketensor"))


# ------------------------------------------------------------------------------------------- bad input


def test_bad_shapes_and_sizes():
    z = torch.randn(4, 8)
    with pytest.raises(ValueError, match="z1 and z2 must have the same shape"):
        nt_xent_loss(z, torch.randn(5, 8))
    with pytest.raises(ValueError, match="z1 and z2 must have the same shape"):
        nt_xent_loss(z, torch.randn(4, 9))
    with pytest.raises(ValueError, match=r"z1 must have shape \(N, D\)"):
        nt_xent_loss(torch.randn(8), torch.randn(8))
    with pytest.raises(ValueError, match="z1 has no rows"):
        nt_xent_loss(torch.randn(0, 8), torch.randn(0, 8))
    with pytest.raises(ValueError, match="z1 has D = 0"):
        nt_xent_loss(torch.randn(4, 0), torch.randn(4, 0))
    with pytest.raises(TypeError, match="z1 must have dtype"):
        nt_xent_loss(torch.ones(4, 8, dtype=torch.int64), torch.ones(4, 8, dtype=torch.int64))
    with pytest.raises(TypeError, match="same dtype"):
        nt_xent_loss(z, z.double())
    with pytest.raises(TypeError, match="z2 must be a torch.Tensor"):
        nt_xent_loss(z, [[1.0]])
    with pytest.raises(ValueError, match="reduction"):
        nt_xent_loss(z, z, reduction="avg")
    with pytest.raises(ValueError, match="queries and keys must have the same D"):
        info_nce_loss(torch.randn(3, 8), torch.randn(5, 7), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"positive_index must have shape"):
        info_nce_loss(torch.randn(3, 8), torch.randn(5, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"positive_index must lie in \[0, 5\)"):
        info_nce_loss(torch.randn(3, 8), torch.randn(5, 8), torch.tensor([0, 1, 5]))
    with pytest.raises(TypeError, match="positive_index must be an integer"):
        info_nce_loss(torch.randn(3, 8), torch.randn(5, 8), torch.zeros(3))
    with pytest.raises(ValueError, match=r"exclude_index must lie in \[-1, 5\)"):
        info_nce_loss(torch.randn(3, 8), torch.randn(5, 8), torch.zeros(3, dtype=torch.long),
                      exclude_index=torch.tensor([-2, 1, 1]))
    with pytest.raises(ValueError, match="a positive cannot be excluded"):
        info_nce_loss(torch.randn(3, 8), torch.randn(5, 8), torch.tensor([0, 1, 2]),
                      exclude_index=torch.tensor([1, 1, 0]))
    with pytest.raises(BackendUnavailable, match="unknown backend"):
        nt_xent_loss(z, z, backend="cuda2")


@pytest.mark.parametrize("temperature", [0, -0.1, float("nan"), float("inf")])
def test_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        nt_xent_loss(torch.randn(4, 8), torch.randn(4, 8), temperature)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        NTXentLoss(temperature)


def test_temperature_type():
    with pytest.raises(TypeError, match="temperature must be a positive number"):
        nt_xent_loss(torch.randn(4, 8), torch.randn(4, 8), "0.1")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_embeddings_raise_naming_the_argument(bad):
    z1, z2 = torch.randn(4, 8), torch.randn(4, 8)
    z2[2, 3] = bad
    with pytest.raises(ValueError, match="z2 contains 1 NaN or infinite"):
        nt_xent_loss(z1, z2)
    q = torch.randn(3, 8)
    q[0, 0] = bad
    with pytest.raises(ValueError, match="queries contains 1 NaN"):
        info_nce_loss(q, torch.randn(5, 8), torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize("backend", [pytest.param("reference"), pytest.param("cpp", marks=needs_cpp)])
def test_nan_propagates_when_the_check_is_off(backend, monkeypatch):
    """Documented: with FASTSSL_CHECK_FINITE=0, NaN in the input gives a NaN loss (never a silent number)."""
    monkeypatch.setenv("FASTSSL_CHECK_FINITE", "0")
    z1, z2 = torch.randn(4, 8), torch.randn(4, 8)
    z1[1, 2] = float("nan")
    z1.requires_grad_()
    loss = nt_xent_loss(z1, z2, backend=backend)
    assert torch.isnan(loss)
    loss.backward()
    assert torch.isnan(z1.grad).any()


def test_gather_needs_torch_distributed():
    with pytest.raises(RuntimeError, match="torch.distributed to be initialized"):
        nt_xent_loss(torch.randn(4, 8), torch.randn(4, 8), gather=True)


def test_explicit_cpp_backend_on_a_stale_extension_says_rebuild():
    if not _native.state().available:
        pytest.skip("fastssl._C not built")
    if cpp_ready():
        assert nt_xent_loss(torch.randn(3, 4), torch.randn(3, 4), backend="cpp").isfinite()
    else:
        with pytest.raises(BackendUnavailable, match="rebuild"):
            nt_xent_loss(torch.randn(3, 4), torch.randn(3, 4), backend="cpp")


# ---------------------------------------------------------------------------------------------- GPU


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype,rtol,atol_grad", [(torch.float32, 1e-5, 1e-4), (torch.float16, 1e-3, 1e-2),
                                                  (torch.bfloat16, 3e-3, 2e-2)])
@pytest.mark.parametrize("n,d,tau", [(1000, 128, 0.1), (777, 512, 0.05), (301, 2048, 0.5)])
def test_triton_gpu_matches_reference(dtype, rtol, atol_grad, n, d, tau):
    z1, z2 = embeddings(n, d, dtype=dtype, device="cuda", seed=10)
    assert_matches(ours_value_and_grads(z1, z2, tau, "triton"), reference_value_and_grads(z1, z2, tau),
                   rtol=rtol, atol_grad=atol_grad)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_triton_gpu_memory_is_flat():
    n, d = 8192, 128  # 2N = 16k: a (2N)^2 float32 matrix would be 1 GiB
    z1, z2 = (torch.randn(n, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(2))
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    nt_xent_loss(z1, z2, 0.1, backend="triton").backward()
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - before
    assert extra < 64 * 2 * n * d, extra  # a few O(N D) float32 buffers, far below (2N)^2


# ---------------------------------------------------------------------- Triton launch plan and guard


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("d", [64, 128, 256, 512, 2048])
def test_triton_gpu_plan_fills_the_gpu_at_batch_256(dtype, d):
    """A batch of 256 pairs (2N = 512 rows) launches at least one program per SM of an H100/H200, in
    both passes, with splits that tile the columns exactly once."""
    nt_xent_triton = pytest.importorskip("fastssl.triton.nt_xent")
    sms = pytest.importorskip("fastssl.triton._common").CAPTURE_SM_COUNT
    for partial_row_bytes in (0, 4 * d):  # forward, backward
        plan = nt_xent_triton.Plan(512, 512, d, dtype, sms, interpreter=False, partial_row_bytes=partial_row_bytes)
        assert plan.row_blocks * plan.splits >= sms, (plan.row_blocks, plan.splits)
        assert (plan.splits - 1) * plan.split_cols < 512 <= plan.splits * plan.split_cols
        assert plan.split_cols % plan.tiles["BLOCK_N"] == 0


@pytest.mark.parametrize("step", ["nt_xent", "info_nce"])
@pytest.mark.parametrize("_", [pytest.param(None, marks=needs_triton, id="triton")])
def test_every_triton_launch_is_inside_the_device_guard(step, _, monkeypatch):
    """Counts guard entries against launches: each kernel launch must happen inside device_guard(tensor)."""
    import contextlib

    nt_xent_triton = pytest.importorskip("fastssl.triton.nt_xent")
    state = {"inside": 0, "guards": 0, "launches": 0}

    @contextlib.contextmanager
    def guard(t):
        assert isinstance(t, torch.Tensor)
        state["guards"] += 1
        state["inside"] += 1
        try:
            yield
        finally:
            state["inside"] -= 1

    class Launcher:
        def __init__(self, kernel):
            self.kernel = kernel

        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                assert state["inside"] == 1, "a Triton launch outside device_guard"
                state["launches"] += 1
                return self.kernel[grid](*args, **kwargs)
            return launch

    monkeypatch.setattr(nt_xent_triton, "device_guard", guard)
    for name in ("_lse_kernel", "_grad_kernel"):
        monkeypatch.setattr(nt_xent_triton, name, Launcher(getattr(nt_xent_triton, name)))
    z1, z2 = embeddings(9, 16, dtype=torch.float32, device=TRITON_DEVICE)
    z1.requires_grad_()
    if step == "nt_xent":
        nt_xent_loss(z1, z2, 0.1, backend="triton").backward()
        expected = 2  # forward, symmetric backward
    else:
        info_nce_loss(z1, z2, torch.arange(9, device=TRITON_DEVICE), 0.1, backend="triton").backward()
        expected = 3  # forward, query and key gradients
    assert state["launches"] == state["guards"] == expected
