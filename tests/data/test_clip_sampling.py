"""The tuple rules of the temporal-order tasks (fastssl.data.video.sampling): every constraint their docstrings
state, on thousands of seeded ids and several frame counts (the least each rule allows included), keyed by
(seed, epoch, id) alone, and their refusals."""

import itertools
import math

import pytest
import torch

from fastssl.data.video.sampling import (CLIP_ORDERS, ClipPlan, arrow_of_time_clips, centre_clip, clip_order_span,
                                         clip_order_tuples, clip_span, clip_starts, odd_one_out_tuples,
                                         shuffle_learn_frames, shuffle_learn_tuples)

IDS = torch.arange(3000) * 7919 + 11  # spread over the id space, not only 0..N-1
SIGMAS = 4  # a share may stray this many binomial standard deviations from its probability


def assert_share(hits: torch.Tensor, p: float, what: str) -> None:
    """The share of True in ``hits`` is within SIGMAS binomial standard deviations of ``p``."""
    n = hits.numel()
    share = hits.double().mean().item()
    bound = SIGMAS * math.sqrt(p * (1 - p) / n)
    assert abs(share - p) <= bound, f"{what}: share {share:.4f} of {n}, expected {p} ± {bound:.4f}"


def frames_of(count: int, n: int = len(IDS)) -> torch.Tensor:
    return torch.full((n,), count, dtype=torch.int64)


# --- the rules and one call per id, or another seed / epoch --------------------------------------------------------

RULES = {
    "shuffle_learn": (lambda ids, frames, **k: shuffle_learn_tuples(ids, frames, tau_min=3, tau_max=9, **k),
                      shuffle_learn_frames(3, 9)),
    "odd_one_out": (lambda ids, frames, **k: odd_one_out_tuples(ids, frames, clips=4, clip_len=5, stride=2, **k),
                    clip_span(5, 2)),
    "arrow_of_time": (lambda ids, frames, **k: arrow_of_time_clips(ids, frames, clip_len=6, stride=3, **k),
                      clip_span(6, 3)),
    "clip_order": (lambda ids, frames, **k: clip_order_tuples(ids, frames, clip_len=4, gap=3, **k),
                   clip_order_span(4, 3)),
}


def equal_plans(a: ClipPlan, b: ClipPlan) -> bool:
    return (torch.equal(a.indices, b.indices) and a.targets.keys() == b.targets.keys()
            and all(torch.equal(a.targets[k], b.targets[k]) for k in a.targets))


def rows(plan: ClipPlan, index) -> ClipPlan:
    return ClipPlan(plan.indices[index], {k: v[index] for k, v in plan.targets.items()})


@pytest.mark.parametrize("rule", RULES)
def test_a_row_depends_on_seed_epoch_and_id_only(rule):
    draw, least = RULES[rule]
    ids = IDS[:200]
    frames = least + (ids * 13) % 50  # every video its own length
    plan = draw(ids, frames, seed=3, epoch=2)
    assert plan.indices.shape[0] == 200 and plan.indices.dtype == torch.int64
    assert all(v.shape[0] == 200 and v.dtype == torch.int64 for v in plan.targets.values())
    # one id at a time, or the batch in another order, or among other videos: the same rows
    alone = [draw(ids[i:i + 1], frames[i:i + 1], seed=3, epoch=2) for i in range(0, 200, 9)]
    for k, i in enumerate(range(0, 200, 9)):
        assert equal_plans(alone[k], rows(plan, slice(i, i + 1))), (rule, i)
    shuffled = torch.randperm(200)
    assert equal_plans(draw(ids[shuffled], frames[shuffled], seed=3, epoch=2), rows(plan, shuffled))
    others = torch.arange(10**6, 10**6 + 50)
    mixed = draw(torch.cat([others, ids[:5]]), torch.cat([frames_of(least + 40, 50), frames[:5]]), seed=3, epoch=2)
    assert equal_plans(rows(mixed, slice(50, None)), rows(plan, slice(0, 5)))
    # the same call again: the same plan; another epoch or seed: other plans
    assert equal_plans(draw(ids, frames, seed=3, epoch=2), plan)
    for other in ({"seed": 3, "epoch": 3}, {"seed": 4, "epoch": 2}):
        changed = draw(ids, frames, **other)
        assert not torch.equal(changed.indices, plan.indices), (rule, other)
        assert all(not torch.equal(changed.targets[k], plan.targets[k]) for k in plan.targets), (rule, other)


