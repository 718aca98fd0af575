"""Motion profiles: computed from a full low-resolution decode, cached, and used to pick lively windows."""

import os

import numpy as np
import pytest
import torch

from fastssl.data import synthetic
from fastssl.data.video import ClipLoader, video_folder
from fastssl.data.video.motion import motion_profile, motion_profiles, window_motion
from fastssl.data.video.sampling import motion_window_starts, shuffle_learn_tuples
from fastssl.reference.motion_energy import motion_energy

av = pytest.importorskip("av")


def half_still(frames: int = 32, size: int = 32, seed: int = 0) -> np.ndarray:
    """(frames, size, size, 3) uint8: a still first half, then a square sweeping across the frame."""
    rng = np.random.default_rng(seed)
    video = np.repeat(rng.integers(40, 60, (1, size, size, 3), dtype=np.uint8), frames, axis=0)
    for t in range(frames // 2, frames):
        x = (5 * t) % (size - 8)
        video[t, 8:20, x:x + 8] = 230
    return video


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("motion"))
    os.makedirs(os.path.join(root, "a"))
    for i in range(3):
        synthetic.encode_video(os.path.join(root, "a", f"{i}.webm"), half_still(seed=i), gop=8)
    return root


def test_the_profile_is_the_energy_of_the_low_resolution_frames(folder):
    info = video_folder(folder, cache=False).videos[0]
    profile = motion_profile(info, size=16)
    with av.open(info.path) as container:
        frames = [f.reformat(width=16, height=16, format="rgb24").to_ndarray() for f in container.decode(video=0)]
    expected = motion_energy(torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)[None].double() / 255)[0]
    assert profile.shape == (31,) and profile.dtype == np.float32
    np.testing.assert_allclose(profile, expected.numpy(), rtol=1e-5, atol=1e-7)
    assert profile[:14].max() < 0.1 * profile[16:].mean()  # still half against moving half


def test_window_motion_is_the_mean_over_the_window():
    profile = np.random.default_rng(0).random(20).astype(np.float32)
    starts = np.array([0, 3, 11])
    expected = [profile[s:s + 6].mean() for s in starts]  # span 7: 6 pairs
    np.testing.assert_allclose(window_motion(profile, starts, span=7), expected, rtol=1e-6)


def test_the_liveliest_candidate_is_picked_and_keyed_by_id(folder):
    source = video_folder(folder, cache=False)
    profiles = motion_profiles(list(source.videos), folder, cache=False)
    ids, frames = torch.arange(3).repeat(40) + torch.arange(120) // 3 * 3, torch.full((120,), 32)
    uniform = motion_window_starts(ids, frames, [None] * 120, span=8, candidates=8, seed=0)
    lively = motion_window_starts(ids, frames, [profiles[i % 3] for i in range(120)], span=8, candidates=8, seed=0)
    assert float((lively >= 15).float().mean()) > 0.95 > float((uniform >= 15).float().mean())
    one = motion_window_starts(ids[5:6], frames[5:6], [profiles[5 % 3]], span=8, candidates=8, seed=0)
    assert int(one) == int(lively[5])  # keyed by (seed, epoch, id), not by the batch
    first = motion_window_starts(ids, frames, [profiles[i % 3] for i in range(120)], span=8, candidates=1, seed=0)
    assert torch.equal(first, uniform)


def test_profiles_are_cached_and_recomputed_when_a_file_changes(folder, tmp_path, monkeypatch):
    from fastssl.data.video import motion

    source = video_folder(folder, cache=str(tmp_path))
    first = motion_profiles(list(source.videos), folder, cache=str(tmp_path))
    calls = []
    real = motion.motion_profile
    monkeypatch.setattr(motion, "motion_profile", lambda info, **kw: calls.append(info.path) or real(info, **kw))
    again = motion_profiles(list(source.videos), folder, cache=str(tmp_path))
    assert calls == [] and all(np.array_equal(a, b) for a, b in zip(first, again))
    changed = source.videos[1].path
    os.utime(changed, ns=(0, source.videos[1].mtime_ns + 10**9))
    source = video_folder(folder, cache=str(tmp_path))
    motion_profiles(list(source.videos), folder, cache=str(tmp_path))
    assert calls == [changed]


def test_the_loader_hands_the_profiles_to_the_plan(folder, tmp_path):
    seen = []

    def plan(ids, frames, epoch, motion=None):
        seen.append(motion)
        return shuffle_learn_tuples(ids, frames, tau_min=2, tau_max=6, seed=0, epoch=epoch, motion=motion,
                                    candidates=8)

    loader = ClipLoader(folder, batch_size=3, plan=plan, motion=True, cache=str(tmp_path), keep_clips=True)
    batch = next(iter(loader.epoch(0)))
    assert len(seen[0]) == 3 and all(p.shape == (31,) for p in seen[0])
    assert batch["clips"].host_frames.tolist() == [3, 3, 3]
    assert int(batch["clips"].data.numel()) > 0


def test_computing_profiles_shows_a_progress_line_and_reading_them_does_not(folder, tmp_path, capsys):
    source = video_folder(folder, cache=False)
    motion_profiles(list(source.videos), folder, cache=str(tmp_path), progress=True)
    said = capsys.readouterr().err
    assert "motion profiles" in said and "3/3" in said
    motion_profiles(list(source.videos), folder, cache=str(tmp_path), progress=True)  # from the cache: nothing to say
    assert capsys.readouterr().err == ""
