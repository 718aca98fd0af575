"""Checkpoints written atomically: a crash mid-write never leaves a half-written file under the final name.

The state is saved to a temporary file in the same folder, flushed and fsynced, then renamed over
the target (``os.replace`` is atomic on POSIX and Windows); the folder is fsynced so the rename
survives a power cut. ``latest`` finds the newest complete checkpoint.

Example:
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> path = save_atomic({"step": 3}, os.path.join(folder, "step_3.pt"))
    >>> load(latest(folder))["step"]
    3
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile

import torch

PATTERN = re.compile(r"^step_(\d+)\.pt$")


def save_atomic(state: dict, path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(folder, os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def latest(folder: str) -> str | None:
    """The checkpoint ``step_<n>.pt`` with the largest n in ``folder`` (None when there is none)."""
    if not os.path.isdir(folder):
        return None
    steps = [(int(m.group(1)), name) for name in os.listdir(folder) if (m := PATTERN.match(name))]
    return os.path.join(folder, max(steps)[1]) if steps else None


def load(path: str, map_location="cpu") -> dict:
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        raise RuntimeError(f"checkpoint {path!r} cannot be loaded: {error}") from error


def prune(folder: str, keep: int) -> None:
    """Deletes all but the ``keep`` newest ``step_<n>.pt`` files."""
    steps = sorted((int(m.group(1)), name) for name in os.listdir(folder) if (m := PATTERN.match(name)))
    for _, name in steps[:-keep] if keep > 0 else []:
        os.unlink(os.path.join(folder, name))
