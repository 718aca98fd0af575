"""Videos inside tar shards: indexed in place, decoded by seeking into the shard, the same clips as the files."""

import os
import tarfile

import numpy as np
import pytest
import torch

from fastssl.data import synthetic
from fastssl.data.video import ClipLoader, FrameDecoder, open_video_source, video_folder
from fastssl.data.video.motion import motion_profile
from fastssl.data.video.sampling import arrow_of_time_clips

av = pytest.importorskip("av")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """(folder of 2 classes x 3 VP9 videos, [two shards holding them in webdataset layout with .cls labels, the
    second also a truncated video])."""
    root = tmp_path_factory.mktemp("shards")
    folder = synthetic.write_video_folder(str(root / "folder"), classes=2, per_class=3, frames=20, size=32, seed=4)
    bad = synthetic.write_bad_videos(str(root / "bad"))
    assert "bad_truncated.webm" in bad
    paths = []
    for shard, classes in ((0, [0]), (1, [1])):
        path = str(root / f"shard-{shard}.tar")
        with tarfile.open(path, "w") as tar:
            for c in classes:
                for name in sorted(os.listdir(os.path.join(folder, f"class_{c}"))):
                    key = f"c{c}_{os.path.splitext(name)[0]}"
                    tar.add(os.path.join(folder, f"class_{c}", name), arcname=f"{key}.webm")
                    label = str(root / f"{key}.cls")
                    with open(label, "w") as f:
                        f.write(str(c))
                    tar.add(label, arcname=f"{key}.cls")
            if shard == 1:
                tar.add(str(root / "bad" / "bad_truncated.webm"), arcname="zz_bad.webm")
        paths.append(path)
    return folder, paths


def test_members_are_indexed_in_place_with_their_labels(shards, tmp_path):
    folder, paths = shards
    source = open_video_source(paths, cache=str(tmp_path))
    files = video_folder(folder, cache=False)
    assert len(source) == 7 and source.labels.tolist() == [0, 0, 0, 1, 1, 1, -1]
    assert source.bad == {f"{paths[1]}:zz_bad.webm": source.videos[6].bad} and "truncated" in source.videos[6].bad
    for member, file in zip(source.videos[:6], files.videos):
        assert member.offset > 0 and member.path in paths
        assert (member.frames, member.keyframes, member.width) == (file.frames, file.keyframes, file.width)


def test_a_member_decodes_to_the_frames_of_its_file(shards):
    folder, paths = shards
    source = open_video_source(paths, cache=False)
    files = video_folder(folder, cache=False)
    wanted = [19, 3, 4, 11, 3]
    for member, file in zip(source.videos[:6], files.videos):
        assert np.array_equal(FrameDecoder().frames(member, wanted), FrameDecoder().frames(file, wanted))
    np.testing.assert_array_equal(motion_profile(source.videos[4]), motion_profile(files.videos[4]))


@pytest.mark.parametrize("decoder", ["pyav", "dali"])
def test_the_clip_loader_reads_shards(shards, decoder):
    if decoder == "dali":
        pytest.importorskip("nvidia.dali")
    folder, paths = shards

    def plan(ids, frames, epoch):
        return arrow_of_time_clips(ids, frames, clip_len=4, seed=0, epoch=epoch)

    from_shards = ClipLoader(paths, batch_size=4, plan=plan, keep_clips=True, decoder=decoder, cache=False)
    from_files = ClipLoader(folder, batch_size=4, plan=plan, keep_clips=True, decoder=decoder, cache=False)
    assert [name for name, _ in from_shards.excluded] == [f"{paths[1]}:zz_bad.webm"]
    clips = {}
    for loader in (from_shards, from_files):
        for batch in loader.epoch(2):
            for b, i in enumerate(batch["ids"].tolist()):
                clips.setdefault(i, []).append(batch["clips"].clip(b))
    assert sorted(clips) == list(range(6))  # ids 0..5 are the same videos in both sources (sorted names)
    for pair in clips.values():
        assert len(pair) == 2 and torch.equal(pair[0], pair[1])


def test_a_changed_shard_is_probed_again(shards, tmp_path):
    _, paths = shards
    first = open_video_source(paths, cache=str(tmp_path))
    stat = os.stat(paths[0])
    os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = open_video_source(paths, cache=str(tmp_path))
    assert again.videos[0].mtime_ns == first.videos[0].mtime_ns + 10**9
    assert again.videos[3] == first.videos[3]  # the other shard's entries come from the cache


def test_the_same_clips_whatever_the_decoder(shards):
    pytest.importorskip("nvidia.dali")
    folder, _ = shards

    def plan(ids, frames, epoch):
        return arrow_of_time_clips(ids, frames, clip_len=5, stride=3, seed=1, epoch=epoch)

    decoded = {}
    for decoder, batch_size in (("pyav", 4), ("dali", 3)):
        loader = ClipLoader(folder, batch_size=batch_size, plan=plan, keep_clips=True, decoder=decoder, cache=False)
        for batch in loader.epoch(0):
            for b, i in enumerate(batch["ids"].tolist()):
                decoded.setdefault(i, []).append(batch["clips"].clip(b))
    assert len(decoded) == 6 and all(len(c) == 2 and torch.equal(*c) for c in decoded.values())
