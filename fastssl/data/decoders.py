"""Image decoders: encoded bytes of a batch → a :class:`~fastssl.ragged.RaggedImages` on the device.

- ``dali``: an NVIDIA DALI pipeline fed through ``fn.external_source``: ``fn.decoders.image`` on the
  GPU ("mixed": nvJPEG, with the hardware JPEG decoder where the GPU has one; ``hw_decoder_load``
  sets its share) or on the CPU (``device_id=None``, libjpeg-turbo). On the GPU the decoded batch is
  copied once, by DALI, into one packed torch buffer on the same device: no host round trip; on the CPU
  DALI's own packed output buffer becomes the batch, without a copy.
- ``torchvision``: ``torchvision.io.decode_image`` on CPU threads; JPEGs decode in one batched
  nvJPEG call when the device is CUDA.
- ``pil``: Pillow on CPU threads (the last resort).

Every decoder converts grayscale, CMYK, palette and alpha images to RGB, and reports the files it
cannot decode (not an image, truncated, corrupt) instead of failing the batch: ``decode`` returns
the decoded subset and the positions and reasons of the rest. :func:`make_decoder` picks the
first available in the order above (``"auto"``); :func:`available` says which are installed.

Example:
    >>> import io, numpy as np, PIL.Image
    >>> buffer = io.BytesIO(); PIL.Image.new("RGB", (5, 4)).save(buffer, format="PNG")
    >>> decoded = make_decoder("pil").decode([buffer.getvalue(), b"not an image"])
    >>> decoded.images.sizes.tolist(), decoded.kept, [position for position, _ in decoded.failed]
    ([[4, 5]], [0], [1])
"""

from __future__ import annotations

import ctypes
import importlib.util
import io
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from .._native import host_empty
from ..ragged import RaggedImages

DECODERS = ("dali", "torchvision", "pil")

# Leading bytes of the formats the decoders read; anything else is reported as "not an image" before decoding.
SIGNATURES = {
    b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png", b"BM": "bmp", b"II*\x00": "tiff", b"MM\x00*": "tiff",
    b"\x00\x00\x00\x0cjP  ": "jpeg2000", b"\xffO\xffQ": "jpeg2000", b"P1": "pnm", b"P2": "pnm", b"P3": "pnm",
    b"P4": "pnm", b"P5": "pnm", b"P6": "pnm",
}


