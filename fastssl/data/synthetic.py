"""A procedural labelled image set, written as JPEG files: the embedded default data (no download).

Class ``c`` is the shape of an upright object (disc, square, triangle, cross, ...) on a background
gradient; its colour, size and position, the background colours and direction and the noise vary per
image, so the class is in the shape alone. Sizes vary per image (``min_size``..
``max_size`` per side), as decoded ImageNet batches do. Everything is a deterministic function of
``seed``.

``texture`` > 0 adds a 1/f ("pink") texture, the spectrum of natural images, so that the JPEGs carry
as much detail per pixel as photographs do — what their decoding costs depends on it. At quality 90,
``texture=35`` gives ~0.6 bytes per pixel (~100 KiB for 420 × 420 px), as ImageNet's JPEGs have
(~110 KB at ~470 × 390 px on average); without it the files are ~3x smaller and decode ~1.6x faster.

:func:`write_bad_files` adds the files a real crawl contains: a truncated JPEG, a text file named
``.jpg``, an empty file, a grayscale, a CMYK and a PNG-in-disguise JPEG, and a 1×1 image.
:func:`write_hostile_files` adds the rest of what a decoder must survive: a JPEG of random bytes, a
decompression bomb (a small JPEG whose header claims 60000 × 60000), and PNGs in every colour type
and depth (16-bit, palette, gray + alpha, RGBA), written by :func:`encode_png`.

Example:
    >>> import tempfile
    >>> root = write_image_folder(tempfile.mkdtemp(), classes=3, per_class=2, seed=0)
    >>> sorted(os.listdir(root))
    ['class_0', 'class_1', 'class_2']
"""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np

from ..progress import Progress, maybe


SHAPES = ("disc", "square", "triangle", "cross", "ring", "diamond", "house", "tee", "bar", "column")


def _shape_mask(shape: str, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Pixels inside ``shape`` in coordinates centred on the object, scaled so its half-size is 1 (y grows down)."""
    ay, ax = np.abs(y), np.abs(x)
    masks = {
        "disc": y * y + x * x < 1,
        "square": (ay < 0.8) & (ax < 0.8),
        "triangle": (y > -1) & (y < 0.8) & (ax < (y + 1) / 1.8),  # apex up
        "cross": ((ay < 0.3) & (ax < 1)) | ((ax < 0.3) & (ay < 1)),
        "ring": (y * y + x * x < 1) & (y * y + x * x > 0.4),
        "diamond": ay + ax < 1,
        "house": ((y > 0) & (y < 0.9) & (ax < 0.7)) | ((y <= 0) & (y > -0.9) & (ax < 0.9 * (y + 0.9))),
        "tee": ((y > -0.9) & (y < -0.5) & (ax < 0.9)) | ((ax < 0.25) & (y > -0.9) & (y < 0.9)),
        "bar": (ay < 0.3) & (ax < 1),
        "column": (ax < 0.3) & (ay < 1),
    }
    return masks[shape]


def pink_noise(height: int, width: int, rng: np.random.Generator, exponent: float = 0.8) -> np.ndarray:
    """(height, width) float64 noise of zero mean and unit std whose amplitude spectrum falls as 1 / f^exponent
    (natural images: exponent ~0.8-1)."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    f[0, 0] = 1.0
    spectrum = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) / f ** exponent
    spectrum[0, 0] = 0.0
    noise = np.fft.irfft2(spectrum, s=(height, width))
    std = noise.std()
    return noise / std if std > 0 else noise


