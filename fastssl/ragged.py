"""A batch of differently sized images in one packed buffer: what a decoder hands over.

``RaggedImages(data, offsets, sizes)``: ``data`` is a flat uint8 buffer holding image b at
``data[offsets[b] : offsets[b] + H_b * W_b * 3]`` in HWC order (interleaved RGB, as decoders emit
it); ``sizes`` is (B, 2) int64 (H_b, W_b). Kernels read pixel (y, x, c) of image b at
``offsets[b] + (y * W_b + x) * 3 + c`` — one launch for the whole batch, no per-image Python loop.

``host_offsets`` and ``host_sizes`` are CPU copies of ``offsets`` and ``sizes`` (the same tensors for a
CPU batch): decoders know them on the host, and everything that needs them (the checks, the parameter
draw) reads these, never the device. A GPU batch built without them copies them back once, at
construction (a device sync). ``max_size`` is the batch's largest (H, W) as Python ints (the resize
weights' tap bound): read from ``host_sizes`` at construction unless given; :meth:`repeat` passes it on.

The checks at construction read the host copies at once and raise ``ValueError`` naming the culprit;
under :func:`fastssl._validation.asynchronous_checks` (the tests' stand-in for a GPU) they are handed to
``torch._assert_async`` instead, so that the tests can count the reads a GPU batch would make.

Example:
    >>> import torch
    >>> batch = RaggedImages.from_list([torch.zeros(3, 4, 5, dtype=torch.uint8), torch.ones(3, 2, 2, dtype=torch.uint8)])
    >>> batch.sizes.tolist(), batch.offsets.tolist(), batch.data.numel()
    ([[4, 5], [2, 2]], [0, 60], 72)
    >>> batch.image(1).shape
    torch.Size([3, 2, 2])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import _native, _validation


@dataclass(frozen=True)
class RaggedImages:
    data: torch.Tensor  #: (total,) uint8, images back to back in HWC order
    offsets: torch.Tensor  #: (B,) int64, start of each image in ``data``
    sizes: torch.Tensor  #: (B, 2) int64, (H, W) of each image
    host_offsets: torch.Tensor | None = field(default=None, repr=False, compare=False)  #: offsets on the CPU
    host_sizes: torch.Tensor | None = field(default=None, repr=False, compare=False)  #: sizes on the CPU
    max_size: tuple[int, int] | None = field(default=None, repr=False, compare=False)  #: largest (H, W)

    def __post_init__(self):
        if self.data.dim() != 1 or self.data.dtype != torch.uint8:
            raise ValueError(f"data must be a 1-D uint8 tensor, got {tuple(self.data.shape)} {self.data.dtype}")
        if self.offsets.dim() != 1 or self.offsets.dtype != torch.int64:
            raise ValueError(f"offsets must be a 1-D int64 tensor, got {tuple(self.offsets.shape)} {self.offsets.dtype}")
        if self.sizes.shape != (self.offsets.shape[0], 2) or self.sizes.dtype != torch.int64:
            raise ValueError(f"sizes must be (B, 2) = ({self.offsets.shape[0]}, 2) int64, got "
                             f"{tuple(self.sizes.shape)} {self.sizes.dtype}")
        if len(self) == 0:
            raise ValueError("the batch is empty")
        for name in ("offsets", "sizes"):
            host = getattr(self, "host_" + name)
            device = getattr(self, name)
            if host is None:
                object.__setattr__(self, "host_" + name, device.cpu())
            elif host.device.type != "cpu" or host.shape != device.shape or host.dtype != device.dtype:
                raise ValueError(f"host_{name} must be a CPU copy of {name} ({tuple(device.shape)} {device.dtype}), "
                                 f"got {tuple(host.shape)} {host.dtype} on {host.device}")
        sizes, offsets = self.host_sizes, self.host_offsets
        if self.max_size is None:
            object.__setattr__(self, "max_size", tuple(int(v) for v in sizes.amax(0).tolist()))
        elif len(self.max_size) != 2 or not all(isinstance(v, int) for v in self.max_size):
            raise ValueError(f"max_size must be two ints (H, W), got {self.max_size!r}")
        else:
            object.__setattr__(self, "max_size", tuple(self.max_size))
        ends = offsets + sizes.prod(1) * 3
        checks = (((sizes > 0).all(), "sizes must be positive"),
                  (((offsets >= 0) & (ends <= self.data.numel())).all(),
                   f"offsets/sizes point outside data ({self.data.numel()} bytes)"),
                  ((sizes <= torch.tensor(self.max_size)).all(), f"sizes exceed max_size {self.max_size}"))
        for passed, message in checks:
            if _validation.checks_asynchronously(sizes):
                _validation._assert_async(passed, message)
            elif not bool(passed):
                raise ValueError(f"{message}, got sizes {sizes.tolist()} and offsets {offsets.tolist()}")

    def __len__(self) -> int:
        return self.offsets.shape[0]

    @property
    def device(self) -> torch.device:
        return self.data.device

    @classmethod
    def from_list(cls, images: list[torch.Tensor], channels_last: bool = False) -> "RaggedImages":
        """Packs uint8 images (3, H, W) — or (H, W, 3) with ``channels_last`` — into one buffer (one copy)."""
        if not images:
            raise ValueError("images is empty")
        hwc = []
        for i, image in enumerate(images):
            if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8 or image.dim() != 3:
                raise ValueError(f"images[{i}] must be a 3-D uint8 tensor, got "
                                 f"{getattr(image, 'shape', type(image).__name__)} {getattr(image, 'dtype', '')}")
            image = image if channels_last else image.permute(1, 2, 0)
            if image.shape[2] != 3:
                raise ValueError(f"images[{i}] must have 3 channels, got shape {tuple(image.shape)}")
            hwc.append(image.reshape(-1))
        sizes = torch.tensor([[im.shape[0], im.shape[1]] if channels_last else [im.shape[1], im.shape[2]]
                              for im in images], dtype=torch.int64)
        lengths = torch.tensor([t.numel() for t in hwc], dtype=torch.int64)
        offsets = torch.cumsum(lengths, 0) - lengths
        device = images[0].device
        total = int(lengths.sum())
        data = _native.host_empty(total) if device.type == "cpu" else torch.empty(total, dtype=torch.uint8,
                                                                                   device=device)
        return cls(torch.cat(hwc, out=data), offsets.to(device), sizes.to(device), offsets, sizes)

    @classmethod
    def from_dense(cls, images: torch.Tensor, channels_last: bool = False) -> "RaggedImages":
        """A dense uint8 batch (B, 3, H, W) — or (B, H, W, 3) — as a ragged one."""
        hwc = images if channels_last else images.permute(0, 2, 3, 1)
        B, H, W, _ = hwc.shape
        offsets = torch.arange(B, dtype=torch.int64) * (H * W * 3)
        sizes = torch.tensor([[H, W]], dtype=torch.int64).expand(B, 2).contiguous()
        return cls(hwc.contiguous().reshape(-1), offsets.to(images.device), sizes.to(images.device), offsets, sizes)

    def repeat(self, times: int) -> "RaggedImages":
        """The batch ``times`` times over, sharing ``data`` (no copy): image ``k B + b`` is image ``b``."""
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        return RaggedImages(self.data, self.offsets.repeat(times), self.sizes.repeat(times, 1),
                            self.host_offsets.repeat(times), self.host_sizes.repeat(times, 1), self.max_size)

    def image(self, b: int) -> torch.Tensor:
        """Image ``b`` as a (3, H, W) uint8 view of the buffer."""
        h, w = (int(v) for v in self.host_sizes[b])
        start = int(self.host_offsets[b])
        return self.data[start:start + h * w * 3].view(h, w, 3).permute(2, 0, 1)
