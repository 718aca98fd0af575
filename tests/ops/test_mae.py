"""MAE masking: parity with MAE's published routine, every backend against the reference, determinism
of the keyed masks, inverses, autograd, opcheck and input errors."""

import pytest
import torch

from fastssl.backends import BackendUnavailable
from fastssl.ops import mae
from fastssl.reference import mae as reference
from helpers import assert_close_to_reference, backend_cases, random_images

TARGET_ATOL = 1e-5  # norm-pix targets are O(1); the kernels normalize in float32 or float64
BACKENDS = backend_cases(("reference", "cpp", "triton"))
COMPARED = backend_cases(("reference", "cpp", "triton"), compared_with_reference=True)  # checked against the reference
# (shape, patch size): odd grids, non-square, p = 16, 8 and 14.
GEOMETRIES = [((2, 3, 48, 80), 16), ((1, 3, 48, 80), 8), ((2, 3, 42, 70), 14), ((1, 3, 16, 16), 16)]
# Every ratio on the first geometry, 0.75 (MAE's) on the others; few cases, as Triton's interpreter is slow.
CASES = [(*GEOMETRIES[0], r) for r in (0.0, 0.5, 0.75, 0.9)] + [(*g, 0.75) for g in GEOMETRIES[1:]] + [
    (*GEOMETRIES[1], 0.9)]


def require(backend, device):
    """Skips when the backend cannot run mae_masking here (e.g. fastssl._C built before it existed)."""
    reason = mae.MAE_MASKING.unavailable_reason(backend, torch.device(device))
    if reason:
        pytest.skip(reason)


