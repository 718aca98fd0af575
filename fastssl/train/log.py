"""Training logs: a CSV file (one row per logged step), TensorBoard when installed, and a progress line.

The CSV is opened in append mode so a resumed run continues the same file; its columns are fixed by
the first row written (later keys that were not there are ignored, missing ones left empty).

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
    >>> log = CSVLog(path)
    >>> log.write({"step": 1, "loss": 2.5}); log.write({"step": 2, "loss": 2.0}); log.close()
    >>> [row["loss"] for row in read_csv(path)]
    [2.5, 2.0]
"""

from __future__ import annotations

import csv
import importlib.util
import os
import sys
import time


class CSVLog:
    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.columns = None
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path, newline="") as f:
                self.columns = next(csv.reader(f), None)
        self.file = open(path, "a", newline="")
        self.writer = None

    def write(self, row: dict) -> None:
        if self.columns is None:
            self.columns = list(row)
        if self.writer is None:
            self.writer = csv.DictWriter(self.file, self.columns, extrasaction="ignore")
            if self.file.tell() == 0:
                self.writer.writeheader()
        self.writer.writerow(row)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def read_csv(path: str) -> list[dict]:
    """Rows of a CSV log with numbers parsed (empty cells are None)."""
    def parse(value: str):
        if value == "":
            return None
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value and "e" not in value else number

    with open(path, newline="") as f:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


class TensorBoard:
    """Scalars to TensorBoard when ``torch.utils.tensorboard`` works (the tensorboard package installed)."""

    def __init__(self, folder: str):
        self.writer = None
        if importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(folder)

    def write(self, step: int, row: dict) -> None:
        if self.writer is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key != "step":
                    self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Progress:
    """A one-line progress display: step, epoch, loss, images/s, data-wait share (redrawn on a terminal)."""

    def __init__(self, total: int, stream=sys.stderr, every_s: float = 0.5):
        self.total, self.stream, self.every_s = total, stream, every_s
        self.tty = getattr(stream, "isatty", lambda: False)()
        self.last = 0.0

    def update(self, step: int, row: dict, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < self.every_s and step < self.total:
            return
        self.last = now
        bar = int(30 * step / max(1, self.total))
        text = (f"[{'#' * bar}{'.' * (30 - bar)}] step {step}/{self.total} epoch {row.get('epoch')} "
                f"loss {row.get('loss', float('nan')):.4f} {row.get('images_per_s', 0):.0f} img/s "
                f"data wait {100 * row.get('data_wait', 0):.0f}%")
        if self.tty:
            self.stream.write("\r" + text + ("\n" if step >= self.total else ""))
        elif force or step >= self.total or now - getattr(self, "_printed", 0) > 10:
            self._printed = now
            self.stream.write(text + "\n")
        self.stream.flush()
