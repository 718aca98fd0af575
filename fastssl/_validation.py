"""Python-side input checks shared by the public ops (the native bindings check again)."""

from __future__ import annotations

import os

import torch

FLOAT_TYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def check_finite_enabled() -> bool:
    """NaN/Inf checks of float inputs cost one extra read (and a device sync on GPU); FASTSSL_CHECK_FINITE=0 skips them."""
    return os.environ.get("FASTSSL_CHECK_FINITE", "1") != "0"


def check_tensor(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def check_rgb(x, name: str, channels_last: bool, dtypes, min_dim: int = 3, max_dim: int | None = None) -> torch.Tensor:
    """Checks a (*, 3, H, W) (or (*, H, W, 3) when channels_last) image tensor, naming ``name`` in errors."""
    check_tensor(x, name)
    layout = "(*, H, W, 3)" if channels_last else "(*, 3, H, W)"
    if max_dim == 4:
        layout = "(B, H, W, 3)" if channels_last else "(B, 3, H, W)"
    if x.dim() < min_dim or (max_dim is not None and x.dim() > max_dim):
        raise ValueError(f"{name} must have shape {layout}, got {tuple(x.shape)}")
    channels = x.shape[-1] if channels_last else x.shape[-3]
    if channels != 3:
        where = "last" if channels_last else "third-from-last"
        raise ValueError(f"{name} must have 3 channels in its {where} dimension {layout}, got {channels} "
                         f"(shape {tuple(x.shape)}); pass channels_last={not channels_last} if the layout is the other one")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    if x.dtype not in dtypes:
        raise TypeError(f"{name} must have dtype {' or '.join(str(d).replace('torch.', '') for d in dtypes)}, "
                        f"got {str(x.dtype).replace('torch.', '')}")
    return x


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raises when a float tensor holds NaN or Inf (skipped while torch.compile traces, and when disabled)."""
    if not x.is_floating_point() or x.numel() == 0 or not check_finite_enabled() or torch.compiler.is_compiling():
        return
    low, high = torch.aminmax(x.detach())  # one read, no temporary; NaN propagates into both
    if not (bool(torch.isfinite(low)) and bool(torch.isfinite(high))):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); clean the input, or set "
                         f"FASTSSL_CHECK_FINITE=0 to skip this check (NaN then propagates to the output)")


def check_same_device(tensors: dict[str, torch.Tensor]) -> None:
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        listed = ", ".join(f"{n} on {d}" for n, d in devices.items())
        raise ValueError(f"inputs must be on one device, got {listed}")
