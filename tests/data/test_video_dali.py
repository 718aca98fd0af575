"""DaliClipDecoder: DALI's CPU video decoder against PyAV on synthetic VP9 videos, chosen frames, routing to the
fallback, bad videos and the limits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from fastssl.data import synthetic
from fastssl.data.video import FrameDecoder, PyAVClipDecoder, probe
from fastssl.data.video.dali import DaliClipDecoder, dali_request
from fastssl.data.video.decode import rgb24


def test_dali_request_asks_for_each_frame_once():
    wanted, order = dali_request([7, 2, 7, 0, 2])
    assert wanted.dtype == np.int32 and wanted.tolist() == [0, 2, 7]
    assert wanted[order].tolist() == [7, 2, 7, 0, 2]
    wanted, order = dali_request(np.arange(3, 9))
    assert wanted.tolist() == list(range(3, 9)) and order is None


def test_import_needs_neither_dali_nor_av():
    code = ("import sys; sys.modules['nvidia.dali'] = None; sys.modules['av'] = None\n"
            "import fastssl.data.video.dali as m; print(m.DaliClipDecoder.name)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "dali"


# --- with DALI and PyAV ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def av():
    pytest.importorskip("nvidia.dali")
    return pytest.importorskip("av")


def accurate_rgb(av, path) -> np.ndarray:
    """Every frame, decoded by PyAV and converted as DALI's CPU variant converts (swscale, bilinear chroma from its
    centred positions, exact rounding)."""
    with av.open(path) as container:
        return np.stack([rgb24(frame) for frame in container.decode(video=0)])


def default_rgb(av, path) -> np.ndarray:
    with av.open(path) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def encode_webm(av, path: str, video: np.ndarray, encoder: str, colorspace: int | None = None) -> str:
    """``video`` (T, H, W, 3) uint8 as WebM by ``encoder`` ("libvpx": VP8, "libvpx-vp9"), a key frame every 8
    frames; ``colorspace``: an AVColorSpace the stream is tagged with and converted by (1: BT.709)."""
    with av.open(path, mode="w") as container:
        stream = container.add_stream(encoder, rate=16, options={"deadline": "realtime", "cpu-used": "8"})
        stream.width, stream.height, stream.pix_fmt = video.shape[2], video.shape[1], "yuv420p"
        stream.codec_context.gop_size = 8
        if colorspace is not None:
            stream.codec_context.colorspace = colorspace
        for image in video:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if colorspace == 1:
                frame = frame.reformat(format="yuv420p", dst_colorspace="ITU709")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def videos(av, tmp_path_factory):
    """{name: path}: VP9 videos of a few sizes (widths that are and are not multiples of 32), a VP8 one, an H.264
    one, and a VP9 one with a variable frame rate."""
    folder = tmp_path_factory.mktemp("dali")
    paths = {}
    for k, (frames, h, w) in enumerate([(24, 32, 48), (20, 48, 64), (17, 34, 90)]):
        video = synthetic.render_video(k, frames, h, w, np.random.default_rng(k))
        paths[f"vp9_{h}x{w}"] = synthetic.encode_video(str(folder / f"v{k}.webm"), video, codec="vp9", gop=8)
    video = synthetic.render_video(3, 20, 48, 80, np.random.default_rng(3))
    paths["vp8_48x80"] = encode_webm(av, str(folder / "v8.webm"), video, "libvpx")
    video = synthetic.render_video(4, 16, 32, 32, np.random.default_rng(4))
    paths["h264"] = synthetic.encode_video(str(folder / "h.mp4"), video, codec="h264", gop=8)
    stamps = np.cumsum([0] + [40 if i % 3 else 90 for i in range(19)]).tolist()
    video = synthetic.render_video(5, 20, 32, 32, np.random.default_rng(5))
    paths["vp9_vfr"] = synthetic.encode_video(str(folder / "vfr.webm"), video, codec="vp9", timestamps_ms=stamps)
    return paths


class PyAVFallback(PyAVClipDecoder):
    """The PyAV clip decoder, recording which videos it was handed."""

    def __init__(self):
        super().__init__(num_threads=1)
        self.handed = []

    def decode_batch(self, infos, indices):
        self.handed += [os.path.basename(info.path) for info in infos]
        return super().decode_batch(infos, indices)


def test_dali_cpu_equals_pyav_converting_as_dali_does(av, videos):
    """Bit for bit, every frame; PyAV's default conversion (chroma replicated, not interpolated) differs."""
    names = [name for name in videos if name.startswith("vp")]
    infos = [probe(videos[name]) for name in names]
    decoder = DaliClipDecoder()
    clips = decoder.decode_batch(infos, [np.arange(info.frames) for info in infos])
    for name, info, clip in zip(names, infos, clips):
        assert isinstance(clip, torch.Tensor), clip
        assert clip.shape == (info.frames, info.height, info.width, 3) and clip.dtype == torch.uint8
        assert np.array_equal(clip.numpy(), accurate_rgb(av, videos[name])), name
    difference = np.abs(clips[0].numpy().astype(np.int16) - default_rgb(av, videos[names[0]]))
    assert difference.max() > 10  # PyAV's default conversion (chroma replicated) is not DALI's


def test_dali_cpu_equals_frame_decoder_frame_for_frame(av, videos):
    info = probe(videos["vp9_32x48"])
    (clip,) = DaliClipDecoder().decode_batch([info], [np.arange(info.frames)])
    assert np.array_equal(clip.numpy(), FrameDecoder().frames(info, range(info.frames)))


