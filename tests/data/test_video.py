"""Video data: synthetic videos, the probed and cached index, clip sampling, the clip decoder, RaggedClips."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from fastssl import random
from fastssl.clips import RaggedClips
from fastssl.data import synthetic
from fastssl.data.video import (FrameDecoder, VideoDecodeError, clip_indices, clip_span, clip_starts, index, probe,
                                video_folder, video_list)
from fastssl.data.video.decode import rgb24, seek_points

CODECS = ["vp9", "h264"]


# --- RaggedClips and clip sampling (no PyAV needed) ---------------------------------------------------------------


def random_clips(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (*shape, 3), dtype=torch.uint8, generator=g) for shape in shapes]


ODD_SHAPES = [(3, 5, 7), (1, 1, 1), (4, 2, 9), (2, 13, 3)]  # (T, H, W)


def test_ragged_clips_pack_and_unpack_odd_sizes():
    clips = random_clips(ODD_SHAPES)
    batch = RaggedClips.from_list(clips)
    assert len(batch) == 4 and batch.data.numel() == sum(c.numel() for c in clips)
    assert batch.host_frames.tolist() == [3, 1, 4, 2]
    assert batch.host_sizes.tolist() == [[5, 7], [1, 1], [2, 9], [13, 3]]
    for b, clip in enumerate(clips):
        assert torch.equal(batch.clip(b), clip)
    images = batch.frames_as_images()
    assert len(images) == 10 and images.data.data_ptr() == batch.data.data_ptr()
    flat = [frame for clip in clips for frame in clip]
    for i, frame in enumerate(flat):
        assert torch.equal(images.image(i), frame.permute(2, 0, 1))


def test_ragged_clips_to_device_keeps_host_copies():
    batch = RaggedClips.from_list(random_clips(ODD_SHAPES))
    assert batch.to("cpu") is batch
    if torch.cuda.is_available():
        moved = batch.to("cuda")
        assert moved.device.type == "cuda" and moved.host_offsets is batch.host_offsets
        assert torch.equal(moved.clip(2).cpu(), batch.clip(2))
        assert torch.equal(moved.to("cpu").clip(3), batch.clip(3))


@pytest.mark.parametrize("clips, message", [
    ([], "clips is empty"),
    ([torch.zeros(2, 3, 3, dtype=torch.uint8)], r"clips\[0\] must be a \(T, H, W, 3\) uint8"),
    ([torch.zeros(2, 3, 3, 3, dtype=torch.float32)], r"clips\[0\] must be a \(T, H, W, 3\) uint8"),
    ([torch.zeros(2, 3, 3, 3, dtype=torch.uint8), torch.zeros(2, 3, 3, 4, dtype=torch.uint8)], r"clips\[1\]"),
    ([torch.zeros(0, 3, 3, 3, dtype=torch.uint8)], "sizes and frames must be positive"),
])
def test_ragged_clips_refuse_bad_input(clips, message):
    with pytest.raises(ValueError, match=message):
        RaggedClips.from_list(clips)


def test_ragged_clips_check_the_layout():
    good = RaggedClips.from_list(random_clips([(2, 3, 4), (1, 2, 2)]))
    with pytest.raises(ValueError, match="point outside data"):
        RaggedClips(good.data, good.offsets, good.sizes, torch.tensor([2, 2]))
    with pytest.raises(ValueError, match="frames must be an int64 tensor of shape"):
        RaggedClips(good.data, good.offsets, good.sizes, torch.tensor([2]))


def test_clip_starts_are_keyed_by_seed_epoch_id_and_view():
    ids = torch.arange(50)
    frames = torch.full((50,), 100) + ids
    starts = clip_starts(ids, frames, clip_len=8, stride=3, seed=1, epoch=2)
    span = clip_span(8, 3)
    assert span == 22 and bool(((starts >= 0) & (starts <= frames - span)).all())
    # one video at a time, or in another order: the same starts
    alone = torch.cat([clip_starts(ids[i:i + 1], frames[i:i + 1], clip_len=8, stride=3, seed=1, epoch=2)
                       for i in range(50)])
    assert torch.equal(alone, starts)
    flipped = clip_starts(ids.flip(0), frames.flip(0), clip_len=8, stride=3, seed=1, epoch=2)
    assert torch.equal(flipped.flip(0), starts)
    for other in (dict(seed=2, epoch=2), dict(seed=1, epoch=3), dict(seed=1, epoch=2, view=1)):
        assert not torch.equal(clip_starts(ids, frames, clip_len=8, stride=3, **other), starts)
    expected = (random.bits(ids, [random.CLIP_START_SLOT], seed=1, epoch=2)[:, 0] * (frames - span + 1)) >> 32
    assert torch.equal(starts, expected)
    assert any("CLIP_START_SLOT" in row.slots for row in random.TAKEN)


def test_clip_starts_cover_every_start_and_refuse_short_videos():
    ids = torch.arange(2000)
    starts = clip_starts(ids, torch.full((2000,), 12), clip_len=4, stride=3, seed=0)  # span 10: starts 0..2
    assert sorted(set(starts.tolist())) == [0, 1, 2]
    with pytest.raises(ValueError, match=r"videos \[1\] have fewer than the 10 frames"):
        clip_starts(torch.tensor([0, 1]), torch.tensor([10, 9]), clip_len=4, stride=3, seed=0)
    assert clip_indices(torch.tensor([5]), clip_len=3, stride=4).tolist() == [[5, 9, 13]]


# --- PyAV: writing, indexing and decoding -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def av():
    return pytest.importorskip("av")


@pytest.fixture(scope="module")
def long_videos(av, tmp_path_factory):
    """{codec: (path, frames as rendered)}: 60 frames of 32 x 48, a key frame every 8 frames at most."""
    folder = tmp_path_factory.mktemp("long")
    video = synthetic.render_video(3, 60, 32, 48, np.random.default_rng(5))
    return {codec: (synthetic.encode_video(str(folder / f"long{synthetic.VIDEO_CODECS[codec][0]}"), video,
                                           codec=codec, gop=8), video) for codec in CODECS}


def full_decode(av, path) -> np.ndarray:
    """Every frame, decoded from the start by PyAV alone: the reference the clip decoder must equal."""
    with av.open(path) as container:
        return np.stack([rgb24(frame) for frame in container.decode(video=0)])


@pytest.mark.parametrize("codec", CODECS)
def test_write_video_folder_is_deterministic_and_small(av, tmp_path, codec):
    first = synthetic.write_video_folder(str(tmp_path / "a"), classes=2, per_class=1, frames=12, size=(32, 48),
                                         codec=codec, seed=4)
    second = synthetic.write_video_folder(str(tmp_path / "b"), classes=2, per_class=1, frames=12, size=(32, 48),
                                          codec=codec, seed=4)
    extension = synthetic.VIDEO_CODECS[codec][0]
    for label in range(2):
        name = os.path.join(f"class_{label}", f"00000{extension}")
        a, b = (open(os.path.join(root, name), "rb").read() for root in (first, second))
        assert a == b and 0 < len(a) < 64 * 1024


@pytest.mark.parametrize("codec", CODECS)
def test_probe_reads_the_container(av, long_videos, codec):
    path, rendered = long_videos[codec]
    info = probe(path)
    assert info.bad is None, info.bad
    assert (info.frames, info.height, info.width, info.codec) == (60, 32, 48, codec)
    assert info.fps == pytest.approx(16) and info.duration == pytest.approx(60 / 16)
    assert info.keyframes[0] == 0 and len(info.keyframes) >= 60 // 8
    assert max(np.diff(info.keyframes + (60,))) <= 8
    assert [info.index_of(info.pts_of(i)) for i in range(60)] == list(range(60))
    # the decoded video is the rendered one, up to the codec's loss
    decoded = full_decode(av, path)
    assert decoded.shape == rendered.shape
    assert np.abs(decoded.astype(np.int16) - rendered).mean() < 12


@pytest.mark.parametrize("codec", CODECS)
def test_clips_equal_the_frames_of_a_full_decode(av, long_videos, codec):
    path, _ = long_videos[codec]
    info = probe(path)
    reference = full_decode(av, path)
    decoder = FrameDecoder()
    cases = [(0, 8, 1), (13, 5, 1), (21, 6, 3), (60 - 16, 8, 2), (60 - 4, 4, 1), (59, 1, 1), (3, 19, 3)]
    for start, length, stride in cases:
        before = decoder.frames_decoded
        clip = decoder.clip(info, start, length, stride)
        wanted = list(range(start, start + length * stride, stride))
        assert clip.shape == (length, 32, 48, 3) and clip.dtype == np.uint8
        assert np.array_equal(clip, reference[wanted]), (start, length, stride)
        # decoded: from the key frame before each wanted frame's group, never more than the frames in between
        decoded = decoder.frames_decoded - before
        assert decoded <= wanted[-1] - info.keyframe_before(start) + 1, (start, length, stride, decoded)
    # a clip at the end decodes from the last key frames, not from the start
    before = decoder.frames_decoded
    decoder.clip(info, 56, 4)
    assert decoder.frames_decoded - before <= 8


@pytest.mark.parametrize("codec", CODECS)
def test_frames_in_any_order_with_repeats_and_far_apart(av, long_videos, codec):
    path, _ = long_videos[codec]
    info = probe(path)
    reference = full_decode(av, path)
    decoder = FrameDecoder()
    indices = [50, 2, 50, 33, 9]
    assert np.array_equal(decoder.frames(info, indices), reference[indices])
    points = seek_points(info, indices)
    assert decoder.seeks == len(points)
    # from each seek point up to the last wanted frame before the next one: far fewer than decoding up to frame 50
    wanted = sorted(set(indices))
    ends = [max(w for w in wanted if w < next_point) for next_point in points[1:] + [info.frames]]
    assert decoder.frames_decoded <= sum(end - point + 1 for point, end in zip(points, ends)) < 50
    with pytest.raises(ValueError, match=r"frame indices must be in \[0, 60\)"):
        decoder.frames(info, [60])


@pytest.mark.parametrize("codec", CODECS)
def test_a_variable_frame_rate_keeps_every_timestamp(av, tmp_path, codec):
    video = synthetic.render_video(1, 30, 32, 32, np.random.default_rng(0))
    stamps = np.cumsum([0] + [40 if i % 3 else 90 for i in range(29)]).tolist()
    path = synthetic.encode_video(str(tmp_path / f"vfr{synthetic.VIDEO_CODECS[codec][0]}"), video, codec=codec,
                                  timestamps_ms=stamps)
    info = probe(path)
    assert info.bad is None and info.frames == 30 and info.pts is not None
    seconds = [float(np.float64(t - info.pts[0]) * info.time_base[0] / info.time_base[1]) for t in info.pts]
    assert seconds == pytest.approx([t / 1000 for t in stamps])
    indices = [3, 17, 18, 29, 0]
    assert np.array_equal(FrameDecoder().frames(info, indices), full_decode(av, path)[indices])


def test_a_batch_of_clips_from_a_source(av, tmp_path):
    root = synthetic.write_video_folder(str(tmp_path / "videos"), classes=3, per_class=1, frames=12, size=(16, 24),
                                        codec="h264", seed=2)
    source = video_folder(root, cache=False)
    ids = torch.tensor([2, 0, 1])
    starts = clip_starts(ids, torch.from_numpy(source.frames)[ids], clip_len=3, stride=2, seed=0, epoch=1)
    decoder = FrameDecoder()
    batch = decoder.clips([source.videos[i] for i in ids.tolist()], starts, clip_len=3, stride=2)
    assert batch.host_frames.tolist() == [3, 3, 3] and batch.host_sizes.tolist() == [[16, 24]] * 3
    for b, i in enumerate(ids.tolist()):
        wanted = list(range(int(starts[b]), int(starts[b]) + 6, 2))
        assert torch.equal(batch.clip(b), torch.from_numpy(full_decode(av, source.names[i])[wanted]))


def test_video_folder_index_is_cached_and_invalidated(av, tmp_path, monkeypatch):
    root = synthetic.write_video_folder(str(tmp_path / "videos"), classes=2, per_class=2, frames=10, size=32, seed=0)
    source = video_folder(root)
    assert source.classes == ["class_0", "class_1"] and source.labels.tolist() == [0, 0, 1, 1]
    assert source.frames.tolist() == [10] * 4 and source.good.tolist() == [0, 1, 2, 3] and source.bad == {}
    assert len(source.read(0)) == os.path.getsize(source.names[0])
    cache = os.path.join(root, index.CACHE_NAME)
    assert set(json.load(open(cache))["videos"]) == {f"class_{c}/0000{i}.webm" for c in (0, 1) for i in (0, 1)}

    probed = []
    real_probe = index.probe
    monkeypatch.setattr(index, "probe", lambda path, **kw: probed.append(path) or real_probe(path, **kw))
    assert video_folder(root).videos == source.videos and probed == []  # all from the cache
    changed = source.names[2]
    os.utime(changed, ns=(1, 1))
    again = video_folder(root)
    assert probed == [changed] and again.videos[2].mtime_ns == 1
    video_folder(root, max_frames=100)  # other limits: everything probed again
    assert len(probed) == 5
    # a cache folder of the user's; a list file
    elsewhere = str(tmp_path / "cache")
    video_folder(root, cache=elsewhere)
    assert len(os.listdir(elsewhere)) == 1
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.warns(RuntimeWarning, match="could not be cached"):  # a warning, and the index all the same
        assert video_folder(root, cache=str(not_a_folder)).frames.tolist() == [10] * 4
    listing = tmp_path / "videos" / "list.txt"
    listing.write_text("class_1/00001.webm 7\nclass_0/00000.webm\n")
    listed = video_list(str(listing), cache=False)
    assert listed.labels.tolist() == [7, -1] and listed.frames.tolist() == [10, 10]


def test_bad_videos_are_recorded_with_the_reason(av, tmp_path):
    folder = str(tmp_path / "bad")
    expected = synthetic.write_bad_videos(folder)
    source = video_folder(folder, cache=False)
    assert source.good.tolist() == []
    reasons = {os.path.basename(name): why for name, why in source.bad.items()}
    assert set(reasons) == set(expected)
    for name, word in expected.items():
        assert word in reasons[name], (name, reasons[name])
    with pytest.raises(VideoDecodeError, match="bad_empty.webm: empty file"):
        FrameDecoder().clip(source.videos[source.names.index(os.path.join(folder, "bad_empty.webm"))], 0, 1)


def test_limits_refuse_before_decoding(av, long_videos):
    path, _ = long_videos["vp9"]
    assert probe(path, max_pixels=32 * 48 - 1).bad == "too large: 32 x 48 = 1536 pixels (max_pixels is 1535)"
    assert "too long" in probe(path, max_frames=59).bad
    info = probe(path)
    decoder = FrameDecoder(max_pixels=1000)
    with pytest.raises(VideoDecodeError, match=r"long\.webm: too large: 32 x 48 pixels \(max_pixels is 1000\)"):
        decoder.clip(info, 0, 2)
    assert decoder.frames_decoded == 0
    with pytest.raises(VideoDecodeError, match=r"too long: 60 frames \(max_frames is 30\)"):
        FrameDecoder(max_frames=30).clip(info, 0, 2)


def test_import_fastssl_data_video_imports_no_av():
    import subprocess
    import sys

    code = "import sys, fastssl, fastssl.data.video, fastssl.clips; print('av' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
