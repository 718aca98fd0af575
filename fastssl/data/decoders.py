"""Image decoders: encoded bytes of a batch → a :class:`~fastssl.ragged.RaggedImages` on the device.

- ``dali``: an NVIDIA DALI pipeline fed through ``fn.external_source``: ``fn.decoders.image`` on the
  GPU ("mixed": nvJPEG, with the hardware JPEG decoder where the GPU has one; ``hw_decoder_load``
  sets its share) or on the CPU (``device_id=None``, libjpeg-turbo). On the GPU the decoded batch is
  copied once, by DALI, into one packed torch buffer on the same device: no host round trip; on the CPU
  DALI's own packed output buffer becomes the batch, without a copy.
- ``torchvision``: ``torchvision.io.decode_image`` on CPU threads; JPEGs decode in one batched
  nvJPEG call when the device is CUDA.
- ``pil``: Pillow on CPU threads (the last resort).

Every decoder first reads each file's header (:func:`fastssl.data.headers.read_header`): files that are
no image, truncated, or claim more than ``max_pixels`` pixels are refused before any memory is
allocated for them. All convert to 8-bit RGB by one rule: grayscale repeated, palette looked up, alpha
dropped (not composited), 16-bit samples reduced to their high byte (``>> 8``), CMYK by libjpeg's
conversion (equal within 1 across decoders). A file a decoder cannot decode is reported, never fails
the batch: ``decode`` returns the decoded subset and the positions and one-line reasons of the rest. :func:`make_decoder` picks the
first available in the order above (``"auto"``); :func:`available` says which are installed.

Example:
    >>> import io, numpy as np, PIL.Image
    >>> buffer = io.BytesIO(); PIL.Image.new("RGB", (5, 4)).save(buffer, format="PNG")
    >>> decoded = make_decoder("pil").decode([buffer.getvalue(), b"not an image"])
    >>> decoded.images.sizes.tolist(), decoded.kept, [position for position, _ in decoded.failed]
    ([[4, 5]], [0], [1])
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import io
import os
import sys
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from .._native import host_empty
from ..ragged import RaggedImages
from .headers import MAX_PIXELS, ImageHeader, read_header

DECODERS = ("dali", "torchvision", "pil")


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


def make_decoder(name: str = "auto", device="cpu", *, num_threads: int = 2, hw_decoder_load: float = 0.65,
                 max_pixels: int = MAX_PIXELS):
    """The decoder ``name`` ("auto" | "dali" | "torchvision" | "pil") producing images on ``device``.

    Files whose header claims more than ``max_pixels`` pixels are reported as too large, not decoded.
    """
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
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    cls = {"dali": DaliDecoder, "torchvision": TorchvisionDecoder, "pil": PilDecoder}[name]
    return cls(device, num_threads=num_threads, hw_decoder_load=hw_decoder_load, max_pixels=max_pixels)


def _screen(encoded: list[bytes], max_pixels: int) -> tuple[dict[int, ImageHeader], list[tuple[int, str]]]:
    """{position: header} of the files worth decoding, and the others with why
    (:func:`fastssl.data.headers.read_header`)."""
    good, bad = {}, []
    for i, data in enumerate(encoded):
        try:
            good[i] = read_header(data, max_pixels)
        except ValueError as error:
            bad.append((i, str(error)))
    return good, bad


# Pillow's modes of 16-bit grayscale ("I": older Pillows open 16-bit PNGs so).
_PIL_16_BIT_GRAY = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _to_8_bit(samples: np.ndarray) -> np.ndarray:
    """16-bit samples (0..65535) → uint8 by their high byte (``>> 8``), the rule of every decoder here."""
    return np.clip(samples.astype(np.int32) >> 8, 0, 255).astype(np.uint8)


def _pack_hwc(arrays: list[np.ndarray], device: torch.device) -> RaggedImages:
    """(H, W, 3) uint8 arrays → one packed buffer (one copy), moved to ``device``."""
    sizes = torch.tensor([a.shape[:2] for a in arrays], dtype=torch.int64)
    lengths = sizes.prod(1) * 3
    data = host_empty(int(lengths.sum()))
    np.concatenate([a.reshape(-1) for a in arrays], out=data.numpy())
    offsets = torch.cumsum(lengths, 0) - lengths
    return RaggedImages(data.to(device), offsets.to(device), sizes.to(device), host_offsets=offsets, host_sizes=sizes)


class _ThreadedDecoder:
    """Decodes each image on a thread pool with ``decode_one(bytes) -> (H, W, 3) uint8 array | tensor``."""

    def __init__(self, device: torch.device, *, num_threads: int = 2, max_pixels: int = MAX_PIXELS, **_):
        self.device, self.max_pixels = device, max_pixels
        self.pool = ThreadPoolExecutor(max(1, num_threads), thread_name_prefix="fastssl-decode")

    def _try(self, data: bytes):
        try:
            return self.decode_one(data), None
        except Exception as error:  # a decoder's failure on one file must not end the batch
            return None, f"{type(error).__name__}: {error}".strip()

    def decode(self, encoded: list[bytes]) -> Decoded:
        good, failed = _screen(encoded, self.max_pixels)
        results = list(self.pool.map(self._try, [encoded[i] for i in good]))
        kept = [i for i, (image, _) in zip(good, results) if image is not None]
        failed += [(i, error) for i, (image, error) in zip(good, results) if image is None]
        images = [image for image, _ in results if image is not None]
        return Decoded(self._pack(images) if images else None, kept, sorted(failed))

    def _pack(self, images) -> RaggedImages:
        return _pack_hwc(images, self.device)


class PilDecoder(_ThreadedDecoder):
    name = "pil"

    def __init__(self, device: torch.device, **options):
        super().__init__(device, **options)
        import PIL.Image

        # Every file's size was checked against max_pixels before it gets here; Pillow's own, lower warning
        # threshold would only repeat that check.
        warnings.filterwarnings("ignore", category=PIL.Image.DecompressionBombWarning)

    def decode_one(self, data: bytes) -> np.ndarray:
        import PIL.Image

        with PIL.Image.open(io.BytesIO(data)) as image:
            if image.mode in _PIL_16_BIT_GRAY:  # convert("RGB") would clip these to 255
                gray = _to_8_bit(np.asarray(image))
                return np.repeat(gray[..., None], 3, axis=2)
            return np.asarray(image.convert("RGB"))  # 16-bit colour PNGs open as 8-bit: their high bytes


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
        if image.dtype != torch.uint8:  # 16-bit PNGs decode to uint16
            image = torch.from_numpy(_to_8_bit(image.numpy()))
        return image.permute(1, 2, 0)  # (H, W, 3)

    def decode(self, encoded: list[bytes]) -> Decoded:
        if self.device.type != "cuda":
            return super().decode(encoded)
        from torchvision.io import ImageReadMode, decode_jpeg

        good, refused = _screen(encoded, self.max_pixels)
        jpegs = [i for i, header in good.items() if header.format == "jpeg"]
        try:  # one batched nvJPEG call; on any failure every file goes through the per-file path
            images = decode_jpeg([torch.frombuffer(bytearray(encoded[i]), dtype=torch.uint8) for i in jpegs],
                                 mode=ImageReadMode.RGB, device=self.device)
        except RuntimeError:
            return super().decode(encoded)
        others = sorted(set(good) - set(jpegs))
        rest = super().decode([encoded[i] for i in others]) if others else Decoded(None, [], [])
        hwc = {i: image.permute(1, 2, 0) for i, image in zip(jpegs, images)}
        if rest.images is not None:
            hwc.update({others[k]: rest.images.image(j).permute(1, 2, 0) for j, k in enumerate(rest.kept)})
        kept = sorted(hwc)
        failed = sorted([(others[k], why) for k, why in rest.failed] + refused)
        return Decoded(RaggedImages.from_list([hwc[i] for i in kept], channels_last=True) if kept else None, kept,
                       failed)

    def _pack(self, images) -> RaggedImages:
        return RaggedImages.from_list([image.to(self.device) for image in images], channels_last=True)


class DaliDecoder:
    """DALI's ``fn.decoders.image``: "mixed" (GPU) for a CUDA device, the CPU backend otherwise.

    16-bit images go through a pipeline of their own that keeps the 16 bits (DALI would round them to 8 by
    /257), and are reduced to their high byte as by every decoder here. A DALI pipeline cannot go on after
    a decoding error, so a failed batch is decoded again in halves (with a fresh pipeline each time) until
    the files at fault are isolated; the rest decodes normally. What DALI's native code prints meanwhile
    (libjpeg's messages) is captured: it becomes the reason of the file that failed, or, after a run that
    succeeded, is written to stderr as it was.
    """

    name = "dali"

    def __init__(self, device: torch.device, *, num_threads: int = 2, hw_decoder_load: float = 0.65,
                 max_pixels: int = MAX_PIXELS, **_):
        if not 0.0 <= hw_decoder_load <= 1.0:
            raise ValueError(f"hw_decoder_load must be in [0, 1], got {hw_decoder_load}")
        self.device, self.num_threads, self.hw_decoder_load = device, num_threads, hw_decoder_load
        self.max_pixels = max_pixels
        self.pipes = {}  # bits per sample (8 or 16) -> (pipeline, its batch size)

    def _build(self, batch_size: int, bits: int):
        from nvidia.dali import fn, pipeline_def, types

        gpu = self.device.type == "cuda"
        device_id = (self.device.index if self.device.index is not None else torch.cuda.current_device()) if gpu else None

        @pipeline_def(batch_size=batch_size, num_threads=self.num_threads, device_id=device_id,
                      prefetch_queue_depth=1, exec_dynamic=True)
        def decode_pipeline():
            encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)
            extra = {"hw_decoder_load": self.hw_decoder_load} if gpu else {}
            return fn.decoders.image(encoded, device="mixed" if gpu else "cpu", output_type=types.RGB,
                                     dtype=types.UINT16 if bits == 16 else types.UINT8, **extra)

        pipe = decode_pipeline()
        with _NativeStderr() as printed:
            pipe.build()
        printed.replay()
        self.pipes[bits] = (pipe, batch_size)
        return pipe

    def _run(self, encoded: list[np.ndarray], bits: int) -> RaggedImages:
        """Decodes ``encoded`` in one run; RuntimeError (what DALI printed about it, one line) on any failure."""
        pipe, capacity = self.pipes.get(bits, (None, 0))
        if pipe is None or len(encoded) > capacity:
            pipe = self._build(max(len(encoded), capacity), bits)
        from nvidia.dali.backend import TensorListCPU

        try:
            with _NativeStderr() as printed:
                pipe.feed_input("encoded", TensorListCPU(encoded))  # one C++ call, not a Python loop over samples
                (out,) = pipe.run()
        except RuntimeError as error:
            del self.pipes[bits]  # "Current pipeline object is no longer valid"
            lines = dict.fromkeys(line.strip() for line in printed.text.splitlines() if line.strip())
            said = str(error).split("encountered:")[-1].strip().splitlines()
            raise RuntimeError("; ".join(lines) or (said[0] if said else "DALI error")) from None
        printed.replay()
        samples = [out[i] for i in range(len(out))]
        sizes = torch.tensor([sample.shape()[:2] for sample in samples], dtype=torch.int64)
        itemsize = bits // 8
        lengths = sizes.prod(1) * 3
        offsets = torch.cumsum(lengths, 0) - lengths
        total = int(lengths.sum()) * itemsize
        if self.device.type == "cuda":
            data = torch.empty(total, dtype=torch.uint8, device=self.device)
            # Synchronous: DALI may reuse its output buffer once ``out`` is gone.
            stream = torch.cuda.current_stream(self.device)
            out.copy_to_external(ctypes.c_void_p(data.data_ptr()), cuda_stream=ctypes.c_void_p(stream.cuda_stream),
                                 non_blocking=False)
        elif _back_to_back(samples, (offsets * itemsize).tolist()):
            # The dynamic executor's outputs stay valid while referenced (DALI's release_outputs docs), and the
            # CPU decoder writes them back to back: the packed batch is DALI's buffer itself, no copy.
            data = torch.from_numpy(np.asarray(_HostBuffer(out, total)))
        else:
            data = host_empty(total)
            out.copy_to_external(ctypes.c_void_p(data.data_ptr()))
        if itemsize == 2:  # the high byte of each little-endian uint16 sample
            data = data.view(-1, 2)[:, 1].contiguous()
        return RaggedImages(data, offsets.to(self.device), sizes.to(self.device), host_offsets=offsets,
                            host_sizes=sizes)

    def _isolate(self, encoded: list[np.ndarray], positions: list[int], bits: int) -> tuple[list, list[int], list]:
        """Decodes ``positions``; on an error, each half again. Returns (pieces, kept positions, failed)."""
        try:
            return [self._run([encoded[i] for i in positions], bits)], positions, []
        except RuntimeError as error:
            if len(positions) == 1:
                return [], [], [(positions[0], f"decoding failed: {error}")]
        half = len(positions) // 2
        a, b = self._isolate(encoded, positions[:half], bits), self._isolate(encoded, positions[half:], bits)
        return a[0] + b[0], a[1] + b[1], a[2] + b[2]

    def decode(self, encoded: list[bytes]) -> Decoded:
        good, failed = _screen(encoded, self.max_pixels)
        arrays = [np.frombuffer(data, dtype=np.uint8) for data in encoded]
        pieces, kept = [], []
        for bits in (8, 16):
            positions = [i for i, header in good.items() if header.bits == bits]
            if positions:
                done, decoded, broken = self._isolate(arrays, positions, bits)
                pieces, kept, failed = pieces + done, kept + decoded, failed + broken
        if not pieces:
            return Decoded(None, [], sorted(failed))
        images = pieces[0] if len(pieces) == 1 else _concat(pieces)
        order = sorted(range(len(kept)), key=kept.__getitem__)
        if order != list(range(len(kept))):  # 16-bit images decoded apart: back to file order, without a copy
            images = RaggedImages(images.data, images.offsets[order], images.sizes[order],
                                  host_offsets=images.host_offsets[order], host_sizes=images.host_sizes[order])
        return Decoded(images, sorted(kept), sorted(failed))


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
    """Ragged batches back to back (only after a decoding error or 16-bit images split a batch)."""
    starts = torch.cumsum(torch.tensor([0] + [p.data.numel() for p in pieces[:-1]]), 0).tolist()
    return RaggedImages(torch.cat([p.data for p in pieces]),
                        torch.cat([p.offsets + s for p, s in zip(pieces, starts)]), torch.cat([p.sizes for p in pieces]),
                        host_offsets=torch.cat([p.host_offsets + s for p, s in zip(pieces, starts)]),
                        host_sizes=torch.cat([p.host_sizes for p in pieces]))


class _NativeStderr:
    """Captures what native code writes to file descriptor 2 (stderr) inside ``with``: ``text`` afterwards.

    The descriptor is the process's, so one capture runs at a time (a lock), and what other threads print
    meanwhile lands in ``text`` too: :meth:`replay` writes it all out when it is not a failure's report.
    """

    _lock = threading.Lock()
    _file = None  # one temporary file, reused

    def __enter__(self) -> "_NativeStderr":
        self.text, self.saved = "", None
        type(self)._lock.acquire()
        try:
            if _NativeStderr._file is None:
                _NativeStderr._file = tempfile.TemporaryFile()
                atexit.register(_NativeStderr._file.close)
            sys.stderr.flush()
            self.saved = os.dup(2)
            os.dup2(self._file.fileno(), 2)
        except OSError:  # no stderr to redirect (a closed descriptor 2): nothing to capture
            self.saved = None
        except BaseException:
            type(self)._lock.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.saved is not None:
                os.dup2(self.saved, 2)
                os.close(self.saved)
                self._file.seek(0)
                self.text = self._file.read().decode(errors="replace")
                self._file.seek(0)
                self._file.truncate()
        finally:
            type(self)._lock.release()

    def replay(self) -> None:
        """Writes the captured text to stderr."""
        data = self.text.encode()
        while data:
            data = data[os.write(2, data):]
