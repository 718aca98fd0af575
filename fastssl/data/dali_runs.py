"""What the DALI decoders of whole files (video clips, audio files) share: one pipeline reused from batch to batch,
its failures in one line, and a failed batch decoded again in halves until the files at fault are isolated.

A DALI pipeline cannot go on after an error ("Current pipeline object is no longer valid"), and its native code
prints to stderr rather than raising what went wrong; so :class:`ReusedPipeline` captures that output, builds a
fresh pipeline after a failure (and a larger one for a larger batch), and raises one line saying both.
:func:`bisect_failures` turns one bad file of a batch into that file's reason, the others decoded.

Example (no DALI needed: ``run`` stands for a DALI run that fails on any batch holding file 3):
    >>> def run(positions):
    ...     if 3 in positions:
    ...         raise RuntimeError("corrupt")
    ...     return {p: p * 10 for p in positions}
    >>> bisect_failures(run, [0, 1, 2, 3, 4])
    ({0: 0, 1: 10, 2: 20, 4: 40}, [(3, 'decoding failed: corrupt')])
"""

from __future__ import annotations

import re
import threading
from typing import Callable

import numpy as np

from .decoders import _NativeStderr


class ReusedPipeline:
    """A DALI pipeline made by ``build(batch_size)``, built when first run, rebuilt for a larger batch and after
    a failure; one run at a time."""

    def __init__(self, build: Callable):
        self.build = build
        self.pipe, self.capacity = None, 0
        self.lock = threading.Lock()

    def run(self, feeds: dict[str, list], take: Callable):
        """``take(outputs)`` of one run with each external source ``name`` fed ``feeds[name]`` (one entry per
        sample); ``take`` runs under the lock, before the next run may reuse DALI's output buffers.
        RuntimeError (:func:`one_line`) on any failure."""
        count = len(next(iter(feeds.values())))
        with self.lock:
            if self.pipe is None or count > self.capacity:
                capacity = max(count, self.capacity)
                with _NativeStderr() as printed:
                    pipe = self.build(capacity)
                    pipe.build()
                printed.replay()
                self.pipe, self.capacity = pipe, capacity
            try:
                with _NativeStderr() as printed:
                    for name, data in feeds.items():
                        self.pipe.feed_input(name, data)
                    outputs = self.pipe.run()
            except RuntimeError as error:
                self.pipe = None  # no longer valid
                raise RuntimeError(one_line(error, printed.text)) from None
            printed.replay()
            return take(outputs)


def bisect_failures(run: Callable[[list[int]], dict], positions: list[int]) -> tuple[dict, list[tuple[int, str]]]:
    """({position: result}, [(position, why)]): ``run(positions)`` (a dict by position) on all of them; when it
    raises RuntimeError, on each half again, until the positions at fault are alone."""
    if not positions:
        return {}, []
    try:
        return run(positions), []
    except RuntimeError as error:
        if len(positions) == 1:
            return {}, [(positions[0], f"decoding failed: {error}")]
    half = len(positions) // 2
    a_done, a_failed = bisect_failures(run, positions[:half])
    b_done, b_failed = bisect_failures(run, positions[half:])
    return {**a_done, **b_done}, a_failed + b_failed


def read_checked(info, read: Callable) -> tuple[np.ndarray | None, str]:
    """(the indexed file's bytes as uint8, "") from ``read(info)``, or (None, why): unreadable, or not the size
    that was indexed (``info.bytes``)."""
    try:
        data = np.frombuffer(read(info), dtype=np.uint8)
    except OSError as error:
        return None, f"unreadable: {' '.join(str(error.strerror or error).split())}"
    if len(data) != info.bytes:
        return None, f"changed since it was indexed ({len(data)} bytes, the index says {info.bytes})"
    return data, ""


def one_line(error: BaseException, printed: str) -> str:
    """DALI's error as one line: the message after DALI's traceback, and what its native code printed meanwhile
    (without the source locations it prefixes)."""
    said = [line.strip() for line in str(error).split("encountered:")[-1].splitlines() if line.strip()]
    lines = dict.fromkeys(re.sub(r"^\[[^\]]*\]\s*", "", line.strip()) for line in printed.splitlines() if line.strip())
    text = "; ".join(([said[0]] if said else []) + [line for line in lines if line])
    return " ".join((text or "DALI error").split())[:300]
