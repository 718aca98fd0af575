"""The audio-visual loader (fastssl.data.av.AVLoader): every usable video once per epoch, exact label shares,
the same pairing in any batch, audio beside the videos, and the bad-audio catalogue (no audio track, silent,
too short, truncated), named or strict."""

import os

import numpy as np
import pytest
import torch

from fastssl.data import synthetic
from fastssl.data.av import AVLoader, AVPairs, CentrePairs
from fastssl.data.video import BadVideoError

pytest.importorskip("av")

RATE, WINDOW = 8000, 0.5
FRAMES, FPS = 24, 16  # 1.5 s videos


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """2 classes x 5 videos with sound, and in class_1 four bad ones: no audio track, silent audio, 0.3 s of audio,
    a truncated file."""
    root = synthetic.write_av_folder(str(tmp_path_factory.mktemp("av")), classes=2, per_class=5, frames=FRAMES,
                                     size=32, fps=FPS, sample_rate=RATE, seed=3)
    bad = os.path.join(root, "class_1")
    options = dict(frames=FRAMES, size=32, fps=FPS, sample_rate=RATE, seed=9)
    synthetic.write_av_file(os.path.join(bad, "mute.webm"), audio=None, **options)
    synthetic.write_av_file(os.path.join(bad, "silent.webm"), sound=np.zeros(int(1.5 * RATE)), **options)
    synthetic.write_av_file(os.path.join(bad, "short.webm"), sound=0.5 * np.ones(int(0.3 * RATE)), **options)
    data = open(os.path.join(root, "class_0", sorted(os.listdir(os.path.join(root, "class_0")))[0]), "rb").read()
    with open(os.path.join(bad, "truncated.webm"), "wb") as f:
        f.write(data[: len(data) // 2])
    return root


BAD = {"mute.webm": "no audio stream", "silent.webm": "silent", "short.webm": "too short",
       "truncated.webm": "truncated"}


def loader(root, kind="avc", **options):
    settings = dict(batch_size=4, pairs=AVPairs(kind, window=WINDOW, min_shift=0.2, max_shift=0.4, seed=1),
                    rate=RATE, keep_audio=True, keep_clips=True, cache=False, decoder="pyav")
    return AVLoader(root, **{**settings, **options})


def epoch_batches(av_loader, epoch=0):
    return list(av_loader.epoch(epoch))


@pytest.mark.parametrize("kind,target", [("avc", "corresponds"), ("sync", "in_sync")])
def test_every_usable_video_once_per_epoch_with_exactly_half_positives(folder, kind, target):
    av = loader(folder, kind)
    for epoch in range(2):
        batches = epoch_batches(av, epoch)
        ids = torch.cat([b["ids"] for b in batches])
        assert sorted(ids.tolist()) == av.usable.tolist() and len(ids) == 10
        assert int(torch.cat([b[target] for b in batches]).sum()) == 5
        for b in batches:
            assert b["audio"].shape == (len(b["ids"]), int(WINDOW * RATE)) and b["audio"].dtype == torch.float32
            assert b["clips"].host_frames.tolist() == [1] * len(b["ids"])
            positive = b[target] == 1
            assert torch.equal(b["audio_ids"][positive], b["ids"][positive])
            if kind == "avc":
                assert bool((b["audio_ids"][~positive] != b["ids"][~positive]).all())
            else:
                assert torch.equal(b["audio_ids"], b["ids"])
            assert float(b["audio"].abs().amax(1).min()) > 1e-3, "every window holds sound"


def test_the_bad_audio_catalogue_is_named_and_left_out(folder):
    av = loader(folder)
    named = {os.path.relpath(name, folder): why for name, why in av.excluded}
    assert named.keys() == {os.path.join("class_1", name) for name in BAD}
    for name, why in BAD.items():
        assert why in named[os.path.join("class_1", name)], named
    epoch_batches(av)
    assert av.stats.bad_files == av.excluded, "every epoch names them"
    with pytest.raises(BadVideoError, match="audio|truncated"):
        loader(folder, strict=True)


def test_a_video_gets_the_same_frame_and_audio_in_any_batch(folder):
    def by_id(batch_size):
        out = {}
        for b in epoch_batches(loader(folder, batch_size=batch_size), 1):
            for k, i in enumerate(b["ids"].tolist()):
                out[i] = (b["clips"].clip(k).clone(), b["audio"][k].clone(), int(b["audio_ids"][k]))
        return out

    three, four = by_id(3), by_id(4)
    assert three.keys() == four.keys()
    for i in three:
        assert torch.equal(three[i][0], four[i][0]) and torch.equal(three[i][1], four[i][1])
        assert three[i][2] == four[i][2]


def test_audio_beside_the_videos_is_read(tmp_path):
    root = synthetic.write_av_folder(str(tmp_path), classes=2, per_class=2, frames=FRAMES, size=32, fps=FPS,
                                     sample_rate=RATE, seed=4, audio="wav")
    assert any(f.endswith(".wav") for f in os.listdir(os.path.join(root, "class_0")))
    av = loader(root, pairs=CentrePairs(WINDOW), audio_decoder="pyav")
    batches = epoch_batches(av)
    assert sum(len(b["ids"]) for b in batches) == 4 and av.excluded == []
    assert all(info.sidecar for info in av.audio)


def test_the_transform_gets_frames_audio_ids_and_epoch(folder):
    seen = []

    def transform(clips, audio, ids, epoch):
        seen.append((len(clips), tuple(audio.shape), ids.tolist(), epoch))
        return {"loudness": audio.abs().mean(1)}

    batches = epoch_batches(loader(folder, transform=transform, keep_audio=False), 2)
    assert all("loudness" in b and "audio" not in b for b in batches)
    assert [s[2] for s in seen] == [b["ids"].tolist() for b in batches] and all(s[3] == 2 for s in seen)


def test_a_bad_rate_is_refused(folder):
    with pytest.raises(ValueError, match="rate"):
        loader(folder, rate=100)
