"""Image headers: the size every format claims, read without decoding; what is refused before any decoder runs."""

import io

import numpy as np
import PIL.Image
import PIL.features
import pytest

from fastssl.data import synthetic
from fastssl.data.headers import MAX_PIXELS, ImageHeader, read_header


def encode(image: PIL.Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def random_image(height: int, width: int, seed: int = 0) -> PIL.Image.Image:
    return PIL.Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


FORMATS = [("JPEG", {}, "jpeg"), ("JPEG", {"progressive": True}, "jpeg"), ("PNG", {}, "png"),
           ("BMP", {}, "bmp"), ("TIFF", {}, "tiff"), ("PPM", {}, "pnm")]
FORMATS += [("WEBP", {"lossless": lossless}, "webp") for lossless in (False, True) if PIL.features.check("webp")]


@pytest.mark.parametrize("format, options, name", FORMATS)
def test_header_size_matches_the_image(format, options, name):
    for height, width in ((1, 1), (37, 53), (300, 17)):
        data = encode(random_image(height, width), format, **options)
        assert read_header(data, MAX_PIXELS) == ImageHeader(name, height, width, 8)


def test_bmp_stored_top_down_and_webp_extended():
    image = random_image(11, 29, seed=1)
    top_down = bytearray(encode(image, "BMP"))
    top_down[22:26] = (-11).to_bytes(4, "little", signed=True)
    assert read_header(bytes(top_down)) == ImageHeader("bmp", 11, 29)
    if PIL.features.check("webp"):
        extended = encode(image.convert("RGBA"), "WEBP", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00")
        assert extended[12:16] == b"VP8X" and read_header(extended) == ImageHeader("webp", 11, 29)


def test_png_header_of_every_colour_type():
    rng = np.random.default_rng(2)
    for samples in (rng.integers(0, 65536, (5, 7, 3), dtype=np.uint16), rng.integers(0, 256, (6, 4, 2), dtype=np.uint8)):
        assert read_header(synthetic.encode_png(samples)) == ImageHeader("png", *samples.shape[:2], 8 * samples.itemsize)
    gray16 = encode(PIL.Image.fromarray(rng.integers(0, 65536, (3, 5), dtype=np.uint16)), "TIFF")
    assert read_header(gray16) == ImageHeader("tiff", 3, 5, 16)


def test_a_decompression_bomb_is_refused_by_its_header():
    bomb = synthetic.jpeg_claiming(60000, 60000)
    assert read_header(bomb) == ImageHeader("jpeg", 60000, 60000)
    assert reason(bomb) == f"too large: 60000 x 60000 = 3600000000 pixels (max_pixels is {MAX_PIXELS})"
    assert read_header(synthetic.jpeg_claiming(300, 200), max_pixels=60000).height == 300
    assert reason(synthetic.jpeg_claiming(300, 201), max_pixels=60000).startswith("too large: 300 x 201")


def reason(data: bytes, max_pixels: int = MAX_PIXELS) -> str:
    with pytest.raises(ValueError) as error:
        read_header(data, max_pixels)
    return str(error.value)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow reading the garbage TIFF header
def test_broken_files_are_refused_with_one_line_reasons():
    jpeg = encode(random_image(200, 300), "JPEG")
    png = encode(random_image(200, 300), "PNG")
    zero_width = bytearray(jpeg)
    at = zero_width.index(b"\xff\xc0")
    zero_width[at + 7:at + 9] = b"\x00\x00"
    no_frame = jpeg[:2] + jpeg[jpeg.index(b"\xff\xda"):]  # the scan without any header segment before it
    reasons = {
        "empty": reason(b""),
        "text": reason(b"<html>not an image</html>"),
        "jpeg cut in its header": reason(jpeg[:40]),
        "jpeg cut in its scan": reason(jpeg[:len(jpeg) // 2]),
        "png cut short": reason(png[:len(png) // 2]),
        "png header cut": reason(png[:20]),
        "zero width": reason(bytes(zero_width)),
        "no frame header": reason(no_frame),
        "random bytes after a jpeg signature": reason(b"\xff\xd8\xff" + bytes(range(256)) * 4),
        "tiff header garbage": reason(b"II*\x00" + b"\xff" * 64),
    }
    assert reasons["empty"] == "empty file"
    assert reasons["text"] == "not an image (unknown file signature)"
    assert reasons["jpeg cut in its scan"] == "truncated jpeg: no end-of-image marker after the scan"
    assert reasons["png cut short"] == "truncated png: no IEND chunk"
    assert reasons["zero width"] == "corrupt jpeg header: it claims 200 x 0 pixels"
    assert reasons["jpeg cut in its header"] == reasons["png header cut"].replace("png", "jpeg")
    assert reasons["png header cut"] == "corrupt png header: the file ends inside it"
    assert reasons["no frame header"] == "corrupt jpeg header: no frame header (SOF) before the scan"
    for what, why in reasons.items():
        assert why and "\n" not in why, what