def test_chosen_frames_in_any_order_with_repeats(av, videos):
    names = ["vp9_32x48", "vp9_48x64", "vp9_34x90", "vp9_vfr", "vp9_32x48"]
    infos = [probe(videos[name]) for name in names]
    requests = [[0, 1, 2], [19, 10, 19, 0, 3], [16], [3, 17, 18, 0, 3], list(range(8, 24, 2))]  # start, end, ...
    clips = DaliClipDecoder().decode_batch(infos, requests)
    for name, wanted, clip in zip(names, requests, clips):
        assert isinstance(clip, torch.Tensor), clip
        assert np.array_equal(clip.numpy(), accurate_rgb(av, videos[name])[wanted]), (name, wanted)
    # a smaller batch after a larger one reuses the pipeline; a larger one builds a new one
    decoder = DaliClipDecoder()
    decoder.decode_batch(infos[:2], requests[:2])
    pipe = decoder.runs.pipe
    decoder.decode_batch(infos[:1], requests[:1])
    assert decoder.runs.pipe is pipe and decoder.runs.capacity == 2
    again = decoder.decode_batch(infos, requests)
    assert decoder.runs.capacity == 5 and all(torch.equal(a, b) for a, b in zip(again, clips))
    assert decoder.decode_batch(infos[:2], [[24], [0]])[0] == "frame indices must be in [0, 24), got 24 .. 24"


def test_other_codecs_and_colour_matrices_go_to_the_fallback(av, videos, tmp_path):
    # a VP9 video tagged BT.709: DALI would convert it as BT.601
    video = synthetic.render_video(1, 8, 32, 32, np.random.default_rng(1))
    tagged = encode_webm(av, str(tmp_path / "bt709.webm"), video, "libvpx-vp9", colorspace=1)
    infos = [probe(videos["h264"]), probe(videos["vp9_32x48"]), probe(tagged)]
    requests = [[5, 1], [2], [0, 7]]
    fallback = PyAVFallback()
    clips = DaliClipDecoder(fallback=fallback).decode_batch(infos, requests)
    assert fallback.handed == ["h.mp4", "bt709.webm"]
    assert torch.equal(clips[0], torch.from_numpy(FrameDecoder().frames(infos[0], [5, 1])))
    assert torch.equal(clips[2], torch.from_numpy(FrameDecoder().frames(infos[2], [0, 7])))
    assert np.array_equal(clips[1].numpy(), accurate_rgb(av, videos["vp9_32x48"])[[2]])
    # without a fallback: the reasons
    reasons = DaliClipDecoder().decode_batch(infos, requests)
    assert "codec h264 (DALI's cpu variant takes vp8, vp9)" in reasons[0]
    assert "colour matrix 1" in reasons[2] and isinstance(reasons[1], torch.Tensor)


def test_bad_videos_give_reasons_and_the_rest_decodes(av, videos, tmp_path, capfd):
    expected = synthetic.write_bad_videos(str(tmp_path / "bad"))
    bad = [probe(str(tmp_path / "bad" / name)) for name in sorted(expected)]
    good = probe(videos["vp9_48x64"])
    # indexed as good, then its second half overwritten by random bytes (the same size): DALI fails on it
    broken_path = str(tmp_path / "broken.webm")
    shutil.copy(videos["vp9_32x48"], broken_path)
    broken = probe(broken_path)
    with open(broken_path, "r+b") as f:
        f.seek(broken.bytes // 2)
        f.write(np.random.default_rng(0).integers(0, 256, broken.bytes - broken.bytes // 2, dtype=np.uint8).tobytes())
    # indexed as good, then cut short
    cut_path = str(tmp_path / "cut.webm")
    shutil.copy(videos["vp9_32x48"], cut_path)
    cut = probe(cut_path)
    os.truncate(cut_path, cut.bytes // 2)
    infos = bad + [broken, good, cut]
    requests = [[0]] * len(bad) + [[20, 23], [4, 2], [0]]
    results = DaliClipDecoder().decode_batch(infos, requests)
    for name, result in zip(sorted(expected), results):
        assert isinstance(result, str) and expected[name] in result and "\n" not in result, (name, result)
        assert str(tmp_path) not in result  # the loader names the video
    assert "decoding failed" in results[len(bad)] and "\n" not in results[len(bad)]
    assert np.array_equal(results[len(bad) + 1].numpy(), accurate_rgb(av, videos["vp9_48x64"])[[4, 2]])
    assert "changed since it was indexed" in results[len(bad) + 2]
    assert capfd.readouterr().err == ""  # what DALI's native code printed went into the reason
    # with a fallback: it gets the video DALI failed on (and fails too: both reasons)
    fallback = PyAVFallback()
    results = DaliClipDecoder(fallback=fallback).decode_batch(infos[-3:], requests[-3:])
    assert fallback.handed == ["broken.webm", "cut.webm"]
    assert "DALI: decoding failed" in results[0] and isinstance(results[1], torch.Tensor)


def test_limits_refuse_before_anything_is_allocated(av, videos):
    info = probe(videos["vp9_32x48"])
    decoder = DaliClipDecoder(max_pixels=32 * 48 - 1)
    (reason,) = decoder.decode_batch([info], [[0]])
    assert reason == "too large: 32 x 48 pixels (max_pixels is 1535)" and decoder.runs.pipe is None
    (reason,) = DaliClipDecoder(max_frames=23).decode_batch([info], [[0]])
    assert reason == "too long: 24 frames (max_frames is 23)"
    (reason,) = DaliClipDecoder(max_frames=30).decode_batch([info], [[0] * 31])
    assert reason == "too long: 31 frames (max_frames is 30)"
    fallback = PyAVFallback()
    (clip,) = DaliClipDecoder(max_bytes=info.bytes - 1, fallback=fallback).decode_batch([info], [[3]])
    assert fallback.handed == ["v0.webm"] and clip.shape == (1, 32, 48, 3)
