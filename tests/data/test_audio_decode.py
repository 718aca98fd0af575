"""Audio windows: sample-aligned with the whole track, zeros beyond its ends, mono, resampled; PyAV and DALI agree."""

import math
import os
import tarfile

import numpy as np
import pytest

from fastssl.data import synthetic
from fastssl.data.audio import AudioDecoder, AudioInfo, decode, probe_audio
from fastssl.data.audio.decode import pyav_window

av = pytest.importorskip("av")

RATE = 48000
KINDS = ["webm", "mp4", "wav", "flac", "ogg"]  # Opus and AAC tracks, and files beside videos
STARTS = [-0.4, 0.0, 0.37, 1.234, 2.5, 2.9, 3.5]  # windows of 0.5 s of 3 s tracks: before, inside, across, after


def has_dali() -> bool:
    import importlib.util

    return bool(importlib.util.find_spec("nvidia") and importlib.util.find_spec("nvidia.dali"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{kind: AudioInfo}: 3 s of :func:`synthetic.render_av` sound in each kind, and odd ones: a stereo WAV at
    44.1 kHz (1 kHz left, 3 kHz right), a 12 kHz tone at 44.1 kHz, a stereo Opus track."""
    folder = tmp_path_factory.mktemp("windows")
    infos = {}
    for kind in KINDS:
        track = kind in ("webm", "mp4")
        path = synthetic.write_av_file(str(folder / f"{kind}.{'mp4' if kind == 'mp4' else 'webm'}"), frames=48,
                                       seed=7, audio="track" if track else kind)
        infos[kind] = probe_audio(path if track else os.path.splitext(path)[0] + "." + kind)
    t = np.arange(3 * 44100) / 44100
    stereo = np.stack([0.6 * np.sin(2 * np.pi * 1000 * t), 0.2 * np.sin(2 * np.pi * 3000 * t + 1)])
    infos["stereo44k"] = probe_audio(synthetic.encode_audio(str(folder / "stereo44k.wav"), stereo, 44100))
    infos["tone12k"] = probe_audio(synthetic.encode_audio(str(folder / "tone12k.wav"),
                                                          0.5 * np.sin(2 * np.pi * 12000 * t), 44100))
    t = np.arange(3 * RATE) / RATE
    sound = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 700 * t)])
    infos["stereo_opus"] = probe_audio(synthetic.write_av_file(str(folder / "stereo.webm"), frames=48, sound=sound))
    assert all(info.bad is None for info in infos.values()), {k: i.bad for k, i in infos.items() if i.bad}
    assert infos["stereo44k"].channels == infos["stereo_opus"].channels == 2
    return infos


def whole_track(info: AudioInfo, rate: int) -> np.ndarray:
    """The reference: the track decoded from its start by PyAV alone, the channels' mean, resampled in one go by
    swresample with zeros beyond the track's ends (a window's model; swresample alone reflects the ends)."""
    with av.open(info.path) as container:
        parts = []
        for frame in container.decode(audio=0):
            array = frame.to_ndarray()
            if not frame.format.is_planar:
                array = array.reshape(-1, frame.layout.nb_channels).T
            parts.append(array.astype(np.float64).mean(0) / (32768 if array.dtype == np.int16 else 1))
    samples = np.concatenate(parts).astype(np.float32)
    native = info.sample_rate
    if native == rate:
        return samples
    pad = native // math.gcd(native, rate) * 16
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    frame = av.AudioFrame.from_ndarray(np.concatenate([np.zeros(pad), samples, np.zeros(pad)])[None]
                                       .astype(np.float32), format="flt", layout="mono")
    frame.sample_rate = native
    out = np.concatenate([f.to_ndarray().ravel() for f in resampler.resample(frame) + resampler.resample(None)])
    cut = pad * rate // native
    return out[cut:cut + -(-len(samples) * rate // native)]


def reference_window(track: np.ndarray, k0: int, count: int) -> np.ndarray:
    window = np.zeros(count, np.float32)
    low, high = max(k0, 0), min(k0 + count, len(track))
    if high > low:
        window[low - k0:high - k0] = track[low:high]
    return window


def best_lag(window: np.ndarray, reference: np.ndarray, reach: int = 24) -> int:
    """The shift (samples) of ``reference`` that best matches ``window`` (least squares), within ±reach."""
    inner = slice(reach, len(window) - reach)
    errors = [np.square(window[inner] - np.roll(reference, lag)[inner]).sum() for lag in range(-reach, reach + 1)]
    return int(np.argmin(errors)) - reach


@pytest.mark.parametrize("rate", [RATE, 16000, 44100])
@pytest.mark.parametrize("kind", KINDS)
def test_windows_line_up_with_the_whole_track(files, kind, rate):
    info = files[kind]
    track = whole_track(info, rate)
    decoder = AudioDecoder(rate, decoder="pyav")
    windows = decoder.decode_batch([info] * len(STARTS), STARTS, 0.5)
    for start, window in zip(STARTS, windows):
        assert window.dtype == np.float32 and window.shape == (rate // 2,)
        expected = reference_window(track, round((start - info.start) * rate), rate // 2)
        # Opus: the decoder's state after a seek and PREROLL converges to ~1e-5; AAC: its noise substitution draws
        # other noise after a seek (the bands it codes as noise differ by ~3e-3 here)
        tolerance = 1e-2 if kind == "mp4" else 1e-4
        assert np.abs(window - expected).max() < tolerance, (start, np.abs(window - expected).max())
        if np.abs(expected).max() > 0.05:
            assert best_lag(window, expected) == 0, start


def test_windows_past_the_ends_are_zeros(files):
    info = files["webm"]
    decoder = AudioDecoder(16000, decoder="pyav")
    end = info.start + info.duration
    across_end, after, before, across_start = decoder.decode_batch([info] * 4, [end - 0.25, end + 0.1, -1.0, -0.25],
                                                                   0.5)
    assert np.all(across_end[4000:] == 0) and np.abs(across_end[:3900]).max() > 0.05
    assert np.all(after == 0) and np.all(before == 0)
    assert np.all(across_start[:4000] == 0) and np.abs(across_start[4100:]).max() > 0.05


@pytest.mark.parametrize("rate", [RATE, 16000])
def test_resampling_keeps_a_sines_frequency_and_stereo_becomes_the_mean(files, rate):
    info = files["stereo44k"]  # 0.6 sin(1 kHz) left, 0.2 sin(3 kHz) right: mono 0.3 sin(1 kHz) + 0.1 sin(3 kHz)
    (window,) = AudioDecoder(rate, decoder="pyav").decode_batch([info], [1.0], 1.0)
    spectrum = np.abs(np.fft.rfft(window)) / (rate / 2)  # 1 Hz bins, amplitudes
    assert spectrum.argmax() == 1000 and spectrum[1000] == pytest.approx(0.3, abs=0.003)
    assert spectrum[3000] == pytest.approx(0.1, abs=0.002)
    spectrum[[1000, 3000]] = 0
    assert spectrum.max() < 0.002
    t = 1.0 + np.arange(rate) / rate
    assert np.abs(window - (0.3 * np.sin(2 * np.pi * 1000 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t + 1))).max() < 2e-3
    # a 12 kHz tone is above 16 kHz's Nyquist frequency: filtered out, not folded back to 4 kHz
    (tone,) = AudioDecoder(rate, decoder="pyav").decode_batch([files["tone12k"]], [1.0], 1.0)
    rms = float(np.sqrt(np.mean(tone ** 2)))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.01) if rate == RATE else rms < 0.005


def test_a_stereo_opus_track_becomes_the_mean_of_its_channels(files):
    info = files["stereo_opus"]
    (window,) = AudioDecoder(RATE, decoder="pyav").decode_batch([info], [1.2], 0.5)
    t = 1.2 - info.start + np.arange(RATE // 2) / RATE
    expected = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 700 * t)) / 2
    assert np.abs(window - expected).max() < 0.02  # Opus's loss
    assert np.abs(window - reference_window(whole_track(info, RATE), round(1.2 * RATE), RATE // 2)).max() < 1e-3


def test_a_window_seeks_rather_than_decoding_from_the_start(files, monkeypatch):
    calls = []
    real = decode._fill
    monkeypatch.setattr(decode, "_fill", lambda *args, seek_to: calls.append(seek_to) or real(*args, seek_to=seek_to))
    for kind, preroll in (("webm", 0.3), ("mp4", 0.1), ("wav", 0.0)):
        calls.clear()
        pyav_window(files[kind], 2.0, 8000, 16000)
        margin = (64 * 3 + 64) / RATE  # RESAMPLE_MARGIN at 16 kHz, in 48 kHz samples, and 64 more
        assert len(calls) == 1 and calls[0] == pytest.approx(2.0 - preroll - margin, abs=1e-4)
    calls.clear()
    pyav_window(files["webm"], 0.1, 8000, 16000)  # near the start: no seek
    assert calls == [None]


def test_failures_are_one_line_reasons_and_leave_the_others_alone(files, tmp_path):
    info = files["wav"]
    gone = AudioInfo(str(tmp_path / "gone.wav"), info.bytes, 0, sample_rate=RATE, channels=1, samples=3 * RATE,
                     codec="pcm_s16le", peak=0.5, sidecar=True)
    changed = str(tmp_path / "changed.wav")
    with open(changed, "wb") as f:
        f.write(np.random.default_rng(7).integers(0, 256, info.bytes, dtype=np.uint8).tobytes())  # seeded noise
    garbage = AudioInfo(changed, info.bytes, 0, sample_rate=RATE, channels=1, samples=3 * RATE, codec="pcm_s16le",
                        peak=0.5, sidecar=True)
    bad = AudioInfo("x.webm", 1, 0, bad="silent: peak below 0.0001 (0)")
    for name in ["pyav"] + (["dali"] if has_dali() else []):
        decoder = AudioDecoder(16000, decoder=name)
        batch = [info, gone, garbage, bad, files["webm"]]
        results = decoder.decode_batch(batch, [1.0] * 5, 0.5)
        assert isinstance(results[0], np.ndarray) and isinstance(results[4], np.ndarray)
        assert np.array_equal(results[0], decoder.decode_batch([info], [1.0], 0.5)[0])
        for reason in results[1:4]:
            assert isinstance(reason, str) and "\n" not in reason and len(reason) < 400, reason
        assert results[1].startswith("unreadable: No such file") and results[3] == bad.bad
        assert results[2].startswith("unreadable: ")
        if name == "dali":  # DALI failed first, then PyAV
            assert "(DALI: decoding failed" in results[2] or "(DALI: unreadable" in results[2], results[2]


def test_members_of_a_tar_shard_decode_as_their_files(files, tmp_path):
    shard = str(tmp_path / "shard.tar")
    with tarfile.open(shard, "w") as tar:
        tar.add(files["mp4"].path, arcname="a.mp4")
        tar.add(files["webm"].path, arcname="b.webm")
    with tarfile.open(shard) as tar:
        members = [(m.offset_data, m.size) for m in tar.getmembers()]
    decoder = AudioDecoder(16000, decoder="pyav")
    for member, kind in zip(members, ("mp4", "webm")):
        inside = probe_audio(shard, member=member)
        assert inside.samples == files[kind].samples and inside.offset == member[0]
        for got, want in zip(decoder.decode_batch([inside] * 3, [0.0, 1.5, 2.8], 0.5),
                             decoder.decode_batch([files[kind]] * 3, [0.0, 1.5, 2.8], 0.5)):
            assert np.array_equal(got, want)


def test_threads_and_batches_give_the_same_windows(files):
    infos = [files[k] for k in KINDS] * 3
    starts = list(np.random.default_rng(0).uniform(-0.2, 3.0, len(infos)))
    one = AudioDecoder(16000, num_threads=1, decoder="pyav").decode_batch(infos, starts, 0.25)
    three = AudioDecoder(16000, num_threads=3, decoder="pyav")
    together = three.decode_batch(infos, starts, 0.25)
    alone = [three.decode_batch([i], [s], 0.25)[0] for i, s in zip(infos, starts)]
    for a, b, c in zip(one, together, alone):
        assert np.array_equal(a, b) and np.array_equal(a, c)
    assert three.decoder_name == "pyav" and three.decoded == {"pyav": 2 * len(infos), "dali": 0}


@pytest.mark.skipif(not has_dali(), reason="DALI is not installed")
@pytest.mark.parametrize("rate", [RATE, 16000])
def test_dali_agrees_with_pyav_on_audio_files(files, rate):
    infos = [files[k] for k in ("wav", "flac", "ogg", "stereo44k")]
    starts = STARTS
    dali = AudioDecoder(rate, decoder="dali")
    pyav = AudioDecoder(rate, decoder="pyav")
    assert dali.decoder_name == "dali"
    for info in infos:
        a = dali.decode_batch([info] * len(starts) + [files["webm"]], starts + [1.0], 0.5)
        b = pyav.decode_batch([info] * len(starts) + [files["webm"]], starts + [1.0], 0.5)
        assert np.array_equal(a[-1], b[-1])  # a video's own track: PyAV in both
        for start, x, y in zip(starts, a, b):
            difference = np.abs(x - y)
            k = round((start - info.start) * rate) + np.arange(len(x))  # track samples at rate
            total = -(-info.samples * rate // info.sample_rate)
            inner = (k >= rate // 100) & (k < total - rate // 100)  # 10 ms from the track's ends
            if info.sample_rate == rate:  # no resampling: the same decoded samples
                assert difference.max() < 1e-4, (info.path, start, difference.max())
            else:  # two resamplers: apart at the ends only
                assert difference.max() < 0.05 and difference[inner].max(initial=0) < 1e-3, (info.path, start)
    assert dali.decoded == {"dali": 4 * len(starts), "pyav": 4}


@pytest.mark.skipif(not has_dali(), reason="DALI is not installed")
def test_auto_takes_dali_for_short_audio_files_only(files, tmp_path):
    longer = probe_audio(synthetic.encode_audio(str(tmp_path / "long.wav"), np.full(5 * RATE, 0.25), RATE))
    auto = AudioDecoder(16000, decoder="auto")
    assert auto.decoder_name == "dali" and decode.DALI_AUTO_LONGEST < longer.duration < decode.DALI_LONGEST
    windows = auto.decode_batch([files["wav"], longer, files["webm"]], [1.0, 4.0, 1.0], 0.5)
    assert auto.decoded == {"dali": 1, "pyav": 2}
    assert np.abs(windows[1] - 0.25).max() < 1e-4
    dali = AudioDecoder(16000, decoder="dali")
    dali.decode_batch([files["wav"], longer], [1.0, 4.0], 0.5)
    assert dali.decoded == {"dali": 2, "pyav": 0}


def test_arguments_are_checked(files):
    decoder = AudioDecoder(16000, decoder="pyav")
    with pytest.raises(ValueError, match="one start per item"):
        decoder.decode_batch([files["wav"]], [0.0, 1.0], 0.5)
    with pytest.raises(ValueError, match="seconds must be a positive number"):
        decoder.decode_batch([files["wav"]], [0.0], 0.0)
    with pytest.raises(ValueError, match="decoder must be one of"):
        AudioDecoder(16000, decoder="ffmpeg")
    with pytest.raises(ValueError, match="rate must be a positive int"):
        AudioDecoder(16000.0)