def _noise(B, L, seed=0, dtype=torch.float32):
    noise = torch.rand(B, L, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    # Parity with MAE's unstable argsort assumes distinct noise in each row (see fastssl.reference.mae).
    assert all(len(set(row.tolist())) == L for row in noise)
    return noise


def _images(shape, dtype, seed=0):
    return random_images(shape, dtype, generator=torch.Generator().manual_seed(seed))


def _num_patches(shape, p):
    return (shape[2] // p) * (shape[3] // p)


def _skip_bf16_on_interpreter(backend, device, dtype):
    if backend == "triton" and device == "cpu" and dtype == torch.bfloat16:
        pytest.skip("Triton's interpreter has no bfloat16")


# --- the convention ---------------------------------------------------------------------------------


def test_published_target_uses_the_unbiased_variance():
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    patches = reference.published_patchify(x, 4)
    n = patches.shape[-1]
    centered = patches - patches.mean(-1, keepdim=True)
    expected = centered / ((centered**2).sum(-1, keepdim=True) / (n - 1) + 1e-6).sqrt()
    torch.testing.assert_close(reference.published_norm_pix_target(x, 4), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(reference.normalize_patches(patches), expected, rtol=0, atol=1e-12)


def test_patch_order_is_p_q_c():
    x = torch.arange(2 * 3 * 4 * 6).reshape(2, 3, 4, 6)
    patches = mae.patchify(x, 2)  # (2, 6, 12)
    b, patch, i, j, c = 1, 4, 1, 0, 2  # patch 4 = grid row 1, column 1
    assert patches[b, patch, (i * 2 + j) * 3 + c] == x[b, c, 2 + i, 2 + j]
    assert torch.equal(patches, reference.published_patchify(x, 2))


# --- parity with MAE's routine ----------------------------------------------------------------------


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("shape,p,ratio", [(*GEOMETRIES[0], 0.5)] + [(*g, 0.75) for g in GEOMETRIES[:3]], ids=str)
def test_parity_with_published_routine(backend, device, shape, p, ratio):
    require(backend, device)
    x = _images(shape, torch.float32)
    noise = _noise(shape[0], _num_patches(shape, p))
    x_masked, mask, ids_restore = reference.published_random_masking(reference.published_patchify(x, p), ratio, noise)
    out = mae.mae_masking(x.to(device), p, ratio, noise.to(device), backend=backend)
    K = x_masked.shape[1]
    assert torch.equal(out.visible.cpu(), x_masked)  # bit-identical
    assert torch.equal(out.mask.cpu(), mask)
    assert torch.equal(out.ids_restore.cpu(), ids_restore)
    assert torch.equal(out.ids_keep.cpu(), torch.argsort(noise, dim=1)[:, :K])
    assert torch.equal(out.ids_masked.cpu(), mask.nonzero()[:, 1].view(shape[0], -1))
    # Targets: MAE's float32 normalization rounds differently from the kernels' (float64 sums in cpp,
    # two-pass float32 in Triton): equal within float32 rounding; the reference backend is bit-identical.
    published = reference.published_norm_pix_target(x, p)[mask.bool()].view(shape[0], -1, out.targets.shape[-1])
    if backend == "reference":
        assert torch.equal(out.targets.cpu(), published)
    torch.testing.assert_close(out.targets.cpu(), published, rtol=0, atol=2e-5)


def test_tokens_parity_with_published_routine():
    tokens = torch.randn(3, 20, 7)
    noise = _noise(3, 20)
    x_masked, mask, ids_restore = reference.published_random_masking(tokens, 0.75, noise)
    out = mae.mae_masking_tokens(tokens, 0.75, noise)
    assert torch.equal(out.visible, x_masked) and torch.equal(out.mask, mask)
    assert torch.equal(out.ids_restore, ids_restore)


# --- every backend against the reference -------------------------------------------------------------


def _check_against_reference(out, x, noise, p, ratio, norm_pix=True):
    L = noise.shape[1]
    expected = reference.mae_masking(x.cpu(), noise.cpu(), p, reference.keep_count(L, ratio), norm_pix)
    names = mae.MaskedPatches._fields
    for name, got, want in zip(names[:5], out[:5], expected[:5]):
        assert got.dtype == want.dtype and torch.equal(got.cpu(), want), name
    assert out.targets.dtype == reference.target_dtype(x.dtype)
    exact = reference.mae_masking(x.cpu().double(), noise.cpu(), p, reference.keep_count(L, ratio), norm_pix)[5]
    assert out.targets.shape == exact.shape
    if exact.numel():
        assert_close_to_reference(out.targets, exact, TARGET_ATOL, "targets")


@pytest.mark.parametrize("backend,device", COMPARED)
@pytest.mark.parametrize("shape,p,ratio", CASES, ids=str)
def test_matches_reference(backend, device, shape, p, ratio):
    require(backend, device)
    x = _images(shape, torch.float32, seed=1)
    noise = torch.rand(shape[0], _num_patches(shape, p))
    out = mae.mae_masking(x.to(device), p, ratio, noise.to(device), backend=backend)
    _check_against_reference(out, x, noise, p, ratio)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.uint8], ids=str)
@pytest.mark.parametrize("norm_pix", [True, False])
def test_dtypes(backend, device, dtype, norm_pix):
    require(backend, device)
    _skip_bf16_on_interpreter(backend, device, dtype)
    x = _images((2, 3, 48, 80), dtype, seed=2)
    noise = torch.rand(2, 15, dtype=torch.float64)
    out = mae.mae_masking(x.to(device), 16, 0.75, noise.to(device), norm_pix=norm_pix, backend=backend)
    assert out.visible.dtype == dtype
    _check_against_reference(out, x, noise, 16, 0.75, norm_pix)


@pytest.mark.parametrize("backend,device", COMPARED)
def test_non_contiguous_images(backend, device):
    require(backend, device)
    base = _images((2, 3, 96, 170), torch.float32, seed=3)
    noise = torch.rand(2, 15)
    views = (base[:, :, ::2, 5:165:2], base[:, :, :48, :80].contiguous(memory_format=torch.channels_last),
             base[:, :, :80, :48].transpose(2, 3))
    for x in views:
        assert not x.is_contiguous() and x.shape == (2, 3, 48, 80)
        _check_against_reference(mae.mae_masking(x.to(device), 16, 0.75, noise.to(device), backend=backend),
                                 x, noise, 16, 0.75)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_constant_patches_give_zero_targets(backend, device):
    require(backend, device)
    x = torch.full((1, 3, 32, 32), 0.5)
    out = mae.mae_masking(x.to(device), 16, 0.5, torch.rand(1, 4).to(device), backend=backend)
    assert torch.equal(out.targets.cpu(), torch.zeros(1, 2, 768))


# --- determinism of the keyed masks ------------------------------------------------------------------


def test_masks_depend_only_on_sample_key():
    x = torch.rand(6, 3, 32, 48)  # 24 patches of 8 x 8, 6 kept: C(24, 6) = 134596 possible masks
    ids = torch.tensor([11, 4, 90, 7, 33, 2])
    full = mae.mae_masking(x, 8, 0.75, ids=ids, seed=5, epoch=2, backend="reference").mask
    perm = torch.tensor([3, 0, 5])
    part = mae.mae_masking(x[perm], 8, 0.75, ids=ids[perm], seed=5, epoch=2, backend="reference").mask
    assert torch.equal(part, full[perm])  # independent of batch composition and order
    again = mae.mae_masking(x, 8, 0.75, ids=ids, seed=5, epoch=2, backend="reference").mask
    assert torch.equal(again, full)
    for other in (dict(epoch=3), dict(seed=6), dict(view=1)):
        key = dict(seed=5, epoch=2) | other
        changed = mae.mae_masking(x, 8, 0.75, ids=ids, backend="reference", **key).mask
        # MAE's "identical masks every epoch" cannot happen: every sample's mask changes.
        assert (changed != full).any(dim=1).all(), other


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_keyed_masks_identical_across_backends(backend, device):
    require(backend, device)
    x = torch.rand(4, 3, 48, 80)
    ids = torch.tensor([3, 1, 4, 1])
    expected = mae.mae_masking(x, 16, 0.75, ids=ids, epoch=9, backend="reference")
    out = mae.mae_masking(x.to(device), 16, 0.75, ids=ids, epoch=9, backend=backend)
    assert torch.equal(out.mask.cpu(), expected.mask) and torch.equal(out.ids_restore.cpu(), expected.ids_restore)
    tokens = mae.mae_masking_tokens(torch.randn(4, 15, 8), 0.75, ids=ids, epoch=9)
    assert torch.equal(tokens.mask, expected.mask)


def test_ties_are_broken_by_patch_index_on_every_backend():
    noise = torch.tensor([[0.5, 0.25, 0.5, 0.25, 0.0, 0.5]])
    x = torch.rand(1, 3, 16, 24)
    expected_keep = torch.tensor([[4, 1, 3]])  # noise 0, then the two 0.25s in index order
    for backend in ("reference", "cpp", "triton"):
        try:
            out = mae.mae_masking(x, 8, 0.5, noise, backend=backend)
        except BackendUnavailable:
            continue
        assert torch.equal(out.ids_keep, expected_keep), backend


# --- inverses -----------------------------------------------------------------------------------------


def test_unshuffle_restores_the_tokens():
    tokens = torch.randn(3, 20, 5)
    out = mae.mae_masking_tokens(tokens, 0.6, ids=torch.arange(3), epoch=1)
    token = torch.randn(1, 1, 5)
    full = mae.mae_unshuffle(out.visible, out.ids_restore, token)
    kept = out.mask == 0
    assert torch.equal(full[kept], tokens[kept])
    assert torch.equal(full[~kept], token.reshape(1, 5).expand(int((~kept).sum()), 5))
    # MAE's own decoder-side unshuffle, transcribed: cat + gather by ids_restore.
    cat = torch.cat([out.visible, token.expand(3, 20 - out.visible.shape[1], 5)], dim=1)
    assert torch.equal(full, torch.gather(cat, 1, out.ids_restore[..., None].expand(-1, -1, 5)))


@pytest.mark.parametrize("shape,p", GEOMETRIES, ids=str)
def test_unpatchify_inverts_patchify(shape, p):
    x = torch.rand(shape)
    assert torch.equal(mae.unpatchify(mae.patchify(x, p), p, shape[2], shape[3]), x)
    visible = mae.mae_masking(x, p, 0.0, torch.rand(shape[0], _num_patches(shape, p)), backend="reference")
    restored = mae.unpatchify(torch.gather(visible.visible, 1, visible.ids_restore[..., None].expand(
        -1, -1, visible.visible.shape[-1])), p, shape[2], shape[3])
    assert torch.equal(restored, x)  # mask_ratio 0: every patch visible


# --- autograd -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm_pix", [True, False])
def test_gradcheck_float64(norm_pix):
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    noise = torch.rand(1, 4)

    def fn(t):
        out = mae.mae_masking(t, 4, 0.5, noise, norm_pix=norm_pix, backend="reference")
        return out.visible, out.targets

    assert torch.autograd.gradcheck(fn, (x,))
    tokens = torch.randn(1, 4, 3, dtype=torch.float64, requires_grad=True)
    token = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: mae.mae_masking_tokens(t, 0.5, noise).visible, (tokens,))
    restore = mae.mae_masking_tokens(tokens, 0.5, noise).ids_restore
    assert torch.autograd.gradcheck(lambda t, m: mae.mae_unshuffle(t, restore, m), (tokens[:, :2].detach()
                                    .requires_grad_(), token))


