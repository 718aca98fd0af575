"""The clip loader (fastssl.data.video.loader.ClipLoader) on a small synthetic VP9 folder: every usable video once per
epoch over shards, clips keyed by (seed, epoch, id) whatever the batch size, shards or threads, the frames a full
decode gives at the plan's indices, bad and short videos left out and named, failures at decode time, resume,
and leaving an epoch early."""

import importlib.util
import os
import threading

import numpy as np
import pytest
import torch

from fastssl.data import BadImageError, synthetic
from fastssl.data.video import BadVideoError, ClipLoader
from fastssl.data.video.decode import rgb24
from fastssl.data.video.sampling import (arrow_of_time_clips, clip_order_tuples, odd_one_out_tuples,
                                         shuffle_learn_tuples)

from data_helpers import epoch_within

CLASSES, PER_CLASS = 3, 4
COUNT = CLASSES * PER_CLASS
# every video its own length in 24..40 frames and its own size in 32..48 px (even, as VP9 wants)
FRAMES = [24 + (16 * ((5 * k) % COUNT)) // (COUNT - 1) for k in range(COUNT)]
SIZES = [(32 + 4 * ((3 * k) % 5), 48 - 4 * ((2 * k) % 5)) for k in range(COUNT)]
PLAN_SEED = 3

PLANS = {
    "arrow_of_time": lambda ids, frames, epoch: arrow_of_time_clips(ids, frames, clip_len=4, stride=3, seed=PLAN_SEED,
                                                                    epoch=epoch),
    "odd_one_out": lambda ids, frames, epoch: odd_one_out_tuples(ids, frames, clips=3, clip_len=3, stride=2,
                                                                 seed=PLAN_SEED, epoch=epoch),
    "clip_order": lambda ids, frames, epoch: clip_order_tuples(ids, frames, clip_len=3, gap=2, seed=PLAN_SEED,
                                                               epoch=epoch),
    "shuffle_learn": lambda ids, frames, epoch: shuffle_learn_tuples(ids, frames, tau_min=2, tau_max=8,
                                                                     seed=PLAN_SEED, epoch=epoch),
}
AOT = PLANS["arrow_of_time"]
THREAD_NAMES = ("fastssl-loader", "fastssl-decode-ahead")


@pytest.fixture(scope="module")
def av():
    return pytest.importorskip("av")


def write_videos(root: str) -> str:
    """``root/class_<c>/<i>.webm``: the FRAMES and SIZES of the module, deterministic."""
    rng = np.random.default_rng(11)
    for k in range(COUNT):
        c, i = divmod(k, PER_CLASS)
        os.makedirs(os.path.join(root, f"class_{c}"), exist_ok=True)
        video = synthetic.render_video(c, FRAMES[k], *SIZES[k], rng)
        synthetic.encode_video(os.path.join(root, f"class_{c}", f"{i:05d}.webm"), video, codec="vp9", gop=8)
    return root


@pytest.fixture(scope="module")
def video_root(av, tmp_path_factory):
    """3 classes × 4 VP9 videos of 24–40 frames and 32–48 px, all usable."""
    return write_videos(str(tmp_path_factory.mktemp("clips")))


@pytest.fixture(scope="module")
def bad_root(av, tmp_path_factory):
    """The videos of ``video_root`` and synthetic's bad videos in class_1; returns (root, {file name: reason word})."""
    root = write_videos(str(tmp_path_factory.mktemp("clips_bad")))
    return root, synthetic.write_bad_videos(os.path.join(root, "class_1"))


@pytest.fixture(scope="module")
def reference_frames(av, video_root):
    """{path: every frame of that video, decoded from the start by PyAV alone}."""
    out = {}
    for c in range(CLASSES):
        for name in sorted(os.listdir(os.path.join(video_root, f"class_{c}"))):
            path = os.path.join(video_root, f"class_{c}", name)
            with av.open(path) as container:
                out[path] = np.stack([rgb24(frame) for frame in container.decode(video=0)])
    return out


def loader_for(root, plan=AOT, **options) -> ClipLoader:
    options = {"batch_size": 5, "seed": 1, "cache": False, "keep_clips": True, "decoder": "pyav", **options}
    return ClipLoader(root, plan=plan, **options)


def run_epoch(loader: ClipLoader, epoch: int) -> dict:
    """{id: (clip (K, H, W, 3) uint8, {target: value}, label)} of one epoch, checking that no id comes twice."""
    out = {}
    for batch in loader.epoch(epoch):
        assert batch["epoch"] == epoch and batch["labels"].shape == batch["ids"].shape
        assert batch["ids"].dtype == batch["labels"].dtype == torch.int64
        targets = {k: v for k, v in batch.items() if k not in ("ids", "labels", "epoch", "index", "clips")}
        for k, i in enumerate(batch["ids"].tolist()):
            assert i not in out, f"video {i} came twice"
            out[i] = (batch["clips"].clip(k).clone(), {name: v[k].item() for name, v in targets.items()},
                      int(batch["labels"][k]))
    return out


def ids_in_order(loader: ClipLoader, epoch: int) -> list[int]:
    return [i for batch in loader.epoch(epoch) for i in batch["ids"].tolist()]


def same_epochs(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[i][0], b[i][0]) and a[i][1:] == b[i][1:] for i in a)


