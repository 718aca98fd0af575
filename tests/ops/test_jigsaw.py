"""jigsaw: the Hamming permutation sets (properties, distances, cache), the tiles (spec, backends, determinism),
Jigsaw++'s replaced tiles (spec, donors, keys, backends), errors."""

import itertools

import numpy as np
import pytest
import torch

import fastssl.ops.jigsaw as jigsaw
from fastssl.ops.jigsaw import JigsawTiles, hamming_permutations, hamming_stats, jigsaw_tiles, jigsaw_unpermute
from fastssl.reference import jigsaw as reference
from helpers import assert_close_to_reference, backend_cases, random_images, require

BACKENDS = backend_cases(("reference", "cpp", "triton"))
COMPARED = backend_cases(("reference", "cpp", "triton"), compared_with_reference=True)  # checked against the reference
ATOL = 1e-4  # normalized values are O(1); the kernels compute in float32
# Odd geometries: grid 2 and 3, cells and tiles not powers of two, non-square images larger than the region.
SMALL = [dict(grid=3, cell=11, tile=7, size=(35, 38)), dict(grid=2, cell=13, tile=13, size=(26, 29)),
         dict(grid=3, cell=9, tile=5, size=(27, 27))]
# The distances the docstring of hamming_permutations reports (grid 3, seed 0).
REPORTED = {("maxmin", 100): (6, 8.0352), ("mean", 100): (2, 8.08),
            ("maxmin", 1000): (5, 7.9085), ("mean", 1000): (2, 8.008),
            ("min_distance", 100): (3, 7.9949), ("min_distance", 701): (3, 8.0014)}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTSSL_CACHE_DIR", str(tmp_path / "cache"))
    jigsaw._permutations.cache_clear()
    yield
    jigsaw._permutations.cache_clear()


def _perms(grid, n=None):
    n = n or (24 if grid == 2 else 30)
    return hamming_permutations(n, grid, cache=False)


# --- permutation set ----------------------------------------------------------------------------------


@pytest.mark.parametrize("criterion", ["maxmin", "mean"])
def test_permutation_set_properties_and_reported_distances(criterion):
    p = hamming_permutations(100, 3, criterion)
    assert p.shape == (100, 9) and p.dtype == torch.int64
    assert (p.sort(dim=1).values == torch.arange(9)).all()
    assert len(torch.unique(p, dim=0)) == 100
    low, mean = hamming_stats(p)
    assert (low, round(mean, 4)) == REPORTED[(criterion, 100)]
    assert f"{low} / {mean:.4f}" in hamming_permutations.__doc__


@pytest.mark.parametrize("criterion", ["maxmin", "mean"])
def test_reported_distances_for_1000(criterion):
    low, mean = hamming_stats(hamming_permutations(1000, 3, criterion, cache=False))
    assert (low, round(mean, 4)) == REPORTED[(criterion, 1000)]


def test_greedy_matches_brute_force_on_grid_2():
    """The incremental greedy equals the definition: recompute every distance to the chosen set at each pick."""
    for criterion in ("maxmin", "mean"):
        got = hamming_permutations(24, 2, criterion, seed=5, cache=False).tolist()
        cands = [list(c) for c in itertools.permutations(range(4))]
        chosen = [got[0]]
        while len(chosen) < 24:
            def score(c):
                d = [sum(a != b for a, b in zip(c, q)) for q in chosen]
                return min(d) if criterion == "maxmin" else sum(d) / len(d)
            rest = [c for c in cands if c not in chosen]
            best = max(score(c) for c in rest)
            chosen.append(next(c for c in rest if score(c) == best))  # lowest lexicographic index on ties
        assert got == chosen


@pytest.mark.parametrize("n", [100, 701])
def test_min_distance_set_reaches_the_distance_and_the_reported_numbers(n):
    p = hamming_permutations(n, 3, "min_distance", cache=False)
    assert p.shape == (n, 9) and p.dtype == torch.int64
    assert (p.sort(dim=1).values == torch.arange(9)).all() and len(torch.unique(p, dim=0)) == n
    low, mean = hamming_stats(p)
    assert low >= 3 and (low, round(mean, 4)) == REPORTED[("min_distance", n)]
    assert f"{low} / {mean:.4f}" in hamming_permutations.__doc__
    assert torch.equal(hamming_permutations(n, 3, "min_distance", min_distance=3, cache=False), p)  # 3: the default


def test_min_distance_set_is_keyed_by_the_seed_and_greedy():
    a = hamming_permutations(50, 3, "min_distance", seed=1, min_distance=4, cache=False)
    assert torch.equal(hamming_permutations(50, 3, "min_distance", seed=1, min_distance=4, cache=False), a)
    assert not torch.equal(hamming_permutations(50, 3, "min_distance", seed=2, min_distance=4, cache=False), a)
    assert torch.equal(hamming_permutations(20, 3, "min_distance", seed=1, min_distance=4, cache=False), a[:20])
    assert hamming_stats(a)[0] >= 4


