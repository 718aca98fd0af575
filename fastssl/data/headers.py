"""What an encoded image claims to be, from its header alone: format, size, bits per sample.

Every decoder screens its files with :func:`read_header` first, so that all of them refuse the same
files for the same reasons and none allocates memory for an image it would refuse: an empty file, bytes
of no image format we decode, a header that does not parse, a JPEG or PNG whose end is missing
(truncated), or more than ``max_pixels`` pixels (a decompression bomb: a few bytes whose header claims
60000 × 60000 would otherwise make a decoder allocate gigabytes before it notices the data is missing).

JPEG (SOFn frame header), PNG (IHDR), BMP and WebP headers are read here; TIFF, JPEG 2000 and PNM
through Pillow's lazy ``Image.open`` (which reads the header only), when Pillow is installed (without
it, files of those formats are refused: their size cannot be checked).

Example:
    >>> import io, PIL.Image
    >>> buffer = io.BytesIO(); PIL.Image.new("RGB", (5, 4)).save(buffer, format="JPEG")
    >>> read_header(buffer.getvalue())
    ImageHeader(format='jpeg', height=4, width=5, bits=8)
    >>> read_header(buffer.getvalue(), max_pixels=19)
    Traceback (most recent call last):
    ValueError: too large: 4 x 5 = 20 pixels (max_pixels is 19)
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

#: Pillow's decompression-bomb error limit (twice its ``Image.MAX_IMAGE_PIXELS``): the default ``max_pixels``.
MAX_PIXELS = 2 * 89_478_485

# Leading bytes of the formats the decoders read; anything else is reported as "not an image" before decoding.
SIGNATURES = {
    b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png", b"BM": "bmp", b"II*\x00": "tiff", b"MM\x00*": "tiff",
    b"\x00\x00\x00\x0cjP  ": "jpeg2000", b"\xffO\xffQ": "jpeg2000", b"P1": "pnm", b"P2": "pnm", b"P3": "pnm",
    b"P4": "pnm", b"P5": "pnm", b"P6": "pnm",
}

# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic...): not DHT (C4), JPG (C8), DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class _Refused(ValueError):
    """A reason that is complete as it is (not a header that fails to parse)."""


@dataclass(frozen=True)
class ImageHeader:
    """An image's format ("jpeg", "png", ...), the size its header claims in pixels, and its bits per sample
    (16 for 16-bit PNGs and the 16-bit images Pillow reads; 8 otherwise)."""

    format: str
    height: int
    width: int
    bits: int = 8


def image_format(data: bytes) -> str | None:
    """The format named by the leading bytes ("jpeg", "png", ...), or None when it is none we decode."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for signature, name in SIGNATURES.items():
        if data.startswith(signature):
            return name
    return None


def read_header(data: bytes, max_pixels: int | None = None) -> ImageHeader:
    """The header of the encoded image ``data``; ValueError (the reason, one line) when there is none that
    parses, the file is truncated, or it claims more than ``max_pixels`` pixels."""
    if not data:
        raise ValueError("empty file")
    kind = image_format(data)
    if kind is None:
        raise ValueError("not an image (unknown file signature)")
    try:
        height, width, bits = _READERS.get(kind, _pillow_size)(data)
    except _Refused:
        raise
    except (IndexError, struct.error):  # the header ends early
        raise ValueError(f"corrupt {kind} header: the file ends inside it") from None
    except ValueError as error:
        raise ValueError(f"corrupt {kind} header: {error}") from None
    if height <= 0 or width <= 0:
        raise ValueError(f"corrupt {kind} header: it claims {height} x {width} pixels")
    if max_pixels is not None and height * width > max_pixels:
        raise ValueError(f"too large: {height} x {width} = {height * width} pixels (max_pixels is {max_pixels})")
    return ImageHeader(kind, height, width, bits)


_U16BE = struct.Struct(">H")


def _jpeg_size(data: bytes) -> tuple[int, int, int]:
    """(H, W, 8) from the SOFn segment; the scan data must end with an EOI marker (else the file is truncated)."""
    at, size = 2, None
    while True:
        if data[at] != 0xFF:
            raise ValueError(f"no marker at byte {at}")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            at += 2
        elif marker == 0xD9:
            raise ValueError("the image ends before its scan")
        elif marker == 0xDA:  # start of scan: the compressed data follows
            if size is None:
                raise ValueError("no frame header (SOF) before the scan")
            if data.rfind(b"\xff\xd9", at) < 0:
                raise _Refused("truncated jpeg: no end-of-image marker after the scan")
            return size
        else:
            if marker in _SOF_MARKERS:
                size = (*_U16BE.unpack_from(data, at + 5), *_U16BE.unpack_from(data, at + 7), 8)
            at += 2 + _U16BE.unpack_from(data, at + 2)[0]


def _png_size(data: bytes) -> tuple[int, int, int]:
    if len(data) < 24:
        raise IndexError
    if data[12:16] != b"IHDR":
        raise ValueError("the first chunk is not IHDR")
    if data.rfind(b"IEND") < 0:
        raise _Refused("truncated png: no IEND chunk")
    return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big"), 16 if data[24] == 16 else 8


def _bmp_size(data: bytes) -> tuple[int, int, int]:
    if len(data) < 26:
        raise IndexError
    if int.from_bytes(data[14:18], "little") == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return int.from_bytes(data[20:22], "little"), int.from_bytes(data[18:20], "little"), 8
    height = int.from_bytes(data[22:26], "little", signed=True)  # negative: rows stored top-down
    return abs(height), int.from_bytes(data[18:22], "little", signed=True), 8


def _webp_size(data: bytes) -> tuple[int, int, int]:
    chunk = data[12:16]
    if len(data) < 30:
        raise IndexError
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the key frame's start code
        return int.from_bytes(data[28:30], "little") & 0x3FFF, int.from_bytes(data[26:28], "little") & 0x3FFF, 8
    if chunk == b"VP8L":  # lossless: 14 + 14 bits of (size - 1) after the signature byte
        bits = int.from_bytes(data[21:25], "little")
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1, 8
    if chunk == b"VP8X":  # extended: 24-bit (size - 1) fields
        return int.from_bytes(data[27:30], "little") + 1, int.from_bytes(data[24:27], "little") + 1, 8
    raise ValueError(f"unknown chunk {chunk!r}")


def _pillow_size(data: bytes) -> tuple[int, int, int]:
    try:
        import PIL.Image
    except ImportError:
        raise _Refused("its size cannot be checked without Pillow (pip install pillow)") from None
    try:
        with PIL.Image.open(io.BytesIO(data)) as image:  # lazy: reads the header only
            (width, height), bits = image.size, 16 if image.mode.startswith("I;16") else 8
    except PIL.Image.DecompressionBombError:
        raise _Refused("too large: Pillow refuses its size as a decompression bomb") from None
    except (OSError, SyntaxError) as error:  # Pillow's "cannot identify image file", or a broken header
        raise ValueError(str(error)) from None
    return height, width, bits


_READERS = {"jpeg": _jpeg_size, "png": _png_size, "bmp": _bmp_size, "webp": _webp_size}
