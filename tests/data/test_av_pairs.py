"""The audio-visual pairing rules (fastssl.data.av.pairs): exact label shares, the constraints of each kind on
thousands of seeded videos of uneven timing, keying by (seed, epoch, id) alone, and the refusals."""

import pytest
import torch

from fastssl.data.av.pairs import AVPairs, AVTiming, CentrePairs

N = 2001  # odd: the positive count rounds


def timing(n: int = N, seed: int = 0) -> AVTiming:
    """Videos of 60..199 frames at 10..25 fps whose audio starts up to 0.2 s before or after the first frame and
    lasts 2.1..8 s, at most as long as the frames (so every one fits a 1 s window and a shift of 0.5 s either side)."""
    g = torch.Generator().manual_seed(seed)
    fps = 10 + 15 * torch.rand(n, generator=g, dtype=torch.float64)
    frames = torch.randint(60, 200, (n,), generator=g)
    first = torch.rand(n, generator=g, dtype=torch.float64)
    seconds = (2.1 + 5.9 * torch.rand(n, generator=g, dtype=torch.float64)).minimum(frames / fps - 0.2)
    start = first + 0.4 * torch.rand(n, generator=g, dtype=torch.float64) - 0.2
    return AVTiming(frames=frames, first_frame=first, frame_seconds=1 / fps, audio_start=start, audio_seconds=seconds)


def population(n: int = N) -> torch.Tensor:
    return torch.arange(n) * 3 + 1  # sparse ids, as a source's usable ones after bad files


def widen(t: AVTiming, ids: torch.Tensor) -> AVTiming:
    """``t``'s rows placed at ``ids`` of a longer table (the others empty)."""
    size = int(ids.max()) + 1

    def put(column):
        out = torch.zeros(size, dtype=column.dtype)
        out[ids] = column
        return out

    return AVTiming(*(put(getattr(t, name)) for name in ("frames", "first_frame", "frame_seconds", "audio_start",
                                                          "audio_seconds")))


@pytest.fixture(scope="module")
def table():
    ids = population()
    t = widen(timing(), ids)
    assert AVPairs("sync", min_shift=0.5).unusable(t, ids) == {}, "the table's videos all fit the rules"
    return ids, t


@pytest.mark.parametrize("kind,target", [("avc", "corresponds"), ("sync", "in_sync")])
@pytest.mark.parametrize("fraction", [0.5, 0.3, 1.0])
def test_exactly_the_fraction_of_positives_each_epoch(table, kind, target, fraction):
    ids, t = table
    pairs = AVPairs(kind, positive_fraction=fraction, seed=3)
    for epoch in range(3):
        plan = pairs.plan(ids, epoch, timing=t, population=ids)
        assert int(plan.targets[target].sum()) == round(fraction * len(ids))


@pytest.mark.parametrize("kind", ["avc", "sync"])
def test_positives_show_the_window_centred_on_their_frame_inside_the_track(table, kind):
    ids, t = table
    plan = AVPairs(kind, window=1.0, seed=1).plan(ids, 0, timing=t, population=ids)
    label = plan.targets["corresponds" if kind == "avc" else "in_sync"].bool()
    frame = plan.frames[:, 0]
    assert bool(((frame >= 0) & (frame < t.frames[ids])).all())
    centre = t.first_frame[ids] + frame * t.frame_seconds[ids]
    assert torch.allclose(plan.audio_starts[label], (centre - 0.5)[label])
    assert torch.equal(plan.audio_ids[label], ids[label])
    starts = plan.audio_starts
    inside = (starts >= t.audio_start[plan.audio_ids] - 1e-9) & \
             (starts + 1.0 <= t.audio_start[plan.audio_ids] + t.audio_seconds[plan.audio_ids] + 1e-9)
    assert bool(inside.all()), "every window lies inside its audio track"


def test_correspondence_negatives_come_from_another_usable_video(table):
    ids, t = table
    plan = AVPairs("avc", seed=2).plan(ids, 4, timing=t, population=ids)
    negative = plan.targets["corresponds"] == 0
    assert bool((plan.audio_ids[negative] != ids[negative]).all())
    assert bool(torch.isin(plan.audio_ids, ids).all())
    # the other video is spread over the population, not a neighbour
    assert len(plan.audio_ids[negative].unique()) > 0.5 * int(negative.sum())


@pytest.mark.parametrize("shifts", [(0.5, 1.0), (0.3, 3.0)])
def test_sync_negatives_are_the_same_video_shifted_at_least_min_shift(table, shifts):
    ids, t = table
    low, high = shifts
    plan = AVPairs("sync", min_shift=low, max_shift=high, seed=5).plan(ids, 1, timing=t, population=ids)
    negative = plan.targets["in_sync"] == 0
    assert torch.equal(plan.audio_ids, ids)
    shift = plan.targets["shift"]
    assert bool((shift[~negative] == 0).all())
    size = shift[negative].abs()
    assert bool((size >= low - 1e-9).all()) and bool((size <= high + 1e-9).all())
    assert 0.3 < float((shift[negative] > 0).double().mean()) < 0.7, "both directions"
    centre = t.first_frame[ids] + plan.frames[:, 0] * t.frame_seconds[ids]
    assert torch.allclose(plan.audio_starts, centre - 0.5 + shift)