@pytest.mark.parametrize("distance", [2, 3, 4])
def test_min_distance_matches_its_definition_on_grid_2(distance):
    """Visit the candidates in the keyed order; take each at distance >= min_distance from all taken before."""
    cands = [list(c) for c in itertools.permutations(range(4))]
    taken = []
    for i in reference.visiting_order(24, 7).tolist():
        if all(sum(a != b for a, b in zip(cands[i], q)) >= distance for q in taken):
            taken.append(cands[i])
    got = hamming_permutations(len(taken), 2, "min_distance", seed=7, min_distance=distance, cache=False)
    assert got.tolist() == taken
    if distance == 2:  # any two permutations differ in 2 positions at least
        assert len(taken) == 24
        return
    with pytest.raises(ValueError, match=rf"n={len(taken) + 1} permutations of grid 2 at pairwise Hamming distance "
                                         rf">= {distance} cannot be reached: .* after {len(taken)}; ask for at most"):
        hamming_permutations(len(taken) + 1, 2, "min_distance", seed=7, min_distance=distance, cache=False)


def test_min_distance_set_is_cached_under_its_own_name(tmp_path):
    p = hamming_permutations(20, 3, "min_distance")
    q = hamming_permutations(20, 3, "min_distance", min_distance=7)
    names = sorted(f.name for f in (tmp_path / "cache").iterdir())
    assert len(names) == 2 and "min_distance3" in names[0] and "min_distance7" in names[1]
    jigsaw._permutations.cache_clear()
    assert torch.equal(hamming_permutations(20, 3, "min_distance"), p)
    assert not torch.equal(p, q)


def test_seed_picks_first_and_prefixes_agree():
    a, b = hamming_permutations(10, 3, seed=1, cache=False), hamming_permutations(10, 3, seed=2, cache=False)
    assert not torch.equal(a[0], b[0])
    assert torch.equal(hamming_permutations(4, 3, seed=1, cache=False), a[:4])  # greedy: n=4 is a prefix of n=10


def test_disk_cache_is_used_written_atomically_and_corruption_recomputed(tmp_path):
    p = hamming_permutations(20, 3)
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npy" and "n20" in files[0].name
    assert torch.equal(torch.from_numpy(np.load(files[0])), p)
    np.save(files[0], np.zeros((20, 9), dtype=np.int64))  # well-formed file, wrong content
    jigsaw._permutations.cache_clear()
    assert torch.equal(hamming_permutations(20, 3), p)
    files[0].write_bytes(b"\x93NUMPY garbage")  # corrupt file
    jigsaw._permutations.cache_clear()
    assert torch.equal(hamming_permutations(20, 3), p)
    assert torch.equal(torch.from_numpy(np.load(files[0])), p)  # rewritten
    assert [f.name for f in (tmp_path / "cache").iterdir()] == [files[0].name]  # no temporary left behind
    p[0, 0] = 99  # callers get a copy
    assert hamming_permutations(20, 3)[0, 0] != 99


@pytest.mark.parametrize("kwargs,match", [
    (dict(n=0), "n must be an integer >= 1"),
    (dict(n=25, grid=2), r"n must be <= \(grid²\)! = 24"),
    (dict(n=5, grid=1), "grid must be an integer >= 2"),
    (dict(n=5, grid=4), "grid must be 2 or 3"),
    (dict(n=5, criterion="max"), "criterion must be one of"),
    (dict(n=5, seed=-1), "seed must be an integer"),
    (dict(n=5, min_distance=3), "min_distance applies to criterion='min_distance' only"),
    (dict(n=5, criterion="min_distance", min_distance=1), "min_distance must be an integer >= 2"),
    (dict(n=5, criterion="min_distance", min_distance=10), r"min_distance must be <= grid² = 9"),
    (dict(n=5, grid=2, criterion="min_distance", min_distance=4), "cannot be reached"),
])
def test_permutation_set_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        hamming_permutations(**kwargs)


# --- tiles: the specification ----------------------------------------------------------------------------


def test_tiles_are_the_cells_tiles_in_permuted_order():
    g, cell, tile = 3, 11, 7
    x = random_images((5, 3, 36, 40), torch.float64)
    perms = _perms(3)
    out = jigsaw_tiles(x, permutations=perms, grid=g, cell=cell, tile=tile, normalize=False, ids=torch.arange(5),
                       backend="reference")
    y0, x0 = (36 - 33) // 2, (40 - 33) // 2  # the centered region
    for b in range(5):
        perm = perms[out.labels[b]]
        for t in range(9):
            c = int(perm[t])
            oy, ox = out.origins[b, c, 0].tolist()
            cy, cx = divmod(c, g)
            assert y0 + cy * cell <= oy <= y0 + cy * cell + cell - tile  # inside its cell
            assert x0 + cx * cell <= ox <= x0 + cx * cell + cell - tile
            assert torch.equal(out.tiles[b, t].double(), x[b, :, oy:oy + tile, ox:ox + tile].float().double())