def render(label: int, classes: int, height: int, width: int, rng: np.random.Generator,
           texture: float = 0.0) -> np.ndarray:
    """One (height, width, 3) uint8 image of class ``label``: an upright object on a gradient background.

    The class is the object's shape (:data:`SHAPES`, cycled when ``classes`` > 10); its colour, size and
    position, the background's two colours and gradient direction, and the noise vary per image. The
    background has no "up", so only the objects' shapes tell a rotation (triangle, house and tee
    point up; the symmetric shapes do not say). ``texture``: std in grey levels of a :func:`pink_noise`
    luminance texture (plus a quarter of it per channel as colour texture); 0 adds none.
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * x / max(width, 1) + np.sin(angle) * y / max(height, 1) + 1) / 2
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    image = a + ramp[..., None] * (b - a)
    size = rng.uniform(0.22, 0.35) * min(height, width)
    cy = rng.uniform(size, max(size + 1, height - size))
    cx = rng.uniform(size, max(size + 1, width - size))
    inside = _shape_mask(SHAPES[label % len(SHAPES)], (y - cy) / size, (x - cx) / size)
    image[inside] = rng.uniform(0, 255, 3)
    image += rng.normal(0, 6, image.shape)
    if texture > 0:
        image += texture * pink_noise(height, width, rng)[..., None]
        image += (texture / 4) * np.stack([pink_noise(height, width, rng) for _ in range(3)], axis=-1)
    return np.clip(image, 0, 255).astype(np.uint8)


def _distinct_colour(avoid: list[np.ndarray], rng: np.random.Generator, distance: float = 110.0) -> np.ndarray:
    """A random RGB colour at least ``distance`` (Euclidean, 0..255 units) from each of ``avoid`` when one is found in
    a few tries (else the farthest tried)."""
    best, best_gap = None, -1.0
    for _ in range(16):
        colour = rng.uniform(0, 255, 3)
        gap = min(float(np.linalg.norm(colour - a)) for a in avoid)
        if gap >= distance:
            return colour
        if gap > best_gap:
            best, best_gap = colour, gap
    return best


def render_object(label: int, classes: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """One (height, width, 3) uint8 image of class ``label``: a large object on a camouflage background.

    The class is the object's shape (:data:`SHAPES`, cycled when ``classes`` > 10) and nothing else: its
    colour, size (half-size 28-42% of the short side), position, tilt (±20°) and shading, and the
    background's two colours and blotch pattern (thresholded :func:`pink_noise`) are random per image, so
    colour and layout statistics — what the features of a randomly initialised network mostly carry —
    say nothing about the class, while shape survives crops and colour changes (what augmentation-invariant
    pretraining learns).
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    blotches = 1 / (1 + np.exp(-3 * pink_noise(height, width, rng, exponent=1.2)))
    image = a + blotches[..., None] * (b - a)
    short = min(height, width)
    size = rng.uniform(0.28, 0.42) * short
    cy = rng.uniform(min(size, height / 2), max(height - size, height / 2))
    cx = rng.uniform(min(size, width / 2), max(width - size, width / 2))
    tilt = rng.uniform(-np.pi / 9, np.pi / 9)
    u, v = (y - cy) / size, (x - cx) / size
    inside = _shape_mask(SHAPES[label % len(SHAPES)], np.cos(tilt) * u - np.sin(tilt) * v,
                         np.sin(tilt) * u + np.cos(tilt) * v)
    colour = _distinct_colour([a, b], rng)
    shade = 1 + rng.uniform(-0.25, 0.25) * (u * np.cos(tilt) + v * np.sin(tilt))  # a light from one side
    image[inside] = (colour * shade[..., None])[inside]
    image += rng.normal(0, 5, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _encode(image: np.ndarray, format: str = "JPEG", **options) -> bytes:
    import PIL.Image

    buffer = io.BytesIO()
    PIL.Image.fromarray(image).save(buffer, format=format, **options)
    return buffer.getvalue()


def write_image_folder(root: str, *, classes: int = 10, per_class: int = 100, min_size: int = 48,
                       max_size: int = 96, quality: int = 90, texture: float = 0.0, seed: int = 0) -> str:
    """Writes ``root/class_<c>/<i>.jpg`` (``classes`` × ``per_class`` JPEGs) and returns ``root``.

    ``texture``: see :func:`render` (35: photo-like detail, about ImageNet's bytes per pixel).
    """
    if classes < 1 or per_class < 1:
        raise ValueError(f"classes and per_class must be >= 1, got {classes}, {per_class}")
    if not 1 <= min_size <= max_size:
        raise ValueError(f"need 1 <= min_size <= max_size, got {min_size}, {max_size}")
    if not texture >= 0:
        raise ValueError(f"texture must be >= 0, got {texture}")
    return _write_classes(root, classes, per_class, min_size, max_size, quality, seed,
                          lambda label, h, w, rng: render(label, classes, h, w, rng, texture))


def write_object_folder(root: str, *, classes: int = 6, per_class: int = 300, min_size: int = 56,
                        max_size: int = 80, quality: int = 90, seed: int = 0, progress: bool = False) -> str:
    """Writes ``root/class_<c>/<i>.jpg`` (``classes`` × ``per_class`` JPEGs of :func:`render_object`) and returns
    ``root``: the demo's data, on which pretraining has something to learn that random features lack
    (``progress``: a progress line on stderr)."""
    if not 1 <= classes <= len(SHAPES) or per_class < 1:
        raise ValueError(f"classes must be in 1..{len(SHAPES)} and per_class >= 1, got {classes}, {per_class}")
    if not 8 <= min_size <= max_size:
        raise ValueError(f"need 8 <= min_size <= max_size, got {min_size}, {max_size}")
    return _write_classes(root, classes, per_class, min_size, max_size, quality, seed,
                          lambda label, h, w, rng: render_object(label, classes, h, w, rng),
                          maybe(progress, classes * per_class, "writing images"))


def _write_classes(root: str, classes: int, per_class: int, min_size: int, max_size: int, quality: int, seed: int,
                   draw, bar: Progress | None = None) -> str:
    """``root/class_<c>/<i>.jpg`` from ``draw(label, h, w, rng)`` (an (h, w, 3) uint8 image), sides drawn in
    [min_size, max_size] from one generator seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    for label in range(classes):
        folder = os.path.join(root, f"class_{label}")
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            h, w = rng.integers(min_size, max_size + 1, 2)
            with open(os.path.join(folder, f"{i:05d}.jpg"), "wb") as f:
                f.write(_encode(draw(label, int(h), int(w), rng), quality=quality))
            if bar:
                bar.update(label * per_class + i + 1)
    return root


def write_bad_files(folder: str, seed: int = 0) -> dict[str, bool]:
    """Writes awkward files into ``folder``; returns {file name: whether a decoder should read it}."""
    import PIL.Image

    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    good = _encode(render(0, 2, 60, 80, rng))
    files = {
        "bad_truncated.jpg": (good[: len(good) // 2], False),
        "bad_text.jpg": (b"this is not an image\n", False),
        "bad_empty.jpg": (b"", False),
        "odd_gray.jpg": (_encode(render(1, 2, 40, 50, rng)[..., 0]), True),
        "odd_png_named.jpg": (_encode(render(1, 2, 30, 20, rng), "PNG"), True),
        "odd_1x1.jpg": (_encode(render(0, 2, 1, 1, rng)), True),
    }
    cmyk = io.BytesIO()
    PIL.Image.fromarray(rng.integers(0, 256, (30, 40, 4), dtype=np.uint8), "CMYK").save(cmyk, format="JPEG")
    files["odd_cmyk.jpg"] = (cmyk.getvalue(), True)
    for name, (data, _) in files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    return {name: ok for name, (_, ok) in files.items()}


def encode_png(samples: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """A PNG of ``samples``, (H, W, C) uint8 or uint16 (bit depth 8 or 16), C = 1 gray, 2 gray + alpha, 3 RGB,
    4 RGBA; with ``palette`` ((N, 3) uint8), ``samples`` (H, W, 1) uint8 are indices into it. Written here
    because Pillow cannot write 16-bit colour PNGs."""
    if samples.ndim != 3 or samples.dtype not in (np.uint8, np.uint16) or not 1 <= samples.shape[2] <= 4:
        raise ValueError(f"samples must be (H, W, 1..4) uint8 or uint16, got {samples.shape} {samples.dtype}")
    height, width, channels = samples.shape
    color_type = 3 if palette is not None else {1: 0, 2: 4, 3: 2, 4: 6}[channels]

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    rows = samples.astype(samples.dtype.newbyteorder(">")).reshape(height, -1).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 8 * samples.itemsize, color_type, 0, 0, 0)
    body = chunk(b"IHDR", header)
    if palette is not None:
        body += chunk(b"PLTE", np.ascontiguousarray(palette, dtype=np.uint8).tobytes())
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(raw.tobytes())) + chunk(b"IEND", b"")


def jpeg_claiming(height: int, width: int, seed: int = 0) -> bytes:
    """A small valid JPEG whose frame header (SOF0) claims ``height`` × ``width``: a decompression bomb."""
    data = bytearray(_encode(render(0, 2, 64, 64, np.random.default_rng(seed))))
    at = data.index(b"\xff\xc0")
    data[at + 5:at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def write_hostile_files(folder: str, seed: int = 0) -> dict[str, bool]:
    """Writes :func:`write_bad_files`' files and the rest of the catalogue (module docstring) into ``folder``;
    returns {file name: whether a decoder should read it}."""
    expected = write_bad_files(folder, seed)
    rng = np.random.default_rng(seed)
    files = {
        "bad_random.jpg": (b"\xff\xd8\xff" + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(), False),
        "bad_bomb.jpg": (jpeg_claiming(60000, 60000, seed), False),
        "odd_16bit_rgb.png": (encode_png(rng.integers(0, 65536, (21, 17, 3), dtype=np.uint16)), True),
        "odd_16bit_gray.png": (encode_png(rng.integers(0, 65536, (15, 22, 1), dtype=np.uint16)), True),
        "odd_16bit_rgba.png": (encode_png(rng.integers(0, 65536, (9, 13, 4), dtype=np.uint16)), True),
        "odd_palette.png": (encode_png(rng.integers(0, 7, (19, 11, 1), dtype=np.uint8),
                                       palette=rng.integers(0, 256, (7, 3), dtype=np.uint8)), True),
        "odd_gray_alpha.png": (encode_png(rng.integers(0, 256, (12, 14, 2), dtype=np.uint8)), True),
        "odd_rgba.png": (encode_png(rng.integers(0, 256, (16, 10, 4), dtype=np.uint8)), True),
    }
    for name, (data, _) in files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    return {**expected, **{name: ok for name, (_, ok) in files.items()}}


# --- videos -----------------------------------------------------------------------------------------------------

#: Container and encoder of each codec :func:`write_video_folder` writes, and the encoder's options (fast, one
#: thread: the same bytes on every run). x264's macroblock tree is off: its floating-point propagation made the
#: bytes of a video differ now and then when an audio track was encoded alongside (measured: 2 in 12 writes; 0 in
#: 40 without it).
VIDEO_CODECS = {
    "vp9": (".webm", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "threads": "1"}),
    "h264": (".mp4", "libx264", {"preset": "veryfast", "threads": "1", "x264-params": "mbtree=0"}),  # with B-frames
}


def render_video(label: int, frames: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(frames, height, width, 3) uint8: the shape of class ``label`` (:data:`SHAPES`) moving, rotating and scaling
    over a drifting background gradient with moving stripes; its motion and colours drawn from ``rng``."""
    background = _Background(height, width, rng)
    colour = rng.uniform(0, 255, 3)
    short = min(height, width)
    size0, grow = rng.uniform(0.18, 0.3) * short, rng.uniform(-0.004, 0.004) * short
    cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
    vy, vx = rng.uniform(-1, 1, 2) * short / 48
    tilt, spin = rng.uniform(-0.5, 0.5), rng.uniform(-0.08, 0.08)
    t = np.arange(frames)
    path = (cy + vy * t, cx + vx * t, np.maximum(size0 + grow * t, 2.0), tilt + spin * t)
    return _draw(SHAPES[label % len(SHAPES)], path, colour, background, frames)


#: The motion of each class of :func:`render_action` (the shape is random): what video classes are about. Every
#: motion is dissipative or driven one way, as real motion is (friction, damping, gravity), so that played backwards
#: it looks unnatural: the arrow of time can be told from it.
MOTIONS = ("slide", "spin", "grow", "fall", "bounce", "spiral")


def render_action(label: int, frames: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(frames, height, width, 3) uint8: a random shape (:data:`SHAPES`) making the motion of class ``label``
    (:data:`MOTIONS`: sliding in a random direction and slowing down, spinning in place and slowing down, growing
    ever more slowly, falling faster and faster, bouncing up and down ever less, circling inwards) over the moving
    background of :func:`render_video`; speeds, sizes, positions and colours drawn from ``rng``."""
    background = _Background(height, width, rng)
    colour = rng.uniform(0, 255, 3)
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    short = min(height, width)
    t = np.arange(frames, dtype=np.float64)
    rate = rng.uniform(0.06, 0.1)  # friction / damping per frame
    eased = (1 - np.exp(-rate * t)) / rate  # distance covered at unit start speed, slowing down
    damped = np.exp(-rate * t)
    cy, cx = rng.uniform(0.35, 0.65) * height, rng.uniform(0.35, 0.65) * width
    size, tilt = rng.uniform(0.2, 0.28) * short, rng.uniform(-0.5, 0.5)
    still = np.zeros(frames)
    motion = MOTIONS[label % len(MOTIONS)]
    if motion == "slide":
        angle, speed = rng.uniform(0, 2 * np.pi), rng.uniform(1.2, 2.0) * short / 32
        path = (cy + np.sin(angle) * speed * eased, cx + np.cos(angle) * speed * eased, size + still, tilt + still)
    elif motion == "spin":
        path = (cy + still, cx + still, size + still, tilt + rng.choice([-1, 1]) * rng.uniform(0.25, 0.4) * eased)
    elif motion == "grow":
        small = rng.uniform(0.08, 0.12) * short
        path = (cy + still, cx + still, small + rng.uniform(0.025, 0.035) * short * eased, tilt + still)
    elif motion == "fall":
        top, gravity = rng.uniform(0.1, 0.3) * height, rng.uniform(0.6, 0.9) * height / frames**2
        path = (top + gravity * t**2, cx + still, size + still, tilt + still)
    elif motion == "bounce":
        period, amplitude, phase = rng.uniform(10, 16), rng.uniform(0.2, 0.3) * height, rng.uniform(0, 2 * np.pi)
        path = (cy + amplitude * damped * np.sin(2 * np.pi * t / period + phase), cx + still, size + still,
                tilt + still)
    else:  # spiral: circling inwards
        radius, turn = rng.uniform(0.25, 0.32) * short, rng.choice([-1, 1]) * 2 * np.pi / rng.uniform(14, 22)
        phase = rng.uniform(0, 2 * np.pi)
        path = (cy + radius * damped * np.sin(turn * t + phase), cx + radius * damped * np.cos(turn * t + phase),
                size + still, tilt + still)
    return _draw(shape, path, colour, background, frames)


class _Background:
    """A drifting two-colour gradient with moving stripes: ``frame(t)`` is (height, width, 3) float64."""

    def __init__(self, height: int, width: int, rng: np.random.Generator):
        self.y, self.x = np.mgrid[0:height, 0:width].astype(np.float64)
        self.a, self.b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        self.angle, self.drift = rng.uniform(0, 2 * np.pi), rng.uniform(-0.1, 0.1)
        self.period, self.speed = rng.uniform(6, 16), rng.uniform(-1.5, 1.5)

    def frame(self, t: int) -> np.ndarray:
        height, width = self.y.shape
        theta = self.angle + self.drift * t
        ramp = (np.cos(theta) * self.x / width + np.sin(theta) * self.y / height + 1) / 2
        stripes = 20 * np.sin(2 * np.pi * (self.x + self.speed * t) / self.period)
        return self.a + ramp[..., None] * (self.b - self.a) + stripes[..., None]


def _draw(shape: str, path: tuple, colour: np.ndarray, background: _Background, frames: int) -> np.ndarray:
    """The video of ``shape`` following ``path`` = per-frame arrays (centre y, centre x, size, rotation), wrapping
    around the edges, over ``background``."""
    height, width = background.y.shape
    video = np.empty((frames, height, width, 3), dtype=np.uint8)
    for t in range(frames):
        image = background.frame(t)
        py, px = path[0][t] % height, path[1][t] % width
        size, r = max(float(path[2][t]), 2.0), path[3][t]
        u, v = (background.y - py) / size, (background.x - px) / size
        inside = _shape_mask(shape, np.cos(r) * u - np.sin(r) * v, np.sin(r) * u + np.cos(r) * v)
        image[inside] = colour
        video[t] = np.clip(image, 0, 255).astype(np.uint8)
    return video


def encode_video(path: str, video: np.ndarray, *, fps: int = 16, codec: str = "vp9", gop: int = 8,
                 timestamps_ms=None, faststart: bool = False, sound: np.ndarray | None = None,
                 sample_rate: int = 48000) -> str:
    """Writes ``video`` ((T, H, W, 3) uint8, H and W even) to ``path`` with PyAV (``codec``: "vp9" | "h264", a key
    frame at least every ``gop`` frames) and returns ``path``. ``timestamps_ms``: T increasing ints, each frame's
    time in milliseconds (a variable frame rate); None: every 1 / ``fps`` seconds. ``faststart``: an MP4's index
    (moov) before its data, as files made for streaming have it (by default it comes last). ``sound``: a sound
    track as well ((N,) or (C, N) float in [-1, 1], C = 1 or 2, at ``sample_rate``: sample n at n / ``sample_rate``
    seconds), encoded as :data:`AUDIO_CODECS` says for the container and interleaved with the frames."""
    from fractions import Fraction

    import av

    if codec not in VIDEO_CODECS:
        raise ValueError(f"codec must be one of {sorted(VIDEO_CODECS)}, got {codec!r}")
    if video.ndim != 4 or video.shape[3] != 3 or video.dtype != np.uint8 or video.shape[1] % 2 or video.shape[2] % 2:
        raise ValueError(f"video must be (T, H, W, 3) uint8 with H and W even, got {video.shape} {video.dtype}")
    _, encoder, options = VIDEO_CODECS[codec]
    options_ = {"fflags": "+bitexact", **({"movflags": "+faststart"} if faststart else {})}  # bitexact: no random ids
    with av.open(path, mode="w", options=options_) as container:
        stream = container.add_stream(encoder, rate=fps, options=dict(options))
        stream.width, stream.height, stream.pix_fmt = video.shape[2], video.shape[1], "yuv420p"
        stream.codec_context.gop_size = gop
        if timestamps_ms is not None:
            if len(timestamps_ms) != len(video) or not all(b > a for a, b in zip(timestamps_ms, timestamps_ms[1:])):
                raise ValueError(f"timestamps_ms must be {len(video)} increasing ints, got {list(timestamps_ms)}")
            stream.codec_context.time_base = Fraction(1, 1000)
        track = None if sound is None else _SoundWriter(container, os.path.splitext(path)[1], sound, sample_rate)
        for t, image in enumerate(video):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if timestamps_ms is not None:
                frame.pts, frame.time_base = int(timestamps_ms[t]), Fraction(1, 1000)
            container.mux(stream.encode(frame))
            if track is not None:  # the sound up to the next frame's time
                after = (t + 1) / fps if timestamps_ms is None or t + 1 == len(video) else timestamps_ms[t + 1] / 1000
                track.write_until(round(after * sample_rate))
        container.mux(stream.encode())
        if track is not None:
            track.finish()
    return path


def write_video_folder(root: str, *, classes: int = 3, per_class: int = 2, frames: int = 32, size=64, fps: int = 16,
                       codec: str = "vp9", gop: int = 8, seed: int = 0, classes_by: str = "shape") -> str:
    """Writes ``root/class_<c>/<i>.webm`` (VP9) or ``.mp4`` (H.264): ``classes`` × ``per_class`` videos of
    :func:`render_video` (``classes_by="shape"``: a class is a shape) or :func:`render_action` (``"motion"``: a
    class is a motion, at most ``len(MOTIONS)`` classes) — ``frames`` frames of ``size`` = H = W or (H, W), even,
    at ``fps``, a key frame every ``gop`` frames — deterministic from ``seed``; returns ``root``. Needs PyAV. 32
    frames of 64 × 64 take a few hundredths of a second to write and a few KiB each.

    Example:
        >>> import tempfile  # doctest: +SKIP
        >>> root = write_video_folder(tempfile.mkdtemp(), classes=2, per_class=1, frames=8)  # doctest: +SKIP
        >>> sorted(os.listdir(os.path.join(root, "class_1")))  # doctest: +SKIP
        ['00000.webm']
    """
    if classes < 1 or per_class < 1 or frames < 1:
        raise ValueError(f"classes, per_class and frames must be >= 1, got {classes}, {per_class}, {frames}")
    renderers = {"shape": render_video, "motion": render_action}
    if classes_by not in renderers:
        raise ValueError(f"classes_by must be one of {sorted(renderers)}, got {classes_by!r}")
    if classes_by == "motion" and classes > len(MOTIONS):
        raise ValueError(f"classes_by='motion' makes at most {len(MOTIONS)} classes ({', '.join(MOTIONS)}), "
                         f"got {classes}")
    height, width = (size, size) if isinstance(size, int) else size
    extension = VIDEO_CODECS[codec][0] if codec in VIDEO_CODECS else ""
    rng = np.random.default_rng(seed)
    for label in range(classes):
        folder = os.path.join(root, f"class_{label}")
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            video = renderers[classes_by](label, frames, height, width, rng)
            encode_video(os.path.join(folder, f"{i:05d}{extension}"), video, fps=fps, codec=codec, gop=gop)
    return root


def write_bad_videos(folder: str, seed: int = 0) -> dict[str, str]:
    """Writes the video files a crawl contains that cannot be used into ``folder``; returns {file name: a word of
    the reason the index gives}: truncated WebM and MP4s (half of each file; the last bytes of one), text named
    ``.mp4``, an empty file, random bytes, an audio-only WebM and a WebM whose video track has no frames. Needs
    PyAV."""
    import av

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    video = render_video(0, 24, 32, 32, rng)
    expected = {}

    def write(name: str, data: bytes, reason: str) -> None:
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
        expected[name] = reason

    for codec, faststart, name in (("vp9", False, "bad_truncated.webm"), ("h264", False, "bad_truncated.mp4"),
                                   ("h264", True, "bad_truncated_faststart.mp4")):
        whole = os.path.join(folder, "whole" + VIDEO_CODECS[codec][0])
        with open(encode_video(whole, video, codec=codec, faststart=faststart), "rb") as f:
            data = f.read()
        os.remove(whole)
        # Matroska: fewer frames than its duration; MP4 with its index last: unreadable; first: frames missing
        write(name, data[: len(data) // 2], "truncated" if codec == "vp9" or faststart else "unreadable")
        if faststart:  # only the last bytes missing: the last frame does not decode
            write("bad_cut_end_faststart.mp4", data[: len(data) - 30], "corrupt")
    write("bad_text.mp4", b"this is not a video\n", "unreadable")
    write("bad_empty.webm", b"", "empty")
    write("bad_random.mp4", rng.integers(0, 256, 4000, dtype=np.uint8).tobytes(), "unreadable")
    samples = (np.sin(np.arange(48000 // 5) / 10) * 8000).astype(np.int16)[None, :]  # 0.2 s of a tone
    for name, with_video, reason in (("bad_audio_only.webm", False, "no video stream"),
                                     ("bad_no_frames.webm", True, "no frames")):
        with av.open(os.path.join(folder, name), mode="w", options={"fflags": "+bitexact"}) as container:
            if with_video:  # a video track that never gets a frame
                video_stream = container.add_stream("libvpx-vp9", rate=16)
                video_stream.width, video_stream.height, video_stream.pix_fmt = 32, 32, "yuv420p"
            audio = container.add_stream("libopus", rate=48000)
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = 48000
            container.start_encoding()
            container.mux(audio.encode(frame))
            container.mux(audio.encode())
        expected[name] = reason
    return expected


# --- videos with sound ----------------------------------------------------------------------------------------

#: The audio encoder for each file extension: the sound track of a WebM (Opus) or MP4 (AAC), or an audio file
#: beside a video (WAV: 16-bit PCM, FLAC: 16-bit, OGG: Opus). Opus takes 48, 24, 16, 12 or 8 kHz only.
AUDIO_CODECS = {".webm": "libopus", ".mp4": "aac", ".wav": "pcm_s16le", ".flac": "flac", ".ogg": "libopus"}
#: The audio files :func:`write_av_folder` can write beside its videos (``audio=``), and "track": in the video.
AV_AUDIO = ("track", "wav", "flac", "ogg")
#: The std, in seconds, of the Gaussian that smooths the shape's random size path of :func:`render_av`: the size
#: (and the loudness) changes within a few frames, so a window half a second away has another loudness curve.
SIZE_SMOOTHING = 0.12


class _SoundWriter:
    """Encodes ``sound`` ((N,) or (C, N) float in [-1, 1]) into a new audio stream of ``container`` (the encoder for
    ``extension``, :data:`AUDIO_CODECS`), a piece at a time (:meth:`write_until`), so it interleaves with video."""

    def __init__(self, container, extension: str, sound: np.ndarray, sample_rate: int):
        import av

        sound = np.asarray(sound, dtype=np.float32)
        sound = sound[None] if sound.ndim == 1 else sound
        if sound.ndim != 2 or sound.shape[0] not in (1, 2):
            raise ValueError(f"sound must be (N,) or (C, N) with C = 1 or 2, got {sound.shape}")
        if extension not in AUDIO_CODECS:
            raise ValueError(f"no audio encoder for {extension!r} files (one of {', '.join(AUDIO_CODECS)})")
        codec = av.Codec(AUDIO_CODECS[extension], "w")
        if codec.audio_rates and sample_rate not in codec.audio_rates:
            raise ValueError(f"{codec.name} encodes {sorted(codec.audio_rates)} Hz only, got {sample_rate}")
        self.container, self.sound, self.rate, self.position = container, sound, sample_rate, 0
        self.stream = container.add_stream(codec.name, rate=sample_rate)
        self.stream.layout = "mono" if len(sound) == 1 else "stereo"
        names = [f.name for f in codec.audio_formats or ()]
        self.format = "flt" if "flt" in names else "fltp" if "fltp" in names else names[0]

    def write_until(self, stop: int) -> None:
        """Encodes the samples from where the last call stopped up to ``stop`` (clipped to the sound's length)."""
        from fractions import Fraction

        import av

        stop = min(stop, self.sound.shape[1])
        if stop <= self.position:
            return
        piece = np.clip(self.sound[:, self.position:stop], -1, 1)
        if self.format.startswith("s16"):
            piece = np.round(piece * 32767).astype(np.int16)
        elif self.format.startswith("s32"):
            piece = np.round(piece.astype(np.float64) * 2147483647).astype(np.int32)
        if not self.format.endswith("p"):  # packed: channels interleaved
            piece = piece.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece), format=self.format,
                                           layout=self.stream.layout.name)
        frame.sample_rate, frame.pts, frame.time_base = self.rate, self.position, Fraction(1, self.rate)
        self.container.mux(self.stream.encode(frame))
        self.position = stop

    def finish(self) -> None:
        self.write_until(self.sound.shape[1])
        self.container.mux(self.stream.encode())


def encode_audio(path: str, sound: np.ndarray, sample_rate: int = 48000) -> str:
    """Writes ``sound`` ((N,) or (C, N) float in [-1, 1], C = 1 or 2) to the audio file ``path`` (.wav, .flac or
    .ogg; :data:`AUDIO_CODECS`) at ``sample_rate`` with PyAV and returns ``path``."""
    import av

    extension = os.path.splitext(path)[1]
    with av.open(path, mode="w", options={"fflags": "+bitexact"}) as container:
        _SoundWriter(container, extension, sound, sample_rate).finish()
    return path


def av_timbre(label: int) -> tuple[float, np.ndarray]:
    """The sound of class ``label`` in :func:`render_av`: its fundamental (Hz; 150 Hz times 1.3 per class) and the
    weights of its first 8 harmonics (they fall as 1 / h^p, p from 0.6 to 1.8 by class; every other class has only
    odd harmonics, as a clarinet does), so that classes differ in pitch and in timbre."""
    fundamental = 150.0 * 1.3 ** (label % len(SHAPES))
    harmonics = np.arange(1, 9, dtype=np.float64)
    weights = harmonics ** -(0.6 + 0.4 * (label % 4))
    if label % 2:
        weights[1::2] = 0.0
    return fundamental, weights / weights.sum()


def _smooth_path(count: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """(count,) float64 in [0, 1]: white noise smoothed by a Gaussian of std ``sigma`` samples, scaled to span
    [0, 1]: a smooth random path, never periodic."""
    reach = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-reach, reach + 1) / sigma) ** 2)
    path = np.convolve(rng.standard_normal(count + 2 * reach), kernel / kernel.sum(), mode="valid")
    span = path.max() - path.min()
    return (path - path.min()) / span if span > 0 else np.full(count, 0.5)


