"""Python-side input checks shared by the public ops (the native bindings check again).

Value checks (:func:`check_finite`, :func:`check_values`) read the tensor once (``torch.aminmax``).
How the answer reaches the host depends on the device:

* CPU tensors: read at once; a bad value raises ``ValueError`` naming the argument.
* CUDA tensors: nothing is read back (no device->host sync, so the CPU keeps queueing work ahead of
  the GPU). The condition is computed on the device and handed to ``torch._assert_async``: when it
  fails, the GPU prints the one-line message (naming the argument) from a device-side assert and the
  next synchronizing call raises ``RuntimeError: CUDA error: device-side assert triggered``; the CUDA
  context is unusable after that, so the process has to restart. FASTSSL_CHECK_FINITE=sync reads the
  answer back instead (one blocking read per tensor) and raises the CPU's ``ValueError``, and
  FASTSSL_CHECK_FINITE=0 skips the value checks (NaN then propagates to the outputs).

While torch.compile traces, the value checks are skipped.

Argument checks (:func:`check_int`, :func:`check_number`) read Python values only; tensor range checks
(:func:`check_range`, :func:`check_index_range`, :func:`check_none_equal`) follow the value checks' rules
above, except under torch.compile: kernels index memory with those values, so the compiled graph keeps them
as ``torch._assert_async`` (a failure raises ``RuntimeError`` with the message at run time). A public op
checks its inputs once, here; its kernels check shapes and dtypes only.
"""

from __future__ import annotations

import contextlib
import os

import torch

FLOAT_TYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
UNIT_RANGE_TOLERANCE = 1e-3  # float images may stray this far outside [0, 1] (rounding of a resize, say)
ASYNC_MESSAGE_LIMIT = 250  # torch._assert_async keeps messages shorter than 255 bytes on CUDA

_force_asynchronous = False


def check_finite_mode() -> str:
    """FASTSSL_CHECK_FINITE: "0" (no value checks), "sync" (read back on every device) or "1" (the default)."""
    return os.environ.get("FASTSSL_CHECK_FINITE", "1")


def check_finite_enabled() -> bool:
    """Value checks of float inputs cost one extra read of the tensor; FASTSSL_CHECK_FINITE=0 skips them."""
    return check_finite_mode() != "0"


@contextlib.contextmanager
def asynchronous_checks():
    """Within the block, CPU tensors are checked the way CUDA tensors are (``torch._assert_async``, which
    raises ``RuntimeError`` at once on the CPU): lets tests count the host reads of the GPU path."""
    global _force_asynchronous
    previous, _force_asynchronous = _force_asynchronous, True
    try:
        yield
    finally:
        _force_asynchronous = previous


def checks_asynchronously(x: torch.Tensor) -> bool:
    return (x.is_cuda or _force_asynchronous) and check_finite_mode() != "sync"


def _checking(x: torch.Tensor) -> bool:
    return check_finite_enabled() and not torch.compiler.is_compiling() and x.numel() > 0


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


def _non_finite_message(name: str, count: int | None) -> str:
    what = f"{count} NaN or infinite value(s)" if count is not None else "NaN or infinite values"
    return (f"{name} contains {what}; clean the input, or set FASTSSL_CHECK_FINITE=0 to skip this check "
            f"(NaN then propagates to the output)")


def _unit_range_message(name: str, low: float | None = None, high: float | None = None) -> str:
    seen = f" (values in [{low:.4g}, {high:.4g}])" if low is not None else ""
    return (f"{name} is a float image outside [0, 1]{seen}: divide 0..255 images by 255, or pass them as uint8")


def _assert_async(condition: torch.Tensor, message: str) -> None:
    torch._assert_async(condition, message[:ASYNC_MESSAGE_LIMIT])