def test_labels_recover_the_original_arrangement():
    x = random_images((6, 3, 33, 33), torch.uint8)
    perms = _perms(3)
    kw = dict(grid=3, cell=11, tile=8, ids=torch.arange(6), backend="reference")
    shuffled = jigsaw_tiles(x, permutations=perms, **kw)
    identity = torch.arange(9)[None]
    in_order = jigsaw_tiles(x, torch.zeros(6, dtype=torch.int64), identity, **kw)
    assert torch.equal(jigsaw_unpermute(shuffled.tiles, shuffled.labels, perms), in_order.tiles)
    position_of_cell = jigsaw_unpermute(torch.arange(9).expand(6, 9), shuffled.labels, perms)  # inverse perms
    assert torch.equal(position_of_cell.gather(1, perms[shuffled.labels]), torch.arange(9).expand(6, 9))


def test_normalization_grayscale_and_channel_drop():
    x = random_images((4, 3, 30, 30), torch.uint8)
    out = jigsaw_tiles(x, permutations=_perms(3), grid=3, cell=10, tile=9, grayscale=0.5, channel_drop=0.5,
                       ids=torch.arange(4), backend="reference")
    tiles = jigsaw_unpermute(out.tiles, out.labels, _perms(3)).double()  # per cell, like gray / keep
    assert out.gray.any() and not out.gray.all() and (out.keep >= 0).any() and (out.keep == -1).any()
    live = tiles[out.keep == -1]
    assert live.mean((-2, -1)).abs().max() < 1e-5
    assert (live.var((-2, -1), unbiased=False) - 1).abs().max() < 1e-3
    gray = tiles[out.gray & (out.keep == -1)]
    assert torch.allclose(gray[:, 0], gray[:, 1], atol=1e-5) and torch.allclose(gray[:, 0], gray[:, 2], atol=1e-5)
    for b, c in (out.keep >= 0).nonzero().tolist():
        kept = int(out.keep[b, c])
        assert all((tiles[b, c, ch] == 0).all() for ch in range(3) if ch != kept)
        assert tiles[b, c, kept].abs().sum() > 0


def test_flat_tile_normalizes_to_zero_with_eps():
    x = torch.full((1, 3, 20, 20), 0.5)
    out = jigsaw_tiles(x, permutations=_perms(2), grid=2, cell=10, tile=6, backend="reference")
    assert torch.equal(out.tiles, torch.zeros_like(out.tiles))


