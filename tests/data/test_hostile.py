"""Hostile files through every decoder: decoded to the same RGB by all, or skipped and named — never a crash."""

import os
import time

import numpy as np
import pytest

from fastssl.data import make_decoder, synthetic

from data_helpers import DECODERS


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """{name: (bytes, decodable)} of :func:`synthetic.write_hostile_files`' files."""
    folder = str(tmp_path_factory.mktemp("hostile"))
    return {name: (open(os.path.join(folder, name), "rb").read(), ok)
            for name, ok in sorted(synthetic.write_hostile_files(folder, seed=5).items())}


def decode_each(decoder, files: dict) -> dict:
    """{name: (H, W, 3) uint8 array or the reason it was skipped}, from one batch of all ``files``."""
    names = list(files)
    decoded = decoder.decode([files[n] for n in names])
    out = {names[i]: why for i, why in decoded.failed}
    for k, i in enumerate(decoded.kept):
        out[names[i]] = decoded.images.image(k).permute(1, 2, 0).numpy()
    assert sorted(out) == sorted(names)
    return out


@pytest.mark.parametrize("name", DECODERS)
def test_catalogue_is_decoded_or_named_by_every_decoder(name, catalogue, capfd):
    decoder = make_decoder(name)
    files = {n: data for n, (data, _) in catalogue.items()}
    capfd.readouterr()
    ours = decode_each(decoder, files)
    assert capfd.readouterr().err == ""  # the reasons are in the report, not printed by native code
    reference = decode_each(make_decoder("pil"), files)
    for file, (_, ok) in catalogue.items():
        if not ok:
            assert isinstance(ours[file], str) and ours[file] and "\n" not in ours[file], file
            continue
        assert isinstance(ours[file], np.ndarray), f"{file}: {ours[file]}"
        assert ours[file].shape == reference[file].shape, file
        tolerance = 1 if file == "odd_cmyk.jpg" else 0  # CMYK -> RGB rounds differently by 1
        assert np.abs(ours[file].astype(int) - reference[file]).max() <= tolerance, file
    # One file alone gives what it gives inside the batch (a failure elsewhere does not change it).
    for file in ("odd_16bit_rgb.png", "bad_bomb.jpg"):
        alone = decode_each(decoder, {file: files[file]})[file]
        assert type(alone) is type(ours[file]) and (isinstance(alone, str) or np.array_equal(alone, ours[file]))


def expected_rgb(samples: np.ndarray, palette=None) -> np.ndarray:
    """The rule every decoder follows: palette looked up, 16-bit → high byte, alpha dropped, gray repeated."""
    if palette is not None:
        return palette[samples[..., 0]]
    if samples.dtype == np.uint16:
        samples = (samples >> 8).astype(np.uint8)
    colour = samples[..., :3] if samples.shape[2] >= 3 else np.repeat(samples[..., :1], 3, axis=2)
    return colour


@pytest.mark.parametrize("name", DECODERS)
def test_png_colour_types_and_depths_follow_one_rule(name):
    rng = np.random.default_rng(11)
    cases = [(rng.integers(0, 65536, (9, 14, c), dtype=np.uint16), None) for c in (1, 2, 3, 4)]
    cases += [(rng.integers(0, 256, (13, 6, c), dtype=np.uint8), None) for c in (1, 2, 3, 4)]
    cases += [(rng.integers(0, 5, (8, 12, 1), dtype=np.uint8), rng.integers(0, 256, (5, 3), dtype=np.uint8))]
    decoded = make_decoder(name).decode([synthetic.encode_png(s, palette=p) for s, p in cases])
    assert decoded.failed == [] and decoded.kept == list(range(len(cases)))
    for k, (samples, palette) in enumerate(cases):
        got = decoded.images.image(k).permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(got, expected_rgb(samples, palette), err_msg=f"{samples.shape} {samples.dtype}")


@pytest.mark.parametrize("name", DECODERS)
def test_decompression_bomb_is_refused_before_decoding(name):
    """The header's size is checked against max_pixels before any decoder allocates the image."""
    small = synthetic.jpeg_claiming(64, 64)
    big = synthetic.jpeg_claiming(3000, 3000)
    decoded = make_decoder(name, max_pixels=64 * 64).decode([small, big])
    assert decoded.kept == [0] and decoded.failed == [(1, "too large: 3000 x 3000 = 9000000 pixels "
                                                          "(max_pixels is 4096)")]
    decoder = make_decoder(name)
    decoder.decode([small])  # imports and builds what the decoder needs
    started = time.perf_counter()
    decoded = decoder.decode([synthetic.jpeg_claiming(60000, 60000)])
    assert decoded.images is None and decoded.failed[0][1].startswith("too large: 60000 x 60000")
    assert time.perf_counter() - started < 2.0  # torchvision took 36 s to allocate 11 GB and fail


@pytest.mark.parametrize("name", DECODERS)
def test_a_failing_file_never_ends_the_batch(name, monkeypatch):
    """Whatever a decoder raises on one file (here: Pillow, torchvision or DALI refusing it), the rest decodes."""
    rng = np.random.default_rng(3)
    good = [synthetic._encode(synthetic.render(0, 2, 20 + k, 30, rng)) for k in range(3)]
    bad_scan = bytearray(good[1])  # a valid header whose Huffman table is garbage: only decoding finds out
    at = bad_scan.index(b"\xff\xc4")
    bad_scan[at + 5:at + 21] = b"\xff" * 16
    decoded = make_decoder(name).decode([good[0], bytes(bad_scan), good[2]])
    assert decoded.kept == [0, 2] and [i for i, _ in decoded.failed] == [1]
    assert decoded.failed[0][1] and "\n" not in decoded.failed[0][1]


@pytest.mark.skipif("dali" not in DECODERS, reason="needs nvidia-dali")
def test_dali_native_messages_become_the_reason_not_stderr(capfd):
    """libjpeg's messages, printed by DALI's native code while the batch is bisected, are the file's reason."""
    rng = np.random.default_rng(4)
    good = [synthetic._encode(synthetic.render(0, 2, 30, 20 + k, rng)) for k in range(5)]
    bad_scan = bytearray(good[2])
    at = bad_scan.index(b"\xff\xc4")
    bad_scan[at + 5:at + 21] = b"\xff" * 16
    capfd.readouterr()
    decoded = make_decoder("dali").decode(good[:2] + [bytes(bad_scan)] + good[3:])
    printed = capfd.readouterr().err
    assert decoded.kept == [0, 1, 3, 4] and [i for i, _ in decoded.failed] == [2]
    assert decoded.failed[0][1] == "decoding failed: Bogus Huffman table definition"
    assert printed == ""


def test_captured_native_output_is_replayed_when_no_failure_claims_it(capfd):
    from fastssl.data.decoders import _NativeStderr

    capfd.readouterr()
    with _NativeStderr() as printed:
        os.write(2, b"from another thread\n")
    assert printed.text == "from another thread\n" and capfd.readouterr().err == ""
    printed.replay()
    assert capfd.readouterr().err == "from another thread\n"