@pytest.mark.parametrize("rule", RULES)
def test_too_short_videos_raise_naming_their_ids(rule):
    draw, least = RULES[rule]
    assert equal_plans(draw(torch.tensor([5]), torch.tensor([least]), seed=0),
                       draw(torch.tensor([5]), torch.tensor([least]), seed=0))  # the least allowed is fine
    ids = torch.tensor([4, 17, 9, 23])
    with pytest.raises(ValueError, match=r"videos \[17, 23\] have fewer than the "):
        draw(ids, torch.tensor([least, least - 1, least + 5, 1]), seed=0)


@pytest.mark.parametrize("rule", RULES)
def test_ids_and_frames_are_checked(rule):
    draw, least = RULES[rule]
    with pytest.raises(ValueError, match="one count per id"):
        draw(torch.tensor([1, 2]), torch.tensor([least]), seed=0)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 4294967296\)"):
        draw(torch.tensor([1, -2]), torch.tensor([least, least]), seed=0)
    with pytest.raises(TypeError, match="ids must be an integer tensor"):
        draw(torch.tensor([1.0]), torch.tensor([least]), seed=0)
    with pytest.raises(ValueError, match="ids must be a 1-D tensor"):
        draw(torch.tensor([[1]]), torch.tensor([[least]]), seed=0)
    with pytest.raises(ValueError, match="seed must be in"):
        draw(torch.tensor([1]), torch.tensor([least]), seed=-1)


# --- Shuffle & Learn -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tau_min, tau_max", [(1, 2), (3, 9), (5, 30)])
@pytest.mark.parametrize("extra", [0, 1, 4, 17, 250])  # frames beyond the least the rule allows
def test_shuffle_learn_tuples_keep_every_constraint(tau_min, tau_max, extra):
    F = 2 * tau_min + 3 + extra
    assert shuffle_learn_frames(tau_min, tau_max) == 2 * tau_min + 3
    plan = shuffle_learn_tuples(IDS, frames_of(F), tau_min=tau_min, tau_max=tau_max, seed=1, epoch=4)
    assert plan.indices.shape == (len(IDS), 3) and set(plan.targets) == {"label"}
    label = plan.targets["label"]
    assert set(label.unique().tolist()) <= {0, 1}
    first, middle, last = plan.indices.unbind(1)
    assert bool(((plan.indices >= 0) & (plan.indices < F)).all())
    positive = label == 1
    # label 1 exactly when the middle frame lies strictly between the other two: (b, c, d) or (d, c, b)
    between = ((first < middle) & (middle < last)) | ((last < middle) & (middle < first))
    assert torch.equal(between, positive)
    forward = positive & (first < last)
    b = torch.where(forward | ~positive, first, last)
    d = torch.where(forward | ~positive, last, first)
    # label 0: (b, a, d) or (b, e, d): b < d, the middle frame outside [b, d]
    assert bool((first[~positive] < last[~positive]).all())
    shows_a = ~positive & (middle < first)
    shows_e = ~positive & (middle > last)
    assert torch.equal(shows_a | shows_e, ~positive)
    gap = d - b
    assert bool(((gap >= 2) & (gap <= tau_max)).all())  # c strictly between b and d; d - b <= tau_max
    # room for a and e: a >= 0 with b - a >= tau_min, e < F with e - d >= tau_min
    assert bool((b >= tau_min).all()) and bool((d + tau_min <= F - 1).all())
    assert bool((b[shows_a] - middle[shows_a] >= tau_min).all()) and bool((middle[shows_a] >= 0).all())
    assert bool((middle[shows_e] - d[shows_e] >= tau_min).all()) and bool((middle[shows_e] < F).all())
    # d - b is uniform in [2, min(tau_max, F - 1 - 2 tau_min)]: every value comes up, no other
    gaps = list(range(2, min(tau_max, F - 1 - 2 * tau_min) + 1))
    assert sorted(gap.unique().tolist()) == gaps
    for value in gaps:
        assert_share(gap == value, 1 / len(gaps), f"d - b = {value}")
    if extra == 0:  # the least frames: a single tuple (0, tau_min, tau_min + 1, tau_min + 2, 2 tau_min + 2)
        assert bool((b == tau_min).all()) and bool((d == tau_min + 2).all())
        assert bool((middle[shows_a] == 0).all()) and bool((middle[shows_e] == F - 1).all())
        assert bool((middle[positive] == tau_min + 1).all())


@pytest.mark.parametrize("p", [0.5, 0.2, 0.9])
def test_shuffle_learn_positive_share_is_positive_fraction(p):
    plan = shuffle_learn_tuples(IDS, frames_of(40), tau_min=2, tau_max=10, positive_fraction=p, seed=7, epoch=1)
    positive = plan.targets["label"] == 1
    assert_share(positive, p, "positives")
    first, middle, last = plan.indices.unbind(1)
    assert_share((first > last)[positive], 0.5, "reversed positives (d, c, b)")
    assert_share((middle > last)[~positive], 0.5, "negatives showing e")