@pytest.mark.parametrize("kind", ["avc", "sync"])
def test_a_video_gets_the_same_pairing_in_any_batch_and_a_new_one_each_epoch(table, kind):
    ids, t = table
    pairs = AVPairs(kind, seed=7)
    whole = pairs.plan(ids, 2, timing=t, population=ids)
    order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(0))
    for chunk in torch.split(order, 37):
        part = AVPairs(kind, seed=7).plan(ids[chunk], 2, timing=t, population=ids)
        assert torch.equal(part.frames, whole.frames[chunk])
        assert torch.equal(part.audio_ids, whole.audio_ids[chunk])
        assert torch.equal(part.audio_starts, whole.audio_starts[chunk])
    other = pairs.plan(ids, 3, timing=t, population=ids)
    assert not torch.equal(other.frames, whole.frames)
    reseeded = AVPairs(kind, seed=8).plan(ids, 2, timing=t, population=ids)
    assert not torch.equal(reseeded.frames, whole.frames)


def test_the_label_of_a_video_changes_between_epochs(table):
    ids, t = table
    pairs = AVPairs("avc", seed=0)
    labels = torch.stack([pairs.plan(ids, e, timing=t, population=ids).targets["corresponds"] for e in range(4)])
    assert 0.3 < float((labels[0] != labels[1]).double().mean()) < 0.7


def test_videos_without_room_are_named_and_refused():
    t = AVTiming(frames=torch.tensor([48, 48, 48, 2]), first_frame=torch.zeros(4, dtype=torch.float64),
                 frame_seconds=torch.full((4,), 1 / 16, dtype=torch.float64),
                 audio_start=torch.tensor([0.0, 0.0, 2.5, 0.0], dtype=torch.float64),
                 audio_seconds=torch.tensor([3.0, 1.5, 3.0, 3.0], dtype=torch.float64))
    # 1: 1.5 s of audio, too short for sync's 2 s; 2: its audio starts after the last frame; 3: 2 frames, at 0 and
    # 1/16 s, both too early for a centred 1 s window
    assert set(AVPairs("sync", window=1.0).unusable(t, range(4))) == {1, 2, 3}
    assert set(AVPairs("avc", window=1.0).unusable(t, range(4))) == {2, 3}
    assert "audio too short" in AVPairs("avc").unusable(t, [2])[2]
    with pytest.raises(ValueError, match="no frame whose"):
        AVPairs("avc").plan(torch.tensor([2]), 0, timing=t, population=torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="not in the pairing's population"):
        AVPairs("sync").plan(torch.tensor([1]), 0, timing=t, population=torch.tensor([0]))
    with pytest.raises(ValueError, match="two usable videos"):
        AVPairs("avc").plan(torch.tensor([0]), 0, timing=t, population=torch.tensor([0]))


@pytest.mark.parametrize("bad,match", [(dict(kind="other"), "kind"), (dict(window=0.0), "window"),
                                       (dict(positive_fraction=1.5), "positive_fraction"),
                                       (dict(clip_len=0), "clip_len"), (dict(stride=0), "stride"),
                                       (dict(kind="sync", min_shift=1.0, max_shift=0.5), "shifts")])
def test_bad_settings_are_refused(bad, match):
    options = {"kind": "avc", **bad}
    with pytest.raises(ValueError, match=match):
        AVPairs(options.pop("kind"), **options)


def test_centre_pairs_take_the_middle_usable_frame(table):
    ids, t = table
    plan = CentrePairs(1.0).plan(ids, timing=t)
    first, last = t.frame_range(ids, 1.0)
    assert torch.equal(plan.frames[:, 0], (first + last) // 2)
    assert torch.equal(plan.audio_ids, ids) and plan.targets == {}
    assert torch.equal(plan.frames, CentrePairs(1.0).plan(ids, 5, timing=t).frames)


@pytest.mark.parametrize("kind", ["avc", "sync"])
def test_clips_lie_inside_their_video_and_positives_centre_the_window_on_their_middle(table, kind):
    ids, t = table
    plan = AVPairs(kind, window=1.0, seed=4, clip_len=5, stride=3).plan(ids, 0, timing=t, population=ids)
    assert plan.frames.shape == (len(ids), 5)
    assert torch.equal(plan.frames - plan.frames[:, :1], torch.arange(5).expand(len(ids), 5) * 3)
    assert bool((plan.frames[:, 0] >= 0).all()) and bool((plan.frames[:, -1] < t.frames[ids]).all())
    label = plan.targets["corresponds" if kind == "avc" else "in_sync"].bool()
    middle = t.first_frame[ids] + (plan.frames[:, 0] + 6) * t.frame_seconds[ids]
    assert torch.allclose(plan.audio_starts[label], (middle - 0.5)[label])
    starts, audio = plan.audio_starts, plan.audio_ids
    assert bool(((starts >= t.audio_start[audio] - 1e-9)
                 & (starts + 1.0 <= t.audio_start[audio] + t.audio_seconds[audio] + 1e-9)).all())
    centre = CentrePairs(1.0, clip_len=5, stride=3).plan(ids, timing=t)
    assert torch.equal(centre.frames[:, 1] - centre.frames[:, 0], torch.full((len(ids),), 3))


def test_a_video_too_short_for_the_clip_is_named():
    t = AVTiming(frames=torch.tensor([48, 10]), first_frame=torch.zeros(2, dtype=torch.float64),
                 frame_seconds=torch.full((2,), 1 / 16, dtype=torch.float64),
                 audio_start=torch.zeros(2, dtype=torch.float64), audio_seconds=torch.full((2,), 3.0,
                                                                                          dtype=torch.float64))
    why = AVPairs("avc", window=0.5, clip_len=8, stride=2).unusable(t, [0, 1])
    assert list(why) == [1] and why[1].endswith("around a clip of 8 frames 2 apart")
