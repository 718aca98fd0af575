"""The audio index: each video's audio probed by decoding it once (its own track or a file beside it), bad audio
recorded with the reason, cached beside the video index."""

import importlib.util
import json
import os
import struct
import tarfile

import numpy as np
import pytest

from fastssl.data import synthetic
from fastssl.data.audio import AudioDecoder, AudioInfo, index, index_audio, probe_audio, sidecar_for
from fastssl.data.video import video_folder
from fastssl.data.video.sources import video_shards

av = pytest.importorskip("av")

RATE = 48000


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{name: path}: good files (WebM/Opus and MP4/AAC tracks, WAV/FLAC/OGG files beside videos) and the bad
    catalogue, 32 frames (2 s) each."""
    folder = tmp_path_factory.mktemp("audio")
    paths = {}

    def write(name, **options):
        paths[name] = synthetic.write_av_file(str(folder / name), frames=32, seed=5, **options)
        return paths[name]

    write("track.webm")
    write("track.mp4")
    for kind in ("wav", "flac", "ogg"):
        paths[kind] = os.path.splitext(write(f"beside_{kind}.webm", audio=kind))[0] + "." + kind
    write("mute.webm", audio=None)
    write("silent.webm", sound=np.zeros(2 * RATE))
    write("short.webm", sound=np.full(RATE // 10, 0.1))

    def derived(name, data: bytes):
        paths[name] = str(folder / name)
        with open(paths[name], "wb") as f:
            f.write(data)

    def read(name) -> bytes:
        with open(paths[name], "rb") as f:
            return f.read()

    for name in ("track.webm", "wav", "flac"):
        data = read(name)
        derived("truncated_" + os.path.basename(paths[name]), data[:len(data) // 2])
    derived("empty.wav", b"")
    derived("text.wav", b"this is not audio\n")
    derived("random.ogg", np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    wav = bytearray(read("wav"))
    claims = bytearray(wav)
    claims[22:24], claims[32:34] = struct.pack("<H", 100), struct.pack("<H", 200)  # 100 channels
    derived("channels.wav", bytes(claims))
    claims = bytearray(wav)
    claims[24:28], claims[28:32] = struct.pack("<I", 2_000_000_000), struct.pack("<I", 4_000_000_000)
    derived("rate.wav", bytes(claims))
    for name in ("track.mp4", "track.webm"):  # 4 audio packets in the middle overwritten
        with av.open(paths[name]) as container:
            packets = [(p.pos, p.size) for p in container.demux(container.streams.audio[0]) if p.size]
        data = bytearray(read(name))
        rng = np.random.default_rng(1)
        for position, size in packets[len(packets) // 2:len(packets) // 2 + 4]:
            data[position:position + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        derived("corrupt_" + name, bytes(data))
    return paths


@pytest.mark.parametrize("name, codec, sidecar", [("track.webm", "opus", False), ("track.mp4", "aac", False),
                                                  ("wav", "pcm_s16le", True), ("flac", "flac", True),
                                                  ("ogg", "opus", True)])
def test_probe_reads_good_audio(files, name, codec, sidecar):
    info = probe_audio(files[name])
    assert info.bad is None, info.bad
    assert (info.sample_rate, info.channels, info.codec, info.sidecar, info.offset) == (RATE, 1, codec, sidecar, -1)
    assert info.start == 0.0 and info.bytes == os.path.getsize(files[name])
    # 2 s of sound: exactly, but for AAC's last frame (its end padding is decoded)
    assert info.samples == 2 * RATE if codec != "aac" else 2 * RATE <= info.samples < 2 * RATE + 1024
    assert info.duration == info.samples / RATE
    assert 0.5 < info.peak <= 1.0
    assert AudioInfo.from_json(json.loads(json.dumps(info.to_json()))) == info


@pytest.mark.parametrize("name, reason", [
    ("mute.webm", "no audio stream"),
    ("silent.webm", "silent: peak below 0.0001"),
    ("short.webm", "too short: 0.100 s of audio, at least 1 s needed"),
    ("truncated_track.webm", "truncated: its packets end at"),
    ("truncated_beside_wav.wav", "truncated: its data chunk holds"),
    ("truncated_beside_flac.flac", "corrupt: "),
    ("empty.wav", "empty file"),
    ("text.wav", "unreadable: "),
    ("random.ogg", "unreadable: "),
    ("channels.wav", "its header claims 100 channels (MAX_CHANNELS is 64)"),
    ("rate.wav", "its header claims a sample rate of 2000000000 Hz"),
    ("corrupt_track.mp4", "corrupt: Invalid data found"),
    ("corrupt_track.webm", "corrupt: its timestamps jump from"),
])
def test_bad_audio_is_recorded_with_the_reason(files, name, reason):
    info = probe_audio(files[name], min_seconds=1.0)
    assert info.bad is not None and info.bad.startswith(reason), info.bad
    assert "\n" not in info.bad
    if reason.startswith(("silent", "too short")):  # measured, and kept
        assert info.sample_rate == RATE and info.samples > 0
    else:
        assert info.samples == 0 and info.sample_rate == 0


def test_probe_of_a_missing_file_and_the_limits(files, tmp_path):
    assert probe_audio(str(tmp_path / "nothing.wav")).bad.startswith("unreadable: ")
    assert probe_audio(files["wav"], min_seconds=2.0).bad is None  # 2 s of 2 s
    assert probe_audio(files["wav"], min_seconds=2.001).bad.startswith("too short: 2.000 s")
    assert probe_audio(files["wav"], silence=0.99).bad.startswith("silent")


def test_sidecar_for_takes_the_first_audio_file_beside_the_video(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    assert sidecar_for(str(video)) is None
    (tmp_path / "clip.ogg").write_bytes(b"")
    (tmp_path / "clip2.wav").write_bytes(b"")  # another stem
    assert sidecar_for(str(video)) == str(tmp_path / "clip.ogg")
    (tmp_path / "clip.wav").write_bytes(b"")
    assert sidecar_for(str(video)) == str(tmp_path / "clip.wav")


@pytest.fixture
def av_folder(tmp_path):
    """2 classes x 2 WebM videos with sound tracks, a FLAC beside one of them, and a video that is not one."""
    root = synthetic.write_av_folder(str(tmp_path / "videos"), classes=2, per_class=2, frames=16, seed=2)
    beside = os.path.join(root, "class_1", "00000.webm")
    synthetic.write_av_file(beside, label=1, frames=16, seed=9, audio="flac")  # its video now has no sound
    with open(os.path.join(root, "class_1", "zz_broken.webm"), "w") as f:
        f.write("not a video")
    return root


def test_index_takes_the_file_beside_a_video_and_caches(av_folder, monkeypatch, tmp_path):
    source = video_folder(av_folder, cache=False)
    names = [os.path.relpath(n, av_folder) for n in source.names]
    assert names == ["class_0/00000.webm", "class_0/00001.webm", "class_1/00000.webm", "class_1/00001.webm",
                     "class_1/zz_broken.webm"]
    probed = []
    real = index.probe_audio
    monkeypatch.setattr(index, "probe_audio", lambda path, **kw: probed.append(path) or real(path, **kw))
    audio = index_audio(source, num_threads=2)
    assert len(audio) == 5 and sorted(probed) == sorted([source.names[i] for i in (0, 1, 3)] + [audio[2].path])
    assert audio[2].path.endswith("class_1/00000.flac") and audio[2].sidecar and audio[2].codec == "flac"
    assert [a.sidecar for a in audio] == [False, False, True, False, False]
    assert all(a.bad is None and a.duration == 1.0 for a in audio[:4])
    assert audio[4].bad == "the video is unusable" and source.videos[4].bad is not None
    cache = os.path.join(av_folder, index.CACHE_NAME)
    assert set(json.load(open(cache))["videos"]) == set(names[:4])  # the unusable video is not cached

    assert index_audio(source) == audio and len(probed) == 4  # all from the cache
    os.utime(audio[2].path, ns=(1, 1))  # the file beside the video changed
    again = index_audio(source)
    assert probed[4:] == [audio[2].path] and again[2].mtime_ns == 1 and again[:2] == audio[:2]
    os.remove(audio[2].path)  # no file beside it any more: the video's own track (none)
    gone = index_audio(source)
    assert probed[5:] == [source.names[2]] and gone[2].bad == "no audio stream" and not gone[2].sidecar
    index_audio(source, silence=1e-3)  # other limits: all probed again
    assert len(probed) == 10
    index_audio(source, silence=1e-3, cache=False)
    assert len(probed) == 14
    elsewhere = tmp_path / "cache"
    index_audio(source, cache=str(elsewhere))
    assert [n.startswith("audio-index-") for n in os.listdir(elsewhere)] == [True]
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.warns(RuntimeWarning, match="the audio index could not be cached"):
        assert index_audio(source, cache=str(not_a_folder))[0] == audio[0]


def test_index_of_videos_in_tar_shards_reads_their_own_tracks(av_folder, tmp_path):
    shard = str(tmp_path / "shard.tar")
    with tarfile.open(shard, "w") as tar:
        tar.add(os.path.join(av_folder, "class_0", "00001.webm"), arcname="a.webm")
        tar.add(os.path.join(av_folder, "class_1", "00000.flac"), arcname="b.flac")  # not a video: not looked at
        tar.add(os.path.join(av_folder, "class_1", "00001.webm"), arcname="c.webm")
    source = video_shards([shard], cache=False)
    audio = index_audio(source, cache=str(tmp_path / "cache"))
    files = [probe_audio(os.path.join(av_folder, "class_0", "00001.webm")),
             probe_audio(os.path.join(av_folder, "class_1", "00001.webm"))]
    for member, file, video in zip(audio, files, source.videos):
        assert member.offset == video.offset > 0 and member.path == shard and not member.sidecar
        assert (member.samples, member.peak, member.start, member.codec) == (file.samples, file.peak, file.start,
                                                                             file.codec)
    assert index_audio(source, cache=str(tmp_path / "cache")) == audio


def test_an_audio_member_beside_a_video_member_in_a_tar_shard_is_its_audio(files, tmp_path):
    shard = str(tmp_path / "shard.tar")
    with tarfile.open(shard, "w") as tar:
        for key, video, audio in (("k0", files["beside_wav.webm"], files["wav"]),
                                  ("k1", files["beside_flac.webm"], files["flac"]),
                                  ("k2", files["track.webm"], None),
                                  ("k3", files["beside_ogg.webm"], None)):  # its audio elsewhere: a mute video
            tar.add(video, arcname=f"{key}.webm")
            if audio is not None:
                tar.add(audio, arcname=key + os.path.splitext(audio)[1])
    with tarfile.open(shard) as tar:
        members = {m.name: (m.offset_data, m.size) for m in tar.getmembers()}
    source = video_shards([shard], cache=False)
    assert index.tar_sidecars(source) == {0: members["k0.wav"], 1: members["k1.flac"]}
    audio = index_audio(source, cache=str(tmp_path / "cache"))
    assert [(a.offset, a.bytes, a.sidecar) for a in audio[:3]] == [
        (*members["k0.wav"], True), (*members["k1.flac"], True), (*members["k2.webm"], False)]
    for member, name in zip(audio, ("wav", "flac", "track.webm")):
        file = probe_audio(files[name])
        assert (member.samples, member.peak, member.codec, member.bad) == (file.samples, file.peak, file.codec, None)
    assert audio[3].bad.startswith("no audio stream")
    assert index_audio(source, cache=str(tmp_path / "cache")) == audio  # cached
    decoder = AudioDecoder(16000, decoder="pyav")
    from_shard = decoder.decode_batch(list(audio[:3]), [0.3, 0.5, 0.7], 0.5)
    from_files = decoder.decode_batch([probe_audio(files[n]) for n in ("wav", "flac", "track.webm")],
                                      [0.3, 0.5, 0.7], 0.5)
    for a, b in zip(from_shard, from_files):
        assert np.array_equal(a, b)
    if importlib.util.find_spec("nvidia") and importlib.util.find_spec("nvidia.dali"):  # the members, whole
        dali = AudioDecoder(RATE, decoder="dali")
        pyav = AudioDecoder(RATE, decoder="pyav")
        for a, b in zip(dali.decode_batch(list(audio[:2]), [0.3, 0.5], 0.5), pyav.decode_batch(list(audio[:2]),
                                                                                             [0.3, 0.5], 0.5)):
            assert np.abs(a - b).max() < 1e-4
        assert dali.decoded == {"dali": 2, "pyav": 0}


def test_a_truncated_wav_inside_a_tar_is_found_through_the_member(files, tmp_path):
    shard = str(tmp_path / "shard.tar")
    with tarfile.open(shard, "w") as tar:
        tar.add(files["truncated_beside_wav.wav"], arcname="x.wav")
        tar.add(files["wav"], arcname="y.wav")
    with tarfile.open(shard) as tar:
        members = {m.name: (m.offset_data, m.size) for m in tar.getmembers()}
    assert probe_audio(shard, member=members["x.wav"]).bad.startswith("truncated: its data chunk holds")
    assert probe_audio(shard, member=members["y.wav"]).samples == 2 * RATE


def test_import_fastssl_data_audio_imports_no_av():
    import subprocess
    import sys

    code = "import sys, fastssl.data.audio; print('av' in sys.modules, 'nvidia.dali' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False False"
