"""The synthetic videos with sound: deterministic, and picture and sound share a cause (measured from the files)."""

import os

import numpy as np
import pytest

from fastssl.data import synthetic

av = pytest.importorskip("av")

FPS, RATE = 16, 48000


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """4 classes x 3 WebM videos (VP9 + Opus) of 48 frames of 48 x 48, seed 3."""
    return synthetic.write_av_folder(str(tmp_path_factory.mktemp("av")), classes=4, per_class=3, seed=3)


def decoded(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(frames (T, H, W, 3) int16, sound (N,) float32 mono) of a file, decoded with PyAV from the start."""
    from fastssl.data.video.decode import rgb24

    with av.open(path) as container:
        frames = np.stack([rgb24(f) for f in container.decode(video=0)]).astype(np.int16)
    with av.open(path) as container:
        sound = np.concatenate([f.to_ndarray().reshape(f.layout.nb_channels, -1).mean(0)
                                for f in container.decode(audio=0)])
    return frames, sound


def shape_and_loudness(path: str, label: int, index: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Per frame of the file: the shape's size (sqrt of the pixels of its colour) and the loudness (RMS of the sound
    over the frame's 1 / FPS seconds around its time), both measured from the decoded file. The shape's colour is
    the renderer's (the most frequent pixel value of the video rendered again from the file's key)."""
    rendered, _, _ = synthetic.render_av(label, 48, 48, 48, FPS, RATE, np.random.default_rng([seed, label, index]))
    codes = rendered.reshape(-1, 3).astype(np.int64) @ np.array([65536, 256, 1])
    colour = rendered.reshape(-1, 3)[codes == np.bincount(codes).argmax()][0].astype(np.int16)
    frames, sound = decoded(path)
    size = np.sqrt((np.abs(frames - colour).max(-1) < 40).sum((1, 2)))
    half = RATE // FPS // 2
    centres = [round(t / FPS * RATE) for t in range(len(frames))]
    loudness = np.array([np.sqrt(np.mean(sound[max(c - half, 0):c + half] ** 2)) for c in centres])
    return size, loudness


def test_the_folder_is_deterministic_and_keyed_by_seed(tmp_path, folder):
    again = synthetic.write_av_folder(str(tmp_path / "again"), classes=4, per_class=3, seed=3)
    other = synthetic.write_av_folder(str(tmp_path / "other"), classes=1, per_class=1, seed=4)
    names = sorted(os.path.join(c, f) for c in os.listdir(folder) for f in os.listdir(os.path.join(folder, c)))
    assert len(names) == 12 and all(name.endswith(".webm") for name in names)
    for name in names:
        assert open(os.path.join(folder, name), "rb").read() == open(os.path.join(again, name), "rb").read(), name
    first = os.path.join("class_0", "00000.webm")
    assert open(os.path.join(folder, first), "rb").read() != open(os.path.join(other, first), "rb").read()
    with av.open(os.path.join(folder, first)) as container:
        (video,), (audio,) = container.streams.video, container.streams.audio
        assert (video.codec_context.name, audio.codec_context.name, audio.codec_context.sample_rate) == \
            ("vp9", "opus", RATE)


@pytest.mark.parametrize("container, audio", [("mp4", "track"), ("webm", "wav"), ("mp4", "flac"), ("webm", "ogg")])
def test_other_containers_and_audio_files_beside_the_videos(tmp_path, container, audio):
    roots = [synthetic.write_av_folder(str(tmp_path / name), classes=2, per_class=1, frames=16, container=container,
                                       audio=audio, seed=1) for name in ("a", "b")]
    files = sorted(os.listdir(os.path.join(roots[0], "class_1")))
    assert files == (["00000.mp4"] if audio == "track" else sorted(["00000." + container, "00000." + audio]))
    for name in files:  # deterministic whatever the codecs
        a, b = (open(os.path.join(root, "class_1", name), "rb").read() for root in roots)
        assert a == b
    with av.open(os.path.join(roots[0], "class_1", "00000." + container)) as video_file:
        assert len(video_file.streams.audio) == (1 if audio == "track" else 0)
    if audio != "track":
        with av.open(os.path.join(roots[0], "class_1", "00000." + audio)) as audio_file:
            stream = audio_file.streams.audio[0]
            assert stream.codec_context.name == {"wav": "pcm_s16le", "flac": "flac", "ogg": "opus"}[audio]


def test_loudness_follows_the_shapes_size_and_half_a_second_later_does_not(folder):
    shift = FPS // 2  # half a second in frames
    aligned, shifted = [], []
    for label in range(4):
        for index in range(3):
            size, loudness = shape_and_loudness(os.path.join(folder, f"class_{label}", f"{index:05d}.webm"), label,
                                                index)
            assert size.min() > 0 and size.max() > 2 * size.min()  # the shape is seen, and it changes size
            aligned.append(np.corrcoef(size, loudness)[0, 1])
            shifted += [np.corrcoef(size[shift:], loudness[:-shift])[0, 1],
                        np.corrcoef(size[:-shift], loudness[shift:])[0, 1]]
    # 3 s of a path smoothed over ~0.3 s hold ~10 independent values: a shifted correlation is noisy, never close
    shifted = np.abs(shifted).reshape(-1, 2)
    assert min(aligned) > 0.95 and shifted.mean() < 0.4, (np.round(aligned, 3), np.round(shifted, 3))
    assert (np.array(aligned) - shifted.max(1) > 0.3).all(), (np.round(aligned, 3), np.round(shifted, 3))


def test_classes_differ_in_spectrum(folder):
    """Each video's spectrum (magnitude in 48 log-spaced bands, 100 Hz - 8 kHz, normalised) is nearest to the mean
    spectrum of its own class among the others (leave one out), and its strongest band holds its class's
    fundamental."""
    edges = np.geomspace(100, 8000, 49)
    spectra, labels, peaks = [], [], []
    for label in range(4):
        for index in range(3):
            _, sound = decoded(os.path.join(folder, f"class_{label}", f"{index:05d}.webm"))
            magnitude = np.abs(np.fft.rfft(sound))
            frequency = np.fft.rfftfreq(len(sound), 1 / RATE)
            bands = np.array([magnitude[(frequency >= a) & (frequency < b)].sum() for a, b in zip(edges, edges[1:])])
            spectra.append(bands / np.linalg.norm(bands))
            labels.append(label)
            peaks.append(frequency[magnitude.argmax()])
    spectra, labels = np.array(spectra), np.array(labels)
    for k in range(len(labels)):
        others = np.arange(len(labels)) != k
        means = [spectra[others & (labels == c)].mean(0) for c in range(4)]
        assert int(np.argmin([np.linalg.norm(spectra[k] - m) for m in means])) == labels[k], k
    for peak, label in zip(peaks, labels):
        fundamental, weights = synthetic.av_timbre(int(label))
        assert weights.argmax() == 0 and abs(peak / fundamental - 1) < 0.03, (peak, fundamental)


def test_odd_files_from_write_av_file(tmp_path):
    silent = synthetic.write_av_file(str(tmp_path / "silent.webm"), frames=16, sound=np.zeros(RATE))
    synthetic.write_av_file(str(tmp_path / "stereo.mp4"), frames=16, audio="wav",
                            sound=np.stack([np.full(RATE // 2, 0.5), np.full(RATE // 2, -0.25)]))
    mute = synthetic.write_av_file(str(tmp_path / "mute.webm"), frames=16, audio=None)
    with av.open(silent) as container:
        assert np.abs(np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)])).max() < 1e-4
    with av.open(os.path.join(tmp_path, "stereo.wav")) as container:
        samples = np.concatenate([f.to_ndarray().reshape(-1, 2) for f in container.decode(audio=0)])
        assert samples.shape == (RATE // 2, 2) and samples[:, 0].min() == 16384 and samples[:, 1].max() == -8192
    with av.open(mute) as container:
        assert not container.streams.audio and container.streams.video[0].frames in (0, 16)
    with pytest.raises(ValueError, match="path must end with"):
        synthetic.write_av_file(str(tmp_path / "x.avi"))
    with pytest.raises(ValueError, match="audio must be one of"):
        synthetic.write_av_file(str(tmp_path / "x.webm"), audio="mp3")
    with pytest.raises(ValueError, match="encodes .* Hz only"):
        synthetic.write_av_file(str(tmp_path / "x.webm"), sample_rate=44100)
