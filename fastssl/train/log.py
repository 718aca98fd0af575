"""Training logs: a CSV file (one row per logged step), TensorBoard when installed, and a progress line.

The CSV is opened in append mode so a resumed run continues the same file; its columns are fixed by
the first row written (later keys that were not there are ignored, missing ones left empty). A resumed
run first cuts the file back to its checkpoint's step (``keep_through_step``): the rows written after
that checkpoint, before the run was stopped, are written again by the resumed run, each step once.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
    >>> log = CSVLog(path)
    >>> log.write({"step": 1, "loss": 2.5}); log.write({"step": 2, "loss": 2.0}); log.close()
    >>> [row["loss"] for row in read_csv(path)]
    [2.5, 2.0]
    >>> CSVLog(path, keep_through_step=1).close(); [row["step"] for row in read_csv(path)]
    [1]
"""

from __future__ import annotations

import csv
import importlib.util
import os


class CSVLog:
    """Appends one row per step to ``path``; ``keep_through_step`` first drops the rows of later steps."""

    def __init__(self, path: str, keep_through_step: int | None = None):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.columns = None
        if keep_through_step is not None and os.path.exists(path):
            _keep_through_step(path, keep_through_step)
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


def _keep_through_step(path: str, step: int) -> None:
    """Rewrites the CSV at ``path`` without the rows whose step is past ``step`` (atomically: a temporary file
    renamed over it)."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        rows = list(reader)
    column = header.index("step") if header and "step" in header else None
    kept = [row for row in rows if column is not None and row[column].isdigit() and int(row[column]) <= step]
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        if kept:
            writer.writerows([header] + kept)
    os.replace(tmp, path)


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
    """Scalars to TensorBoard when ``torch.utils.tensorboard`` works (the tensorboard package installed).

    ``purge_from``: a resumed run's first step; what the interrupted run logged from that step on is hidden, as
    ``log.csv`` is cut back (TensorBoard drops the earlier events of a step at or after it), so that each step
    shows once.
    """

    def __init__(self, folder: str, *, purge_from: int | None = None):
        self.writer = None
        if importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(folder, purge_step=purge_from)

    def write(self, step: int, row: dict) -> None:
        if self.writer is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key != "step":
                    self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def progress_text(row: dict) -> str:
    """The training progress line's text of a log row: step, epoch, loss, images/s, data-wait share, and the files
    and non-finite steps skipped so far.

    Example:
        >>> progress_text({"step": 12, "epoch": 1, "loss": 2.5, "images_per_s": 310.4, "data_wait": 0.02})
        'step 12 epoch 1 loss 2.5000 310 img/s data wait 2%'
    """
    text = (f"step {row.get('step')} epoch {row.get('epoch')} loss {row.get('loss', float('nan')):.4f} "
            f"{row.get('images_per_s', 0):.0f} img/s data wait {100 * row.get('data_wait', 0):.0f}%")
    if row.get("skipped_files"):
        text += f", {row['skipped_files']} files skipped"
    if row.get("skipped_steps"):
        text += f", {row['skipped_steps']} non-finite steps skipped"
    return text