def image_format(data: bytes) -> str | None:
    """The format named by the leading bytes ("jpeg", "png", ...), or None when it is none we decode."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for signature, name in SIGNATURES.items():
        if data.startswith(signature):
            return name
    return None


@dataclass
class Decoded:
    """A decoded batch: ``images`` holds the samples at positions ``kept``; ``failed`` the others with why."""

    images: RaggedImages | None  #: None when no sample decoded
    kept: list[int]
    failed: list[tuple[int, str]]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing or blocked
        return False


def available() -> dict[str, bool]:
    """Which decoders are installed (DALI, torchvision, Pillow); nothing is imported."""
    return {"dali": _installed("nvidia.dali"), "torchvision": _installed("torchvision"), "pil": _installed("PIL")}


def make_decoder(name: str = "auto", device="cpu", *, num_threads: int = 2, hw_decoder_load: float = 0.65):
    """The decoder ``name`` ("auto" | "dali" | "torchvision" | "pil") producing images on ``device``."""
    device = torch.device(device)
    found = available()
    if name == "auto":
        name = next((n for n in DECODERS if found[n]), None)
        if name is None:
            raise RuntimeError("no image decoder is installed: pip install 'fastssl-engine[dali]', torchvision or pillow")
    if name not in DECODERS:
        raise ValueError(f"decoder must be 'auto' or one of {DECODERS}, got {name!r}")
    if not found[name]:
        package = {"dali": "nvidia-dali-cuda130 (pip install 'fastssl-engine[dali]')", "torchvision": "torchvision",
                   "pil": "pillow"}[name]
        raise RuntimeError(f"decoder {name!r} needs {package}, which is not installed")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device} was asked for but CUDA is not available")
    cls = {"dali": DaliDecoder, "torchvision": TorchvisionDecoder, "pil": PilDecoder}[name]
    return cls(device, num_threads=num_threads, hw_decoder_load=hw_decoder_load)


def _screen(encoded: list[bytes]) -> tuple[list[int], list[tuple[int, str]]]:
    """Positions worth decoding, and the ones that are no image at all."""
    good, bad = [], []
    for i, data in enumerate(encoded):
        if image_format(data) is None:
            bad.append((i, "not an image (unknown file signature)" if data else "empty file"))
        else:
            good.append(i)
    return good, bad


def _pack_hwc(arrays: list[np.ndarray], device: torch.device) -> RaggedImages:
    """(H, W, 3) uint8 arrays → one packed buffer (one copy), moved to ``device``."""
    sizes = torch.tensor([a.shape[:2] for a in arrays], dtype=torch.int64)
    lengths = sizes.prod(1) * 3
    data = host_empty(int(lengths.sum()))
    np.concatenate([a.reshape(-1) for a in arrays], out=data.numpy())
    return RaggedImages(data.to(device), (torch.cumsum(lengths, 0) - lengths).to(device), sizes.to(device))


class _ThreadedDecoder:
    """Decodes each image on a thread pool with ``decode_one(bytes) -> (H, W, 3) uint8 array | tensor``."""

    def __init__(self, device: torch.device, *, num_threads: int = 2, **_):
        self.device = device
        self.pool = ThreadPoolExecutor(max(1, num_threads), thread_name_prefix="fastssl-decode")

    def _try(self, data: bytes):
        try:
            return self.decode_one(data), None
        except Exception as error:  # a decoder's failure on one file must not end the batch
            return None, f"{type(error).__name__}: {error}".strip()

    def decode(self, encoded: list[bytes]) -> Decoded:
        good, failed = _screen(encoded)
        results = list(self.pool.map(self._try, [encoded[i] for i in good]))
        kept = [i for i, (image, _) in zip(good, results) if image is not None]
        failed += [(i, error) for i, (image, error) in zip(good, results) if image is None]
        images = [image for image, _ in results if image is not None]
        return Decoded(self._pack(images) if images else None, kept, sorted(failed))

    def _pack(self, images) -> RaggedImages:
        return _pack_hwc(images, self.device)


class PilDecoder(_ThreadedDecoder):
    name = "pil"

    def decode_one(self, data: bytes) -> np.ndarray:
        import PIL.Image

        with PIL.Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))


class TorchvisionDecoder(_ThreadedDecoder):
    name = "torchvision"

    def __init__(self, device: torch.device, **options):
        super().__init__(device, **options)
        # torchvision 0.29 deprecates its decoders in favour of TorchCodec's; they still work, so say it once.
        warnings.filterwarnings("ignore", "The image decoding and encoding capabilities of TorchVision",
                                DeprecationWarning)

    def decode_one(self, data: bytes) -> torch.Tensor:
        from torchvision.io import ImageReadMode, decode_image

        image = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
        return image.permute(1, 2, 0)  # (H, W, 3)

    def decode(self, encoded: list[bytes]) -> Decoded:
        if self.device.type != "cuda":
            return super().decode(encoded)
        from torchvision.io import ImageReadMode, decode_jpeg

        jpegs = [i for i, data in enumerate(encoded) if image_format(data) == "jpeg"]
        try:  # one batched nvJPEG call; on any failure every file goes through the per-file path
            images = decode_jpeg([torch.frombuffer(bytearray(encoded[i]), dtype=torch.uint8) for i in jpegs],
                                 mode=ImageReadMode.RGB, device=self.device)
        except RuntimeError:
            return super().decode(encoded)
        others = sorted(set(range(len(encoded))) - set(jpegs))
        rest = super().decode([encoded[i] for i in others]) if others else Decoded(None, [], [])
        hwc = {i: image.permute(1, 2, 0) for i, image in zip(jpegs, images)}
        if rest.images is not None:
            hwc.update({others[k]: rest.images.image(j).permute(1, 2, 0) for j, k in enumerate(rest.kept)})
        kept = sorted(hwc)
        failed = [(others[k], why) for k, why in rest.failed]
        return Decoded(RaggedImages.from_list([hwc[i] for i in kept], channels_last=True) if kept else None, kept,
                       failed)

    def _pack(self, images) -> RaggedImages:
        return RaggedImages.from_list([image.to(self.device) for image in images], channels_last=True)


class DaliDecoder:
    """DALI's ``fn.decoders.image``: "mixed" (GPU) for a CUDA device, the CPU backend otherwise.

    A DALI pipeline cannot go on after a decoding error, so a failed batch is decoded again in halves
    (with a fresh pipeline each time) until the files at fault are isolated; the rest decodes normally.
    """

    name = "dali"

    def __init__(self, device: torch.device, *, num_threads: int = 2, hw_decoder_load: float = 0.65, **_):
        if not 0.0 <= hw_decoder_load <= 1.0:
            raise ValueError(f"hw_decoder_load must be in [0, 1], got {hw_decoder_load}")
        self.device, self.num_threads, self.hw_decoder_load = device, num_threads, hw_decoder_load
        self.pipe, self.capacity = None, 0

    def _build(self, batch_size: int):
        from nvidia.dali import fn, pipeline_def, types

        gpu = self.device.type == "cuda"
        device_id = (self.device.index if self.device.index is not None else torch.cuda.current_device()) if gpu else None

        @pipeline_def(batch_size=batch_size, num_threads=self.num_threads, device_id=device_id,
                      prefetch_queue_depth=1, exec_dynamic=True)
        def decode_pipeline():
            encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)
            extra = {"hw_decoder_load": self.hw_decoder_load} if gpu else {}
            return fn.decoders.image(encoded, device="mixed" if gpu else "cpu", output_type=types.RGB, **extra)

        self.pipe = decode_pipeline()
        self.pipe.build()
        self.capacity = batch_size

    def _run(self, encoded: list[np.ndarray]) -> RaggedImages:
        if self.pipe is None or len(encoded) > self.capacity:
            self._build(max(len(encoded), self.capacity))
        from nvidia.dali.backend import TensorListCPU

        self.pipe.feed_input("encoded", TensorListCPU(encoded))  # one C++ call instead of a Python loop over samples
        try:
            (out,) = self.pipe.run()
        except RuntimeError:
            self.pipe = None  # "Current pipeline object is no longer valid"
            raise
        samples = [out[i] for i in range(len(out))]
        sizes = torch.tensor([sample.shape()[:2] for sample in samples], dtype=torch.int64)
        lengths = sizes.prod(1) * 3
        offsets = torch.cumsum(lengths, 0) - lengths
        total = int(lengths.sum())
        if self.device.type == "cuda":
            data = torch.empty(total, dtype=torch.uint8, device=self.device)
            # Synchronous: DALI may reuse its output buffer once ``out`` is gone.
            stream = torch.cuda.current_stream(self.device)
            out.copy_to_external(ctypes.c_void_p(data.data_ptr()), cuda_stream=ctypes.c_void_p(stream.cuda_stream),
                                 non_blocking=False)
        elif _back_to_back(samples, offsets.tolist()):
            # The dynamic executor's outputs stay valid while referenced (DALI's release_outputs docs), and the
            # CPU decoder writes them back to back: the packed batch is DALI's buffer itself, no copy.
            data = torch.from_numpy(np.asarray(_HostBuffer(out, total)))
        else:
            data = host_empty(total)
            out.copy_to_external(ctypes.c_void_p(data.data_ptr()))
        return RaggedImages(data, offsets.to(self.device), sizes.to(self.device))

    def _isolate(self, encoded: list[np.ndarray], positions: list[int]) -> tuple[list[RaggedImages], list[int], list]:
        """Decodes ``positions``; on an error, each half again. Returns (pieces, kept positions, failed)."""
        try:
            return [self._run([encoded[i] for i in positions])], positions, []
        except RuntimeError as error:
            if len(positions) == 1:
                message = str(error).split("encountered:")[-1].strip().splitlines()
                return [], [], [(positions[0], "decoding failed: " + (message[0] if message else "DALI error"))]
        half = len(positions) // 2
        a, b = self._isolate(encoded, positions[:half]), self._isolate(encoded, positions[half:])
        return a[0] + b[0], a[1] + b[1], a[2] + b[2]

    def decode(self, encoded: list[bytes]) -> Decoded:
        good, failed = _screen(encoded)
        if not good:
            return Decoded(None, [], failed)
        arrays = [np.frombuffer(data, dtype=np.uint8) for data in encoded]
        pieces, kept, broken = self._isolate(arrays, good)
        if not pieces:
            return Decoded(None, [], sorted(failed + broken))
        images = pieces[0] if len(pieces) == 1 else _concat(pieces)
        return Decoded(images, kept, sorted(failed + broken))


def _back_to_back(samples, offsets: list[int]) -> bool:
    """Whether DALI's samples lie at ``offsets`` from the first one (one packed buffer)."""
    base = samples[0].data_ptr()
    return all(sample.data_ptr() == base + offset for sample, offset in zip(samples, offsets))


class _HostBuffer:
    """``nbytes`` of a DALI CPU TensorList's packed buffer as a numpy array interface; the array (and a tensor
    made from it) holds this object, and so the TensorList and its memory, alive."""

    def __init__(self, tensor_list, nbytes: int):
        self.tensor_list = tensor_list
        self.__array_interface__ = {"shape": (nbytes,), "typestr": "|u1", "data": (tensor_list.data_ptr(), False),
                                    "version": 3}


def _concat(pieces: list[RaggedImages]) -> RaggedImages:
    """Ragged batches back to back (only after a decoding error split a batch)."""
    starts = torch.cumsum(torch.tensor([0] + [p.data.numel() for p in pieces[:-1]]), 0).tolist()
    return RaggedImages(torch.cat([p.data for p in pieces]),
                        torch.cat([p.offsets + s for p, s in zip(pieces, starts)]), torch.cat([p.sizes for p in pieces]))