def test_channel_shift_stays_inside_the_cell():
    x = random_images((8, 3, 33, 33), torch.uint8)
    out = jigsaw_tiles(x, permutations=_perms(3), grid=3, cell=11, tile=7, channel_shift=3, ids=torch.arange(8),
                       backend="reference")
    base = torch.tensor([(c // 3 * 11, c % 3 * 11) for c in range(9)])
    inside = out.origins - base[None, :, None, :]
    assert inside.min() >= 0 and inside.max() <= 4
    assert (out.origins[:, :, 0] != out.origins[:, :, 1]).any()  # channels do move


def test_given_parameters_are_used_exactly():
    x = random_images((2, 3, 26, 26), torch.uint8)
    perms = _perms(2)
    offsets = torch.tensor([[[0, 0], [1, 2], [3, 3], [2, 0]], [[3, 1], [0, 0], [0, 3], [1, 1]]])
    gray = torch.tensor([[True, False, False, False], [False, False, False, True]])
    keep = torch.tensor([[-1, 2, -1, -1], [0, -1, -1, -1]])
    labels = torch.tensor([5, 17])
    out = jigsaw_tiles(x, labels, perms, grid=2, cell=13, tile=10, offsets=offsets, gray=gray, keep=keep,
                       backend="reference")
    assert torch.equal(out.labels, labels) and torch.equal(out.gray, gray) and torch.equal(out.keep, keep)
    expected = reference.jigsaw_tiles(x, labels, perms, offsets, grid=2, cell=13, tile=10, gray=gray, keep=keep)
    assert_close_to_reference(out.tiles, expected, ATOL)
    per_channel = offsets[:, :, None, :].expand(2, 4, 3, 2)
    again = jigsaw_tiles(x, labels, perms, grid=2, cell=13, tile=10, offsets=per_channel, gray=gray, keep=keep,
                         channel_shift=2, backend="reference")
    assert torch.equal(again.tiles, out.tiles)  # per-channel offsets are used as given, without shifts


def test_same_ids_give_same_rows_in_any_batch():
    x = random_images((6, 3, 33, 33), torch.uint8)
    ids = torch.tensor([40, 7, 19, 3, 88, 12])
    kw = dict(permutations=_perms(3), grid=3, cell=11, tile=7, channel_shift=2, grayscale=0.5, channel_drop=0.5,
              seed=3, epoch=2, view=1, backend="reference")
    full = jigsaw_tiles(x, ids=ids, **kw)
    order = torch.tensor([4, 1, 3])
    part = jigsaw_tiles(x[order], ids=ids[order], **kw)
    for name in ("tiles", "labels", "origins", "gray", "keep"):
        assert torch.equal(getattr(part, name), getattr(full, name)[order]), name
    other_epoch = jigsaw_tiles(x, ids=ids, **{**kw, "epoch": 3})
    assert not torch.equal(other_epoch.origins, full.origins)


# --- Jigsaw++: tiles replaced by another image's ---------------------------------------------------------------


def test_replaced_cells_show_the_donors_pixels():
    g, cell, tile = 3, 11, 7
    x = random_images((6, 3, 36, 40), torch.float64)
    perms = _perms(3)
    out = jigsaw_tiles(x, permutations=perms, grid=g, cell=cell, tile=tile, normalize=False, replace_tiles=4,
                       ids=torch.arange(6) + 100, backend="reference")
    assert out.replaced.any() and out.replaced.dtype == torch.bool and out.donors.dtype == torch.int64
    for b in range(6):
        for t, c in enumerate(perms[out.labels[b]].tolist()):
            oy, ox = out.origins[b, c, 0].tolist()  # the sample's own origins, also for a replaced cell
            source = int(out.donors[b]) if out.replaced[b, c] else b
            assert torch.equal(out.tiles[b, t].double(), x[source, :, oy:oy + tile, ox:ox + tile].float().double())


@pytest.mark.parametrize("most", [1, 2, 4])
def test_counts_are_within_the_maximum_and_every_count_occurs(most):
    x = random_images((64, 3, 22, 22), torch.uint8)
    out = jigsaw_tiles(x, permutations=_perms(2), grid=2, cell=11, tile=8, replace_tiles=most, ids=torch.arange(64),
                       seed=most, backend="reference")
    assert set(out.replaced.sum(1).tolist()) == set(range(most + 1))


def test_donors_are_another_image_each_donating_once():
    x = random_images((9, 3, 22, 22), torch.uint8)
    for seed in range(5):
        out = jigsaw_tiles(x, permutations=_perms(2), grid=2, cell=11, tile=8, replace_tiles=2, seed=seed,
                           ids=torch.arange(9) * 3, backend="reference")
        assert (out.donors != torch.arange(9)).all()
        assert sorted(out.donors.tolist()) == list(range(9))  # a permutation of the batch: each image donates once
        position, visited = 0, set()
        for _ in range(9):  # one cycle through the whole batch
            visited.add(position)
            position = int(out.donors[position])
        assert len(visited) == 9 and position == 0


def test_a_single_image_replaces_nothing():
    x = random_images((1, 3, 33, 33), torch.uint8)
    kw = dict(permutations=_perms(3), grid=3, cell=11, tile=7, ids=torch.tensor([5]), backend="reference")
    out = jigsaw_tiles(x, replace_tiles=2, **kw)
    assert not out.replaced.any() and out.donors.tolist() == [0]
    assert torch.equal(out.tiles, jigsaw_tiles(x, **kw).tiles)
    assert not jigsaw_tiles(x, replace_tiles=torch.tensor([3]), **kw).replaced.any()


def test_without_replacement_the_puzzle_is_unchanged():
    x = random_images((5, 3, 33, 33), torch.uint8)
    kw = dict(permutations=_perms(3), grid=3, cell=11, tile=7, channel_shift=1, grayscale=0.3, channel_drop=0.3,
              ids=torch.arange(5), seed=4, backend="reference")
    plain = jigsaw_tiles(x, **kw)
    assert not plain.replaced.any()
    for replace in (0, torch.zeros(5, dtype=torch.int64)):
        other = jigsaw_tiles(x, replace_tiles=replace, **kw)
        for name in JigsawTiles._fields:
            assert torch.equal(getattr(other, name), getattr(plain, name)), name
    drawn = jigsaw_tiles(x, replace_tiles=2, **kw)  # the other parameters keep their draws
    for name in ("labels", "origins", "gray", "keep", "donors"):
        assert torch.equal(getattr(drawn, name), getattr(plain, name)), name


def test_given_counts_and_donors_are_used_exactly():
    x = random_images((4, 3, 33, 33), torch.uint8)
    counts, donors = torch.tensor([0, 9, 2, 1]), torch.tensor([1, 0, 0, 2])
    out = jigsaw_tiles(x, permutations=_perms(3), grid=3, cell=11, tile=7, replace_tiles=counts, donors=donors,
                       normalize=False, backend="reference")
    assert out.replaced.sum(1).tolist() == [0, 9, 2, 1] and torch.equal(out.donors, donors)
    whole = jigsaw_unpermute(out.tiles, out.labels, _perms(3))[1]  # every cell of puzzle 1 is image 0's
    for c in range(9):
        oy, ox = out.origins[1, c, 0].tolist()
        assert torch.equal(whole[c], x[0, :, oy:oy + 7, ox:ox + 7].float() / 255)


def test_replacement_is_keyed_and_independent_of_the_batch_order():
    """Counts and cells follow the sample's id in any batch; the donor follows the batch's samples, not their order."""
    x = random_images((6, 3, 33, 33), torch.uint8)
    ids = torch.tensor([40, 7, 19, 3, 88, 12])
    kw = dict(permutations=_perms(3), grid=3, cell=11, tile=7, channel_shift=1, grayscale_puzzle=0.5, replace_tiles=3,
              seed=3, epoch=2, view=1, backend="reference")
    full = jigsaw_tiles(x, ids=ids, **kw)
    assert full.replaced.any()
    order = torch.tensor([4, 1, 5, 0, 3, 2])
    shuffled = jigsaw_tiles(x[order], ids=ids[order], **kw)
    position = torch.argsort(order)  # where each sample of the full batch went
    for name in ("tiles", "labels", "origins", "gray", "keep", "replaced"):
        assert torch.equal(getattr(shuffled, name), getattr(full, name)[order]), name
    assert torch.equal(shuffled.donors, position[full.donors[order]])  # the same donor image, at its new place
    part = jigsaw_tiles(x[:3], ids=ids[:3], **kw)  # another batch: the same cells replaced, other donors allowed
    assert torch.equal(part.replaced, full.replaced[:3]) and (part.donors != torch.arange(3)).all()
    assert not torch.equal(jigsaw_tiles(x, ids=ids, **{**kw, "epoch": 3}).replaced, full.replaced)


def test_duplicate_ids_still_take_another_position():
    x = random_images((4, 3, 22, 22), torch.uint8)
    out = jigsaw_tiles(x, permutations=_perms(2), grid=2, cell=11, tile=8, replace_tiles=2,
                       ids=torch.tensor([3, 3, 3, 1]), backend="reference")
    assert (out.donors != torch.arange(4)).all()


def test_whole_puzzles_are_made_gray():
    x = random_images((32, 3, 22, 22), torch.uint8)
    kw = dict(permutations=_perms(2), grid=2, cell=11, tile=8, ids=torch.arange(32), backend="reference")
    out = jigsaw_tiles(x, grayscale_puzzle=0.7, **kw)
    rows = out.gray.sum(1)
    assert set(rows.tolist()) == {0, 4} and 0.4 < (rows == 4).float().mean() < 0.95
    assert jigsaw_tiles(x, grayscale_puzzle=1.0, **kw).gray.all()
    either = jigsaw_tiles(x, grayscale_puzzle=0.7, grayscale=0.3, **kw).gray  # per tile or per puzzle
    assert (either >= out.gray).all() and (either.sum(1) % 4 != 0).any()


# --- backends against the reference -------------------------------------------------------------------------


def _case(dtype, geometry, batch=3, seed=0, **options):
    gen = torch.Generator().manual_seed(seed)
    g = geometry["grid"]
    x = random_images((batch, 3) + geometry["size"], dtype, generator=gen)
    kw = dict(grid=g, cell=geometry["cell"], tile=geometry["tile"], permutations=_perms(g),
              ids=torch.randint(0, 1000, (batch,), generator=gen), seed=seed, channel_shift=1, grayscale=0.4,
              channel_drop=0.3, **options)
    return x, kw


def _expected(x, out, kw):
    out = JigsawTiles(*(t.cpu() for t in out))
    return reference.jigsaw_tiles(x, out.labels, kw["permutations"], out.origins - reference.origins(
        torch.zeros_like(out.origins), None, x.shape[2], x.shape[3], kw["grid"], kw["cell"], kw["tile"]),
        grid=kw["grid"], cell=kw["cell"], tile=kw["tile"], gray=out.gray, keep=out.keep, replaced=out.replaced,
        donors=out.donors)


@pytest.mark.parametrize("backend,device", COMPARED)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("geometry", range(len(SMALL)))
def test_backend_matches_reference(backend, device, dtype, geometry):
    require(backend, device)
    x, kw = _case(dtype, SMALL[geometry], seed=geometry)
    out = jigsaw_tiles(x.to(device), **kw, backend=backend)
    assert out.tiles.dtype == torch.float32 and out.tiles.device.type == device
    assert_close_to_reference(out.tiles, _expected(x if dtype == torch.uint8 else x.double(), out, kw), ATOL)


@pytest.mark.parametrize("backend,device", COMPARED)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("geometry", range(len(SMALL)))
@pytest.mark.parametrize("batch", [1, 5])
def test_backend_matches_reference_with_replaced_tiles(backend, device, dtype, geometry, batch):
    require(backend, device)
    x, kw = _case(dtype, SMALL[geometry], batch=batch, seed=geometry, replace_tiles=3, grayscale_puzzle=0.5)
    out = jigsaw_tiles(x.to(device), **kw, backend=backend)
    assert out.tiles.dtype == torch.float32 and out.tiles.device.type == device
    assert out.replaced.any() == (batch > 1) and int(out.replaced.sum(1).max()) <= 3
    if batch > 1:
        assert (out.donors.cpu() != torch.arange(batch)).all()
    assert_close_to_reference(out.tiles, _expected(x if dtype == torch.uint8 else x.double(), out, kw), ATOL)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("replace_tiles", [None, 2])
def test_backend_half_precision_and_unnormalized(backend, device, normalize, replace_tiles):
    require(backend, device)
    x, kw = _case(torch.float16, SMALL[0], replace_tiles=replace_tiles)
    out = jigsaw_tiles(x.to(device), **kw, normalize=normalize, backend=backend)
    expected = jigsaw_tiles(x.double(), **kw, normalize=normalize, backend="reference").tiles
    assert_close_to_reference(out.tiles, expected.double(), ATOL)


@pytest.mark.parametrize("backend,device", COMPARED)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32], ids=str)
@pytest.mark.parametrize("replace_tiles", [None, 2])
def test_non_contiguous_inputs(backend, device, dtype, replace_tiles):
    require(backend, device)
    base = random_images((3, 3, 60, 70), dtype)
    kw = dict(permutations=_perms(3), grid=3, cell=9, tile=6, ids=torch.arange(3), channel_shift=1,
              replace_tiles=replace_tiles)
    for x in (base[:, :, ::2, 1::2], base.transpose(-1, -2), base.contiguous(memory_format=torch.channels_last)):
        assert not x.is_contiguous()
        out = jigsaw_tiles(x.to(device), **kw, backend=backend)
        expected = jigsaw_tiles(x.contiguous() if dtype == torch.uint8 else x.double(), **kw, backend="reference")
        assert_close_to_reference(out.tiles, expected.tiles.double(), ATOL)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_opcheck(backend, device):
    require(backend, device)
    x = torch.randint(0, 256, (2, 3, 20, 22), dtype=torch.uint8, device=device)
    origins = torch.randint(0, 14, (2, 4, 3, 2), device=device)
    gray = torch.tensor([[0, 1, 0, 0], [1, 0, 0, 1]], device=device)
    keep = torch.tensor([[-1, 0, 2, -1], [-1, -1, 1, -1]], device=device)
    torch.library.opcheck(torch.ops.fastssl.jigsaw_tiles.default, (x, origins, gray, keep, 6, True, 1e-6, backend))
    xf = torch.rand(2, 3, 20, 22, device=device)
    torch.library.opcheck(torch.ops.fastssl.jigsaw_tiles.default, (xf, origins, gray, keep, 5, False, 1e-6, backend))
    sources = torch.tensor([[1, 0, 0, 1], [1, 1, 0, 1]], device=device)  # Jigsaw++: some tiles of the other image
    torch.library.opcheck(torch.ops.fastssl.jigsaw_tiles.default,
                          (x, origins, gray, keep, 6, True, 1e-6, backend, sources))


@pytest.mark.parametrize("backend,device", [c for c in BACKENDS if c.values[0] == "triton"])
def test_triton_reads_nothing_outside_the_image(backend, device):
    # Traced by torch.compile, fastssl.ops.jigsaw does not check origins: the kernel must stay in bounds.
    require(backend, device)
    from fastssl.triton import jigsaw as triton_jigsaw

    x = torch.full((1, 3, 10, 10), 255, dtype=torch.uint8, device=device)
    origins = torch.tensor([[[[7, 7]] * 3, [[-2, -3]] * 3]], device=device)  # tiles of 4 crossing the edges
    none = torch.full((1, 2), -1, dtype=torch.int64, device=device)
    out = triton_jigsaw.jigsaw_tiles(x, origins, torch.zeros_like(none), none, 4, False, 1e-6).cpu()
    inside = torch.zeros(2, 4, 4)
    inside[0, :3, :3] = 1
    inside[1, 2:, 3:] = 1
    assert torch.equal(out[0], inside[:, None].expand(2, 3, 4, 4))
    two = torch.stack([x[0], torch.zeros_like(x[0])])  # sources outside the batch are clamped into it
    origins = torch.zeros(2, 2, 3, 2, dtype=torch.int64, device=device)
    sources = torch.tensor([[5, -1], [1, 0]], device=device)
    out = triton_jigsaw.jigsaw_tiles(two, origins, torch.zeros_like(origins[..., 0, 0]), none.expand(2, 2), 4, False,
                                     1e-6, sources).cpu()
    assert out[0, 0].eq(0).all() and out[0, 1].eq(1).all() and out[1, 0].eq(0).all() and out[1, 1].eq(1).all()


# jigsaw's checks (and fastssl.random's id range check) skip reading values while tracing: one graph.
@pytest.mark.parametrize("fullgraph", [False, True])
@pytest.mark.parametrize("replace_tiles", [None, 2])
def test_torch_compile(fullgraph, replace_tiles):
    torch._dynamo.reset()  # the lambda's code is the same for every case: a cached graph would hide a break
    perms, kw = _perms(2), dict(grid=2, cell=8, tile=6, replace_tiles=replace_tiles)
    fn = torch.compile(lambda x, i: jigsaw_tiles(x, i, perms, **kw).tiles, fullgraph=fullgraph, backend="aot_eager")
    x, labels = random_images((3, 3, 16, 16), torch.uint8), torch.tensor([3, 9, 0])
    torch.testing.assert_close(fn(x, labels), jigsaw_tiles(x, labels, perms, **kw).tiles)


# --- bad input ----------------------------------------------------------------------------------------------


def _bad(**overrides):
    kw = dict(images=torch.zeros(2, 3, 33, 33, dtype=torch.uint8), permutation_index=torch.tensor([0, 1]),
              permutations=torch.tensor([list(range(9)), [8, 7, 6, 5, 4, 3, 2, 1, 0]]), grid=3, cell=11, tile=7)
    kw.update(overrides)
    images = kw.pop("images")
    return lambda: jigsaw_tiles(images, **kw, backend="reference")


@pytest.mark.parametrize("overrides,error,match", [
    (dict(images=torch.zeros(2, 3, 32, 40, dtype=torch.uint8)), ValueError, r"images of 32 x 40 are too small.*33"),
    (dict(tile=12), ValueError, "tile must be <= cell"),
    (dict(permutations=torch.tensor([list(range(9))] * 2)), ValueError, "permutations has duplicate rows: row 1"),
    (dict(permutations=torch.tensor([list(range(9)), [0] * 9])), ValueError, "permutations row 1 is not a permutation"),
    (dict(permutations=torch.tensor([list(range(4))])), ValueError, r"permutations must have shape \(P, grid²\)"),
    (dict(permutations=torch.arange(9.0)[None]), TypeError, "permutations must be an integer tensor"),
    (dict(permutation_index=torch.tensor([0, 2])), ValueError, "permutation_index out of range"),
    (dict(permutation_index=torch.tensor([0.0, 1.0])), TypeError, "permutation_index must be an integer tensor"),
    (dict(permutation_index=torch.tensor([0])), ValueError, r"permutation_index must have shape \(2,\)"),
    (dict(images=torch.zeros(2, 3, 33, 33, dtype=torch.int32)), TypeError, "images must have dtype"),
    (dict(images=torch.zeros(2, 4, 33, 33)), ValueError, "images must have 3 channels"),
    (dict(offsets=torch.full((2, 9, 2), 5)), ValueError, "offsets out of range"),
    (dict(offsets=torch.zeros(2, 9, 2, dtype=torch.float32)), TypeError, "offsets must be an integer tensor"),
    (dict(offsets=torch.zeros(2, 8, 2, dtype=torch.int64)), ValueError, "offsets must have shape"),
    (dict(keep=torch.full((2, 9), 3)), ValueError, "keep out of range"),
    (dict(gray=torch.zeros(2, 9, dtype=torch.int64)), ValueError, "gray must be a bool tensor"),
    (dict(grid=1), ValueError, "grid must be an integer >= 2"),
    (dict(grayscale=1.5), ValueError, "grayscale must be a probability"),
    (dict(channel_drop=-0.1), ValueError, "channel_drop must be a probability"),
    (dict(channel_shift=-1), ValueError, "channel_shift must be an integer >= 0"),
    (dict(eps=0.0), ValueError, "eps must be > 0"),
    (dict(ids=torch.arange(3)), ValueError, "ids must have one id per image"),
    (dict(replace_tiles=10), ValueError, r"replace_tiles must be <= grid² = 9"),
    (dict(replace_tiles=-1), ValueError, "replace_tiles must be an integer >= 0"),
    (dict(replace_tiles=1.5), ValueError, "replace_tiles must be an integer >= 0"),
    (dict(replace_tiles=torch.tensor([1, 10])), ValueError, "replace_tiles out of range"),
    (dict(replace_tiles=torch.tensor([1])), ValueError, r"replace_tiles must have shape \(2,\)"),
    (dict(replace_tiles=torch.tensor([1.0, 2.0])), TypeError, "replace_tiles must be an integer tensor"),
    (dict(replace_tiles=1, donors=torch.tensor([1, 2])), ValueError, "donors out of range"),
    (dict(replace_tiles=1, donors=torch.tensor([[1, 0]])), ValueError, "donors must have shape"),
    (dict(grayscale_puzzle=1.5), ValueError, "grayscale_puzzle must be a probability"),
])
def test_bad_input_is_named(overrides, error, match):
    with pytest.raises(error, match=match):
        _bad(**overrides)()


def test_nan_is_rejected_by_name():
    x = torch.rand(1, 3, 22, 22)
    x[0, 1, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="images contains 1 NaN"):
        jigsaw_tiles(x, permutations=_perms(2), grid=2, cell=11, tile=8)


def test_unpermute_bad_input():
    perms = torch.tensor([[1, 0, 3, 2]])
    with pytest.raises(ValueError, match="labels out of range"):
        jigsaw_unpermute(torch.zeros(1, 4), torch.tensor([1]), perms)
    with pytest.raises(ValueError, match="square number of tiles"):
        jigsaw_unpermute(torch.zeros(1, 5), torch.tensor([0]), perms)


def test_native_binding_keeps_tiles_inside_the_image():
    # The binding reads no values: origins past the edge are clamped into the image, never read outside it.
    require("cpp", "cpu")
    from fastssl import _native

    x = random_images((1, 3, 10, 10), torch.uint8)
    keep = torch.tensor([[-1, 7]])  # only compared with the channel: any value is safe
    zeros = torch.zeros(1, 2, dtype=torch.int64)
    out = _native.ops().jigsaw_tiles(x, torch.tensor([[[[5, 9]] * 3, [[-3, 2]] * 3]]), zeros, keep, 6, False, 1e-6)
    inside = torch.tensor([[[[4, 4]] * 3, [[0, 2]] * 3]])
    expected = reference.tiles_at(x, inside, zeros, keep, 6, False, 1e-6).float()
    torch.testing.assert_close(out, expected)
    with pytest.raises(RuntimeError, match="tile must be in"):
        _native.ops().jigsaw_tiles(x, torch.zeros(1, 2, 3, 2, dtype=torch.int64), zeros, zeros, 11, False, 1e-6)
    two = random_images((2, 3, 10, 10), torch.uint8)  # Jigsaw++ sources outside the batch are clamped into it
    origins, zeros = torch.zeros(2, 2, 3, 2, dtype=torch.int64), torch.zeros(2, 2, dtype=torch.int64)
    out = _native.ops().jigsaw_tiles(two, origins, zeros, zeros - 1, 6, False, 1e-6, torch.tensor([[5, -2], [0, 1]]))
    expected = reference.tiles_at(two, origins, zeros, zeros - 1, 6, False, 1e-6, torch.tensor([[1, 0], [0, 1]]))
    torch.testing.assert_close(out, expected.float())
    with pytest.raises(RuntimeError, match="sources"):
        _native.ops().jigsaw_tiles(two, origins, zeros, zeros, 6, False, 1e-6, torch.zeros(2, 3, dtype=torch.int64))


def test_british_names_still_work_with_a_future_warning():
    x, perms = random_images((2, 3, 22, 22), torch.uint8), _perms(2)
    gray = torch.tensor([[True, False, False, True], [False] * 4])
    expected = jigsaw_tiles(x, permutations=perms, grid=2, cell=11, tile=8, grayscale=0.5, gray=gray)
    with pytest.warns(FutureWarning, match=r"jigsaw_tiles\(grey=...\) is deprecated .*: use gray="):
        with pytest.warns(FutureWarning, match=r"jigsaw_tiles\(greyscale=...\) is deprecated .*: use grayscale="):
            out = jigsaw_tiles(x, permutations=perms, grid=2, cell=11, tile=8, greyscale=0.5, grey=gray)
    assert torch.equal(out.tiles, expected.tiles)
    with pytest.warns(FutureWarning, match=r"JigsawTiles.grey is deprecated.*use .gray"):
        assert torch.equal(out.grey, out.gray)
    with pytest.raises(TypeError, match="pass grayscale= only"):
        jigsaw_tiles(x, permutations=perms, grid=2, cell=11, tile=8, greyscale=0.5, grayscale=0.5)
