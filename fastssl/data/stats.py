"""Throughput and data-wait accounting of a :class:`fastssl.data.Loader` epoch."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class LoaderStats:
    """Counters of one epoch; times in seconds.

    ``images`` and ``batches`` are what the consumer got; ``bad_files`` lists the files skipped because
    they could not be read or decoded, as (name, reason) in epoch order (``bad_count`` of them), and
    ``empty_batches`` counts the batches skipped because none of their files decoded.
    ``read_s``, ``decode_s`` and ``augment_s`` are spent in the loader's background thread;
    ``wait_s`` is the time the consumer spent blocked waiting for a batch, and ``wait_share`` its
    share of the wall time since the first batch was asked for (the step time the input pipeline
    did not hide).
    """

    images: int = 0
    batches: int = 0
    read_s: float = 0.0
    decode_s: float = 0.0
    augment_s: float = 0.0
    wait_s: float = 0.0
    bad_files: list[tuple[str, str]] = field(default_factory=list)  #: (name, reason), skipped
    empty_batches: int = 0
    started: float | None = None
    finished: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **seconds: float) -> None:
        with self._lock:
            for name, value in seconds.items():
                setattr(self, name, getattr(self, name) + value)

    @property
    def bad_count(self) -> int:
        """Files skipped so far this epoch."""
        return len(self.bad_files)

    @property
    def elapsed_s(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.perf_counter()) - self.started

    @property
    def images_per_s(self) -> float:
        return self.images / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def wait_share(self) -> float:
        return self.wait_s / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> str:
        """One line: images/s, where the background time went, the data-wait share, bad files."""
        line = (f"{self.images} images in {self.batches} batches, {self.images_per_s:.1f} img/s; read "
                f"{self.read_s:.2f} s, decode {self.decode_s:.2f} s, augment {self.augment_s:.2f} s; waiting for "
                f"data {100 * self.wait_share:.1f}% of the time")
        if self.bad_files:
            shown = ", ".join(f"{name} ({reason})" for name, reason in self.bad_files[:5])
            line += f"; {len(self.bad_files)} bad file(s) skipped: {shown}" + (" ..." if len(self.bad_files) > 5 else "")
        return line