def test_shuffle_learn_positive_fraction_zero_and_one_and_bad_arguments():
    frames = frames_of(30)
    for p in (0.0, 1.0):
        label = shuffle_learn_tuples(IDS, frames, tau_min=2, tau_max=6, positive_fraction=p, seed=0).targets["label"]
        assert bool((label == int(p)).all())
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="positive_fraction must be in"):
            shuffle_learn_tuples(IDS[:3], frames[:3], tau_min=2, tau_max=6, positive_fraction=p, seed=0)
    with pytest.raises(ValueError, match="tau_min must be an integer >= 1"):
        shuffle_learn_tuples(IDS[:3], frames[:3], tau_min=0, tau_max=6, seed=0)
    with pytest.raises(ValueError, match="tau_max must be an integer >= 2"):
        shuffle_learn_tuples(IDS[:3], frames[:3], tau_min=2, tau_max=1, seed=0)
    with pytest.raises(ValueError, match="tau_min must be an integer"):
        shuffle_learn_tuples(IDS[:3], frames[:3], tau_min=2.0, tau_max=6, seed=0)
    with pytest.raises(ValueError, match=r"videos \[.*\] have fewer than the 7 frames a Shuffle & Learn tuple"):
        shuffle_learn_tuples(IDS[:3], frames_of(6, 3), tau_min=2, tau_max=6, seed=0)


# --- Odd-One-Out ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("clips, clip_len, stride", [(2, 2, 1), (6, 6, 1), (3, 4, 3), (5, 3, 2)])
@pytest.mark.parametrize("extra", [0, 1, 9, 120])
def test_odd_one_out_has_exactly_one_shuffled_clip_at_odd(clips, clip_len, stride, extra):
    span = clip_span(clip_len, stride)
    F = span + extra
    plan = odd_one_out_tuples(IDS, frames_of(F), clips=clips, clip_len=clip_len, stride=stride, seed=2, epoch=5)
    assert plan.indices.shape == (len(IDS), clips * clip_len) and set(plan.targets) == {"odd"}
    odd = plan.targets["odd"]
    assert sorted(odd.unique().tolist()) == list(range(clips))  # every position comes up, no other
    for k in range(clips):
        assert_share(odd == k, 1 / clips, f"odd clip at {k}")
    shown = plan.indices.view(len(IDS), clips, clip_len)
    steps = torch.arange(clip_len) * stride
    in_order = (shown - shown[:, :, :1] == steps).all(2)  # (B, clips): frames start, start + stride, ...
    assert torch.equal((~in_order).sum(1), torch.ones(len(IDS), dtype=torch.int64))
    assert torch.equal((~in_order).int().argmax(1), odd)
    # the odd clip is a permutation of an in-order clip; each clip k starts where clip_starts puts view k
    ordered = shown.sort(2).values
    assert bool((ordered - ordered[:, :, :1] == steps).all())
    for k in range(clips):
        starts = clip_starts(IDS, frames_of(F), clip_len=clip_len, stride=stride, seed=2, epoch=5, view=k)
        assert torch.equal(ordered[:, k, 0], starts)
    assert bool(((plan.indices >= 0) & (plan.indices < F)).all())
    # the odd clip's order: never the identity; every other permutation comes up
    every = torch.arange(len(IDS))
    permutation = torch.argsort(shown[every, odd], dim=1)  # position of each time step
    seen = {tuple(p) for p in permutation.tolist()}
    assert tuple(range(clip_len)) not in seen
    if math.factorial(clip_len) <= 24:
        assert len(seen) == math.factorial(clip_len) - 1


def test_odd_one_out_refuses_bad_arguments():
    ids, frames = IDS[:4], frames_of(100, 4)
    for changes, message in [({"clips": 1}, "clips must be an integer >= 2"),
                             ({"clip_len": 1}, "clip_len must be an integer >= 2"),
                             ({"clip_len": 64}, "clip_len must be <= 63"),
                             ({"stride": 0}, "stride must be an integer >= 1")]:
        with pytest.raises(ValueError, match=message):
            odd_one_out_tuples(ids, frames, seed=0, **changes)
    odd_one_out_tuples(ids, frames, clip_len=63, seed=0)  # the longest allowed
    with pytest.raises(ValueError, match=r"videos \[.*\] have fewer than the 11 frames a clip of 6 frames at stride 2"):
        odd_one_out_tuples(ids, frames_of(10, 4), clip_len=6, stride=2, seed=0)