@pytest.mark.parametrize("backend,device", COMPARED)
def test_backward_matches_reference(backend, device):
    require(backend, device)
    x = torch.rand(2, 3, 32, 48)
    noise = torch.rand(2, 6)
    grads = []
    for b, d in ((backend, device), ("reference", "cpu")):
        xd = x.to(d).requires_grad_()
        out = mae.mae_masking(xd, 16, 0.5, noise.to(d), backend=b)
        assert not out.mask.requires_grad
        (out.visible.sum() + (out.targets * torch.linspace(-1, 1, 768, device=d)).sum()).backward()
        grads.append(xd.grad.cpu())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-5)


def test_uint8_images_have_no_gradient():
    out = mae.mae_masking(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), 8, 0.5, torch.rand(1, 4), backend="reference")
    assert not out.visible.requires_grad and out.targets.dtype == torch.float32


# --- registration --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_opcheck(backend, device):
    require(backend, device)
    x = torch.rand(1, 3, 8, 12, device=device, requires_grad=True)
    noise = torch.rand(1, 6, device=device)
    torch.library.opcheck(torch.ops.fastssl.mae_masking.default, (x, noise, 4, 3, True, backend))
    u8 = torch.randint(0, 256, (1, 3, 8, 12), dtype=torch.uint8, device=device)
    torch.library.opcheck(torch.ops.fastssl.mae_masking.default, (u8, noise, 4, 1, False, backend))