def check_values(x: torch.Tensor, name: str, *, unit_range: bool = False) -> None:
    """Raises when a float tensor holds NaN or Inf, or (``unit_range``) values outside [0, 1] by more than
    UNIT_RANGE_TOLERANCE: both from one ``aminmax`` read. On CUDA without a host read (see the module
    docstring); skipped for non-float tensors, while torch.compile traces and with FASTSSL_CHECK_FINITE=0."""
    if not x.is_floating_point() or not _checking(x):
        return
    low, high = torch.aminmax(x.detach())  # one read, no temporary; NaN propagates into both
    if checks_asynchronously(x):
        ends = torch.stack((low, high))
        _assert_async(torch.isfinite(ends).all(), _non_finite_message(name, None))
        if unit_range:
            inside = (low >= -UNIT_RANGE_TOLERANCE) & (high <= 1 + UNIT_RANGE_TOLERANCE)
            _assert_async(inside, _unit_range_message(name))
        return
    low, high = float(low), float(high)
    if not (abs(low) < float("inf") and abs(high) < float("inf")):  # NaN fails both comparisons
        raise ValueError(_non_finite_message(name, int((~torch.isfinite(x)).sum())))
    if unit_range and not (-UNIT_RANGE_TOLERANCE <= low and high <= 1 + UNIT_RANGE_TOLERANCE):
        raise ValueError(_unit_range_message(name, low, high))


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raises when a float tensor holds NaN or Inf: :func:`check_values` without the range."""
    check_values(x, name)


def check_int(value, name: str, low: int = 1) -> int:
    """``value`` if it is an int >= ``low`` (not a bool); else ValueError naming ``name`` and the value.

    Example:
        >>> check_int(3, "grid", 2)
        3
        >>> check_int(1, "grid", 2)
        Traceback (most recent call last):
        ...
        ValueError: grid must be an integer >= 2, got 1
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def check_number(value, name: str, low: float = 0.0, high: float = float("inf"), *, open_low: bool = False,
                 what: str = "a number") -> float:
    """``value`` as a float in [low, high] ((low, high] with ``open_low``); else ValueError naming ``name``,
    ``what`` it must be ("a number", "a probability") and the value.

    Example:
        >>> check_number(0.5, "p", 0, 1, what="a probability")
        0.5
        >>> check_number(1.5, "p", 0, 1, what="a probability")
        Traceback (most recent call last):
        ...
        ValueError: p must be a probability in [0, 1], got 1.5
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value <= high
    ok = ok and (value > low if open_low else value >= low)
    if not ok:
        raise ValueError(f"{name} must be {what} in {'(' if open_low else '['}{low}, {high}], got {value!r}")
    return float(value)


def check_per_channel(value, name: str, channels: int) -> torch.Tensor:
    """(channels,) float64 CPU tensor from a finite number or ``channels`` finite numbers (e.g. a fill value)."""
    values = torch.as_tensor(value, dtype=torch.float64, device="cpu").flatten()
    if values.numel() not in (1, channels):
        raise ValueError(f"{name} must be a number or {channels} numbers (one per channel), got {value!r}")
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return values.expand(channels)


def check_integer_tensor(t, name: str, shapes: tuple[tuple[int, ...], ...], device) -> torch.Tensor:
    """An integer tensor of one of ``shapes`` as int64 on ``device`` (shape and dtype only: no value read)."""
    check_tensor(t, name)
    if tuple(t.shape) not in shapes:
        raise ValueError(f"{name} must have shape {' or '.join(map(str, shapes))}, got {tuple(t.shape)}")
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, got {t.dtype}")
    return t.to(device=device, dtype=torch.int64)


def _check_bounds(t: torch.Tensor, low: int, high: int, message: str) -> None:
    """Raises ``message`` when ``t`` has a value outside [low, high] (both included), naming up to 8 of them
    on the CPU; on CUDA without a host read; in a torch.compile graph as an assert. Always checked."""
    if t.numel() == 0:
        return
    lo, hi = torch.aminmax(t)
    if torch.compiler.is_compiling() or checks_asynchronously(t):
        _assert_async((lo >= low) & (hi <= high), message)
        return
    if int(lo) < low or int(hi) > high:
        bad = t[(t < low) | (t > high)]
        more = f" and {bad.numel() - 8} more" if bad.numel() > 8 else ""
        raise ValueError(f"{message}, got {bad[:8].tolist()}{more}")


def check_range(t: torch.Tensor, name: str, low: int, high: int) -> None:
    """Raises when an integer tensor has a value outside [low, high] (both included): see :func:`_check_bounds`.

    Example:
        >>> check_range(torch.tensor([0, 9, 3]), "labels", 0, 7)
        Traceback (most recent call last):
        ...
        ValueError: labels out of range: every value must lie in [0, 7], got [9]
    """
    _check_bounds(t, low, high, f"{name} out of range: every value must lie in [{low}, {high}]")


def check_index_range(index: torch.Tensor, name: str, low: int, high: int) -> None:
    """Raises when an integer tensor has a value outside [low, high), ``high`` excluded as for an index;
    on CUDA without a host read, in a torch.compile graph as an assert (always checked)."""
    _check_bounds(index, low, high - 1, f"{name} must lie in [{low}, {high})")


def check_none_equal(a: torch.Tensor, b: torch.Tensor, message: str) -> None:
    """Raises ``message`` when a and b are equal anywhere; on CUDA without a host read, in a torch.compile
    graph as an assert (always checked)."""
    if a.numel() == 0:
        return
    clash = (a == b).any()
    if torch.compiler.is_compiling() or checks_asynchronously(a):
        _assert_async(~clash, message)
    elif bool(clash):
        raise ValueError(message)


def check_same_device(tensors: dict[str, torch.Tensor]) -> None:
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        listed = ", ".join(f"{n} on {d}" for n, d in devices.items())
        raise ValueError(f"inputs must be on one device, got {listed}")
