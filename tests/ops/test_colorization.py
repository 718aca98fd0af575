"""colorization_targets and its helpers: gamut bins, soft encoding, rebalancing, every backend vs the reference."""

import pytest
import torch

from fastssl.ops import (
    ab_bins,
    annealed_mean,
    bin_histogram,
    colorization_targets,
    rebalance_weights,
    rgb_to_lab,
    smoothed_prior,
)
from fastssl.reference import colorization as reference
from helpers import assert_close_to_reference, backend_cases, random_images, require


@pytest.fixture(scope="module")
def bins():
    return ab_bins()


def assert_same_bins(index: torch.Tensor, index_ref: torch.Tensor, ab_ref: torch.Tensor, bins: torch.Tensor,
                     tie: float = 1e-2) -> None:
    """The k nearest bins (B, k, h, w) equal the reference's. CPU backends agree exactly; GPU kernels
    (FMA contraction, approximate division) may pick another bin only where two bins are equally near
    within ``tie`` (in squared ab distance)."""
    differ = index.cpu() != index_ref
    if not differ.any():
        return
    assert index.is_cuda, f"bin_index differs from the reference at {int(differ.sum())} places"
    ab = ab_ref.double().movedim(1, -1).unsqueeze(-2)  # (B, h, w, 1, 2)

    def d2(i):
        return ((ab - bins.double()[i.cpu().movedim(1, -1)]) ** 2).sum(-1)  # (B, h, w, k)

    gap = (d2(index) - d2(index_ref)).abs()[differ.movedim(1, -1)]
    assert gap.max() <= tie, f"bin_index differs from the reference away from a tie (squared distance gap {gap.max():.3g})"


def test_bins_cover_every_srgb_color(bins):
    assert bins.shape == (261, 2)
    assert torch.all(bins % 10 == 0)
    assert len({tuple(b) for b in bins.tolist()}) == len(bins)
    keys = bins[:, 0] * 1000 + bins[:, 1]
    assert torch.all(keys[1:] > keys[:-1]), "bins are sorted by (a, b)"
    # Any 8-bit color quantises (round to the grid) onto a bin; random colors plus the corners of the cube.
    corners = torch.tensor([[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)], dtype=torch.uint8)
    colors = torch.cat((torch.randint(0, 256, (5000, 3), dtype=torch.uint8), corners))
    ab = rgb_to_lab(colors.T.reshape(1, 3, 1, -1), backend="reference")[0, 1:, 0].T
    grid = torch.round(ab / 10) * 10
    member = (grid[:, None, :] == bins[None]).all(-1).any(-1)
    assert member.all()


def test_soft_encoding_matches_brute_force(bins):
    ab = torch.randn(2, 2, 3, 4, dtype=torch.float64) * 40
    index, weight = reference.soft_encode(ab, bins, k=5, sigma=5.0)
    for b in range(2):
        for i in range(3):
            for j in range(4):
                d2 = ((bins.double() - ab[b, :, i, j]) ** 2).sum(-1)
                nearest = torch.argsort(d2, stable=True)[:5]
                assert index[b, :, i, j].tolist() == nearest.tolist()
                w = torch.exp(-d2[nearest] / 50)
                torch.testing.assert_close(weight[b, :, i, j], w / w.sum())


def test_pooling_partial_cells():
    ab = torch.arange(2 * 5 * 6, dtype=torch.float64).view(1, 2, 5, 6)
    pooled = reference.pool_ab(ab, 4, "mean")
    assert pooled.shape == (1, 2, 2, 2)
    torch.testing.assert_close(pooled[0, 0, 1, 1], ab[0, 0, 4:, 4:].mean())
    torch.testing.assert_close(pooled[0, 1, 0, 1], ab[0, 1, :4, 4:].mean())
    strided = reference.pool_ab(ab, 4, "stride")
    torch.testing.assert_close(strided, ab[:, :, ::4, ::4])


CASES = [
    dict(shape=(1, 3, 1, 1)),
    dict(shape=(3, 3, 37, 53)),
    dict(shape=(2, 3, 16, 12), factor=3, pool="stride"),
    dict(shape=(2, 3, 9, 10), k=1),
    dict(shape=(2, 3, 9, 10), k=8, sigma=2.5),
    dict(shape=(2, 3, 17, 15), channels_last=True),
]


@pytest.mark.parametrize("backend,device", backend_cases(compared_with_reference=True))
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_targets_match_reference(backend, device, case, bins):
    require(backend, device)
    options = dict(case)
    shape = options.pop("shape")
    images = random_images(shape, torch.uint8)
    channels_last = options.get("channels_last", False)
    if channels_last:
        images = images.permute(0, 2, 3, 1).contiguous()
    kwargs = dict(factor=options.get("factor", 4), pool=options.get("pool", "mean"), k=options.get("k", 5),
                  sigma=options.get("sigma", 5.0))
    out = colorization_targets(images.to(device), bins=bins.to(device), channels_last=channels_last,
                               backend=backend, **kwargs)
    l_ref, ab_ref, index_ref, weight_ref = reference.colorization_targets(images, bins, channels_last=channels_last,
                                                                          **kwargs)
    assert_close_to_reference(out.l_input, l_ref, 2e-3, "l_input")
    assert_close_to_reference(out.ab, ab_ref, 2e-3, "ab")
    assert_same_bins(out.bin_index, index_ref, ab_ref, bins)
    assert_close_to_reference(out.bin_weight, weight_ref, 1e-4, "bin_weight")
    assert out.rebalance.shape == out.index.shape and torch.all(out.rebalance == 1)


