"""A batch of video clips of different sizes and lengths in one packed buffer: the video analogue of RaggedImages.

``RaggedClips(data, offsets, sizes, frames)``: ``data`` is a flat uint8 buffer holding clip b at
``data[offsets[b] : offsets[b] + T_b * H_b * W_b * 3]`` in THWC order (frames back to back, each
interleaved RGB, as decoders emit them); ``sizes`` is (B, 2) int64 (H_b, W_b) and ``frames`` (B,) int64
T_b. Pixel (t, y, x, c) of clip b is at ``offsets[b] + ((t * H_b + y) * W_b + x) * 3 + c``, so frame t of
clip b is an image of :class:`~fastssl.ragged.RaggedImages` layout at ``offsets[b] + t * H_b * W_b * 3``:
:meth:`RaggedClips.frames_as_images` hands every frame of the batch to the image ops without a copy.

``host_offsets``, ``host_sizes`` and ``host_frames`` are CPU copies (the same tensors for a CPU batch):
the checks at construction and everything that needs the layout read these, never the device.

Example:
    >>> import torch
    >>> clips = RaggedClips.from_list([torch.zeros(2, 3, 5, 3, dtype=torch.uint8),
    ...                                torch.ones(4, 1, 2, 3, dtype=torch.uint8)])
    >>> clips.host_offsets.tolist(), clips.host_sizes.tolist(), clips.host_frames.tolist(), clips.data.numel()
    ([0, 90], [[3, 5], [1, 2]], [2, 4], 114)
    >>> clips.clip(1).shape
    torch.Size([4, 1, 2, 3])
    >>> images = clips.frames_as_images()  # 2 + 4 frames as 6 images sharing the buffer
    >>> len(images), images.image(5).shape
    (6, torch.Size([3, 1, 2]))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .ragged import RaggedImages


@dataclass(frozen=True)
class RaggedClips:
    data: torch.Tensor  #: (total,) uint8, clips back to back in THWC order
    offsets: torch.Tensor  #: (B,) int64, start of each clip in ``data``
    sizes: torch.Tensor  #: (B, 2) int64, (H, W) of each clip's frames
    frames: torch.Tensor  #: (B,) int64, T: frames in each clip
    host_offsets: torch.Tensor | None = field(default=None, repr=False, compare=False)  #: offsets on the CPU
    host_sizes: torch.Tensor | None = field(default=None, repr=False, compare=False)  #: sizes on the CPU
    host_frames: torch.Tensor | None = field(default=None, repr=False, compare=False)  #: frames on the CPU

    def __post_init__(self):
        if self.data.dim() != 1 or self.data.dtype != torch.uint8:
            raise ValueError(f"data must be a 1-D uint8 tensor, got {tuple(self.data.shape)} {self.data.dtype}")
        count = self.offsets.shape[0] if self.offsets.dim() == 1 else -1
        expected = {"offsets": (count,), "sizes": (count, 2), "frames": (count,)}
        for name, shape in expected.items():
            device = getattr(self, name)
            if device.dtype != torch.int64 or tuple(device.shape) != shape or count < 0:
                raise ValueError(f"{name} must be an int64 tensor of shape {shape if count >= 0 else '(B,)'}, got "
                                 f"{tuple(device.shape)} {device.dtype}")
            if device.device != self.data.device:
                raise ValueError(f"{name} is on {device.device}, data on {self.data.device}")
            host = getattr(self, "host_" + name)
            if host is None:
                object.__setattr__(self, "host_" + name, device.cpu())
            elif host.device.type != "cpu" or host.shape != device.shape or host.dtype != device.dtype:
                raise ValueError(f"host_{name} must be a CPU copy of {name} ({tuple(device.shape)} {device.dtype}), "
                                 f"got {tuple(host.shape)} {host.dtype} on {host.device}")
        if count == 0:
            raise ValueError("the batch is empty")
        sizes, offsets, frames = self.host_sizes, self.host_offsets, self.host_frames
        if not ((sizes > 0).all() and (frames > 0).all()):
            raise ValueError(f"sizes and frames must be positive, got sizes {sizes.tolist()} and frames "
                             f"{frames.tolist()}")
        ends = offsets + frames * sizes.prod(1) * 3
        if not ((offsets >= 0) & (ends <= self.data.numel())).all():
            raise ValueError(f"offsets/sizes/frames point outside data ({self.data.numel()} bytes), got offsets "
                             f"{offsets.tolist()}, sizes {sizes.tolist()} and frames {frames.tolist()}")

    def __len__(self) -> int:
        return self.offsets.shape[0]

    @property
    def device(self) -> torch.device:
        return self.data.device

    @classmethod
    def from_list(cls, clips: list[torch.Tensor], device=None) -> "RaggedClips":
        """Packs uint8 clips (T, H, W, 3) — each its own T, H, W — into one buffer (one copy), on ``device``
        (default: the first clip's)."""
        if not clips:
            raise ValueError("clips is empty")
        for i, clip in enumerate(clips):
            if not isinstance(clip, torch.Tensor) or clip.dtype != torch.uint8 or clip.dim() != 4 or clip.shape[3] != 3:
                raise ValueError(f"clips[{i}] must be a (T, H, W, 3) uint8 tensor, got "
                                 f"{tuple(getattr(clip, 'shape', ())) or type(clip).__name__} "
                                 f"{getattr(clip, 'dtype', '')}")
        device = torch.device(device) if device is not None else clips[0].device
        sizes = torch.tensor([[c.shape[1], c.shape[2]] for c in clips], dtype=torch.int64).reshape(-1, 2)
        frames = torch.tensor([c.shape[0] for c in clips], dtype=torch.int64)
        lengths = torch.tensor([c.numel() for c in clips], dtype=torch.int64)
        offsets = torch.cumsum(lengths, 0) - lengths
        data = torch.cat([c.to(device).reshape(-1) for c in clips])
        return cls(data, offsets.to(device), sizes.to(device), frames.to(device), offsets, sizes, frames)

    def to(self, device, non_blocking: bool = False) -> "RaggedClips":
        """The batch on ``device`` (itself when it is there already); the host copies are kept, not re-read."""
        device = torch.device(device)
        if device == self.device:
            return self
        move = lambda t: t.to(device, non_blocking=non_blocking)  # noqa: E731
        return RaggedClips(move(self.data), move(self.host_offsets), move(self.host_sizes), move(self.host_frames),
                           self.host_offsets, self.host_sizes, self.host_frames)

    def clip(self, b: int) -> torch.Tensor:
        """Clip ``b`` as a (T, H, W, 3) uint8 view of the buffer."""
        t = int(self.host_frames[b])
        h, w = (int(v) for v in self.host_sizes[b])
        start = int(self.host_offsets[b])
        return self.data[start:start + t * h * w * 3].view(t, h, w, 3)

    def frames_as_images(self) -> RaggedImages:
        """Every frame as an image: a RaggedImages of sum(T_b) images sharing ``data`` (no copy), clip 0's frames
        first; frame t of clip b is image ``sum(T_0..T_{b-1}) + t``."""
        frames = self.host_frames
        clip_of = torch.repeat_interleave(torch.arange(len(self)), frames)
        first = torch.cumsum(frames, 0) - frames
        t = torch.arange(int(frames.sum())) - first[clip_of]
        sizes = self.host_sizes[clip_of]
        offsets = self.host_offsets[clip_of] + t * sizes.prod(1) * 3
        device = self.device
        return RaggedImages(self.data, offsets.to(device), sizes.to(device), offsets, sizes)