# --- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call,match", [
    (lambda x, n: mae.mae_masking(x, 7, 0.75, n), "patch_size"),
    (lambda x, n: mae.mae_masking(x, 0, 0.75, n), "patch_size"),
    (lambda x, n: mae.mae_masking(x, 16, 1.0, n), "mask_ratio"),
    (lambda x, n: mae.mae_masking(x, 16, -0.1, n), "mask_ratio"),
    (lambda x, n: mae.mae_masking(x, 16, 0.75, n[:, :5]), "noise"),
    (lambda x, n: mae.mae_masking(x, 16, 0.75, n.long()), "noise"),
    (lambda x, n: mae.mae_masking(x, 16, 0.75, n.clone().fill_(float("nan"))), "noise"),
    (lambda x, n: mae.mae_masking(x[:, :2], 16, 0.75, n), "images"),
    (lambda x, n: mae.mae_masking(x[0], 16, 0.75, n), "images"),
    (lambda x, n: mae.mae_masking(x, 16, 0.75), "ids"),
    (lambda x, n: mae.mae_masking(x, 16, 0.75, ids=torch.arange(3)), "ids"),
    (lambda x, n: mae.mae_masking(x, 16, 0.75, n, backend="cuda"), "cuda"),
    (lambda x, n: mae.mae_masking_tokens(x[0, 0], 0.75, n), "tokens"),
    (lambda x, n: mae.mae_masking_tokens(torch.zeros(2, 15, 4), 0.75, n, backend="cpp"), "cpp"),
    (lambda x, n: mae.mae_unshuffle(torch.zeros(2, 4, 8), torch.zeros(2, 15, dtype=torch.long), torch.zeros(7)),
     "mask_token"),
    (lambda x, n: mae.mae_unshuffle(torch.zeros(2, 4, 8), torch.zeros(2, 3, dtype=torch.long), torch.zeros(8)),
     "ids_restore"),
    (lambda x, n: mae.unpatchify(torch.zeros(2, 14, 768), 16, 48, 80), "patches"),
    (lambda x, n: mae.unpatchify(torch.zeros(2, 15, 768), 16, 48, 70), "patch_size"),
])
def test_bad_input_names_the_argument(call, match):
    x, noise = torch.rand(2, 3, 48, 80), torch.rand(2, 15)
    with pytest.raises((ValueError, TypeError, BackendUnavailable), match=match):
        call(x, noise)


@pytest.mark.parametrize("backend,device", backend_cases(("cpp",)))
def test_native_checks_name_the_argument(backend, device):
    require(backend, device)
    from fastssl import _native

    with pytest.raises(RuntimeError, match="patch_size"):
        _native.ops().mae_masking(torch.rand(1, 3, 16, 20), torch.rand(1, 4), 8, 1, True)
    with pytest.raises(RuntimeError, match="noise"):
        _native.ops().mae_masking(torch.rand(1, 3, 16, 16), torch.rand(1, 5), 8, 1, True)
