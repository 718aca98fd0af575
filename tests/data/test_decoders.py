"""Decoders: the same pixels from every decoder, awkward files converted to RGB, broken ones reported."""

import numpy as np
import pytest
import torch

from fastssl.data import make_decoder, synthetic
from fastssl.data.headers import image_format

from data_helpers import DECODERS


def encoded_set(bad_files):
    rng = np.random.default_rng(0)
    good = [synthetic._encode(synthetic.render(k % 2, 2, h, w, rng)) for k, (h, w) in enumerate([(33, 47), (120, 90)])]
    names = sorted(bad_files)
    return good + [open(n, "rb").read() for n in names], [True, True] + [bad_files[n] for n in names]


@pytest.mark.parametrize("name", DECODERS)
def test_decodes_good_files_and_reports_bad_ones(name, bad_files):
    encoded, ok = encoded_set(bad_files)
    decoded = make_decoder(name).decode(encoded)
    assert decoded.kept == [i for i, good in enumerate(ok) if good]
    assert [i for i, _ in decoded.failed] == [i for i, good in enumerate(ok) if not good]
    assert all(reason for _, reason in decoded.failed)
    images = decoded.images
    assert len(images) == len(decoded.kept) and images.data.dtype == torch.uint8
    assert images.sizes[:2].tolist() == [[33, 47], [120, 90]]


@pytest.mark.parametrize("name", [d for d in DECODERS if d != "pil"])
def test_decoders_agree_with_pillow(name, bad_files):
    encoded, _ = encoded_set(bad_files)
    ours, pil = make_decoder(name).decode(encoded), make_decoder("pil").decode(encoded)
    assert ours.kept == pil.kept
    for k in range(len(ours.kept)):
        a, b = ours.images.image(k).int(), pil.images.image(k).int()
        assert a.shape == b.shape
        assert (a - b).abs().max() <= 1  # the same libjpeg-turbo; CMYK conversion rounds differently by 1


def test_only_decodable_batches_and_errors():
    decoded = make_decoder("pil").decode([b"", b"GIF89a..."])
    assert decoded.images is None and decoded.kept == [] and len(decoded.failed) == 2
    with pytest.raises(ValueError, match="decoder must be"):
        make_decoder("nvjpeg")
    assert image_format(b"\xff\xd8\xff\xe0") == "jpeg" and image_format(b"RIFF\0\0\0\0WEBPVP8 ") == "webp"
    assert image_format(b"<html>") is None


@pytest.mark.cuda
@pytest.mark.parametrize("name", [d for d in DECODERS if d != "pil"])
def test_gpu_decoding_matches_cpu(name, bad_files):
    encoded, ok = encoded_set(bad_files)
    gpu, cpu = make_decoder(name, "cuda").decode(encoded), make_decoder(name, "cpu").decode(encoded)
    assert gpu.kept == cpu.kept and gpu.images.data.is_cuda
    for k in range(len(gpu.kept)):
        a, b = gpu.images.image(k).cpu().float(), cpu.images.image(k).float()
        assert a.shape == b.shape and (a - b).abs().mean() <= 1.5  # nvJPEG's IDCT differs from libjpeg-turbo's


@pytest.mark.skipif("dali" not in DECODERS, reason="needs nvidia-dali")
def test_dali_cpu_batches_outlive_the_next_runs():
    """On the CPU a batch is DALI's own output buffer: later runs of the pipeline must not reuse it."""
    rng = np.random.default_rng(1)
    batches = [[synthetic._encode(synthetic.render(k % 2, 2, 40 + 7 * k + j, 50, rng)) for k in range(5)]
               for j in range(3)]
    decoder = make_decoder("dali")
    first = decoder.decode(batches[0]).images
    expected = make_decoder("pil").decode(batches[0]).images
    later = [decoder.decode(b).images for b in batches[1:]]
    del later
    decoder.decode(batches[1])
    for k in range(len(first)):
        assert (first.image(k).int() - expected.image(k).int()).abs().max() <= 1