# --- Arrow of Time -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("clip_len, stride", [(1, 1), (8, 1), (4, 3)])
@pytest.mark.parametrize("extra", [0, 1, 33])
def test_arrow_of_time_reversed_rows_are_flipped_forward_clips(clip_len, stride, extra):
    F = clip_span(clip_len, stride) + extra
    plan = arrow_of_time_clips(IDS, frames_of(F), clip_len=clip_len, stride=stride, seed=9, epoch=0)
    assert plan.indices.shape == (len(IDS), clip_len) and set(plan.targets) == {"reversed"}
    backward = plan.targets["reversed"] == 1
    assert set(plan.targets["reversed"].unique().tolist()) == {0, 1}
    assert_share(backward, 0.5, "reversed clips")
    forward = torch.where(backward[:, None], plan.indices.flip(1), plan.indices)
    starts = clip_starts(IDS, frames_of(F), clip_len=clip_len, stride=stride, seed=9, epoch=0)
    assert torch.equal(forward, starts[:, None] + torch.arange(clip_len) * stride)
    assert bool((forward[:, -1] < F).all()) and bool((forward[:, 0] >= 0).all())


# --- VCOP ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("clip_len, gap", [(1, 0), (4, 3), (16, 8), (3, 0)])
@pytest.mark.parametrize("extra", [0, 1, 50])
def test_clip_order_shows_consecutive_clips_in_the_labelled_order(clip_len, gap, extra):
    span = clip_order_span(clip_len, gap)
    assert span == 3 * clip_len + 2 * gap
    F = span + extra
    plan = clip_order_tuples(IDS, frames_of(F), clip_len=clip_len, gap=gap, seed=4, epoch=6)
    assert plan.indices.shape == (len(IDS), 3 * clip_len) and set(plan.targets) == {"order"}
    order = plan.targets["order"]
    assert sorted(order.unique().tolist()) == list(range(6))
    assert sorted(CLIP_ORDERS) == sorted(itertools.permutations(range(3)))
    for k in range(6):
        assert_share(order == k, 1 / 6, f"order class {k}")
    shown = plan.indices.view(len(IDS), 3, clip_len)
    assert bool((shown - shown[:, :, :1] == torch.arange(clip_len)).all())  # every clip: consecutive frames
    in_time = torch.empty_like(shown)
    for b, k in enumerate(order.tolist()):
        for position, clip in enumerate(CLIP_ORDERS[k]):  # class k shows clip CLIP_ORDERS[k][p] at position p
            in_time[b, clip] = shown[b, position]
    firsts = in_time[:, :, 0]
    assert bool((firsts[:, 1:] - firsts[:, :-1] == clip_len + gap).all())  # the gap between clips in time
    assert bool((firsts[:, 0] >= 0).all()) and bool((in_time[:, 2, -1] < F).all())
    assert sorted(firsts[:, 0].unique().tolist()) == list(range(extra + 1))  # the start is uniform over them


def test_clip_order_refuses_bad_arguments():
    ids = IDS[:3]
    with pytest.raises(ValueError, match="gap must be an integer >= 0"):
        clip_order_tuples(ids, frames_of(100, 3), clip_len=4, gap=-1, seed=0)
    with pytest.raises(ValueError, match="clip_len must be an integer >= 1"):
        clip_order_tuples(ids, frames_of(100, 3), clip_len=0, gap=1, seed=0)
    with pytest.raises(ValueError, match=r"videos \[.*\] have fewer than the 16 frames three clips of 4 frames"):
        clip_order_tuples(ids, frames_of(15, 3), clip_len=4, gap=2, seed=0)


# --- the centre clip -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("clip_len, stride", [(1, 1), (4, 1), (5, 3)])
def test_centre_clip_is_centred_and_has_no_randomness(clip_len, stride):
    span = clip_span(clip_len, stride)
    frames = torch.arange(span, span + 40)
    ids = torch.arange(40)
    plan = centre_clip(ids, frames, clip_len=clip_len, stride=stride)
    assert plan.targets == {} and plan.indices.shape == (40, clip_len)
    start = plan.indices[:, 0]
    assert torch.equal(plan.indices, start[:, None] + torch.arange(clip_len) * stride)
    before, after = start, frames - 1 - plan.indices[:, -1]  # frames left out on each side
    assert bool(((after - before == 0) | (after - before == 1)).all())
    assert torch.equal(centre_clip(ids.flip(0) + 100, frames.flip(0), clip_len=clip_len, stride=stride).indices,
                       plan.indices.flip(0))  # the same whatever the ids
    with pytest.raises(ValueError, match=r"videos \[3\] have fewer than"):
        centre_clip(torch.tensor([2, 3]), torch.tensor([span, span - 1]), clip_len=clip_len, stride=stride)