def render_av(label: int, frames: int, height: int, width: int, fps: float, sample_rate: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A video with sound whose picture and sound share a cause: the shape of class ``label`` (:data:`SHAPES`)
    grows and shrinks along a smooth random path (:data:`SIZE_SMOOTHING`), drifting a little over the moving
    background of :func:`render_video`, and its sound — the pitch and timbre of the class (:func:`av_timbre`) — is
    as loud as the shape is large, frame by frame. So a frame and the audio around its time agree, and audio
    shifted by half a second does not.

    Returns (video (frames, height, width, 3) uint8, sound (round(frames / fps * sample_rate),) float32 in [-1, 1],
    size (frames,) float64: the shape's half-size in pixels). Frame t shows time t / fps; the sound's amplitude
    at time s is 0.9 * (0.05 + 0.95 * loudness) with loudness = (size - smallest) / (largest - smallest) linearly
    interpolated between frames. Everything else (path, colours, drift, a ±2% detuning, the harmonics' phases)
    is drawn from ``rng``.

    Example:
        >>> video, sound, size = render_av(1, 8, 32, 32, 16, 8000, np.random.default_rng(0))
        >>> video.shape, sound.shape, sound.dtype, size.shape
        ((8, 32, 32, 3), (4000,), dtype('float32'), (8,))
    """
    background = _Background(height, width, rng)
    colour = _distinct_colour([background.a, background.b, (background.a + background.b) / 2], rng)
    loudness = _smooth_path(frames, SIZE_SMOOTHING * fps, rng)
    short = min(height, width)
    size = short * (0.1 + 0.2 * loudness)
    drift = 0.05 * (2 * np.stack([_smooth_path(frames, 4 * SIZE_SMOOTHING * fps, rng) for _ in range(2)]) - 1)
    tilt = rng.uniform(-0.5, 0.5) + rng.uniform(-0.03, 0.03) * np.arange(frames)
    video = _draw(SHAPES[label % len(SHAPES)], (height * (0.5 + drift[0]), width * (0.5 + drift[1]), size, tilt),
                  colour, background, frames)
    seconds = np.arange(round(frames / fps * sample_rate)) / sample_rate
    envelope = np.interp(seconds, np.arange(frames) / fps, loudness)
    fundamental, weights = av_timbre(label)
    fundamental *= rng.uniform(0.98, 1.02)
    phases = rng.uniform(0, 2 * np.pi, len(weights))
    wave = sum(w * np.sin(2 * np.pi * (h + 1) * fundamental * seconds + phase)
               for h, (w, phase) in enumerate(zip(weights, phases)) if w > 0)
    sound = (0.9 * (0.05 + 0.95 * envelope) * wave).astype(np.float32)
    return video, sound, size


def write_av_file(path: str, *, label: int = 0, index: int = 0, frames: int = 48, size=48, fps: int = 16,
                  sample_rate: int = 48000, seed: int = 0, audio: str | None = "track", sound: np.ndarray | None = None,
                  gop: int = 8) -> str:
    """Writes one video with sound of :func:`render_av` (class ``label``, drawn from a generator keyed by (``seed``,
    ``label``, ``index``)) to ``path`` (.webm: VP9; .mp4: H.264) and returns ``path``. ``audio``: "track" (in the
    video: Opus / AAC), "wav" | "flac" | "ogg" (a file beside it with the same stem, and a video without sound), or
    None (no sound at all). ``sound``: this sound instead of the rendered one ((N,) or (C, N) float in [-1, 1], C =
    1 or 2, any length: e.g. zeros, or shorter than the video) — for odd files. ``size``: H = W or (H, W), even.
    Needs PyAV."""
    extension = os.path.splitext(path)[1]
    codecs = {VIDEO_CODECS[codec][0]: codec for codec in VIDEO_CODECS}
    if extension not in codecs:
        raise ValueError(f"path must end with one of {', '.join(codecs)}, got {path!r}")
    if audio is not None and audio not in AV_AUDIO:
        raise ValueError(f"audio must be one of {', '.join(AV_AUDIO)} or None, got {audio!r}")
    height, width = (size, size) if isinstance(size, int) else size
    video, rendered, _ = render_av(label, frames, height, width, fps, sample_rate,
                                   np.random.default_rng([seed, label, index]))
    sound = rendered if sound is None else sound
    track = sound if audio == "track" else None
    encode_video(path, video, fps=fps, codec=codecs[extension], gop=gop, sound=track, sample_rate=sample_rate)
    if audio not in (None, "track"):
        encode_audio(os.path.splitext(path)[0] + "." + audio, sound, sample_rate)
    return path


def write_av_folder(root: str, *, classes: int = 4, per_class: int = 8, frames: int = 48, size=48, fps: int = 16,
                    sample_rate: int = 48000, seed: int = 0, container: str = "webm", audio: str = "track") -> str:
    """Writes ``root/class_<c>/<i>.webm`` (VP9 + Opus) or ``.mp4`` (H.264 + AAC): ``classes`` × ``per_class``
    videos with sound of :func:`write_av_file` (class c: shape ``SHAPES[c]`` and the sound :func:`av_timbre` of c;
    video i of class c drawn from a generator keyed by (``seed``, c, i)) — ``frames`` frames of ``size`` at ``fps``,
    sound at ``sample_rate`` in the video (``audio="track"``) or in a .wav / .flac / .ogg beside it — and returns
    ``root``. Deterministic from ``seed``; 48 frames of 48 × 48 with 3 s of sound take a few hundredths of a second
    to write. Needs PyAV.

    Example:
        >>> import tempfile  # doctest: +SKIP
        >>> root = write_av_folder(tempfile.mkdtemp(), classes=2, per_class=1, audio="wav")  # doctest: +SKIP
        >>> sorted(os.listdir(os.path.join(root, "class_1")))  # doctest: +SKIP
        ['00000.wav', '00000.webm']
    """
    if classes < 1 or per_class < 1 or frames < 1:
        raise ValueError(f"classes, per_class and frames must be >= 1, got {classes}, {per_class}, {frames}")
    if container not in ("webm", "mp4"):
        raise ValueError(f"container must be webm or mp4, got {container!r}")
    for label in range(classes):
        folder = os.path.join(root, f"class_{label}")
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            write_av_file(os.path.join(folder, f"{i:05d}.{container}"), label=label, index=i, frames=frames,
                          size=size, fps=fps, sample_rate=sample_rate, seed=seed, audio=audio)
    return root
