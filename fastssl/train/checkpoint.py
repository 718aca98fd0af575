"""Checkpoints written atomically: a crash mid-write never leaves a half-written file under the final name.

The state is saved to a temporary file in the same folder, flushed and fsynced, then renamed over
the target (``os.replace`` is atomic on POSIX and Windows); the folder is fsynced so the rename
survives a power cut. ``latest`` finds the newest checkpoint file; ``newest_usable`` the newest one
that loads and passes a check, setting the newer unusable ones aside (``step_<n>.pt.unusable``);
``remove_temporaries`` deletes what a save killed mid-write left behind (``.tmp-*.pt``).

Example:
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> path = save_atomic({"step": 3}, os.path.join(folder, "step_3.pt"))
    >>> load(latest(folder))["step"]
    3
    >>> path, state, notes = newest_usable(folder, lambda state: None if "step" in state else "no step")
    >>> os.path.basename(path), notes
    ('step_3.pt', [])
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from typing import Callable

import torch

PATTERN = re.compile(r"^step_(\d+)\.pt$")
TEMPORARY = re.compile(r"^\.tmp-.*\.pt$")
UNUSABLE_SUFFIX = ".unusable"


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


def _by_step(folder: str) -> list[str]:
    """Paths of the ``step_<n>.pt`` files in ``folder``, newest (largest n) first."""
    if not os.path.isdir(folder):
        return []
    steps = sorted(((int(m.group(1)), name) for name in os.listdir(folder) if (m := PATTERN.match(name))), reverse=True)
    return [os.path.join(folder, name) for _, name in steps]


def latest(folder: str) -> str | None:
    """The checkpoint ``step_<n>.pt`` with the largest n in ``folder`` (None when there is none)."""
    paths = _by_step(folder)
    return paths[0] if paths else None


def newest_usable(folder: str, check: Callable[[dict], str | None]) -> tuple[str | None, dict | None, list[str]]:
    """The newest checkpoint of ``folder`` that loads and that ``check`` accepts (it returns None, or why not).

    Returns (path, state, notes): (None, None, notes) when there is none. Each newer checkpoint that cannot be
    used is renamed ``<name>.unusable`` (kept for inspection, no longer counted as a checkpoint) and gets a note,
    one line saying why.
    """
    notes = []
    for path in _by_step(folder):
        try:
            state = load(path)
            why = check(state) if isinstance(state, dict) else f"holds a {type(state).__name__}, not a dict"
        except RuntimeError as error:
            why = str(error).splitlines()[0]
        if why is None:
            return path, state, notes
        os.replace(path, path + UNUSABLE_SUFFIX)
        notes.append(f"{os.path.basename(path)} cannot be used ({why}); set aside as "
                     f"{os.path.basename(path) + UNUSABLE_SUFFIX}")
    return None, None, notes


def remove_temporaries(folder: str) -> list[str]:
    """Deletes the ``.tmp-*.pt`` files a save killed mid-write left in ``folder``; their names."""
    names = sorted(name for name in os.listdir(folder) if TEMPORARY.match(name)) if os.path.isdir(folder) else []
    for name in names:
        os.unlink(os.path.join(folder, name))
    return names


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


def task_from_checkpoint(path: str, *, weights: bool = True, seed: int | None = None):
    """The task that wrote the training checkpoint ``path`` — its name, backbone, image size and options — with the
    checkpoint's weights, or freshly initialised with ``weights=False`` (``seed``: its initialisation seed, for a
    random-init baseline). A file that is not a fastssl training checkpoint raises ValueError (one line)."""
    from ..tasks import make_task

    state = load(path)
    if not isinstance(state, dict) or "task" not in state or "model" not in state:
        raise ValueError(f"{path!r} is not a fastssl training checkpoint")
    build = dict(backbone=state["backbone"], image_size=state["image_size"], **state.get("task_options", {}))
    if seed is not None:
        build["seed"] = seed
    task = make_task(state["task"], **build)
    if weights:
        task.load_state_dict(state["model"])
    return task