# --- the order ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("excluded", [0, 1])  # the shortest videos left out by min_frames: 12 or 11 usable
@pytest.mark.parametrize("num_shards", [1, 2, 3])
def test_every_usable_video_once_per_epoch_over_shards(video_root, num_shards, excluded):
    min_frames = sorted(FRAMES)[excluded]
    usable = {k for k in range(COUNT) if FRAMES[k] >= min_frames}
    assert len(usable) == COUNT - excluded
    whole = loader_for(video_root, min_frames=min_frames, keep_clips=False)
    for epoch in (0, 1):
        order = ids_in_order(whole, epoch)  # the epoch's global order
        assert sorted(order) == sorted(usable)
        per_shard = -(-len(usable) // num_shards)
        padded = order + order[: num_shards * per_shard - len(usable)]  # wrap-around padding, as EpochOrder says
        seen = []
        for shard in range(num_shards):
            loader = loader_for(video_root, min_frames=min_frames, keep_clips=False, shard_id=shard,
                                num_shards=num_shards, batch_size=2)
            batches = [b["ids"].tolist() for b in loader.epoch(epoch)]
            mine = [i for b in batches for i in b]
            assert len(batches) == len(loader) and all(len(b) == 2 for b in batches[:-1])
            assert len(set(mine)) == len(mine) == per_shard
            assert mine == padded[shard::num_shards]  # round-robin over the global order
            seen += mine
        assert set(seen) == usable and len(seen) == num_shards * per_shard
    assert ids_in_order(whole, 0) != ids_in_order(whole, 1)  # a fresh order every epoch


# --- the clips ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", PLANS)
def test_clips_depend_on_seed_epoch_and_id_only(video_root, plan):
    reference = run_epoch(loader_for(video_root, PLANS[plan], batch_size=5, num_threads=2), epoch=2)
    assert sorted(reference) == list(range(COUNT))
    parts = {}
    for shard in range(3):
        parts.update(run_epoch(loader_for(video_root, PLANS[plan], batch_size=2, num_threads=1, shard_id=shard,
                                          num_shards=3, seed=9), epoch=2))
    assert same_epochs(parts, reference)
    again = run_epoch(loader_for(video_root, PLANS[plan], batch_size=12, num_threads=3, shuffle=False), epoch=2)
    assert same_epochs(again, reference)
    other = run_epoch(loader_for(video_root, PLANS[plan], batch_size=5), epoch=3)
    changed = [i for i in reference if not torch.equal(reference[i][0], other[i][0])]
    assert len(changed) >= COUNT // 2, changed  # new clips every epoch


@pytest.mark.parametrize("plan", PLANS)
def test_decoded_frames_equal_a_full_decode_at_the_plans_indices(video_root, reference_frames, plan):
    loader = loader_for(video_root, PLANS[plan], batch_size=4)
    names, frames = loader.source.names, torch.from_numpy(loader.source.frames)
    assert sorted(frames.tolist()) == sorted(FRAMES)
    for epoch in (0, 5):
        seen = run_epoch(loader, epoch)
        for i, (clip, targets, label) in seen.items():
            expected = PLANS[plan](torch.tensor([i]), frames[[i]], epoch)
            indices = expected.indices[0].numpy()
            assert torch.equal(clip, torch.from_numpy(reference_frames[names[i]][indices])), (names[i], indices)
            assert targets == {name: v[0].item() for name, v in expected.targets.items()}
            assert os.path.basename(os.path.dirname(names[i])) == f"class_{label}"


def test_a_transform_gets_the_clips_and_the_ids(video_root):
    def transform(clips, ids, epoch):
        return {"frames": clips.host_frames.clone(), "ids_seen": ids.clone(), "epoch_seen": epoch}

    loader = loader_for(video_root, batch_size=5, transform=transform, keep_clips=False, decoder="auto")
    assert loader.decoder_name == ("dali" if importlib.util.find_spec("nvidia.dali") else "pyav")
    for batch in loader.epoch(4):
        assert "clips" not in batch and batch["epoch_seen"] == 4
        assert torch.equal(batch["ids_seen"], batch["ids"]) and batch["frames"].tolist() == [4] * len(batch["ids"])


# --- bad videos ---------------------------------------------------------------------------------------------------


def test_bad_and_short_videos_are_left_out_and_named_every_epoch(bad_root):
    root, expected = bad_root
    planned = []
    min_frames = sorted(FRAMES)[2]  # the two shortest videos are too short

    def plan(ids, frames, epoch):
        planned.extend(ids.tolist())
        return AOT(ids, frames, epoch)

    loader = loader_for(root, plan, min_frames=min_frames, batch_size=3)
    names, frames = loader.source.names, loader.source.frames
    bad = {i for i, n in enumerate(names) if os.path.basename(n) in expected}
    short = {i for i in range(len(names)) if i not in bad and frames[i] < min_frames}
    assert len(bad) == len(expected) and len(short) == 2
    usable = set(range(len(names))) - bad - short
    for epoch in (0, 1):
        seen = run_epoch(loader, epoch)
        assert set(seen) == usable
        reasons = dict(loader.stats.bad_files)
        assert len(loader.stats.bad_files) == len(reasons) == len(bad) + len(short)
        assert set(reasons) == {names[i] for i in bad | short}
        for i in bad:
            assert expected[os.path.basename(names[i])] in reasons[names[i]], (names[i], reasons[names[i]])
        for i in short:
            assert reasons[names[i]] == f"too short: {frames[i]} frames, the clips need {min_frames}"
        assert loader.stats.empty_batches == 0 and loader.stats.images == len(usable)
    assert set(planned) == usable  # never planned, never decoded


def failing(loader: ClipLoader, victim: int, reason: str):
    """``loader.decoder.decode_batch`` that returns ``reason`` for video ``victim`` and decodes the others."""
    real = loader.decoder.decode_batch
    path = loader.source.videos[victim].path

    def decode_batch(infos, indices):
        results = real(infos, indices)
        return [reason if info.path == path else result for info, result in zip(infos, results)]

    return decode_batch


def test_a_video_failing_at_decode_time_is_left_out_of_its_batch_and_named(video_root, monkeypatch):
    loader = loader_for(video_root, batch_size=4, shuffle=False)
    victim = 5
    monkeypatch.setattr(loader.decoder, "decode_batch", failing(loader, victim, "decoding failed: injected"))
    batches = list(loader.epoch(0))
    assert [b["ids"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 6, 7], [8, 9, 10, 11]]  # the others survive
    assert [b["index"] for b in batches] == [0, 1, 2]
    assert loader.stats.bad_files == [(loader.source.names[victim], "decoding failed: injected")]
    assert batches[1]["clips"].host_frames.tolist() == [4, 4, 4] and len(batches[1]["reversed"]) == 3
    # alone in its batch: the batch is skipped and counted, the epoch goes on
    alone = loader_for(video_root, batch_size=1, shuffle=False)
    monkeypatch.setattr(alone.decoder, "decode_batch", failing(alone, victim, "decoding failed: injected"))
    batches = list(alone.epoch(0))
    assert [b["index"] for b in batches] == [k for k in range(COUNT) if k != victim]
    assert alone.stats.empty_batches == 1 and alone.stats.bad_count == 1


def test_strict_raises_bad_video_error_naming_the_video(video_root, monkeypatch):
    loader = loader_for(video_root, batch_size=4, strict=True)
    monkeypatch.setattr(loader.decoder, "decode_batch", failing(loader, 7, "decoding failed: injected"))
    name = loader.source.names[7]
    with pytest.raises(BadVideoError, match=f"{name}: decoding failed: injected"):
        list(loader.epoch(0))
    assert not any(t.name in THREAD_NAMES and t.is_alive() for t in threading.enumerate())


def test_an_epoch_whose_videos_all_fail_to_decode_ends_with_an_error_naming_them(video_root, monkeypatch):
    loader = loader_for(video_root, batch_size=4, shuffle=False, max_consecutive_bad=None)
    monkeypatch.setattr(loader.decoder, "decode_batch", lambda infos, indices: ["decoding failed: x"] * len(infos))
    result = epoch_within(loader)
    error = result.get("error")
    assert isinstance(error, RuntimeError), result
    message = str(error)
    assert f"none of the {COUNT} files of epoch 0 could be decoded" in message and "\n" not in message
    assert f"{loader.source.names[0]} (decoding failed: x)" in message


@pytest.mark.parametrize("max_consecutive_bad", [None, 2])
def test_videos_failing_to_decode_end_the_epoch_with_bad_video_error(video_root, monkeypatch, max_consecutive_bad):
    loader = loader_for(video_root, batch_size=4, shuffle=False, max_consecutive_bad=max_consecutive_bad)
    monkeypatch.setattr(loader.decoder, "decode_batch", lambda infos, indices: ["decoding failed: x"] * len(infos))
    result = epoch_within(loader)
    assert isinstance(result.get("error"), BadVideoError), result
    assert not isinstance(result.get("error"), BadImageError)


def test_a_folder_of_only_bad_videos_is_refused_at_construction(av, tmp_path):
    folder = str(tmp_path / "bad")
    expected = synthetic.write_bad_videos(folder)
    with pytest.raises(BadVideoError) as raised:
        loader_for(folder)
    message = str(raised.value)
    assert message.startswith(f"none of the {len(expected)} videos can be used: ") and "\n" not in message
    assert message.endswith(" ...")  # more than the three it names
    named = [name for name in expected if os.path.join(folder, name) + " (" in message]
    assert len(named) == 3, message
    for name in named:
        assert expected[name] in message.split(os.path.join(folder, name) + " (")[1].split(")")[0]


def test_a_folder_of_only_short_videos_is_refused_at_construction(video_root):
    with pytest.raises(BadVideoError, match=r"none of the 12 videos can be used: .*class_0.* \(too short: \d+ frames, "
                                            r"the clips need 41\)"):
        loader_for(video_root, min_frames=max(FRAMES) + 1)


# --- resume and leaving early --------------------------------------------------------------------------------------


def test_resume_mid_epoch_gives_the_same_batches(video_root):
    loader = loader_for(video_root, PLANS["odd_one_out"], batch_size=2)
    full = list(loader.epoch(1))
    assert len(full) == len(loader) == COUNT // 2
    for start in (1, 4, len(full)):
        resumed = list(loader.epoch(1, start=start))
        assert [b["index"] for b in resumed] == list(range(start, len(full)))
        for a, b in zip(resumed, full[start:]):
            assert torch.equal(a["ids"], b["ids"]) and torch.equal(a["odd"], b["odd"])
            assert all(torch.equal(a["clips"].clip(k), b["clips"].clip(k)) for k in range(len(a["ids"])))
    with pytest.raises(ValueError, match=r"start must be in \[0, 6\], got 7"):
        loader.epoch(1, start=len(full) + 1)


def test_leaving_an_epoch_early_stops_the_background_threads(video_root):
    before = threading.active_count()
    loader = loader_for(video_root, batch_size=2, prefetch=1, num_threads=2)
    done = threading.Event()

    def leave_early():
        for epoch in range(3):
            for k, _batch in enumerate(loader.epoch(epoch)):
                if k == 1:
                    break
        done.set()

    thread = threading.Thread(target=leave_early, daemon=True)
    thread.start()
    thread.join(60)
    assert done.is_set(), "leaving the epoch early hung"
    assert not any(t.name in THREAD_NAMES and t.is_alive() for t in threading.enumerate())
    assert threading.active_count() <= before + 2  # the decoder's pool, not threads left by each epoch
    # the abandoned epochs left nothing behind: the next one has every video once
    assert sorted(run_epoch(loader, 3)) == list(range(COUNT))