@pytest.mark.parametrize("backend,device", backend_cases(compared_with_reference=True))
def test_targets_of_non_contiguous_images(backend, device, bins):
    require(backend, device)
    images = random_images((2, 3, 21, 34), torch.uint8)[:, :, :, ::2]
    assert not images.is_contiguous()
    out = colorization_targets(images.to(device), bins=bins.to(device), backend=backend)
    _, ab_ref, index_ref, _ = reference.colorization_targets(images, bins)
    assert_same_bins(out.bin_index, index_ref, ab_ref, bins)


def test_soft_distribution_and_hard_index(bins):
    t = colorization_targets(random_images((2, 3, 12, 8), torch.uint8), bins=bins)
    dense = t.soft(len(bins))
    assert dense.shape == (2, len(bins), 3, 2)
    torch.testing.assert_close(dense.sum(1), torch.ones(2, 3, 2))
    assert torch.equal(dense.argmax(1), t.index)


def test_rebalancing_weights(bins):
    images = random_images((4, 3, 32, 32), torch.uint8)
    t = colorization_targets(images, bins=bins)
    counts = bin_histogram(t.index, len(bins))
    assert counts.sum() == t.index.numel()
    prior = smoothed_prior(counts, bins)
    torch.testing.assert_close(prior.sum(), torch.tensor(1.0, dtype=torch.float64))
    weights = rebalance_weights(prior, lam=0.5)
    torch.testing.assert_close((prior * weights).sum(), torch.tensor(1.0, dtype=torch.float64))
    # Rarer bins get larger weights: the weight is a decreasing function of the prior.
    order = torch.argsort(prior)
    assert torch.all(weights[order][1:] <= weights[order][:-1] + 1e-12)
    rebalanced = colorization_targets(images, bins=bins, class_weights=weights)
    torch.testing.assert_close(rebalanced.rebalance, weights.float()[t.index])


def test_uniform_prior_gives_unit_weights(bins):
    prior = torch.full((len(bins),), 1 / len(bins), dtype=torch.float64)
    torch.testing.assert_close(rebalance_weights(prior), torch.ones(len(bins), dtype=torch.float64))


def test_annealed_mean(bins):
    # A clear winner per pixel (a margin of 1 at T = 1e-4 leaves the others exp(-1e4) of its weight), so the
    # annealed mean is the winning bin; near-ties would give a mixture of two bins.
    logits = torch.rand(2, len(bins), 3, 3) * 0.5
    winner = torch.randint(0, len(bins), (2, 1, 3, 3))
    logits.scatter_(1, winner, 1.5)
    sharp = annealed_mean(logits, bins, temperature=1e-4)
    torch.testing.assert_close(sharp, bins[winner[:, 0]].permute(0, 3, 1, 2))
    flat = annealed_mean(torch.zeros(1, len(bins), 1, 1), bins)
    torch.testing.assert_close(flat[0, :, 0, 0], bins.mean(0))


@pytest.mark.parametrize("backend,device", backend_cases())
def test_opcheck(backend, device, bins):
    require(backend, device)
    images = random_images((2, 3, 9, 7), torch.uint8).to(device)
    torch.library.opcheck(torch.ops.fastssl.colorization_targets.default,
                          (images, bins.to(device), False, 4, True, 5, 5.0, backend))


def test_torch_compile_fullgraph(bins):
    fn = torch.compile(lambda x: colorization_targets(x, bins=bins).bin_weight.sum(1), fullgraph=True,
                       backend="aot_eager")
    images = random_images((2, 3, 8, 8), torch.uint8)
    torch.testing.assert_close(fn(images), torch.ones(2, 2, 2))


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(images=torch.rand(1, 3, 8, 8)), TypeError, "images must have dtype uint8"),
        (dict(images=torch.zeros(1, 4, 8, 8, dtype=torch.uint8)), ValueError, "images must have 3 channels"),
        (dict(images=torch.zeros(0, 3, 8, 8, dtype=torch.uint8)), ValueError, "images is empty"),
        (dict(images=torch.zeros(3, 8, 8, dtype=torch.uint8)), ValueError, r"images must have shape \(B, 3, H, W\)"),
        (dict(bins=torch.zeros(5, 3)), ValueError, r"bins must have shape \(Q, 2\)"),
        (dict(bins=torch.full((5, 2), float("nan"))), ValueError, "bins contains"),
        (dict(bins=torch.zeros(5, 2, device="meta")), ValueError, "inputs must be on one device"),
        (dict(k=0), ValueError, "k must be an integer in"),
        (dict(k=9), ValueError, "k must be an integer in"),
        (dict(sigma=0.0), ValueError, "sigma must be > 0"),
        (dict(factor=0), ValueError, "factor must be an integer >= 1"),
        (dict(pool="max"), ValueError, "pool must be one of"),
        (dict(class_weights=torch.ones(3)), ValueError, r"class_weights must have shape \(Q,\)"),
    ],
)
def test_bad_input_is_named(kwargs, error, match, bins):
    args = dict(images=torch.zeros(1, 3, 8, 8, dtype=torch.uint8), bins=bins)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        colorization_targets(args.pop("images"), **args)
