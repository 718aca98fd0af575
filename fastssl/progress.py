"""A one-line progress display for long work: training, feature extraction, data generation, benchmarks.

On a terminal the line is redrawn in place (at most every ``every_s`` seconds); in a log file (no
terminal) a line is written every ``log_every_s`` seconds and at the end, so logs stay short.

Example:
    >>> import io
    >>> out = io.StringIO()
    >>> bar = Progress(4, "extracting features", stream=out)
    >>> for done in range(1, 5):
    ...     bar.update(done, f"{done * 128} images")
    >>> print(out.getvalue().strip())  # not a terminal: the first line, then one every 10 s and the last
    extracting features [#######.......................] 1/4 128 images
    extracting features [##############################] 4/4 512 images
"""

from __future__ import annotations

import sys
import time

WIDTH = 30  # characters of the bar


class Progress:
    """``total`` units of work named ``label``; :meth:`update` with the units done and a short text."""

    def __init__(self, total: int, label: str = "", stream=None, every_s: float = 0.5, log_every_s: float = 10.0):
        self.total, self.label = max(1, int(total)), label
        self.stream = sys.stderr if stream is None else stream
        self.every_s, self.log_every_s = every_s, log_every_s
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.drawn = self.written = float("-inf")

    def update(self, done: int, text: str = "", force: bool = False) -> None:
        now, last = time.perf_counter(), done >= self.total
        if not (force or last or now - self.drawn >= self.every_s):
            return
        self.drawn = now
        bar = int(WIDTH * min(done, self.total) / self.total)
        line = f"{self.label + ' ' if self.label else ''}[{'#' * bar}{'.' * (WIDTH - bar)}] {done}/{self.total}"
        line += f" {text}" if text else ""
        if self.tty:
            self.stream.write("\r" + line + ("\n" if last else ""))
        elif force or last or now - self.written >= self.log_every_s:
            self.written = now
            self.stream.write(line + "\n")
        self.stream.flush()


def maybe(enabled: bool, total: int, label: str = "") -> Progress | None:
    """A :class:`Progress` when ``enabled``, else None (callers write ``if bar: bar.update(...)``)."""
    return Progress(total, label) if enabled else None
